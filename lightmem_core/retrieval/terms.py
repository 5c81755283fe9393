"""The words of a text that lexical search looks for: used by the controller, the search,
the writer's near-duplicate look-up and consolidation."""

from __future__ import annotations

import re

__all__ = ["query_terms"]

# Function words carry no evidence for BM25 and make FTS5 score far more rows.
_STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself
    yourselves""".split()  # noqa: SIM905 - a word list reads better as text
)
_WORD = re.compile(r"\w+", re.UNICODE)


def query_terms(text: str, *, limit: int = 32) -> list[str]:
    """The distinct content words of a query, lower-cased, in order of appearance."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(text.lower()):
        if len(word) > 1 and word not in _STOPWORDS:
            seen.setdefault(word, None)
    return list(seen)[:limit]
