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

__all__ = ["SHARED_USER", "deidentify", "is_general"]

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
_GENERAL_VERB = re.compile(r"\b(is|are|has|have|opens?|closes?|costs?|takes?|needs?|requires?)\b")


def is_general(sentence: str) -> bool:
    """Whether a sentence states something about the world, not about a person."""
    words = sentence.split()
    return (
        4 <= len(words) <= 30
        and not sentence.rstrip().endswith("?")
        and _PERSONAL.search(sentence) is None
        and _GENERAL_START.match(sentence) is not None
        and _GENERAL_VERB.search(sentence) is not None
        and not _names_anyone(sentence)
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
