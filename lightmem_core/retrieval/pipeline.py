"""The two-stage retrieval pipeline, as pure functions.

Stage 1 (coarse) takes a fixed number of candidates from dense search (Chroma) and BM25
(FTS5) and fuses them by summing min-max normalised scores. Stage 2 (fine) re-ranks the
pool with a :class:`Reranker` and packs the best into a token budget. The engine does the
I/O; everything here is plain data in, plain data out, so it is tested without stores.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Protocol

from .._types import Memory, Status, Tier
from .controller import time_reference

if TYPE_CHECKING:
    from ..store import Surroundings
    from .controller import QueryPlan, TimeWindow

__all__ = [
    "Candidate",
    "LocalReranker",
    "Reranker",
    "Scale",
    "fuse",
    "pack_to_budget",
    "score_pool",
]


@dataclass(slots=True)
class Candidate:
    """A memory in the pool with the evidence for it."""

    memory_id: str
    dense: float | None = None
    """Cosine similarity to the (dense) query."""
    lexical: float | None = None
    """BM25 score; ``None`` when no query term matches."""
    fused: float = 0.0
    """Stage-1 score: normalised dense + normalised lexical."""
    context_dense: float | None = None
    """Best dense score among this turn's context (the turns around it, linked records)."""
    context_lexical: float | None = None
    """Best BM25 score among this turn's context (the turns around it, linked records)."""


def _normalise(scores: dict[str, float]) -> dict[str, float]:
    scale = Scale(scores.values())
    return {key: scale(value) for key, value in scores.items()}


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


def cosine_scores(
    query_vectors: Sequence[Sequence[float]], vectors: Mapping[str, Sequence[float]]
) -> dict[str, float]:
    """Each vector's cosine similarity to the closest of the query vectors."""
    if not vectors:
        return {}
    import numpy as np

    queries = np.asarray(query_vectors, dtype=np.float32)
    query_norms = np.linalg.norm(queries, axis=1, keepdims=True)
    query_norms[query_norms == 0] = 1.0
    ids = list(vectors)
    matrix = np.asarray([vectors[i] for i in ids], dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    similarity = ((matrix / norms) @ (queries / query_norms).T).max(axis=1)
    return dict(zip(ids, similarity.tolist(), strict=True))


SITTING_GAP = timedelta(hours=2)
"""Turns further apart than this were said at different sittings: no context for each other
(a chat app's session may hold days), and separate conversations for the session signal."""
CONTEXT_SPAN = 3
"""At most this many turns on each side of a memory are its context..."""
CONTEXT_WORDS = 15
"""...and further turns are taken only while the side holds fewer words than this: one
LoCoMo turn says as much as three chat messages."""


def conversation_context(around: Surroundings) -> tuple[str, ...]:
    """The turns around a memory that are its conversational context: on each side (nearest
    first), the nearest turn and then more while the side is short, up to
    :data:`CONTEXT_SPAN`, stopping at a gap of :data:`SITTING_GAP` between two turns."""
    chosen: list[str] = []
    for side in (around.before, around.after):
        words = 0
        previous = around.timestamp
        for taken, other in enumerate(side[:CONTEXT_SPAN]):
            if taken and words >= CONTEXT_WORDS:
                break
            if (
                previous is not None
                and other.timestamp is not None
                and abs(other.timestamp - previous) > SITTING_GAP
            ):
                break
            chosen.append(other.memory_id)
            words += other.words
            previous = other.timestamp or previous
    return tuple(chosen)


def sittings(memories: Iterable[Memory]) -> dict[str, tuple[str, int]]:
    """Each memory's sitting: its session, split where :data:`SITTING_GAP` passes between
    two of these memories (a chat app's session may group days of separate talks)."""
    by_session: dict[str, list[Memory]] = {}
    for memory in memories:
        if memory.session_id is not None:
            by_session.setdefault(memory.session_id, []).append(memory)
    found: dict[str, tuple[str, int]] = {}
    for session_id, members in by_session.items():
        dated = sorted(members, key=lambda m: m.timestamp.timestamp() if m.timestamp else 0.0)
        part, previous = 0, None
        for memory in dated:
            if previous is not None and memory.timestamp is not None:
                part += memory.timestamp - previous > SITTING_GAP
            previous = memory.timestamp or previous
            found[memory.id] = (session_id, part)
    return found


def adjacency(neighbors: Mapping[str, Sequence[str | None]]) -> dict[str, set[str]]:
    """Both directions of the context relation: if B follows (or is linked to) A, A is B's
    context too."""
    linked: dict[str, set[str]] = {}
    for memory_id, pair in neighbors.items():
        for other in pair:
            if other is not None:
                linked.setdefault(memory_id, set()).add(other)
                linked.setdefault(other, set()).add(memory_id)
    return linked


def score_pool(
    memory_ids: Sequence[str],
    query_vectors: Sequence[Sequence[float]],
    vectors: Mapping[str, Sequence[float]],
    lexical: Mapping[str, float],
    neighbors: Mapping[str, Sequence[str | None]],
    stage1: Mapping[str, float],
) -> list[Candidate]:
    """Stage 2's evidence for every memory of the pool (and the neighbours added to it): its
    own cosine (the best over the query's texts) and BM25 scores, and the best of its
    context's: the neighbouring turns, and linked long-term records."""
    dense = cosine_scores(query_vectors, {i: vectors[i] for i in memory_ids if i in vectors})

    linked = adjacency(neighbors)

    def best(values: Mapping[str, float], memory_id: str) -> float | None:
        found = [values[n] for n in linked.get(memory_id, ()) if n in values]
        return max(found) if found else None

    return [
        Candidate(
            memory_id,
            dense=dense.get(memory_id),
            lexical=lexical.get(memory_id),
            fused=stage1.get(memory_id, 0.0),
            context_dense=best(dense, memory_id),
            context_lexical=best(lexical, memory_id),
        )
        for memory_id in memory_ids
    ]


class Reranker(Protocol):
    """Stage 2: score the candidate pool against the query plan (higher is better)."""

    def rerank(
        self, plan: QueryPlan, candidates: Sequence[Candidate], memories: dict[str, Memory]
    ) -> list[tuple[str, float]]:
        """``(memory_id, score)`` for the candidates, best first. ``memories`` holds the
        records of the candidates (and of their context) by id."""


class LocalReranker:
    """The default stage 2, a weighted sum of normalised evidence:

    - the memory's own dense and lexical agreement with the query;
    - its context: the best agreement among the turns around it in its sitting (an answer
      often only makes sense next to the question it answers);
    - how much lexical evidence the memory's sitting holds (a conversation about the topic);
    - turns spoken by a person the query names;
    - memories inside the query's time window: said then, or saying when it happened
      ("yesterday" said the day after, the writer's ``refers_to``); recency, when the
      query asks for it;
    - a small boost for long-term knowledge (larger for questions about stable facts);
    - a penalty for superseded versions of a fact, unless the query asks about the past.
    """

    def __init__(
        self,
        *,
        ltm_boost: float = 0.05,
        speaker_bonus: float = 0.2,
        context_weight: float = 1.0,
        session_weight: float = 0.2,
        window_bonus: float = 1.0,
        recency_weight: float = 0.2,
        superseded_penalty: float = 1.0,
    ) -> None:
        self.ltm_boost = ltm_boost
        self.speaker_bonus = speaker_bonus
        self.context_weight = context_weight
        self.session_weight = session_weight
        self.window_bonus = window_bonus
        self.recency_weight = recency_weight
        self.superseded_penalty = superseded_penalty

    def rerank(
        self, plan: QueryPlan, candidates: Sequence[Candidate], memories: dict[str, Memory]
    ) -> list[tuple[str, float]]:
        named = {p.casefold() for p in plan.people}
        pool = [c for c in candidates if c.memory_id in memories]
        dense = Scale([c.dense for c in pool] + [c.context_dense for c in pool])
        lexical = Scale([c.lexical for c in pool] + [c.context_lexical for c in pool])
        # How much lexical evidence each sitting holds: a conversation about the topic.
        sitting = sittings([memories[c.memory_id] for c in pool])
        sessions: dict[tuple[str, int], float] = {}
        for candidate in pool:
            key = sitting.get(candidate.memory_id)
            if key is not None:
                sessions[key] = sessions.get(key, 0.0) + lexical(candidate.lexical)
        session_scale = Scale(list(sessions.values()))
        # Recency matters when the query asks for it: rank candidates by time, newest = 1.
        recency: dict[str, float] = {}
        if plan.intent == "recent_episode":
            dated = sorted(
                (memory.timestamp.timestamp(), c.memory_id)
                for c in pool
                if (memory := memories[c.memory_id]).timestamp is not None
            )
            recency = {i: rank / max(1, len(dated) - 1) for rank, (_, i) in enumerate(dated)}
        ltm_boost = self.ltm_boost * (3 if plan.intent == "stable_fact" else 1)
        scored = []
        for candidate in pool:
            memory = memories[candidate.memory_id]
            score = dense(candidate.dense) + lexical(candidate.lexical)
            score += (
                self.context_weight
                * (dense(candidate.context_dense) + lexical(candidate.context_lexical))
                / 2
            )
            if candidate.memory_id in sitting:
                score += self.session_weight * session_scale(sessions[sitting[candidate.memory_id]])
            if memory.tier is Tier.LTM:
                score += ltm_boost
            if memory.status is Status.SUPERSEDED and not plan.asks_history:
                score -= self.superseded_penalty
            if plan.window is not None and _in_window(plan.window, memory):
                score += self.window_bonus
            score += self.recency_weight * recency.get(candidate.memory_id, 0.0)
            if named and memory.speaker is not None and memory.speaker.casefold() in named:
                score += self.speaker_bonus
            scored.append((candidate.memory_id, score))
        if not plan.asks_history:
            scored = _current_first(scored, memories)
        scored.sort(key=lambda item: item[1], reverse=True)
        return scored


def _in_window(window: TimeWindow, memory: Memory) -> bool:
    """Whether a memory is about the window's time: said then, or saying when it happened
    ("yesterday", said the day after; the writer's ``refers_to``)."""
    if memory.timestamp is not None and window.contains(memory.timestamp):
        return True
    referred = time_reference(memory.metadata)
    return referred is not None and window.start <= referred.start and referred.end <= window.end


def _current_first(
    scored: list[tuple[str, float]], memories: Mapping[str, Memory]
) -> list[tuple[str, float]]:
    """A fact's current version ranks just above any superseded version of it in the pool:
    the old wording may match the query better ("where does Alice *live*" / "Alice lives in
    Paris"), but the answer is the newer record ("Alice moved to Berlin")."""
    scores = dict(scored)
    for memory_id, score in sorted(scored, key=lambda item: item[1]):
        successor = memories[memory_id].superseded_by
        while successor is not None and successor in scores:
            scores[successor] = max(scores[successor], score + 1e-3)
            score = scores[successor]
            following = memories.get(successor)
            successor = following.superseded_by if following is not None else None
    return list(scores.items())


class Scale:
    """Min-max normalisation fitted on a pool of scores, to [0, 1]. When every score is the
    same (a pool of one), each counts as fully present: 1. A missing score counts as 0."""

    def __init__(self, values: Iterable[float | None]) -> None:
        present = [v for v in values if v is not None]
        self.low = min(present, default=0.0)
        self.span = max(present, default=0.0) - self.low

    def __call__(self, value: float | None) -> float:
        if value is None:
            return 0.0
        return (value - self.low) / self.span if self.span > 1e-9 else 1.0


_SPACES = re.compile(r"\s+")
_MAX_MISFITS = 20


def _dedupe_key(text: str) -> str:
    return _SPACES.sub(" ", text).strip().casefold()


def pack_to_budget(
    ranked: Iterable[tuple[Memory, float]],
    *,
    k: int,
    token_budget: int,
    cost: Callable[[Memory], int],
) -> tuple[list[tuple[Memory, float, int]], int]:
    """Greedily keep the best items that fit ``token_budget``, at most ``k`` of them.

    An exact duplicate of a kept item is not kept again; its source ids join the kept
    item's. A long-term record whose evidence turns are all among the kept items' sources is
    not kept either: the conversation it was drawn from is already there. Returns the kept
    ``(memory, score, tokens)`` and how many ranked items were left out."""
    kept: list[tuple[Memory, float, int]] = []
    seen: dict[str, int] = {}  # text -> its place in kept
    repeats: dict[int, list[str]] = {}  # place in kept -> the source ids of its repeats
    covered: set[str] = set()  # source turns of the kept items
    used = 0
    omitted = 0
    misfits = 0  # consecutive items too large for what is left
    for memory, score in ranked:
        if len(kept) >= k or used >= token_budget or misfits >= _MAX_MISFITS:
            omitted += 1  # full (or as good as): no need to price the rest
            continue
        key = _dedupe_key(memory.text)
        if key in seen:
            # The same words said again: one hit, but it answers for both turns.
            repeats.setdefault(seen[key], []).extend(memory.source_ids)
            continue
        if memory.tier is Tier.LTM and memory.source_ids and covered.issuperset(memory.source_ids):
            omitted += 1
            continue
        tokens = cost(memory)
        if used + tokens > token_budget:
            omitted += 1
            misfits += 1
            continue
        misfits = 0
        seen[key] = len(kept)
        covered.update(memory.source_ids)
        kept.append((memory, score, tokens))
        used += tokens
    for place, sources in repeats.items():
        first, first_score, first_tokens = kept[place]
        merged = tuple(dict.fromkeys([*first.source_ids, *sources]))
        kept[place] = (replace(first, source_ids=merged), first_score, first_tokens)
    return kept, omitted
