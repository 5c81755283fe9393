"""``LightMem``: the engine's public face.

Sync methods and their async twins share one implementation. The everyday operations (add,
remember, search, context, recent, memories, export, stats) are written as steps
(:mod:`._steps`): the sync method runs them in the caller's thread; the async twin awaits
the record store's native async driver where it has one (PostgreSQL: psycopg's async pool)
and hands only the blocking work (the embedder, Chroma, a model) to a worker thread. With
SQLite, which has no non-blocking interface, the async twin runs the whole operation in one
worker thread (``asyncio.to_thread``). Erasure, consolidation and indexing hold locks shared
with the background threads, so their twins always run in a worker thread.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import threading
import uuid
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import _validation as check
from ._config import LightMemConfig
from ._errors import (
    ConfigurationError,
    DuplicateTurnId,
    EmbeddingDimensionMismatch,
    InvalidArgument,
    StoreClosed,
    StoreNotWritable,
)
from ._heap import overwrite_freed_memory
from ._indexer import VectorIndexer
from ._steps import Steps, arun, blocking, record, run
from ._tokens import TokenCounter, approx_token_count
from ._types import (
    ConsolidationReport,
    Context,
    ForgetReceipt,
    Memory,
    SearchResults,
    Tier,
    Turn,
)
from .consolidation import (
    Abstractor,
    ConsolidationScheduler,
    LocalAbstractor,
)
from .consolidation.coordinator import Consolidator
from .consolidation.shared import SHARED_USER
from .embedding import Embedder, resolve_embedder
from .retrieval import (
    LocalReranker,
    Reranker,
)
from .retrieval.controller import warm_up
from .retrieval.render import HEADER, memory_line, render_context, turn_line
from .retrieval.searcher import Searcher, SearchRequest
from .safety import flag_instructions
from .slm.accounting import ModelLedger
from .store import (
    ChromaVectorIndex,
    RecordStore,
    SQLiteRecordStore,
    VectorIndex,
)
from .tracing import traced
from .writer import ExtractiveWriter, Writer
from .writer.turns import parse_message, write_entries

__all__ = ["LightMem"]

logger = logging.getLogger("lightmem")

# Scripts, notebooks and workers often exit without close(). Left to the interpreter, the
# background indexer is a daemon thread frozen wherever it is, possibly inside torch or
# Chroma's native code, which can abort the process ("terminate called without an active
# exception", SIGABRT). So every store still open at exit is closed first: the indexer stops
# at its next chunk boundary and the rest stays pending for the next open.
_OPEN_STORES: weakref.WeakSet[LightMem] = weakref.WeakSet()


def _close_open_stores() -> None:
    for store in list(_OPEN_STORES):
        try:
            store.close()
        except Exception as err:  # exiting anyway: say so, never raise from atexit
            logger.warning("lightmem: closing %r at exit failed: %s", store, err)


# Before the interpreter starts shutting down (where the threads' own atexit work runs, as in
# concurrent.futures), so that an indexer still loading its model can finish the import: from
# a plain atexit hook, its imports would fail with "can't register atexit after shutdown".
_register_early = getattr(threading, "_register_atexit", None)
if _register_early is not None:
    _register_early(_close_open_stores)
else:  # pragma: no cover - every CPython from 3.9 has it
    atexit.register(_close_open_stores)

DEFAULT_PATH = "./lightmem_data"
EXPORT_FORMAT = 1
_TOKEN_CACHE_SIZE = 200_000


def _message(
    content: str,
    role: str,
    session_id: str | None,
    timestamp: datetime | str | float | None,
    turn_id: str | None,
    speaker: str | None,
    metadata: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """``add``'s arguments as one message of ``add_many``."""
    return {
        "content": content,
        "role": role,
        "session_id": session_id,
        "timestamp": timestamp,
        "turn_id": turn_id,
        "speaker": speaker,
        "metadata": metadata,
    }


def is_postgres_url(value: str) -> bool:
    return value.startswith(("postgresql://", "postgres://"))


def _open_postgres(url: str) -> RecordStore:
    """The PostgreSQL record store of a URL (its driver is imported only now)."""
    from .store.postgres import PostgresRecordStore

    return PostgresRecordStore(url)


def _check_backend(backend: object, contract: type, name: str) -> None:
    """A backend given to ``LightMem`` must satisfy its contract: checked once, here."""
    if backend is not None and not isinstance(backend, contract):
        missing = sorted(
            attr
            for attr in dir(contract)
            if not attr.startswith("_") and not hasattr(backend, attr)
        )
        raise ConfigurationError(
            f"{name}= must be a {contract.__name__}; {type(backend).__name__} lacks "
            f"{', '.join(missing) or 'part of it'}"
        )


class LightMem:
    """Long-term memory for LLM agents: add turns, search memories, get a prompt context.

    Args:
        path: folder of the embedded store (created private to the user if missing).
        config: a :class:`LightMemConfig`; keyword ``options`` override its fields.
        embedder: an :class:`~lightmem_core.embedding.Embedder`, a callable
            ``texts -> vectors``, or a sentence-transformers model name/path. Default: the
            offline all-MiniLM-L6-v2.
        writer: writes MTM entries from turns (default :class:`ExtractiveWriter`).
        reranker: stage-2 re-ranker (default :class:`LocalReranker`).
        abstractor: finds long-term knowledge in MTM entries during consolidation (default
            :class:`~lightmem_core.consolidation.LocalAbstractor`, no model).
        slm: small language model(s) to drive the controller, selector, writer and
            consolidator roles: one model for all, or ``{role: model}``. A model is a local
            transformers path or hub id, a LangChain chat model, a LlamaIndex LLM or a
            :class:`~lightmem_core.slm.TextGenerator`. Each role falls back to its local
            default (the steps above) whenever its model fails. Default: no model.
        token_counter: counts prompt tokens for budgets (default: a fast estimator).
        reindex: rebuild the vector index on open (needed after changing the embedder).
        records: the record store: any :class:`~lightmem_core.store.RecordStore`, or the
            URL of a PostgreSQL database (``postgresql://user@host/db``: a
            :class:`~lightmem_core.store.PostgresRecordStore`, extra ``postgres``; ``path``
            then holds only local caches and locks). Default: a
            :class:`~lightmem_core.store.SQLiteRecordStore` in ``path``. ``LightMem`` closes
            it when it closes.
        vectors: the vector index, any :class:`~lightmem_core.store.VectorIndex` (default:
            Chroma, embedded in ``path`` and shared by the processes on it, or the server of
            ``chroma_url``). ``LightMem`` closes it when it closes.

    Raises:
        StoreNotWritable: ``path`` cannot be created or written.
        EmbeddingDimensionMismatch: the embedder does not match the existing index.
        ConfigurationError: an option is unknown or invalid, or a backend given as
            ``records=`` / ``vectors=`` does not satisfy its contract.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = DEFAULT_PATH,
        *,
        config: LightMemConfig | None = None,
        embedder: Embedder | Callable[[list[str]], Any] | str | None = None,
        writer: Writer | None = None,
        reranker: Reranker | None = None,
        abstractor: Abstractor | None = None,
        slm: Any = None,
        token_counter: TokenCounter | None = None,
        reindex: bool = False,
        records: RecordStore | str | None = None,
        vectors: VectorIndex | None = None,
        **options: Any,
    ) -> None:
        base = config or LightMemConfig()
        self.config = base.replace(**options) if options else base
        self.path = Path(path).expanduser()
        self._closed = False
        # Before any of the user's data is on the heap: Chroma's HNSW files can carry
        # recycled memory (see _heap.py).
        overwrite_freed_memory()
        if isinstance(records, str) and not is_postgres_url(records):
            raise ConfigurationError(
                "records= takes a RecordStore or a postgresql:// URL, not "
                f"{records.split(':', 1)[0]!r}"
            )
        if not isinstance(records, str):
            _check_backend(records, RecordStore, "records")
        _check_backend(vectors, VectorIndex, "vectors")
        if vectors is not None and self.config.chroma_server is not None:
            raise ConfigurationError("give vectors= or a Chroma server, not both")
        self._make_private_dir(self.path)
        try:
            # Collaborators are wrapped for tracing (lightmem_core.tracing): a span per call
            # when someone collects them, one context-variable read when nobody does.
            if isinstance(records, str):
                records = _open_postgres(records)
                if vectors is None and self.config.chroma_server is None:
                    # Each machine would index into its own folder: a search on one would
                    # miss what another indexed (lexical search still finds it).
                    logger.warning(
                        "records= is a PostgreSQL server but the vector index is embedded in "
                        "%s: fine for one machine; give chroma_url= to share it across "
                        "machines",
                        self.path,
                    )
            self._records: RecordStore = traced(
                records
                or SQLiteRecordStore(
                    self.path / "records.sqlite3",
                    synchronous=self.config.sqlite_synchronous,
                    busy_timeout_s=self.config.busy_timeout_s,
                ),
                "records",
            )
        except BaseException:
            self._abandon()
            raise
        self._vectors_handle: VectorIndex | None = (
            traced(vectors, "vectors") if vectors is not None else None
        )
        self._vectors_lock = threading.Lock()
        try:
            self._embedder = traced(
                resolve_embedder(
                    embedder if embedder is not None else self.config.embedder,
                    threads=self.config.embed_threads,
                    batch_size=self.config.embed_batch_size,
                ),
                "embedder",
            )
        except BaseException:
            self._abandon()
            raise
        self._writer: Writer = writer or ExtractiveWriter()
        self._reranker: Reranker = reranker or LocalReranker(
            ltm_boost=self.config.ltm_boost, superseded_penalty=self.config.superseded_penalty
        )
        self._abstractor: Abstractor = abstractor or LocalAbstractor()
        self._scheduler_lock = threading.Lock()
        if self.config.cross_encoder is not None:
            from .retrieval.cross_encoder import CrossEncoderReranker

            self._reranker = CrossEncoderReranker(self.config.cross_encoder, base=self._reranker)
        self._models = ModelLedger()
        self._slm_controller: Any = None
        if slm is not None:
            from .slm.roles import build_roles

            try:
                roles = build_roles(
                    slm,
                    self._models,
                    reranker=self._reranker,
                    writer=self._writer,
                    abstractor=self._abstractor,
                    timeout_s=self.config.slm_timeout_s,
                )
            except BaseException:
                self._abandon()
                raise
            self._slm_controller = roles.controller
            self._reranker, self._writer = roles.reranker, roles.writer
            self._abstractor = roles.abstractor
        self._writer = traced(self._writer, "writer")
        self._count_tokens: TokenCounter = token_counter or approx_token_count
        self._index_dimension: int | None = None
        self._embedder_mismatch: tuple[str, str] | None = None
        self._token_cache: dict[str, int] = {}
        self._indexer = traced(
            VectorIndexer(
                self._records,
                self._vectors,
                lambda: self._embedder,
                batch_size=self.config.embed_batch_size,
                on_first_vector=self._check_dimension,
            ),
            "indexer",
        )
        self._searcher = Searcher(
            records=self._records,
            vectors=self._vectors,
            indexer=self._indexer,
            embed=self._embed,
            config=self.config,
            reranker=traced(self._reranker, "reranker"),
            controller=self._slm_controller,
        )
        self._consolidator = Consolidator(
            records=self._records,
            vectors=self._vectors,
            indexer=self._indexer,
            embedder=self._embedder,
            abstractor=traced(self._abstractor, "abstractor"),
            config=self.config,
            speakers=self._searcher.speakers,
        )
        try:
            # An embedder that does not match the index blocks only what needs it (adding,
            # searching, indexing, consolidating): erasure, export and stats need no
            # embedder and must work whatever the app's embedder was.
            self._embedder_mismatch = None if reindex else self._mismatched_embedder()
            if reindex:
                self.reindex()
        except BaseException:
            self._abandon()
            raise
        _OPEN_STORES.add(self)  # closed at interpreter exit if the caller does not
        if self._embedder_mismatch is None:
            self._indexer.start()
        every_turns, every_seconds = self.config.consolidation_trigger
        self._scheduler: ConsolidationScheduler | None = None
        if every_turns or every_seconds:
            self._scheduler = ConsolidationScheduler(
                self._scheduled_run, every_turns=every_turns, every_seconds=every_seconds
            )
            self._scheduler.start()
        if self.config.use_controller:  # load the date parser's tables off the query path
            threading.Thread(target=warm_up, name="lightmem-warm-up", daemon=True).start()

    # --- opening ------------------------------------------------------------------------

    def _abandon(self) -> None:
        """Undo a half-done open: close what was opened, release the store."""
        records = getattr(self, "_records", None)
        if records is not None:
            records.close()
        vectors = getattr(self, "_vectors_handle", None)
        if vectors is not None:
            vectors.close()

    @staticmethod
    def _make_private_dir(path: Path) -> None:
        try:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as err:
            raise StoreNotWritable(f"cannot create the store folder {path}: {err}") from err
        if not path.is_dir():
            raise StoreNotWritable(f"{path} exists and is not a folder")
        if not os.access(path, os.W_OK | os.X_OK):
            raise StoreNotWritable(f"the store folder {path} is not writable")

    def _vectors(self) -> VectorIndex:
        """The vector index, opened on first use (Chroma takes a second to start). On disk,
        the processes that open the store share it: one hosts Chroma, the others forward."""
        if self._vectors_handle is None:
            with self._vectors_lock:
                if self._vectors_handle is None:
                    server = self.config.chroma_server
                    prefix = self.config.collection_prefix
                    index: VectorIndex
                    if server is not None:
                        index = ChromaVectorIndex(server=server, prefix=prefix)
                    elif os.name != "posix":  # no flock, no Unix sockets: one process only
                        index = ChromaVectorIndex(path=self.path / "chroma", prefix=prefix)
                    else:
                        from .store.chroma_shared import SharedChromaIndex

                        index = SharedChromaIndex(self.path, prefix=prefix)
                    self._vectors_handle = traced(index, "vectors")
        return self._vectors_handle

    def _mismatched_embedder(self) -> tuple[str, str] | None:
        """The name and dimension of the embedder the index was built with, when it is not
        this instance's embedder."""
        stored_name = self._records.get_meta("embedder")
        stored_dim = self._records.get_meta("dimension")
        if stored_name is None or stored_dim is None or stored_name == self._embedder.name:
            return None
        return stored_name, stored_dim

    def _need_embedder(self) -> None:
        """Refuse work that needs the embedder when it does not match the vectors already
        indexed (found at open; checked here so the model loads only when it is used)."""
        if self._embedder_mismatch is None:
            return
        stored_name, stored_dim = self._embedder_mismatch
        dimension = self._embedder.dimension
        if dimension != int(stored_dim):
            raise EmbeddingDimensionMismatch(
                f"the index at {self.path} holds {stored_dim}-dimensional vectors from "
                f"{stored_name!r}, but the embedder {self._embedder.name!r} makes "
                f"{dimension}-dimensional ones. Use the original embedder, or rebuild the "
                "index with LightMem(..., reindex=True) or `lightmem reindex`. (Erasure, "
                "export and stats work without it.)"
            )
        raise ConfigurationError(
            f"the index at {self.path} was built with {stored_name!r}, not "
            f"{self._embedder.name!r}; their vectors are not comparable. Use the original "
            "embedder, or rebuild the index with LightMem(..., reindex=True). (Erasure, "
            "export and stats work without it.)"
        )

    def _embed(self, texts: list[str]) -> list[list[float]]:
        vectors = self._embedder.embed(texts)
        self._check_dimension(len(vectors[0]))
        return vectors

    def _check_dimension(self, dimension: int) -> None:
        """Record the index's dimension with its first vector; refuse any other later."""
        if self._index_dimension is None:
            stored = self._records.get_meta("dimension")
            if stored is None:
                self._records.set_meta("embedder", self._embedder.name)
                self._records.set_meta("dimension", str(dimension))
                stored = str(dimension)
            self._index_dimension = int(stored)
        if self._index_dimension != dimension:
            raise EmbeddingDimensionMismatch(
                f"the embedder {self._embedder.name!r} made {dimension}-dimensional vectors; "
                f"the index holds {self._index_dimension}-dimensional ones. Rebuild it with "
                "reindex=True."
            )

    def _ensure_open(self) -> None:
        if self._closed:
            raise StoreClosed("this LightMem instance is closed; open a new one")

    # --- writing --------------------------------------------------------------------------

    def add(
        self,
        user_id: str,
        content: str,
        *,
        role: str = "user",
        session_id: str | None = None,
        timestamp: datetime | str | float | None = None,
        turn_id: str | None = None,
        speaker: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Turn:
        """Store one turn and its mid-term entries. Durable when it returns; calls no model
        unless a model drives the writer role (``slm=``).

        The turn is searchable at once (read-your-writes); its vectors are computed in the
        background, in batches.

        Raises:
            InvalidUserId, InvalidContent, ContentTooLarge, InvalidTimestamp,
            InvalidArgument, DuplicateTurnId: nothing was stored.
        """
        message = _message(content, role, session_id, timestamp, turn_id, speaker, metadata)
        return run(self._add_many(user_id, [message], None), self._records)[0]

    def add_many(
        self,
        user_id: str,
        messages: Iterable[Mapping[str, Any]],
        *,
        session_id: str | None = None,
    ) -> list[Turn]:
        """Store several turns of one user atomically: all of them, or (on any error) none.

        Each message is a mapping with ``content`` and optionally ``role``, ``session_id``,
        ``timestamp``, ``turn_id``, ``speaker``, ``metadata`` (same meaning as in :meth:`add`).
        """
        return run(self._add_many(user_id, messages, session_id), self._records)

    def _add_many(
        self, user_id: str, messages: Iterable[Mapping[str, Any]], session_id: str | None
    ) -> Steps[list[Turn]]:
        self._ensure_open()
        self._need_embedder()
        user = check.user_id(user_id)
        turns = [
            parse_message(
                user,
                message,
                default_session=session_id,
                max_content_chars=self.config.max_content_chars,
                max_metadata_bytes=self.config.max_metadata_bytes,
            )
            for message in messages
        ]
        if not turns:
            return []
        ids = [t.turn_id for t in turns]
        if len(set(ids)) != len(ids):
            repeated = sorted({i for i in ids if ids.count(i) > 1})
            raise DuplicateTurnId(f"turn_id {', '.join(map(repr, repeated))} repeated in one batch")
        memories, replaced = yield from write_entries(self._writer, user, turns)
        yield record(RecordStore.add, turns, memories, replaces=replaced)
        self._indexer.notify(user)
        if self._scheduler is not None:
            self._scheduler.note_turns(user, len(turns))
        self._searcher.note_turns(user, ((t.speaker, t.content) for t in turns))
        return turns

    def remember(
        self,
        user_id: str,
        text: str,
        *,
        kind: str = "fact",
        timestamp: datetime | str | float | None = None,
        source_ids: Sequence[str] | None = (),
        metadata: Mapping[str, Any] | None = None,
        key: str | None = None,
    ) -> Memory:
        """Pin a piece of knowledge straight into long-term memory. Durable when it returns;
        calls no model.

        ``source_ids`` may name turns of this user the knowledge came from. ``key`` names the
        memory (unique per user): remembering under a key the user already has replaces
        that memory, in one transaction, keeping its id and ``created_at``; find it again
        with :meth:`memories` and remove it with :meth:`delete`.

        Raises:
            InvalidUserId, InvalidContent, InvalidArgument: nothing was stored.
        """
        return run(
            self._remember(user_id, text, kind, timestamp, source_ids, metadata, key),
            self._records,
        )

    def _remember(
        self,
        user_id: str,
        text: str,
        kind: str,
        timestamp: datetime | str | float | None,
        source_ids: Sequence[str] | None,
        metadata: Mapping[str, Any] | None,
        key: str | None,
    ) -> Steps[Memory]:
        self._ensure_open()
        self._need_embedder()
        user = check.user_id(user_id)
        body = check.content(text, max_chars=self.config.max_content_chars, what="text")
        kind = check.identifier(kind, what="kind")
        name = check.identifier(key, what="key") if key is not None else None
        sources = check.identifiers(source_ids, what="source_ids")
        if sources:
            known: set[str] = yield record(RecordStore.existing_turn_ids, user, sources)
            missing = [s for s in sources if s not in known]
            if missing:
                raise InvalidArgument(f"source_ids name turns this user does not have: {missing}")
        now = datetime.now(UTC)
        details = check.metadata(metadata, max_bytes=self.config.max_metadata_bytes)
        stamp = check.timestamp(timestamp) if timestamp is not None else now
        previous: list[Memory] = (
            (yield record(RecordStore.list_memories, user, keys=[name])) if name is not None else []
        )
        memory = Memory(
            # A replaced memory keeps its id, so its vector is overwritten, not orphaned.
            id=previous[0].id if previous else uuid.uuid4().hex,
            user_id=user,
            tier=Tier.LTM,
            kind=kind,
            text=" ".join(body.split()),
            timestamp=stamp,
            source_ids=sources,
            created_at=previous[0].created_at if previous else now,
            metadata=flag_instructions(details, body),
            key=name,
        )
        yield record(RecordStore.add, [], [memory])
        self._indexer.notify(memory.user_id)
        return memory

    # --- reading --------------------------------------------------------------------------

    def search(
        self,
        user_id: str,
        query: str,
        *,
        k: int | None = None,
        token_budget: int | None = None,
        now: datetime | str | float | None = None,
        tiers: Sequence[Tier | str] | None = None,
    ) -> SearchResults:
        """The user's memories most relevant to ``query``, ranked, packed into ``token_budget``.

        ``now`` answers as of that moment: memories from after it are left out. A user with
        no memories gets an empty result.
        """
        return run(self._search(user_id, query, k, token_budget, now, tiers), self._records)

    def _search(
        self,
        user_id: str,
        query: str,
        k: int | None,
        token_budget: int | None,
        now: datetime | str | float | None,
        tiers: Sequence[Tier | str] | None,
    ) -> Steps[SearchResults]:
        self._ensure_open()
        user = check.user_id(user_id)
        text = check.content(query, max_chars=self.config.max_content_chars, what="query")
        budget, limit = self._budget_and_k(token_budget, k)
        as_of = check.timestamp(now, what="now") if now is not None else None
        wanted = self._tiers(tiers)
        self._need_embedder()
        request = SearchRequest(
            user, text, k=limit, budget=budget, cost=self._memory_tokens, as_of=as_of, tiers=wanted
        )
        return (yield from self._searcher.search_steps(request))

    def memories(
        self,
        user_id: str,
        *,
        ids: Sequence[str] | None = None,
        keys: Sequence[str] | None = None,
        key_prefix: str | None = None,
        tiers: Sequence[Tier | str] | None = None,
    ) -> list[Memory]:
        """The user's stored memories, oldest first: all of them, those with one of ``ids``
        (a hit's ``memory_id``) or ``keys``, or those whose key starts with ``key_prefix``;
        ``tiers`` limits to ``"mtm"`` and/or ``"ltm"``. A listing, not a search: nothing is
        ranked and no access is counted. Ids and keys of other users are ignored."""
        return run(self._memories(user_id, ids, keys, key_prefix, tiers), self._records)

    def _memories(
        self,
        user_id: str,
        ids: Sequence[str] | None,
        keys: Sequence[str] | None,
        key_prefix: str | None,
        tiers: Sequence[Tier | str] | None,
    ) -> Steps[list[Memory]]:
        self._ensure_open()
        user = check.user_id(user_id)
        if ids is not None:
            found: dict[str, Memory] = yield record(
                RecordStore.get_memories, user, check.identifiers(ids, what="ids")
            )
            wanted = self._tiers(tiers)
            chosen = [m for m in found.values() if wanted is None or m.tier in wanted]
            return sorted(chosen, key=lambda m: m.created_at or datetime.min.replace(tzinfo=UTC))
        names = check.identifiers(keys, what="keys") if keys is not None else None
        prefix = None
        if key_prefix is not None:
            if not isinstance(key_prefix, str) or not key_prefix:
                raise InvalidArgument(f"key_prefix must be a non-empty string, got {key_prefix!r}")
            prefix = key_prefix
        listed: list[Memory] = yield record(
            RecordStore.list_memories, user, keys=names, key_prefix=prefix, tiers=self._tiers(tiers)
        )
        return listed

    def _memory_tokens(self, memory: Memory) -> int:
        """Tokens of a memory's text, counted once per process (memories do not change)."""
        tokens = self._token_cache.get(memory.id)
        if tokens is None:
            if len(self._token_cache) >= _TOKEN_CACHE_SIZE:
                self._token_cache.clear()
            tokens = self._token_cache[memory.id] = self._count_tokens(memory.text)
        return tokens

    def _budget_and_k(self, token_budget: object, k: object) -> tuple[int, int]:
        """The token budget and K of one search: given, or from the configuration."""
        budget = (
            check.positive_int(token_budget, what="token_budget")
            if token_budget is not None
            else self.config.token_budget
        )
        limit = (
            check.positive_int(k, what="k", maximum=1000)
            if k is not None
            else self.config.k_for(budget)
        )
        return budget, limit

    @staticmethod
    def _tiers(tiers: Sequence[Tier | str] | None) -> tuple[Tier, ...] | None:
        if tiers is None:
            return None
        if isinstance(tiers, str):
            tiers = [tiers]
        if not isinstance(tiers, Iterable):
            raise InvalidArgument(f"tiers must be a list of 'mtm' and 'ltm', got {tiers!r}")
        try:
            chosen = tuple(Tier(t) for t in tiers)
        except (ValueError, TypeError) as err:
            raise InvalidArgument(
                f"tiers must be among 'mtm' and 'ltm', got {list(tiers)}"
            ) from err
        if Tier.STM in chosen:
            raise InvalidArgument(
                "short-term memory is not searched; use recent() or get_context()"
            )
        return chosen or None  # none named: every tier

    def recent(
        self,
        user_id: str,
        *,
        session_id: str | None = None,
        token_budget: int | None = None,
        limit: int | None = None,
    ) -> list[Turn]:
        """Short-term memory: the latest turns of a session (the user's latest if ``None``),
        oldest first, at most ``limit`` of them (default ``stm_turns``) and within
        ``token_budget`` (default ``stm_token_budget``). Turns before a
        :meth:`clear_recent` of the session are not recent any more."""
        return run(self._recent_checked(user_id, session_id, token_budget, limit), self._records)

    def _recent_checked(
        self,
        user_id: str,
        session_id: str | None,
        token_budget: int | None,
        limit: int | None,
    ) -> Steps[list[Turn]]:
        self._ensure_open()
        user = check.user_id(user_id)
        session = (
            check.identifier(session_id, what="session_id") if session_id is not None else None
        )
        budget = (
            check.positive_int(token_budget, what="token_budget")
            if token_budget is not None
            else self.config.stm_token_budget
        )
        count = check.positive_int(limit, what="limit") if limit is not None else None
        return (yield from self._recent(user, session, budget, count))

    def _recent(
        self,
        user: str,
        session: str | None,
        budget: int,
        limit: int | None = None,
        *,
        as_of: datetime | None = None,
    ) -> Steps[list[Turn]]:
        turns: list[Turn] = yield record(
            RecordStore.recent_turns,
            user,
            session_id=session,
            limit=limit or self.config.stm_turns,
            before=as_of,
        )
        kept: list[Turn] = []
        used = 0
        for turn in reversed(turns):  # newest first: the latest turns matter most
            tokens = self._count_tokens(turn_line(turn))
            if used + tokens > budget:
                break
            kept.append(turn)
            used += tokens
        return kept[::-1]

    def get_context(
        self,
        user_id: str,
        query: str,
        *,
        token_budget: int | None = None,
        session_id: str | None = None,
        now: datetime | str | float | None = None,
        k: int | None = None,
    ) -> str:
        """A prompt-ready block: memories relevant to ``query``, then the recent turns of the
        session, together within ``token_budget``. Empty string when nothing is known."""
        return self.context(
            user_id, query, token_budget=token_budget, session_id=session_id, now=now, k=k
        ).text

    def context(
        self,
        user_id: str,
        query: str,
        *,
        token_budget: int | None = None,
        session_id: str | None = None,
        now: datetime | str | float | None = None,
        k: int | None = None,
        include_recent: bool = True,
    ) -> Context:
        """What :meth:`get_context` renders, in parts: the retrieved memories, the session's
        recent turns, and the block as text (memories alone, and with the turns).

        With ``include_recent=False`` the caller already shows the session's recent turns
        (an agent's thread does): the whole budget goes to memories, and memories written
        from those turns are still left out, since the prompt has them.
        """
        return run(
            self._context(user_id, query, token_budget, session_id, now, k, include_recent),
            self._records,
        )

    def _context(
        self,
        user_id: str,
        query: str,
        token_budget: int | None,
        session_id: str | None,
        now: datetime | str | float | None,
        k: int | None,
        include_recent: bool,
    ) -> Steps[Context]:
        self._ensure_open()
        user = check.user_id(user_id)
        text = check.content(query, max_chars=self.config.max_content_chars, what="query")
        budget, limit = self._budget_and_k(token_budget, k)
        session = (
            check.identifier(session_id, what="session_id") if session_id is not None else None
        )
        as_of = check.timestamp(now, what="now") if now is not None else None
        if not isinstance(include_recent, bool):
            raise InvalidArgument(f"include_recent must be True or False, got {include_recent!r}")
        stm_budget = min(self.config.stm_token_budget, budget // 2)
        # As of ``now``: turns from after it are no more recent than the memories are.
        recent = yield from self._recent(
            user, session, stm_budget if include_recent else budget, as_of=as_of
        )
        shown = recent if include_recent else []
        # What the block costs besides the memories: the header (once) and the tags.
        frame = self._count_tokens(render_context(shown, [])) + self._count_tokens(
            "\n".join(
                ["<memories>", "</memories>"] if shown else [HEADER, "<memories>", "</memories>"]
            )
        )
        self._need_embedder()
        hits = yield from self._searcher.search_steps(
            SearchRequest(
                user,
                text,
                k=limit,
                budget=max(0, budget - frame),
                cost=lambda m: self._count_tokens(memory_line(m)),
                as_of=as_of,
                exclude_sources=frozenset(t.turn_id for t in recent),
            )
        )
        return Context(
            text=render_context(shown, hits),
            memories_text=render_context([], hits),
            hits=hits,
            recent=shown,
        )

    def clear_recent(self, user_id: str, session_id: str) -> None:
        """Clear the session's short-term memory: :meth:`recent` and :meth:`get_context` no
        longer show the turns stored so far, durably, for every process on the store.

        Nothing is erased: the turns stay stored and their memories stay searchable (use
        :meth:`delete` or :meth:`forget` to erase)."""
        run(self._clear_recent(user_id, session_id), self._records)

    def _clear_recent(self, user_id: str, session_id: str) -> Steps[None]:
        self._ensure_open()
        user = check.user_id(user_id)
        session = check.identifier(session_id, what="session_id")
        yield record(RecordStore.clear_recent, user, session)

    # --- maintenance ------------------------------------------------------------------------

    def export(self, user_id: str) -> dict[str, Any]:
        """Everything held about the user, as JSON-serialisable data."""
        return run(self._export(user_id), self._records)

    def _export(self, user_id: str) -> Steps[dict[str, Any]]:
        self._ensure_open()
        user = check.user_id(user_id)
        turns, memories = yield record(RecordStore.export_user, user)
        return {
            "format": EXPORT_FORMAT,
            "user_id": user,
            "exported_at": datetime.now(UTC).isoformat(),
            "turns": [t.to_dict() for t in turns],
            "memories": [m.to_dict() for m in memories],
        }

    def delete(
        self, user_id: str, *, memory_ids: Sequence[str] = (), keys: Sequence[str] = ()
    ) -> int:
        """Delete some of the user's memories, named by id or by key: their records,
        full-text rows and vectors. Returns how many existed; unknown ids are ignored.
        The turns they were written from stay (:meth:`forget` erases a user entirely)."""
        self._ensure_open()
        user = check.user_id(user_id)
        ids = check.identifiers(memory_ids, what="memory_ids")
        names = check.identifiers(keys, what="keys")
        if not ids and not names:
            return 0
        with self._indexer.exclusive():  # no index write of these rows can interleave
            deleted = self._records.delete_memories(user, memory_ids=ids, keys=names)
            if deleted:
                self._vectors().delete(user, deleted)
        return len(deleted)

    def forget(self, user_id: str) -> ForgetReceipt:
        """Erase the user everywhere: records, full-text index, vectors, caches.

        Returns a receipt of what was removed. Forgetting an unknown user removes nothing."""
        self._ensure_open()
        user = check.user_id(user_id)
        with (
            self._consolidator.lock_of(user),
            self._indexer.exclusive(),
        ):  # a running consolidation finishes first
            deleted = self._records.delete_user(user)
            vectors = self._vectors().delete_user(user)
            if deleted.shared:
                self._vectors().delete(SHARED_USER, list(deleted.shared))
            self._indexer.drop_user(user)
            self._searcher.forget(user)
            self._searcher.note_erasure()
        return ForgetReceipt(
            user_id=user,
            turns=deleted.turns,
            memories=deleted.memories,
            vectors=vectors,
            lexical_rows=deleted.lexical_rows,
            completed_at=datetime.now(UTC),
            remaining=(*self._records.erasure_residue(), *self._vectors().erasure_residue()),
            shared=len(deleted.shared),
        )

    # --- consolidation ----------------------------------------------------------------------

    def consolidate(
        self,
        user_id: str | None = None,
        *,
        dry_run: bool = False,
        now: datetime | str | float | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> ConsolidationReport:
        """Turn new mid-term evidence into long-term knowledge, for one user or every user.

        Incremental (only entries added or re-used since the user's last run), idempotent
        (nothing new: nothing changes) and resumable (each step is one transaction; a run
        killed at any point and run again ends where an uninterrupted run would). ``dry_run``
        counts what would change and writes nothing. ``now`` is the clock that decay is
        measured against (default: the current time). ``progress`` is called with the
        number of entries taken in after each one.

        Raises:
            ConsolidationInProgress: ``user_id`` is being consolidated by another run (with
                no ``user_id``, busy users are skipped and listed in the report).
        """
        self._ensure_open()
        users, clock = self._consolidation_targets(user_id, now)
        return self._consolidator.run(
            users, now=clock, dry_run=dry_run, progress=progress, explicit=user_id
        )

    async def aconsolidate(
        self,
        user_id: str | None = None,
        *,
        dry_run: bool = False,
        now: datetime | str | float | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> ConsolidationReport:
        """Async :meth:`consolidate`: the same plan, driven by the async driver (store work
        in worker threads, an async abstractor awaited)."""
        self._ensure_open()
        users, clock = self._consolidation_targets(user_id, now)
        return await self._consolidator.arun(
            users, now=clock, dry_run=dry_run, progress=progress, explicit=user_id
        )

    def consolidation_backlog(self, user_id: str | None = None) -> int:
        """MTM entries not yet consolidated (for one user, or the whole store)."""
        self._ensure_open()
        users = [check.user_id(user_id)] if user_id is not None else self.users()
        return sum(
            self._records.count_new_evidence(u, after_seq=self._records.consolidation_state(u)[0])
            for u in users
        )

    def _consolidation_targets(
        self, user_id: str | None, now: datetime | str | float | None
    ) -> tuple[list[str], datetime]:
        self._need_embedder()
        users = [check.user_id(user_id)] if user_id is not None else self.users()
        clock = check.timestamp(now, what="now") if now is not None else datetime.now(UTC)
        return users, clock

    def schedule_consolidation(self, user_id: str) -> None:
        """Consolidate the user soon, in the background: returns at once (no model, no
        database work on the caller's thread). Runs that overlap are skipped, not queued."""
        self._ensure_open()
        user = check.user_id(user_id)
        with self._scheduler_lock:
            if self._scheduler is None:
                self._scheduler = ConsolidationScheduler(self._scheduled_run)
                self._scheduler.start()
        self._scheduler.request(user)

    def _scheduled_run(self, user_id: str | None) -> None:
        if not self._closed:
            self.consolidate(user_id)

    def stats(self, user_id: str | None = None) -> dict[str, Any]:
        """Counts per tier, vectors and indexing backlog: for one user, or the whole store.

        ``models`` holds the model calls of each role since this instance opened (calls,
        tokens in and out, time, fallbacks and why), the same whatever ``user_id`` is."""
        return run(self._stats(user_id), self._records)

    def _stats(self, user_id: str | None) -> Steps[dict[str, Any]]:
        self._ensure_open()
        user = check.user_id(user_id) if user_id is not None else None
        counts: dict[str, int] = yield record(RecordStore.counts, user)
        result: dict[str, Any] = {"user_id": user, **counts}
        if user is not None:
            result["vectors"] = yield blocking(self._vector_count, user)
        else:
            users: list[str] = yield record(RecordStore.users)
            result["users"] = len([u for u in users if u != SHARED_USER])
            result["path"] = str(self.path)
            result["vector_index"] = self.config.chroma_url or (
                f"http://{self.config.chroma_host}:{self.config.chroma_port}"
                if self.config.chroma_host
                else str(self.path / "chroma")
            )
        result["embedder"] = self._embedder.name
        # What built the vectors:
        result["index_embedder"] = yield record(RecordStore.get_meta, "embedder")
        result["models"] = self._models.snapshot()
        if result["models"]:
            from .slm.prompts import PROMPT_VERSION

            result["prompt_version"] = PROMPT_VERSION
        result["indexer_error"] = self._indexer.last_error
        if self._scheduler is not None:
            result["consolidation_error"] = self._scheduler.last_error
        return result

    def _vector_count(self, user: str) -> int:
        return self._vectors().count(user)

    def users(self) -> list[str]:
        """Every user id in the store (an operator's call: it lists, it reveals no content)."""
        self._ensure_open()
        return [u for u in self._records.users() if u != SHARED_USER]

    def clear_shared_knowledge(self) -> ForgetReceipt:
        """Erase all shared knowledge (see ``share_knowledge``), as ``forget`` erases a user."""
        self._ensure_open()
        with self._indexer.exclusive():
            deleted = self._records.delete_user(SHARED_USER)
            vectors = self._vectors().delete_user(SHARED_USER)
            self._searcher.note_erasure()
        return ForgetReceipt(
            user_id=SHARED_USER,
            turns=deleted.turns,
            memories=deleted.memories,
            vectors=vectors,
            lexical_rows=deleted.lexical_rows,
            completed_at=datetime.now(UTC),
            remaining=(*self._records.erasure_residue(), *self._vectors().erasure_residue()),
            shared=len(deleted.shared),
        )

    def flush(self, *, progress: Callable[[int], None] | None = None) -> int:
        """Index every pending memory now; returns how many were indexed. ``progress`` is
        called with the number indexed by each batch, as it finishes."""
        self._ensure_open()
        self._need_embedder()
        return self._indexer.flush_all(progress)

    def reindex(self, *, progress: Callable[[int], None] | None = None) -> int:
        """Rebuild the vector index from the record store with the current embedder; returns
        how many memories were re-embedded.

        ``progress`` is called with the number of memories done after each batch."""
        self._ensure_open()
        with self._indexer.exclusive():
            self._vectors().reset()
            total = self._records.mark_all_pending()
            self._records.set_meta("embedder", self._embedder.name)
            self._records.set_meta("dimension", str(self._embedder.dimension))
            self._index_dimension = None
            self._embedder_mismatch = None  # the index is this embedder's now
        self._searcher.clear()
        # The background thread may take some batches; all are done when this returns.
        self._indexer.start()
        self._indexer.flush_all(progress)
        return total

    def close(self) -> None:
        """Stop background work and close the stores. Safe to call twice. Memories not yet
        indexed stay pending on disk and are indexed on the next open."""
        if self._closed:
            return
        self._closed = True
        _OPEN_STORES.discard(self)
        if self._scheduler is not None:
            self._scheduler.close()
        self._indexer.close()
        if self._vectors_handle is not None:
            self._vectors_handle.close()
        self._records.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (every other call then raises ``StoreClosed``)."""
        return self._closed

    def __enter__(self) -> LightMem:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"LightMem(path={str(self.path)!r}, embedder={self._embedder.name!r}, {state})"

    # --- async twins ----------------------------------------------------------------------

    async def aadd(
        self,
        user_id: str,
        content: str,
        *,
        role: str = "user",
        session_id: str | None = None,
        timestamp: datetime | str | float | None = None,
        turn_id: str | None = None,
        speaker: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Turn:
        """Async :meth:`add`."""
        message = _message(content, role, session_id, timestamp, turn_id, speaker, metadata)
        return (await arun(self._add_many(user_id, [message], None), self._records))[0]

    async def aadd_many(
        self, user_id: str, messages: Iterable[Mapping[str, Any]], *, session_id: str | None = None
    ) -> list[Turn]:
        """Async :meth:`add_many`."""
        return await arun(self._add_many(user_id, messages, session_id), self._records)

    async def aremember(
        self,
        user_id: str,
        text: str,
        *,
        kind: str = "fact",
        timestamp: datetime | str | float | None = None,
        source_ids: Sequence[str] | None = (),
        metadata: Mapping[str, Any] | None = None,
        key: str | None = None,
    ) -> Memory:
        """Async :meth:`remember`."""
        return await arun(
            self._remember(user_id, text, kind, timestamp, source_ids, metadata, key),
            self._records,
        )

    async def asearch(
        self,
        user_id: str,
        query: str,
        *,
        k: int | None = None,
        token_budget: int | None = None,
        now: datetime | str | float | None = None,
        tiers: Sequence[Tier | str] | None = None,
    ) -> SearchResults:
        """Async :meth:`search`."""
        return await arun(self._search(user_id, query, k, token_budget, now, tiers), self._records)

    async def arecent(
        self,
        user_id: str,
        *,
        session_id: str | None = None,
        token_budget: int | None = None,
        limit: int | None = None,
    ) -> list[Turn]:
        """Async :meth:`recent`."""
        return await arun(
            self._recent_checked(user_id, session_id, token_budget, limit), self._records
        )

    async def aget_context(
        self,
        user_id: str,
        query: str,
        *,
        token_budget: int | None = None,
        session_id: str | None = None,
        now: datetime | str | float | None = None,
        k: int | None = None,
    ) -> str:
        """Async :meth:`get_context`."""
        context = await arun(
            self._context(user_id, query, token_budget, session_id, now, k, True), self._records
        )
        return context.text

    async def acontext(
        self,
        user_id: str,
        query: str,
        *,
        token_budget: int | None = None,
        session_id: str | None = None,
        now: datetime | str | float | None = None,
        k: int | None = None,
        include_recent: bool = True,
    ) -> Context:
        """Async :meth:`context`."""
        return await arun(
            self._context(user_id, query, token_budget, session_id, now, k, include_recent),
            self._records,
        )

    async def amemories(
        self,
        user_id: str,
        *,
        ids: Sequence[str] | None = None,
        keys: Sequence[str] | None = None,
        key_prefix: str | None = None,
        tiers: Sequence[Tier | str] | None = None,
    ) -> list[Memory]:
        """Async :meth:`memories`."""
        return await arun(self._memories(user_id, ids, keys, key_prefix, tiers), self._records)

    async def adelete(
        self, user_id: str, *, memory_ids: Sequence[str] = (), keys: Sequence[str] = ()
    ) -> int:
        """Async :meth:`delete`."""
        return await asyncio.to_thread(self.delete, user_id, memory_ids=memory_ids, keys=keys)

    async def aclear_recent(self, user_id: str, session_id: str) -> None:
        """Async :meth:`clear_recent`."""
        await arun(self._clear_recent(user_id, session_id), self._records)

    async def aexport(self, user_id: str) -> dict[str, Any]:
        """Async :meth:`export`."""
        return await arun(self._export(user_id), self._records)

    async def aforget(self, user_id: str) -> ForgetReceipt:
        """Async :meth:`forget`."""
        return await asyncio.to_thread(self.forget, user_id)

    async def astats(self, user_id: str | None = None) -> dict[str, Any]:
        """Async :meth:`stats`."""
        return await arun(self._stats(user_id), self._records)

    async def aflush(self, *, progress: Callable[[int], None] | None = None) -> int:
        """Async :meth:`flush`."""
        return await asyncio.to_thread(self.flush, progress=progress)

    async def areindex(self, *, progress: Callable[[int], None] | None = None) -> int:
        """Async :meth:`reindex`."""
        return await asyncio.to_thread(self.reindex, progress=progress)

    async def aclose(self) -> None:
        """Async :meth:`close`."""
        closing = getattr(self._records, "close_async_store", None)
        if closing is not None and not self._closed:
            await closing()  # this loop's native async connections, on this loop
        await asyncio.to_thread(self.close)

    async def __aenter__(self) -> LightMem:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
