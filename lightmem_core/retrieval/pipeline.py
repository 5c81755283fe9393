"""The two-stage retrieval pipeline, as pure functions.

Stage 1 (coarse) takes a fixed number of candidates from dense search (Chroma) and BM25
(FTS5) and fuses them by summing min-max normalised scores. Stage 2 (fine) re-ranks the
pool with a :class:`Reranker` and packs the best into a token budget. The engine does the
I/O; everything here is plain data in, plain data out, so it is tested without stores.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from .._types import Memory, Tier

__all__ = [
    "Candidate",
    "LocalReranker",
    "QueryPlan",
    "Reranker",
    "fuse",
    "pack_to_budget",
    "plan_query",
    "query_terms",
]

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


@dataclass(frozen=True, slots=True)
class QueryPlan:
    """What the controller makes of a query before any search runs."""

    text: str
    """The query as asked."""
    dense_text: str
    """The text embedded for dense search."""
    terms: tuple[str, ...]
    """Content words for BM25."""
    people: tuple[str, ...] = ()
    """Known speakers the query names."""


def plan_query(query: str, *, known_people: Iterable[str] = ()) -> QueryPlan:
    """A retrieval plan for ``query``.

    A person's name dominates a small embedding model's vector ("What pet does Alice
    have?" lands nearer "Alice is allergic to peanuts" than "I adopted a beagle"), and in
    one user's memory a speaker's name is in most memories anyway. So known speakers named
    in the query are taken out of the search text (when anything else is left), and their
    own turns are favoured in re-ranking instead.
    """
    people = []
    stripped = query
    for person in sorted(set(known_people), key=len, reverse=True):
        pattern = re.compile(rf"\b{re.escape(person)}(?:'s|s'|')?\b", re.IGNORECASE)
        if pattern.search(stripped):
            people.append(person)
            stripped = pattern.sub(" ", stripped)
    stripped = " ".join(stripped.split())
    terms = query_terms(stripped)
    if not people or not terms:
        return QueryPlan(query, query, tuple(query_terms(query)), tuple(people))
    return QueryPlan(query, stripped, tuple(terms), tuple(people))


@dataclass(slots=True)
class Candidate:
    """A memory in the stage-1 pool with the evidence for it."""

    memory_id: str
    dense: float | None = None
    """Cosine similarity to the query, if dense search found it."""
    lexical: float | None = None
    """BM25 score, if lexical search found it."""
    fused: float = 0.0
    """Stage-1 score: normalised dense + normalised lexical."""


def _normalise(scores: dict[str, float]) -> dict[str, float]:
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    if high - low < 1e-9:
        return dict.fromkeys(scores, 1.0)
    return {key: (value - low) / (high - low) for key, value in scores.items()}


def fuse(
    dense: Sequence[tuple[str, float]],
    lexical: Sequence[tuple[str, float]],
    *,
    pool: int,
) -> list[Candidate]:
    """Merge dense and lexical results into at most ``pool`` candidates, best first."""
    dense_scores = dict(dense)
    lexical_scores = dict(lexical)
    dense_norm = _normalise(dense_scores)
    lexical_norm = _normalise(lexical_scores)
    candidates = [
        Candidate(
            memory_id,
            dense=dense_scores.get(memory_id),
            lexical=lexical_scores.get(memory_id),
            fused=dense_norm.get(memory_id, 0.0) + lexical_norm.get(memory_id, 0.0),
        )
        for memory_id in dict.fromkeys([*dense_scores, *lexical_scores])
    ]
    candidates.sort(key=lambda c: c.fused, reverse=True)
    return candidates[:pool]


class Reranker(Protocol):
    """Stage 2: score the candidate pool against the query plan (higher is better)."""

    def rerank(
        self, plan: QueryPlan, candidates: Sequence[Candidate], memories: dict[str, Memory]
    ) -> list[tuple[str, float]]: ...


class LocalReranker:
    """The default stage 2: stage-1 evidence, agreement between the two retrievers (found
    by both beats found by one), turns spoken by a person the query names, and a boost for
    long-term knowledge."""

    def __init__(
        self, *, ltm_boost: float = 0.05, agreement_bonus: float = 0.1, speaker_bonus: float = 0.1
    ) -> None:
        self.ltm_boost = ltm_boost
        self.agreement_bonus = agreement_bonus
        self.speaker_bonus = speaker_bonus

    def rerank(
        self, plan: QueryPlan, candidates: Sequence[Candidate], memories: dict[str, Memory]
    ) -> list[tuple[str, float]]:
        named = {p.casefold() for p in plan.people}
        scored = []
        for candidate in candidates:
            memory = memories.get(candidate.memory_id)
            if memory is None:
                continue
            score = candidate.fused
            if candidate.dense is not None and candidate.lexical is not None:
                score += self.agreement_bonus
            if memory.tier is Tier.LTM:
                score += self.ltm_boost
            if named and memory.speaker is not None and memory.speaker.casefold() in named:
                score += self.speaker_bonus
            scored.append((candidate.memory_id, score))
        scored.sort(key=lambda item: item[1], reverse=True)
        return scored


_SPACES = re.compile(r"\s+")


def _dedupe_key(text: str) -> str:
    return _SPACES.sub(" ", text).strip().casefold()


def pack_to_budget(
    ranked: Iterable[tuple[Memory, float]],
    *,
    k: int,
    token_budget: int,
    cost: Callable[[Memory], int],
) -> tuple[list[tuple[Memory, float, int]], int]:
    """Greedily keep the best items that fit ``token_budget``, at most ``k`` of them,
    skipping exact duplicates. Returns the kept ``(memory, score, tokens)`` and how many
    ranked items were left out."""
    kept: list[tuple[Memory, float, int]] = []
    seen: set[str] = set()
    used = 0
    omitted = 0
    for memory, score in ranked:
        key = _dedupe_key(memory.text)
        if key in seen:
            continue
        tokens = cost(memory)
        if len(kept) >= k or used + tokens > token_budget:
            omitted += 1
            continue
        seen.add(key)
        kept.append((memory, score, tokens))
        used += tokens
    return kept, omitted
