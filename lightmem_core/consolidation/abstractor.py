"""Abstractors: from MTM evidence to candidate long-term knowledge.

The default :class:`LocalAbstractor` calls no model. It keeps the first-person statements
of what people said ("I moved to Berlin last month"), rewrites them about the speaker
("Alice moved to Berlin (March 2024)"), tells facts, preferences, plans and events apart,
dates events (dateparser, relative to when they were said) and recognises a few
single-valued attributes (where someone lives, works, their age, relationship status,
favourites) so a change of one can supersede the old value. It is deliberately
conservative: questions, sentences addressed to the listener ("you") and small talk are
left in mid-term memory, where search still finds them. A model-driven abstractor plugs
in behind the same :class:`Abstractor` protocol.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from .._types import Memory
from ..retrieval.controller import RELATIVE_TIME, phrase_window
from ..store import Evidence
from .shared import is_general

if TYPE_CHECKING:
    from .plan import Judgement

__all__ = [
    "Abstractor",
    "AsyncAbstractor",
    "AsyncJudgingAbstractor",
    "CountsModelCalls",
    "JudgingAbstractor",
    "KnowledgeCandidate",
    "LocalAbstractor",
]

Kind = Literal["fact", "preference", "plan", "event"]


@dataclass(frozen=True, slots=True)
class KnowledgeCandidate:
    """A piece of knowledge an abstractor found in one MTM entry."""

    text: str
    """The knowledge as a self-contained sentence about its subject."""
    kind: Kind
    subject: str | None = None
    """Who it is about ("Alice", "Alice's sister")."""
    attribute: str | None = None
    """For single-valued facts: what it sets (``residence``, ``employer``...)."""
    value: str | None = None
    """The attribute's value, as said."""
    happened_at: datetime | None = None
    """When it happened or became true (the evidence's time when not said)."""
    confidence: float = 0.5
    """How sure the abstractor is (0-1)."""
    general: bool = False
    """About the world, not a person: a candidate for opt-in shared knowledge (never kept in
    the user's own long-term memory)."""

    @property
    def slot(self) -> str | None:
        """``subject|attribute`` for single-valued facts: the key contradictions share."""
        if self.subject is None or self.attribute is None:
            return None
        return f"{self.subject.casefold()}|{self.attribute}"

    @property
    def slot_value(self) -> str | None:
        """The value, normalised for comparison."""
        if self.value is None:
            return None
        words = re.sub(r"[^\w\s]", " ", self.value.casefold()).split()
        return " ".join(w for w in words if w not in {"the", "a", "an"}) or None


class Abstractor(Protocol):
    """Finds candidate long-term knowledge in MTM entries (one list per entry).

    One that calls a language model keeps a running ``model_calls: int``; the consolidation
    report counts the calls each run adds. An ``aabstract`` coroutine, if present, is what
    ``aconsolidate`` awaits. An abstractor may also decide how a candidate relates to the
    records like it: ``judge(candidate, records) -> Judgement | None`` (and ``ajudge``);
    see :class:`~lightmem_core.consolidation.plan.Judge`.
    """

    def abstract(self, evidence: Sequence[Evidence]) -> list[list[KnowledgeCandidate]]:
        """The candidate knowledge each evidence entry states: one list per entry, in order
        (empty for an entry that states nothing worth keeping)."""


# The optional capabilities of an abstractor, each a protocol of its own, checked once when
# a run starts (runtime-checkable: ``isinstance`` sees whether the members are there).


@runtime_checkable
class CountsModelCalls(Protocol):
    """Keeps a running count of the model calls it made."""

    model_calls: int


@runtime_checkable
class AsyncAbstractor(Protocol):
    """Has an ``aabstract`` coroutine, which ``aconsolidate`` awaits."""

    async def aabstract(self, evidence: Sequence[Evidence]) -> list[list[KnowledgeCandidate]]: ...


@runtime_checkable
class JudgingAbstractor(Protocol):
    """Decides how a candidate relates to the records like it (a model consolidator)."""

    def judge(
        self, candidate: KnowledgeCandidate, records: Sequence[Memory]
    ) -> Judgement | None: ...


@runtime_checkable
class AsyncJudgingAbstractor(Protocol):
    """Has an ``ajudge`` coroutine, which ``aconsolidate`` awaits."""

    async def ajudge(
        self, candidate: KnowledgeCandidate, records: Sequence[Memory]
    ) -> Judgement | None: ...


# --- sentences worth keeping -------------------------------------------------------------------

_SENTENCES = re.compile(r"(?<=[.!?])\s+|\n+")
# One sentence, several statements: "I live in Paris and I work as a nurse", "I moved to
# Berlin; my sister stayed", "I like tea, but I hate coffee". Split where a new clause starts
# with the speaker (or "my"/"we"); "and work as a nurse" (the subject left out) gets "I".
_CLAUSES = re.compile(
    r"(?:,?\s+(?:and|but|while|so|although|though)|;|,)\s+(?=(?:I|I'm|I've|my|My|we|We|our|Our)\b)"
)
_ELIDED = re.compile(
    r"^(?P<head>(?:I|we)\b.{3,}?)\s+and\s+(?P<verb>(?:also\s+)?(?:work|works|worked|live|lives|"
    r"lived|moved|started|am|have|has|love|loves|like|likes|hate|hates|got|joined|teach|study|"
    r"run|play|own)\b.*)$",
    re.I,
)
_FILLER = (
    r"(?:(?:so|and|but|well|yeah|yes|oh|wow|actually|also|honestly|anyway|hey|um|ok|okay|"
    r"now|nowadays|these days|lately|recently|currently|at the moment|right now|"
    r"since then|guess what|big news|fun fact|by the way|btw|update|good news|news)[,!:]?\s+)*"
)
_FIRST_PERSON = re.compile(
    rf"^{_FILLER}(?P<start>I(?:'m|'ve|'d|'ll)?|my|we(?:'re|'ve|'ll)?|our)\b(?P<rest>.*)$", re.I
)
_SECOND_PERSON = re.compile(r"\b(you|your|yours|yourself|u)\b", re.I)
_MY = re.compile(r"\b(my|our)\b", re.I)
# Openers that react to the conversation rather than say something about the speaker.
_SMALL_TALK = re.compile(
    r"^(I|we)\s+(?:(?:really|totally|completely|just)\s+)?"
    r"(think|guess|mean|agree|know|see|bet|wonder|understand|hope|wish|appreciate|"
    r"can't believe|cannot believe|can't wait|couldn't agree|remember when|totally get)\b|"
    r"^I'm (?:so |really )?(sorry|glad|happy to hear|proud of|thrilled for|excited for)\b",
    re.I,
)
_HEDGED = re.compile(r"\b(maybe|might|perhaps|probably|not sure|kind of|sort of)\b", re.I)
_MIN_WORDS, _MAX_WORDS = 3, 40  # "I love jazz." is a statement

# --- kinds -------------------------------------------------------------------------------------

_PLAN = re.compile(
    r"\b(going to|gonna|will|plan(?:s|ning)? to|want(?:s)? to|hop(?:e|es|ing) to|about to|"
    r"thinking (?:about|of)|looking forward to|intend(?:s)? to|next (?:week|month|year))\b",
    re.I,
)
_PREFERENCE = re.compile(
    r"\b(likes?|loves?|enjoys?|prefers?|adores?|hates?|dislikes?|can't stand|favou?rite|"
    r"fan of|into|passionate about|obsessed with)\b",
    re.I,
)
# --- the verb after "I" -------------------------------------------------------------------------


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_ADVERBS = _words(
    "just really also recently finally actually still always never usually often already "
    "sometimes totally definitely even only now once mostly mainly generally normally "
    "currently rarely hardly barely typically"
)
_MODALS = _words(
    "can could will would shall should may might must can't couldn't won't wouldn't shouldn't"
)
# Past forms that do not end in -ed (ambiguous ones such as "read" or "put" count as past).
_PAST_FORMS = _words(
    "did had was were went got saw took made came said found gave told felt left met bought "
    "thought began ran wrote heard kept lost won sold spent built brought taught caught fell "
    "grew knew became drove flew ate drank swam sang sat stood understood forgot chose wore "
    "broke spoke woke rode hid paid put read let set cut hit hurt quit didn't wasn't weren't "
    "hadn't"
)
_THIRD_PERSON = {
    "am": "is",
    "have": "has",
    "do": "does",
    "go": "goes",
    "don't": "doesn't",
    "haven't": "hasn't",
    "am not": "is not",
}
_PAST_STATE = _words("was were had did felt thought knew said told meant")


def _conjugate(verb: str) -> str:
    """The third-person singular of the verb that followed "I"."""
    lower = verb.lower()
    if lower in _THIRD_PERSON:
        return _THIRD_PERSON[lower]
    if _is_past(verb) or lower in _MODALS or not lower.isalpha():
        return verb
    if lower.endswith(("s", "sh", "ch", "x", "z", "o")):
        return verb + "es"
    if lower.endswith("y") and len(lower) > 1 and lower[-2] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


def _is_past(verb: str) -> bool:
    lower = verb.lower()
    return lower.endswith("ed") or lower in _PAST_FORMS


# --- single-valued attributes (a new value supersedes the old) ----------------------------------

_NAME = r"(?:the\s+)?[A-Z][\w'&.-]*(?:\s+[A-Z][\w'&.-]*){0,3}"
_ATTRIBUTES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "residence",
        re.compile(
            rf"\b(?:lives?|living|moved|moves|moving|relocated|relocating|is based|settled)"
            rf"\s+(?:back\s+)?(?:to|in)\s+(?P<value>{_NAME})"
        ),
    ),
    (
        "employer",
        re.compile(
            rf"\b(?:works?|working|worked|got a job|started a (?:new )?job|is employed|joined)"
            rf"\s+(?:at|for|with)?\s*(?P<value>{_NAME})"
        ),
    ),
    ("occupation", re.compile(r"\bworks? as an?\s+(?P<value>[a-z][\w-]*(?:\s+[a-z][\w-]*)?)")),
    ("age", re.compile(r"\b(?:is|turned)\s+(?P<value>\d{1,3})(?:\s+years old)?\b")),
    (
        "relationship status",
        re.compile(
            r"\b(?:is|got)\s+(?:now\s+|recently\s+)?"
            r"(?P<value>single|married|engaged|divorced|separated|widowed)\b"
        ),
    ),
)
_FAVOURITE = re.compile(
    r"\bfavou?rite\s+(?P<thing>[a-z]+(?:\s+[a-z]+)?)\s+(?:is|are)\s+(?P<value>[^,;.!?]+)"
)


class LocalAbstractor:
    """The default abstractor: rules over the speaker's own first-person statements.

    Args:
        resolve_dates: date events from expressions such as "last week" (dateparser).
    """

    def __init__(self, *, resolve_dates: bool = True) -> None:
        self.resolve_dates = resolve_dates

    def abstract(self, evidence: Sequence[Evidence]) -> list[list[KnowledgeCandidate]]:
        return [self._entry(item) for item in evidence]

    def _entry(self, item: Evidence) -> list[KnowledgeCandidate]:
        if item.role not in (None, "user"):
            return []  # the assistant's and tools' words are not facts about people
        memory = item.memory
        speaker = memory.speaker or ("The user" if item.role == "user" else None)
        if speaker is None:
            return []
        found: list[KnowledgeCandidate] = []
        seen: set[str] = set()
        for sentence in _SENTENCES.split(memory.text):
            for clause in _clauses(sentence.strip()):
                candidate = self._sentence(clause, speaker, memory.timestamp)
                if candidate is not None and candidate.text.casefold() not in seen:
                    seen.add(candidate.text.casefold())
                    found.append(candidate)
        return found

    def _sentence(
        self, sentence: str, speaker: str, said_at: datetime | None
    ) -> KnowledgeCandidate | None:
        sentence = sentence.replace("\u2019", "'").strip(" \"'")
        words = sentence.split()
        if not (_MIN_WORDS <= len(words) <= _MAX_WORDS) or sentence.endswith("?"):
            return None
        sentence = _speaker_first(sentence)
        match = _FIRST_PERSON.match(sentence)
        if match is None and is_general(sentence):
            text = sentence.rstrip(" .!;,") + "."
            return KnowledgeCandidate(text=text, kind="fact", general=True, confidence=0.5)
        if _SECOND_PERSON.search(sentence):
            return None
        if match is not None:
            clause = sentence[match.start("start") :]
        elif _MY.search(sentence):
            clause = sentence  # "Hiking is my favourite way to spend a weekend."
        else:
            return None
        if _SMALL_TALK.match(clause):
            return None
        text, verb = _about(clause, speaker)
        text = text.rstrip(" .!;,") + "."
        text = text[0].upper() + text[1:]
        kind = _kind(clause, verb)
        subject, attribute, value = _attribute(text, speaker)
        happened = said_at
        if kind == "event" and said_at is not None:
            happened, when, expression = self._when(clause, said_at)
            if expression:  # "last month" means nothing later: say the date instead
                text = re.sub(rf"\s*\b{re.escape(expression)}\b", "", text, count=1)
            text = f"{text[:-1]} ({when})."
        confidence = 0.6 if attribute else 0.5
        if _HEDGED.search(clause):
            confidence = 0.3
        return KnowledgeCandidate(
            text=text,
            kind=kind,
            subject=subject or speaker,
            attribute=attribute,
            value=value,
            happened_at=happened,
            confidence=confidence,
        )

    def _when(self, clause: str, said_at: datetime) -> tuple[datetime, str, str | None]:
        """When an event happened, how to say it, and the time words it was read from."""
        found = RELATIVE_TIME.search(clause)
        if found is not None and self.resolve_dates:
            window = phrase_window(found.group(0), said_at)
            if window is not None:
                days = (window.end - window.start).days
                if days < 1:
                    when = f"{window.start:%-d %B %Y}"
                elif days <= 7:
                    when = f"the week of {window.start:%-d %B %Y}"
                elif days <= 31:
                    when = f"{window.start:%B %Y}"
                else:
                    when = f"{window.start:%Y}"
                return window.start, when, found.group(0)
        return said_at, f"mentioned {said_at:%-d %B %Y}", None


def _clauses(sentence: str) -> list[str]:
    """The statements of one sentence: split where a clause starts with the speaker, and
    where a second verb shares the first clause's subject ("I live in Paris and work as a
    nurse" -> "I live in Paris", "I work as a nurse")."""
    parts = [p.strip(" ,;") for p in _CLAUSES.split(sentence) if p and p.strip(" ,;")]
    out: list[str] = []
    for part in parts:
        elided = _ELIDED.match(part)
        if elided is not None:
            subject = part.split()[0]
            out += [elided["head"], f"{subject} {elided['verb']}"]
        else:
            out.append(part)
    # A clause too short to stand alone ("and so on") stays with the sentence.
    return out if all(len(p.split()) >= 3 for p in out) else [sentence]


def _speaker_first(clause: str) -> str:
    """ "My sister and I moved..." -> "I and my sister moved...": the speaker leads, so the
    rewritten statement is about them (and its slot is theirs)."""
    return re.sub(
        r"^(?P<other>(?:my|our)\s+[a-z]+(?:\s+[a-z]+)?)\s+and\s+I\b",
        lambda m: f"I and {m['other']}",
        clause,
        flags=re.I,
    )


def _about(clause: str, speaker: str) -> tuple[str, str | None]:
    """The clause rewritten about the speaker, and the verb that followed "I"."""
    possessive = f"{speaker}'" if speaker.endswith("s") else f"{speaker}'s"
    tokens = clause.split()
    out: list[str] = []
    verb: str | None = None
    i = 0
    while i < len(tokens):
        token = tokens[i]
        bare = token.strip(",.;:!")
        tail = token[len(bare) :] if token.startswith(bare) else ""
        lower = bare.lower()
        if lower in ("i'm", "i've", "i'd", "i'll"):
            out += [speaker, {"i'm": "is", "i've": "has", "i'd": "would", "i'll": "will"}[lower]]
            verb = verb or out[-1]
            out[-1] += tail
        elif lower == "i" and i + 1 < len(tokens) and tokens[i + 1].lower() == "and":
            out.append(speaker)  # "I and my sister live...": the verb is theirs, plural
        elif lower == "i":
            out.append(speaker)
            j = i + 1
            while j < len(tokens) and (
                tokens[j].lower() in _ADVERBS
                or (
                    tokens[j].lower() == "no"
                    and j + 1 < len(tokens)
                    and tokens[j + 1].lower() == "longer"
                )
                or tokens[j].lower() == "longer"
            ):
                out.append(tokens[j])
                j += 1
            if j < len(tokens):
                nxt = tokens[j].strip(",.;:!")
                rest = tokens[j][len(nxt) :]
                if nxt.lower() == "am" and j + 1 < len(tokens) and tokens[j + 1].lower() == "not":
                    out += ["is", "not"]
                    j += 1
                else:
                    out.append(_conjugate(nxt) + rest)
                verb = verb or nxt
                i = j
        elif lower in ("my", "mine"):
            out.append(possessive + tail)
        elif lower in ("me", "myself"):
            out.append(speaker + tail)
        elif lower in ("we", "we're", "we've", "we'll"):
            extra = {"we": [], "we're": ["are"], "we've": ["have"], "we'll": ["will"]}[lower]
            out += [speaker, "and others", *extra]
            out[-1] += tail
        elif lower in ("our", "ours"):
            out.append(possessive + tail)
        elif lower == "us":
            out.append(f"{speaker} and others{tail}")
        else:
            out.append(token)
        i += 1
    return " ".join(out), verb


def _kind(clause: str, verb: str | None) -> Kind:
    if _PLAN.search(clause):
        return "plan"
    if _PREFERENCE.search(clause):
        return "preference"
    if RELATIVE_TIME.search(clause) or (
        verb is not None and _is_past(verb) and verb.lower() not in _PAST_STATE
    ):
        return "event"
    return "fact"


# Words that say when or how firmly, not what: "is still Radiohead", "is ramen these days".
_VALUE_NOISE = re.compile(
    r"^(?:(?:still|now|currently|also|again|really|definitely|probably)\s+)+|"
    r"\s+(?:now|nowadays|these days|lately|again|still|anymore|too|as well)$",
    re.I,
)


def _value(raw: str) -> str:
    value = raw.strip().rstrip(".")
    previous = None
    while previous != value:
        previous, value = value, _VALUE_NOISE.sub("", value).strip()
    return value


def _attribute(text: str, speaker: str) -> tuple[str | None, str | None, str | None]:
    """``(subject, attribute, value)`` of a single-valued fact in the rewritten text."""
    owner = re.escape(speaker)
    subject_match = re.match(rf"^({owner}(?:'s?\s+(?!favou?rite\b)[a-z]+)?)(?=\s|')", text)
    if subject_match is None:
        return None, None, None
    subject = subject_match.group(1)
    favourite = _FAVOURITE.search(text)
    if favourite is not None:
        return subject, f"favourite {favourite['thing']}", _value(favourite["value"])
    for attribute, pattern in _ATTRIBUTES:
        found = pattern.search(text, subject_match.end())
        if found is not None:
            return subject, attribute, _value(found["value"])
    return subject, None, None
