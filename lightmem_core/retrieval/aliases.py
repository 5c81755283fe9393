"""What the people in a user's conversations are called, learned from the conversations.

Speaker labels are often not the names people use: a chat export says ``dk_92`` and
``samuel.o`` while the two call each other "Dani" and "Sam", and a question asks "What did
Dani adopt?". Matching labels alone misses both. Two sources of names, neither keyed to any
language model or list of names:

* **handles**: the alphabetic parts of a label that is not a plain word (``samuel.o`` is
  "samuel", ``mike_88`` is "mike");
* **vocatives**: how speakers address each other. "hey sam, you around?", "Dani, you still
  up?", "thanks, Mel!": a name in an address position names someone else in the sitting,
  the nearest other speaker before or after the turn (in a two-person chat, the other
  person). A word becomes an alias when its votes point at one speaker clearly.

Address positions are kept narrow (after a greeting, or a capitalised word set off by
punctuation at the start or end of a message) and common interjections are excluded, so a
"Perfect." or "Wow, nice!" does not become anyone's name.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["SpokenTurn", "handle_names", "learn_aliases", "vocatives"]


@dataclass(frozen=True, slots=True)
class SpokenTurn:
    """What alias learning reads of a turn: where it was said, by whom, and what."""

    session_id: str
    speaker: str
    text: str


_GREETING = (
    r"hey|hi|hiya|hello|heya|yo|oh|ok|okay|thanks|thank you|thx|ty|congrats|"
    r"congratulations|morning|good morning|evening|good evening|night|good night|gn|"
    r"bye|see you|love you|miss you|sorry|welcome|cheers|wow|aw|aww|omg|dear"
)
_NAME = r"[^\W\d_][^\W_]{1,19}"
_WORD = re.compile(r"[^\W\d_][^\W_]*")
_LAUGHTER = re.compile(r"^(?:[aeh]+|(?:lo)+l?|x+d+)$")
# "hey sam, you around?" / "morning ana" / "Thanks Dani!": a name right after a greeting,
# ending there (punctuation or the end of the message), or capitalised.
_AFTER_GREETING = re.compile(
    rf"^\W*(?:{_GREETING})[\s,]+(?P<name>{_NAME})(?P<end>\s*(?:[,.!?:;)]|$))?",
    re.IGNORECASE,
)
# "Dani, you still up?" / "SAM. congrats!!!": a capitalised word set off by a comma at the
# start (or shouted: "Great!" and "Wow." open many sentences, a shouted name opens few).
_AT_START = re.compile(rf"^\W*(?:(?P<name>{_NAME})\s*[,:]|(?P<shout>[^\W\d_a-z]{{2,20}})\s*[!.])")
# "nice one, Tom!" / "that's great, Caroline.": set off by a comma at the end.
_AT_END = re.compile(rf",\s*(?P<name>{_NAME})\s*[.!?)]*\s*$")

# Words that stand where a name would in the patterns above but name no one.
_NOT_NAMES = frozenset(
    re.findall(
        r"\S+",
        """
    a all an and anyway anyways aw aww awesome babe baby bestie bro brother buddy but bye
    congrats cool damn darling dear dude everybody everyone everything exactly fam fine
    folks friend friends gah girl god gosh great guys haha hahaha hehe hello hey hi hm hmm
    hmmm honestly honey hooray how huh i indeed it just kiddo lads ladies let lmao lol look
    love mate maybe me mhm morning my nah naw nice night no nope not oh ok okay omg oof ooh
    oops perfect please pls pal really right see seriously sir sis so sorry sounds still
    super sure sweet sweetie team thank thanks that the then there this thx true ty ugh
    um umm wait we well welcome what whatever when where which who why wow yay yeah yep yes
    yo you your yup
    ah ahh aha ahaha agreed alright amazing absolutely beautiful brilliant cheers dang darn
    definitely excellent fantastic gotcha ha hah heh hurray incredible lovely man mm mmm
    nooo ouch phew shure totally whoa woah woo woohoo wooo wonderful yea yum yummy
    also actually anyhow besides btw but finally guess however last later lately luckily
    meanwhile next now otherwise recently sadly since speaking today tomorrow tonight
    yesterday weekend monday tuesday wednesday thursday friday saturday sunday january
    february march april june july august september october november december
    """,
    )
)


def handle_names(label: str) -> set[str]:
    """The name-like parts of a speaker label that is a handle: ``samuel.o`` -> ``samuel``,
    ``mike_88`` -> ``mike``, ``DaniK`` -> nothing (a plain word is matched as it is)."""
    parts = re.findall(r"[^\W\d_]+", label)
    if len(parts) == 1 and parts[0] == label.strip():
        return set()
    return {p.casefold() for p in parts if len(p) >= 3 and p.casefold() not in _NOT_NAMES}


def _capitalised(word: str) -> bool:
    return word[0].isupper()


def vocatives(text: str) -> list[str]:
    """The words of ``text`` in an address position (casefolded), most likely names."""
    found: list[str] = []
    greeted = _AFTER_GREETING.match(text)
    if greeted is not None and (greeted.group("end") is not None or _capitalised(greeted["name"])):
        found.append(greeted["name"])
    start = _AT_START.match(text)
    if start is not None and (start["shout"] or _capitalised(start["name"])):
        found.append(start["shout"] or start["name"])
    end = _AT_END.search(text)
    if end is not None and _capitalised(end["name"]):
        found.append(end["name"])
    words = {w.casefold() for w in found}
    # Sentence adverbs and gerunds ("Honestly, ...", "Winning, ...") stand where a name would.
    return sorted(
        w
        for w in words
        if w not in _NOT_NAMES
        and not _LAUGHTER.match(w)
        and not w.endswith("ly")
        and not (w.endswith("ing") and len(w) > 5)
    )


def _addressees(session: Sequence[SpokenTurn], at: int) -> list[str]:
    """The nearest other speakers before and after turn ``at`` of its session."""
    speaker = session[at].speaker
    before = next((t.speaker for t in reversed(session[:at]) if t.speaker != speaker), None)
    after = next((t.speaker for t in session[at + 1 :] if t.speaker != speaker), None)
    return [s for s in dict.fromkeys((before, after)) if s is not None]


def learn_aliases(turns: Iterable[SpokenTurn]) -> dict[str, str]:
    """``{name: speaker label}`` for the names a conversation reveals (casefolded names).

    Each label's handle parts name it. A vocative votes for the turn's addressees (split
    when the nearest speakers before and after differ). A word is an alias of the speaker
    with at least one full vote and two thirds of all its votes, unless it is part of a
    label, is written in lower case outside an address (a common word, "good" or "keep"),
    or is said by that speaker (people rarely name themselves; places and things they do)."""
    sessions: dict[str, list[SpokenTurn]] = defaultdict(list)
    for turn in turns:
        sessions[turn.session_id].append(turn)
    labels = {t.speaker for session in sessions.values() for t in session}
    taken: dict[str, str] = {}
    for label in sorted(labels):
        for word in {label.casefold(), *handle_names(label)}:
            taken.setdefault(word, label)
    votes: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    addressed: list[tuple[SpokenTurn, list[str]]] = []
    for session in sessions.values():
        for at, turn in enumerate(session):
            names = [n for n in vocatives(turn.text) if n not in taken]
            addressed.append((turn, names))
            if not names:
                continue
            addressees = _addressees(session, at)
            for name in names:
                for addressee in addressees:
                    votes[name][addressee] += 1 / len(addressees)
    chosen: dict[str, str] = {}
    for name, tally in votes.items():
        best, score = max(tally.items(), key=lambda item: (item[1], item[0]))
        if score >= 1 and score >= 2 / 3 * sum(tally.values()):
            chosen[name] = best
    refuted: set[str] = set()
    for turn, names in addressed:
        for word in _WORD.findall(turn.text):
            folded = word.casefold()
            if folded not in chosen or folded in names:
                continue
            if word[0].islower() or turn.speaker == chosen[folded]:
                refuted.add(folded)
    return {**taken, **{n: label for n, label in chosen.items() if n not in refuted}}


def people_named(aliases: Mapping[str, str], labels: Iterable[str]) -> dict[str, str]:
    """Every way to name a speaker: the learned aliases plus each label itself."""
    named = {label.casefold(): label for label in labels}
    named.update(aliases)
    return named
