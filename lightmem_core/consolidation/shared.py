"""Opt-in shared knowledge: general statements, de-identified, readable by every user.

With ``share_knowledge=True``, consolidation also collects *general* knowledge: statements
about the world rather than about a person ("The museum is closed on Mondays."). Before
such a statement leaves the user's space it is de-identified: e-mail addresses, phone
numbers, web addresses and long ids are replaced by placeholders, and a statement that
names anyone (a speaker, a user id, or any capitalised word that is not a day or a month)
or speaks of a person ("he", "my") is not shared at all. A shared record keeps no provenance: nothing points back to the user.

Shared records live under a reserved owner id that no user id can take (it holds a control
character, which user ids may not), so every per-user guarantee still holds for users.
Off by default.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable

__all__ = ["SENSITIVE", "SHARED_USER", "deidentify", "is_general", "sensitive"]

SHARED_USER = "\x1fshared"
"""The owner id of shared knowledge (user ids cannot contain control characters)."""

_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_URL = re.compile(r"\b(?:https?://|www\.)\S+?(?=[.,;:!?]?(?:\s|$))", re.I)
_PHONE = re.compile(r"(?<!\w)\+?\d[\d\s().-]{6,}\d(?!\w)")
_LONG_ID = re.compile(r"\b(?=[\w-]*\d)[\w-]{12,}\b|\b\d{5,}\b")
_PERSONAL = re.compile(
    r"\b(i|i'm|i've|i'd|i'll|me|my|mine|myself|we|our|us|you|your|he|she|him|her|his|hers|"
    r"they|them|their|mr|mrs|ms|dr)\b",
    re.I,
)
_GENERAL_START = re.compile(r"^(?:the|a|an|most|many|some|every|each|all|no)\b", re.I)
# Without a named-entity model a capitalised word may be anyone's name, so any capitalised
# word after the first blocks sharing, except days and months. Over-cautious on purpose.
_DAYS = [d.lower() for d in calendar.day_name]
_CALENDAR = frozenset([*_DAYS, *(d + "s" for d in _DAYS), *map(str.lower, calendar.month_name[1:])])
_CAPITALISED = re.compile(r"\b[A-Z][\w'-]*")
# A declarative sentence has a verb: an auxiliary, or a present-tense verb in -s.
_VERB = re.compile(
    r"\b(?:is|are|has|have|can|could|should|must|will|may|need|needs|do|does|takes?|"
    r"[a-z]+s)\b"
)


def _words(*stems: str) -> re.Pattern[str]:
    """Words starting with any of ``stems`` (``allerg`` matches allergy, allergic...)."""
    return re.compile(r"\b(?:" + "|".join(stems) + r")", re.I)


# What shared knowledge must never hold, by category (``benchmarks/sharing.py`` reports on
# a labelled set; ``docs/consolidation.md`` lists the rules). Each matches word starts; when
# in doubt a statement is not shared: it stays in its author's own memory.
SENSITIVE: dict[str, re.Pattern[str]] = {
    "credential": _words(
        r"pass(?:word|code|phrase)",
        r"pins?\b",
        r"codes?\b",
        r"combination",
        r"log-?ins?\b",
        r"user ?names?\b",
        r"keys?\b",
        r"tokens?\b",
        r"secret",
        r"lock(?:er)?s?\b",
        r"credential",
        r"otp\b",
        r"2fa\b",
        r"digits?\b",
    ),
    "health": _words(
        r"diabet",
        r"cancer",
        r"tumou?r",
        r"pregnan",
        r"depress",
        r"anxiet",
        r"epilep",
        r"allerg",
        r"hiv\b",
        r"aids\b",
        r"dementia",
        r"alzheimer",
        r"surg",
        r"therap",
        r"medicat",
        r"medicine",
        r"pills?\b",
        r"diagnos",
        r"disease",
        r"illness",
        r"ill\b",
        r"sick",
        r"disorder",
        r"symptom",
        r"patient",
        r"hospital",
        r"clinic",
        r"burn-?out",
        r"injur",
        r"disab",
        r"autis",
        r"adhd",
        r"rehab",
        r"addict",
        r"overdose",
        r"chemo",
        r"treated\b",
        r"wheelchair",
        r"mental",
        r"psych",
        r"doctor",
        r"nurse",
        r"health",
    ),
    "sexuality": _words(
        r"gay\b",
        r"lesbian",
        r"bisexual",
        r"trans(?:gender|sexual|ition)?\b",
        r"transition",
        r"queer",
        r"homosexual",
        r"heterosexual",
        r"sexual",
        r"dating",
        r"girlfriend",
        r"boyfriend",
        r"lover",
        r"affair",
        r"divorc",
        r"married",
        r"marriage",
        r"husband",
        r"wife",
        r"wives",
        r"partner",
        r"fianc",
    ),
    "religion": _words(
        r"muslim",
        r"islam",
        r"christian",
        r"catholic",
        r"protestant",
        r"jew",
        r"judaism",
        r"hindu",
        r"buddhis",
        r"sikh",
        r"atheis",
        r"agnostic",
        r"devout",
        r"pray",
        r"religio",
        r"faith",
        r"ramadan",
        r"kosher",
        r"halal",
    ),
    "politics": _words(
        r"vot(?:e|es|ed|er|ers|ing)\b",
        r"elect(?:ion|ed|oral)",
        r"communis",
        r"socialis",
        r"conservative",
        r"liberal",
        r"democrat",
        r"republican",
        r"labour\b",
        r"tory",
        r"tories",
        r"activis",
        r"protest",
        r"unions?\b",
        r"government",
        r"politic",
        r"campaign",
        r"fascis",
        r"nationalis",
    ),
    "finances": _words(
        r"salar",
        r"earn",
        r"income",
        r"debt",
        r"owes?\b",
        r"owed",
        r"loans?\b",
        r"mortgage",
        r"rent\b",
        r"bank",
        r"accounts?\b",
        r"credit",
        r"debit",
        r"bankrupt",
        r"tax",
        r"wages?\b",
        r"money",
        r"savings",
        r"invest",
        r"fortune",
        r"wealth",
        r"broke\b",
        r"paid\b",
        r"payslip",
        r"pension",
    ),
    # A person who could be picked out: a role, a relative, where someone lives.
    "person": _words(
        r"(?:the|a|an|this|that|our|my|his|her|their)\s+(?:\w+\s+)?(?:kids|children|boys|girls)\b",
        r"intern\b",
        r"neighbou?r",
        r"man\b",
        r"woman\b",
        r"boy\b",
        r"girl\b",
        r"guy\b",
        r"lady\b",
        r"kid\b",
        r"child\b",
        r"baby\b",
        r"teen",
        r"student\b",
        r"teacher\b",
        r"coach\b",
        r"driver\b",
        r"tenant",
        r"landlord",
        r"landlady",
        r"lodger",
        r"owner",
        r"manager",
        r"boss",
        r"director",
        r"ceo\b",
        r"colleague",
        r"co-?worker",
        r"receptionist",
        r"barista",
        r"chef\b",
        r"janitor",
        r"cleaner\b",
        r"accountant",
        r"nanny",
        r"babysit",
        r"postman",
        r"plumber",
        r"cashier",
        r"clerk",
        r"employee",
        r"hire\b",
        r"assistant",
        r"secretary",
        r"mayor",
        r"family",
        r"families",
        r"couple\b",
        r"son\b",
        r"daughter",
        r"mother",
        r"father",
        r"mom\b",
        r"mum\b",
        r"dad\b",
        r"parent",
        r"brother",
        r"sister",
        r"sibling",
        r"aunt",
        r"uncle",
        r"cousin",
        r"grand(?:ma|pa|mother|father|son|daughter)",
        r"friend",
        r"roommate",
        r"flatmate",
        r"ex\b",
        r"someone",
        r"somebody",
        r"everyone",
        r"person\b",
        r"resident",
        r"adopted",
        r"criminal",
        r"record\b",
        r"(?:room|flat|apartment|suite|unit|number|no\.)\s*(?:\d|(?:one|two|three|four|five|"
        r"six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|"
        r"eighteen|nineteen|twenty|thirty|forty|fifty|hundred)\b)",
        r"flat\s+\w*\d",
    ),
    # Not lasting knowledge: what happened once, what holds today.
    "momentary": _words(r"was\b", r"were\b", r"today", r"tonight", r"yesterday", r"now\b"),
}
# Someone singled out, though not by a role the list above knows: "the tall waiter is...",
# "a florist on...", "the lifeguard takes...". A singular noun that looks like an agent (-er,
# -or, -ist, -ian, -ess, -ee, -man...) after "the" or "a" and before a verb or a
# preposition. Common things with such endings (a corner, the river) are not people.
_AGENT_NOUN = re.compile(
    r"\b(?:the|a|an|this|that)\s+(?:(?!(?:is|are|has|have|was|were)\b)[a-z]+\s+){0,2}?"
    r"(?P<head>[a-z]{3,}(?:er|or|ist|ian|ess|ee|ard|man|woman|ant|ent|ic|guest|twins?))\s+"
    r"(?:is|are|was|were|has|had|does|can|will|takes|goes|came|gets|lives|works|sleeps|"
    r"in|on|at|from|with|who|upstairs|downstairs|next|[a-z]+s\b)",
    re.I,
)
_THINGS = frozenset(
    [
        "corner",
        "river",
        "water",
        "weather",
        "winter",
        "summer",
        "ladder",
        "locker",
        "starter",
        "sweater",
        "center",
        "border",
        "theater",
        "tower",
        "paper",
        "number",
        "letter",
        "flower",
        "butter",
        "shelter",
        "heater",
        "cooker",
        "printer",
        "charger",
        "container",
        "trailer",
        "computer",
        "monitor",
        "elevator",
        "escalator",
        "indicator",
        "calculator",
        "mirror",
        "door",
        "floor",
        "colour",
        "color",
        "harbour",
        "harbor",
        "parlour",
        "parlor",
        "interior",
        "exterior",
        "motor",
        "tractor",
        "sector",
        "vendor",
        "coffee",
        "tree",
        "committee",
        "jubilee",
        "toffee",
        "fee",
        "address",
        "access",
        "express",
        "fortress",
        "mattress",
        "restaurant",
        "plant",
        "event",
        "apartment",
        "department",
        "cement",
        "moment",
        "parliament",
        "market",
        "basement",
        "card",
        "yard",
        "board",
        "guard",
        "garden",
        "garage",
        "shower",
        "power",
        "order",
        "ember",
        "timber",
        "chamber",
        "member",
        "clinic",
        "music",
        "traffic",
        "plastic",
        "public",
        "republic",
        "fabric",
        "garlic",
        "panic",
        "picnic",
        "topic",
    ]
)
_PLACES_OF_PEOPLE = _words(r"upstairs", r"downstairs", r"next door", r"across the (?:hall|street)")


def _singles_out_someone(sentence: str) -> bool:
    return _PLACES_OF_PEOPLE.search(sentence) is not None or any(
        match.group("head").lower() not in _THINGS for match in _AGENT_NOUN.finditer(sentence)
    )


# Codes, account numbers and addresses: a number of three digits or more, or a word mixing
# letters and digits ("hunter2"), once contact details are replaced by placeholders.
_CODE = re.compile(r"\b\d{3,}\b|\b(?=\w*[a-z])(?=\w*\d)\w+\b", re.I)


def sensitive(sentence: str) -> str | None:
    """The first category of :data:`SENSITIVE` a sentence falls in (``"code"`` for codes
    and numbers), or ``None``."""
    for category, pattern in SENSITIVE.items():
        if pattern.search(sentence):
            return category
    if _singles_out_someone(sentence):
        return "person"
    scrubbed = _PHONE.sub(" ", _URL.sub(" ", _EMAIL.sub(" ", sentence)))
    return "code" if _CODE.search(scrubbed) else None


def is_general(sentence: str) -> bool:
    """Whether a sentence states something general about the world, safe for every user to
    read: a statement (not a question), about no person (no pronoun, no name, no role or
    relative), and in no sensitive category (credentials and codes, health, sexuality,
    religion, politics, finances, momentary news). When in doubt: no."""
    words = sentence.split()
    return (
        4 <= len(words) <= 30
        and not sentence.rstrip().endswith("?")
        and _PERSONAL.search(sentence) is None
        and _GENERAL_START.match(sentence) is not None
        and _VERB.search(sentence) is not None
        and not _names_anyone(sentence)
        and sensitive(sentence) is None
    )


def _names_anyone(sentence: str) -> bool:
    """Whether a capitalised word other than the first (or a day or month) appears."""
    return any(
        match.start() > 0 and match.group(0).casefold() not in _CALENDAR
        for match in _CAPITALISED.finditer(sentence)
    )


def deidentify(text: str, *, names: Iterable[str]) -> str | None:
    """``text`` with contact details and ids replaced, or ``None`` when it should not be
    shared at all (it is personal, or names someone)."""
    if _PERSONAL.search(text) or _names_anyone(text):
        return None
    for name in names:
        if name and re.search(rf"\b{re.escape(name)}\b", text, re.I):
            return None
    text = _EMAIL.sub("[email]", text)
    text = _URL.sub("[link]", text)
    text = _PHONE.sub("[phone]", text)
    return _LONG_ID.sub("[id]", text)
