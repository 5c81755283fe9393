"""The search: two-stage retrieval over the stores, for one request.

:class:`Searcher` owns what a search needs besides the stores: the query plan (controller),
stage 1 (BM25 and dense candidates for every planned text, a time-window pass, opt-in shared
knowledge), stage 2 (re-ranking with neighbour and link context) and packing into the token
budget, and the caches that keep a chat loop fast (query vectors, speaker names), with their
invalidation across processes. The pure steps live beside it (``controller``, ``pipeline``);
``LightMem.search`` validates its arguments and hands a :class:`SearchRequest` here.

A search is written as steps (``lightmem_core._steps``): record-store calls and blocking
work (the embedder, the vector index, a model controller or re-ranker) are yielded, so
``LightMem.asearch`` awaits a database with a native async driver instead of holding a
thread, and ``search`` runs the same lines in the caller's thread.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .._config import LightMemConfig
from .._steps import Steps, blocking, record, run
from .._types import Hit, Memory, SearchResults, Status, Tier
from ..consolidation.shared import SHARED_USER
from ..safety import INSTRUCTION_LIKE
from ..store import RecordStore, VectorFilter, VectorIndex
from ..store._contracts import PendingVector, Surroundings
from ..tracing import span, untraced
from .aliases import SpokenTurn, learn_aliases, vocatives
from .controller import QueryPlan, TimeWindow, plan_query, time_reference
from .pipeline import (
    CONTEXT_SPAN,
    LocalReranker,
    Reranker,
    conversation_context,
    cosine_scores,
    fuse,
    pack_to_budget,
    score_pool,
)
from .terms import query_terms

if TYPE_CHECKING:
    from .._indexer import VectorIndexer

__all__ = ["SearchRequest", "Searcher"]

_QUERY_CACHE_SIZE = 256
_INLINE_PENDING = 16  # a search scores this many not-yet-indexed memories itself
_SHARED_POOL = 5  # shared-knowledge candidates per search, when sharing is on
_WIDE_CONTEXT = 10  # the strongest this many candidates get context wider than one turn
_ALIAS_TURNS = 5000  # aliases are learned from the user's latest this many speaker turns


@dataclass(frozen=True, slots=True)
class SearchRequest:
    """One search, its arguments already validated."""

    user: str
    query: str
    k: int
    budget: int
    """Tokens the hits may cost in all, by ``cost``."""
    cost: Callable[[Memory], int]
    as_of: datetime | None = None
    """Answer as of this moment: nothing from after it."""
    tiers: tuple[Tier, ...] | None = None
    exclude_sources: frozenset[str] = frozenset()
    """Turns already shown (as recent conversation): memories made only of them are left out."""


def _best_of(results: Iterable[Sequence[tuple[str, float]]]) -> list[tuple[str, float]]:
    """Merge ranked lists of one retriever: each memory keeps its best score."""
    best: dict[str, float] = {}
    for ranked in results:
        for memory_id, score in ranked:
            if score > best.get(memory_id, float("-inf")):
                best[memory_id] = score
    return list(best.items())


class Searcher:
    """Two-stage retrieval for one store: see the module's docstring."""

    def __init__(
        self,
        *,
        records: RecordStore,
        vectors: Callable[[], VectorIndex],
        indexer: VectorIndexer,
        embed: Callable[[list[str]], list[list[float]]],
        config: LightMemConfig,
        reranker: Reranker,
        controller: Any = None,
    ) -> None:
        """``vectors`` opens the vector index on first use; ``embed`` embeds texts (and
        checks their dimension against the index); ``controller`` refines plans with a
        model (``None``: the local plan alone)."""
        self._records = records
        self._vectors = vectors
        self._indexer = indexer
        self._embed = embed
        self._config = config
        self.reranker = reranker
        self._controller = controller
        self._query_cache: OrderedDict[tuple[str, str], list[float]] = OrderedDict()
        self._query_cache_lock = threading.Lock()
        self._speaker_cache: dict[str, frozenset[str]] = {}
        self._alias_cache: dict[str, Mapping[str, str]] = {}
        self._erasure_seen: str | None = None

    def note_turns(self, user: str, turns: Iterable[tuple[str | None, str]]) -> None:
        """``(speaker, content)`` of turns just added to the user's conversations: new
        speakers join the cached names; a new speaker or a turn that addresses someone by
        name sends the aliases to be learned again at the next search."""
        spoken = [(speaker, content) for speaker, content in turns if speaker]
        known = self._speaker_cache.get(user)
        if known is not None:
            # Replace, never mutate: a search in another thread may be reading the old set.
            self._speaker_cache[user] = known | {speaker for speaker, _ in spoken}
        aliases = self._alias_cache.get(user)
        if aliases is not None and any(
            speaker not in aliases.values() or vocatives(content) for speaker, content in spoken
        ):
            self._alias_cache.pop(user, None)

    def forget(self, user: str) -> None:
        """Drop what the caches hold of the user (an erasure)."""
        self._speaker_cache.pop(user, None)
        self._alias_cache.pop(user, None)
        with self._query_cache_lock:
            for key in [key for key in self._query_cache if key[0] == user]:
                del self._query_cache[key]

    def clear(self) -> None:
        """Drop every cached query vector (the embedder's vectors were replaced)."""
        with self._query_cache_lock:
            self._query_cache.clear()

    def cached_users(self) -> set[str]:
        """Users the caches hold anything of (for tests of erasure)."""
        with self._query_cache_lock:
            users = {user for user, _ in self._query_cache}
        return users | set(self._speaker_cache) | set(self._alias_cache)

    # Other processes on the store keep caches of their own (query texts, speaker names).
    # An erasure leaves a fresh mark in the record store; a process that sees a mark it did
    # not leave drops its caches before its next search, so a forgotten user's words do not
    # outlive the forget there either.

    def note_erasure(self) -> None:
        """Leave a fresh erasure mark, for the other processes on the store."""
        self._erasure_seen = uuid.uuid4().hex
        self._records.set_meta("erasure", self._erasure_seen)

    def _drop_caches_if_erased_elsewhere(self) -> Steps[None]:
        mark: str | None = yield record(RecordStore.get_meta, "erasure")
        if mark == self._erasure_seen:
            return
        self._erasure_seen = mark
        self._speaker_cache = {}
        self._alias_cache = {}
        with self._query_cache_lock:
            self._query_cache.clear()

    def search(self, request: SearchRequest) -> SearchResults:
        """Plan, pull candidates (stage 1), re-rank them (stage 2) and pack the best into
        the request's budget."""
        return run(self.search_steps(request), self._records)

    def search_steps(self, request: SearchRequest) -> Steps[SearchResults]:
        """:meth:`search`, as steps."""
        with self._indexer.searching():  # the background indexer gives way meanwhile
            return (yield from self._search(request))

    def _search(self, request: SearchRequest) -> Steps[SearchResults]:
        yield from self._drop_caches_if_erased_elsewhere()
        k = request.k
        pool = self._config.pool_for(k)
        with span("search.plan"):
            plan = yield from self.plan_steps(request.user, request.query, request.as_of)
        if plan.k is not None:
            k = min(k, plan.k)
        if plan.strict_window and plan.window is not None:
            # A model controller's time constraint filters every look-up; when nothing at all
            # lies inside it, the search answers as if it were a preference.
            found = yield from self._search_with(request, plan, k=k, pool=pool)
            if found:
                return found
            plan = replace(plan, strict_window=False)
        return (yield from self._search_with(request, plan, k=k, pool=pool))

    def _search_with(
        self, request: SearchRequest, plan: QueryPlan, *, k: int, pool: int
    ) -> Steps[SearchResults]:
        """One search with this plan: ``k`` hits at most, from a pool of ``pool``."""
        user, as_of, tiers = request.user, request.as_of, request.tiers
        exclude_sources, budget, cost = request.exclude_sources, request.budget, request.cost
        after: datetime | None = None
        if plan.strict_window and plan.window is not None:
            after = plan.window.start
            as_of = min(plan.window.end, as_of) if as_of is not None else plan.window.end
        texts = [plan.dense_text, *plan.sub_queries]
        where = VectorFilter(tiers=tiers, before=as_of, after=after)
        # Stage 1, coarse: a fixed pool from BM25 and dense search for each planned text (and
        # once more inside the plan's time window, so in-window evidence reaches the pool).
        # The BM25 list of the plan's own terms also gives stage 2 the lexical score of
        # candidates found otherwise; below the pool, a score too small to matter (a list
        # four pools long ranked the dev conversations no better, at twice the cost).
        main_lexical, lexical = yield from self._lexical_stage1(
            user, plan, pool=pool, tiers=tiers, before=as_of, after=after
        )
        # Read-your-writes for the dense side. A few memories not yet in the vector index (the
        # turn just added, in a chat loop) are embedded in the same model call as the query and
        # scored here, and left to the background thread to index; a backlog is indexed first.
        pending: list[PendingVector] = yield record(
            RecordStore.pending_vectors, limit=_INLINE_PENDING + 1, user_id=user
        )
        if len(pending) > _INLINE_PENDING:
            yield blocking(self._indexer.flush_user, user)
            pending = []
        pending = [p for p in pending if where.admits(p.metadata)]
        # The dense side in one hand-off: the model call, then the index's look-ups.
        filters = [where] * len(texts)
        if plan.window is not None and after is None:
            end = min(plan.window.end, as_of) if as_of is not None else plan.window.end
            filters.append(VectorFilter(tiers=tiers, before=end, after=plan.window.start))
        sharing = self._config.share_knowledge and (tiers is None or Tier.LTM in tiers)
        query_vectors, pending_vectors, dense, found_shared = yield blocking(
            self._dense_stage1, user, texts, pending, filters, pool=pool, shared=sharing
        )
        inline = {p.memory_id: v for p, v in zip(pending, pending_vectors, strict=True)}
        dense.append(list(cosine_scores(query_vectors, inline).items()))
        shared: dict[str, Memory] = {}
        shared_vectors: Mapping[str, Sequence[float]] = {}
        if sharing:
            # Opt-in shared knowledge (de-identified, owned by no user) competes as LTM.
            lexical_shared: list[tuple[str, float]] = yield record(
                RecordStore.lexical_search, SHARED_USER, plan.terms, limit=_SHARED_POOL
            )
            shared_ids = list(dict.fromkeys(i for i, _ in [*found_shared, *lexical_shared]))
            # Readable only once enough different users have stated it (support counts
            # contributors): what one user alone said never reaches another.
            stated: dict[str, Memory] = yield record(
                RecordStore.get_memories, SHARED_USER, shared_ids
            )
            shared = {
                i: m for i, m in stated.items() if m.support >= self._config.share_min_contributors
            }
            found_shared = [(i, s) for i, s in found_shared if i in shared]
            lexical_shared = [(i, s) for i, s in lexical_shared if i in shared]
            dense.append(found_shared)
            lexical.append(lexical_shared)
            shared_ids = list(shared)
            shared_vectors = yield record(RecordStore.vectors, SHARED_USER, shared_ids)
            main_lexical = [*main_lexical, *lexical_shared]
        with span("search.fuse"):
            stage1 = fuse(_best_of(dense), _best_of(lexical), pool=pool)
        ids = [c.memory_id for c in stage1]
        if self._config.use_reranker:
            # Stage 2, fine: every candidate and (optionally) its neighbouring turns, scored
            # on both signals with its context.
            # Context comes from the neighbours of the strongest K candidates: deeper in the
            # pool it rarely changes the ranking, and each neighbour costs a row and a vector.
            # Context also comes from linked long-term records (related knowledge, and the
            # versions of a changed fact), so a multi-part question can follow the links.
            # A turn's context is the conversation around it (by sitting, and wider when
            # messages are short: pipeline.conversation_context).
            context: dict[str, tuple[str | None, ...]] = {}
            if self._config.expand_neighbors:
                # Wide context (several short turns) for the strongest few; the nearest turn
                # on each side for the rest of the K, where it rarely changes the ranking.
                around: dict[str, Surroundings] = yield record(
                    RecordStore.neighbors, user, ids[:_WIDE_CONTEXT], span=CONTEXT_SPAN
                )
                around.update(
                    (yield record(RecordStore.neighbors, user, ids[_WIDE_CONTEXT:k], span=1))
                )
                for memory_id, surroundings in around.items():
                    context[memory_id] = conversation_context(surroundings)
                links: dict[str, set[str]] = yield record(RecordStore.links, user, ids[:k])
                for memory_id, linked in links.items():
                    context[memory_id] = (*context.get(memory_id, ()), *sorted(linked))
            ids = list(dict.fromkeys([*ids, *(n for pair in context.values() for n in pair if n)]))
            own_vectors: Mapping[str, Sequence[float]] = yield record(
                RecordStore.vectors, user, ids
            )
            vectors = {**inline, **shared_vectors, **own_vectors}
            with span("search.score"):
                candidates = score_pool(
                    ids,
                    query_vectors,
                    vectors,
                    dict(main_lexical),
                    context,
                    {c.memory_id: c.fused for c in stage1},
                )
        else:
            candidates = stage1
        wanted = set(ids)
        own: dict[str, Memory] = yield record(RecordStore.get_memories, user, ids)
        memories = {
            memory_id: memory
            for memory_id, memory in {**shared, **own}.items()
            if memory_id in wanted
            and self._admissible(
                memory, tiers=tiers, as_of=as_of, after=after, exclude_sources=exclude_sources
            )
        }
        if self._config.use_reranker:
            ranked = (
                self.reranker.rerank(plan, candidates, memories)
                if isinstance(
                    untraced(self.reranker), LocalReranker
                )  # in place: cheaper than a hand-off
                else (yield blocking(self.reranker.rerank, plan, candidates, memories))
            )
        else:
            ranked = [(c.memory_id, c.fused) for c in candidates]
        with span("search.pack"):
            kept, omitted = pack_to_budget(
                ((memories[i], score) for i, score in ranked if i in memories),
                k=k,
                token_budget=budget,
                cost=cost,
            )
        hits = [
            Hit(
                text=m.text,
                tier=m.tier,
                score=score,
                source_ids=m.source_ids,
                timestamp=m.timestamp,
                memory_id=m.id,
                kind=m.kind,
                session_id=m.session_id,
                speaker=m.speaker,
                tokens=tokens,
                status=m.status,
                valid_to=m.valid_to,
                flags=(INSTRUCTION_LIKE,) if m.metadata.get(INSTRUCTION_LIKE) else (),
                refers_to=time_reference(m.metadata),
            )
            for m, score, tokens in kept
        ]
        if hits:
            self._indexer.record_access(user, [h.memory_id for h in hits], datetime.now(UTC))
        return SearchResults(hits, omitted=omitted, token_budget=budget)

    @staticmethod
    def _admissible(
        memory: Memory,
        *,
        tiers: tuple[Tier, ...] | None,
        as_of: datetime | None,
        exclude_sources: frozenset[str],
        after: datetime | None = None,
    ) -> bool:
        """Whether a candidate passes the search's filters (neighbours join the pool unfiltered)."""
        if memory.status is Status.ARCHIVED:
            return False
        if tiers and memory.tier not in tiers:
            return False
        if as_of is not None and memory.timestamp is not None and memory.timestamp > as_of:
            return False
        if after is not None and (memory.timestamp is None or memory.timestamp < after):
            return False
        # get_context: turns already shown as recent conversation are not repeated.
        return not (memory.source_ids and set(memory.source_ids) <= exclude_sources)

    def speakers(self, user: str) -> frozenset[str]:
        """The names that speak in the user's conversations (cached; kept current by add)."""
        return run(self._speakers(user), self._records)

    def _speakers(self, user: str) -> Steps[frozenset[str]]:
        known = self._speaker_cache.get(user)
        if known is None:
            names: set[str] = yield record(RecordStore.speakers, user)
            known = self._speaker_cache[user] = frozenset(names)
        return known

    def _aliases(self, user: str) -> Steps[Mapping[str, str]]:
        """The other names the user's speakers go by, learned from how they address each
        other (``retrieval.aliases``; cached, learned again when an add reveals more)."""
        known = self._alias_cache.get(user)
        if known is None:
            turns: list[tuple[str, str, str]] = yield record(
                RecordStore.speaker_turns, user, limit=_ALIAS_TURNS
            )
            known = self._alias_cache[user] = learn_aliases(SpokenTurn(*turn) for turn in turns)
        return known

    def plan(self, user: str, query: str, as_of: datetime | None) -> QueryPlan:
        """The controller's plan (the local one, refined by a model controller when one is
        configured), with event anchors resolved on the user's own timeline."""
        return run(self.plan_steps(user, query, as_of), self._records)

    def plan_steps(self, user: str, query: str, as_of: datetime | None) -> Steps[QueryPlan]:
        """:meth:`plan`, as steps."""
        if not self._config.use_controller:
            return plan_query(query, resolve_time=False)
        now = as_of or datetime.now(UTC)
        people = yield from self._speakers(user)
        aliases = yield from self._aliases(user)
        plan = yield from self._anchored(
            user, plan_query(query, known_people=people, aliases=aliases, now=now), as_of
        )
        if self._controller is not None:
            plan = yield blocking(self._controller.refine, plan, known_people=people, now=now)
        return plan

    def _anchored(self, user: str, plan: QueryPlan, as_of: datetime | None) -> Steps[QueryPlan]:
        if plan.anchor is None:
            return plan
        # "the week before the wedding": when did the user talk about the wedding?
        found: list[tuple[str, float]] = yield record(
            RecordStore.lexical_search, user, query_terms(plan.anchor.event), limit=1, before=as_of
        )
        event: dict[str, Memory] = (
            (yield record(RecordStore.get_memories, user, [found[0][0]])) if found else {}
        )
        moment = next((m.timestamp for m in event.values() if m.timestamp is not None), None)
        if moment is None:
            return plan
        span = {"day": 1, "week": 7, "month": 31, "year": 365}[plan.anchor.period]
        if plan.anchor.relation == "before":
            start, end = moment - timedelta(days=span), moment
        else:
            start, end = moment, moment + timedelta(days=span)
        return plan.with_window(TimeWindow(start, end, plan.anchor.expression))

    def _lexical_stage1(
        self,
        user: str,
        plan: QueryPlan,
        *,
        pool: int,
        tiers: tuple[Tier, ...] | None,
        before: datetime | None,
        after: datetime | None,
    ) -> Steps[tuple[list[tuple[str, float]], list[list[tuple[str, float]]]]]:
        """Stage 1's BM25 lists, a pool each: the plan's terms (returned first, and on its
        own), each sub-query, and the plan's terms inside its time window."""
        searches: list[tuple[Sequence[str], datetime | None, datetime | None]] = [
            (plan.terms, before, after)
        ]
        searches += [(query_terms(t), before, after) for t in plan.sub_queries]
        if plan.window is not None and after is None:
            end = min(plan.window.end, before) if before is not None else plan.window.end
            searches.append((plan.terms, end, plan.window.start))
        lists: list[list[tuple[str, float]]] = []
        for terms, until, since in searches:
            found = yield record(
                RecordStore.lexical_search,
                user,
                terms,
                limit=pool,
                tiers=tiers,
                before=until,
                after=since,
            )
            lists.append(found)
        return lists[0], lists

    def _dense_stage1(
        self,
        user: str,
        texts: Sequence[str],
        pending: Sequence[PendingVector],
        filters: Sequence[VectorFilter],
        *,
        pool: int,
        shared: bool,
    ) -> tuple[
        list[list[float]],
        list[list[float]],
        list[list[tuple[str, float]]],
        list[tuple[str, float]],
    ]:
        """Stage 1's dense side (blocking: the model and the index): the vectors of the
        query texts and of the pending memories, a pool from the index for each text under
        its filter (the first text again under each extra filter), and the shared-knowledge
        look-up when ``shared``."""
        query_vectors, pending_vectors = self._embed_queries(
            user, texts, extra=[p.text for p in pending]
        )
        index = self._vectors()
        dense = [
            index.query(user, vector, k=pool, where=where)
            for vector, where in zip(query_vectors, filters[: len(texts)], strict=False)
        ]
        dense += [
            index.query(user, query_vectors[0], k=pool, where=where)
            for where in filters[len(texts) :]
        ]
        found_shared = index.query(SHARED_USER, query_vectors[0], k=_SHARED_POOL) if shared else []
        return query_vectors, pending_vectors, dense, found_shared

    def _embed_queries(
        self, user: str, texts: Sequence[str], *, extra: Sequence[str] = ()
    ) -> tuple[list[list[float]], list[list[float]]]:
        """Vectors of the query texts (from the per-user cache where it has them) and of the
        ``extra`` texts, in one model call."""
        with self._query_cache_lock:
            cached = {t: self._query_cache.get((user, t)) for t in texts}
            for text, vector in cached.items():
                if vector is not None:
                    self._query_cache.move_to_end((user, text))
        missing = [t for t, v in cached.items() if v is None]
        extra_vectors: list[list[float]] = []
        if missing or extra:
            fresh = self._embed([*missing, *extra])
            extra_vectors = fresh[len(missing) :]
            with self._query_cache_lock:
                for text, vector in zip(missing, fresh[: len(missing)], strict=True):
                    cached[text] = self._query_cache[(user, text)] = vector
                while len(self._query_cache) > _QUERY_CACHE_SIZE:
                    self._query_cache.popitem(last=False)
        return [v for v in (cached[t] for t in texts) if v is not None], extra_vectors
