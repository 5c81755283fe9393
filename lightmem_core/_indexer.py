"""Write-behind vector indexing.

``add`` stores a memory in SQLite with ``indexed = 0`` and returns; this indexer embeds
pending memories in batches on a background thread and upserts them into the vector index.
A search first indexes its own user's pending memories in the caller's thread
(read-your-writes). Because pending rows live in SQLite, a crash loses nothing: the next
open catches the index up.

The thread indexes the users this process wrote for (plus, once on open, whatever is
pending from before). Several processes may share one store; each indexes its own writes,
so none embeds another's rows twice over.

One lock orders index writes against erasure: a batch embedded for a user who is then
forgotten is dropped, never written back into the index.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from .embedding import Embedder
from .store import PendingVector, RecordStore, VectorIndex

logger = logging.getLogger("lightmem")

# Texts per embedding call. Small, so a query waiting for the embedder waits little.
_EMBED_CHUNK = 8
# How long the indexer waits for writes to pause before it embeds them...
_QUIET_S = 0.25
# ...and how long at most: under steady traffic writes never pause, and an indexer that waited
# for quiet would let every user's backlog grow until their searches indexed it themselves
# (each paying for it, one after another, behind the index write lock).
_MAX_DELAY_S = 1.0
# Searches come first: between embedding calls the background thread waits while a search
# runs (the embedder is shared and the cores are few), for at most this long each time, so
# that steady searching slows indexing without stopping it.
_YIELD_S = 0.2


class VectorIndexer:
    """Keeps the vector index caught up with the record store."""

    def __init__(
        self,
        records: RecordStore,
        vectors: Callable[[], VectorIndex],
        embedder: Callable[[], Embedder],
        *,
        batch_size: int,
        on_first_vector: Callable[[int], None],
    ) -> None:
        self._records = records
        self._vectors = vectors
        self._embedder = embedder
        self._batch_size = batch_size
        self._on_first_vector = on_first_vector
        self._write_lock = threading.RLock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._access: dict[str, dict[str, datetime]] = defaultdict(dict)
        self._access_lock = threading.Lock()
        self._claims = threading.Condition()
        self._in_flight: set[str] = set()
        self._dirty: set[str] = set()  # users with memories written here since last indexed
        self._dirty_lock = threading.Lock()
        self._searches = 0  # searches running now, which the background thread gives way to
        self._searches_done = threading.Condition()
        self._catch_up = True  # index everything pending once, on open
        self.last_error: str | None = None

    # --- the background thread --------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="lightmem-indexer", daemon=True)
            self._thread.start()
            self._wake.set()  # catch up with whatever a previous process left pending

    def notify(self, user_id: str) -> None:
        """This process wrote pending memories for ``user_id``."""
        with self._dirty_lock:
            self._dirty.add(user_id)
        self._wake.set()

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            self._wake.wait(timeout=5.0)
            # Write-behind, not write-along: wait for a quiet moment, so the search that
            # usually follows an add runs alone (it scores the new turn itself) and a burst of
            # adds is embedded as one batch.
            woken = time.monotonic()
            while self._wake.is_set() and not self._stop.is_set():
                self._wake.clear()
                left = _MAX_DELAY_S - (time.monotonic() - woken)
                if left <= 0:
                    break
                self._stop.wait(min(_QUIET_S, left))
            if self._stop.is_set():
                break
            with self._dirty_lock:
                users: list[str | None] = [None] if self._catch_up else []
                users += sorted(self._dirty)
                self._dirty.clear()
            try:
                self._apply_access()
                for user_id in users:
                    self._index_backlog(user_id)
                self._catch_up = False
                backoff = 0.5
                self.last_error = None
            except Exception as err:  # keep the thread alive; rows stay pending
                with self._dirty_lock:
                    self._dirty.update(u for u in users if u is not None)
                self.last_error = f"{type(err).__name__}: {err}"
                logger.warning("lightmem: background indexing failed, will retry: %s", err)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
                self._wake.set()

    def _index_backlog(self, user_id: str | None) -> None:
        """Index what is pending for one user (``None``: everyone), batch by batch."""
        while not self._stop.is_set():
            with self._claims:
                busy = len(self._in_flight)
            pending = self._records.pending_vectors(limit=self._batch_size + busy, user_id=user_id)
            batch = pending[: self._batch_size + busy]
            if not pending or not self.index(batch, interruptible=True):
                return  # nothing left, or all of it in a flush's hands

    def close(self) -> None:
        """Stop the background thread at its next chunk boundary (within one embedding call
        of 8 texts and one index write) and wait for it; what it had not embedded stays
        pending for the next open."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        try:
            self._apply_access()
        except Exception as err:  # access counts are statistics; never fail a close
            logger.warning("lightmem: could not save access statistics: %s", err)

    # --- indexing -----------------------------------------------------------------------------

    def index(self, pending: Sequence[PendingVector], *, interruptible: bool = False) -> int:
        """Embed and upsert those of these memories no other thread is indexing; returns how
        many reached the index. ``interruptible``: a close stops it between embedding calls,
        writing what was embedded so far."""
        mine = self._claim(pending)
        try:
            return self._index_claimed(mine, interruptible=interruptible)
        finally:
            self._release(mine)

    def _index_claimed(
        self, pending: Sequence[PendingVector], *, interruptible: bool = False
    ) -> int:
        if not pending:
            return 0
        embedder = self._embedder()
        vectors: list[list[float]] = []
        for start in range(0, len(pending), _EMBED_CHUNK):
            if interruptible and self._stop.is_set():
                # A closing process (or one exiting: see LightMem's exit hook) must not wait
                # for a whole batch, nor leave a thread inside native code at exit.
                pending = pending[:start]
                break
            if interruptible:
                self._give_way()
            chunk = pending[start : start + _EMBED_CHUNK]
            vectors.extend(embedder.embed([p.text for p in chunk]))
        if vectors:
            self._on_first_vector(len(vectors[0]))
        with self._write_lock:
            # Rows deleted meanwhile are dropped; rows indexed meanwhile (consolidation puts
            # its own records in the index) are not written twice.
            alive = self._records.pending_ids([p.memory_id for p in pending])
            by_user: dict[str, list[tuple[PendingVector, list[float]]]] = defaultdict(list)
            for item, vector in zip(pending, vectors, strict=True):
                if item.memory_id in alive:
                    by_user[item.user_id].append((item, vector))
            index = self._vectors()
            for user_id, items in by_user.items():
                index.upsert(
                    user_id,
                    [p.memory_id for p, _ in items],
                    [v for _, v in items],
                    [p.metadata for p, _ in items],
                )
            done = [item for items in by_user.values() for item in items]
            self._records.mark_indexed(done)
        return len(done)

    def index_vectors(
        self, items: Sequence[PendingVector], vectors: Sequence[Sequence[float]]
    ) -> None:
        """Put memories whose vectors are already known in the index (consolidation's new
        records), and return once every one of them is there, whoever indexed it."""
        known = {p.memory_id: v for p, v in zip(items, vectors, strict=True)}
        claimed = self._claim(items)
        mine = claimed
        try:
            if mine:
                self._on_first_vector(len(known[mine[0].memory_id]))
                with self._write_lock:
                    alive = self._records.pending_ids([p.memory_id for p in mine])
                    mine = [p for p in mine if p.memory_id in alive]
                    if mine:
                        self._vectors().upsert(
                            mine[0].user_id,
                            [p.memory_id for p in mine],
                            [known[p.memory_id] for p in mine],
                            [p.metadata for p in mine],
                        )
                        self._records.mark_indexed([(p, known[p.memory_id]) for p in mine])
        except BaseException:
            for item in items:  # left pending: the background thread retries them
                self.notify(item.user_id)
            raise
        finally:
            self._release(claimed)
        waiting = set(known)
        with self._claims:  # the rest is in the background thread's hands: wait for it
            self._claims.wait_for(lambda: not waiting & self._in_flight, timeout=60)

    @contextmanager
    def searching(self) -> Iterator[None]:
        """Hold while a search runs: the background thread embeds nothing meanwhile (beyond
        the chunk it is in), so the search's own embedding does not queue behind it."""
        with self._searches_done:
            self._searches += 1
        try:
            yield
        finally:
            with self._searches_done:
                self._searches -= 1
                self._searches_done.notify_all()

    def _give_way(self) -> None:
        with self._searches_done:
            self._searches_done.wait_for(
                lambda: self._searches == 0 or self._stop.is_set(), timeout=_YIELD_S
            )

    # Claims keep two threads (the background one and a flush or a search) from embedding the
    # same rows: each takes only rows nobody has in flight, and waits for the rest.

    def _claim(self, pending: Sequence[PendingVector]) -> list[PendingVector]:
        with self._claims:
            mine = [p for p in pending if p.memory_id not in self._in_flight]
            self._in_flight.update(p.memory_id for p in mine)
        return mine

    def _release(self, claimed: Sequence[PendingVector]) -> None:
        with self._claims:
            self._in_flight.difference_update(p.memory_id for p in claimed)
            self._claims.notify_all()

    def _drain(self, user_id: str | None, progress: Callable[[int], None] | None) -> int:
        """Index everything pending (for one user, or all) until nothing is left, including
        rows another thread was indexing when we started."""
        total = 0
        while True:
            with self._claims:
                busy = len(self._in_flight)
            pending = self._records.pending_vectors(limit=self._batch_size + busy, user_id=user_id)
            if not pending:
                return total
            mine = self._claim(pending)
            if not mine:  # all of it is in another thread's hands: wait for that batch
                waiting = {p.memory_id for p in pending}
                with self._claims:
                    self._claims.wait_for(
                        lambda waiting=waiting: not waiting & self._in_flight,  # type: ignore[misc]
                        timeout=60,
                    )
                continue
            try:
                total += self._index_claimed(mine[: self._batch_size])
            finally:
                self._release(mine)
            if progress is not None:
                progress(min(len(mine), self._batch_size))

    def flush_user(self, user_id: str) -> int:
        """Index every pending memory of one user now, in the caller's thread."""
        return self._drain(user_id, None)

    def flush_all(self, progress: Callable[[int], None] | None = None) -> int:
        """Index every pending memory now, in the caller's thread."""
        return self._drain(None, progress)

    def exclusive(self) -> threading.RLock:
        """Hold while erasing a user: no index write can interleave."""
        return self._write_lock

    # --- access statistics (recorded off the search path) -----------------------------------

    def record_access(self, user_id: str, memory_ids: Sequence[str], at: datetime) -> None:
        with self._access_lock:
            for memory_id in memory_ids:
                self._access[user_id][memory_id] = at
        self._wake.set()

    def drop_user(self, user_id: str) -> None:
        with self._access_lock:
            self._access.pop(user_id, None)

    def _apply_access(self) -> None:
        with self._access_lock:
            batch, self._access = self._access, defaultdict(dict)
        for user_id, seen in batch.items():
            if seen:
                self._records.record_access(user_id, list(seen), max(seen.values()))
