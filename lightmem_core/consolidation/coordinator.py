"""Who consolidates whom: one run per user at a time, across threads and processes.

:class:`Consolidator` runs :func:`~.plan.consolidate_user` for one user or many, driven by
:func:`~.runner.drive` (or :func:`~.runner.adrive`), and owns what keeps runs apart: a lock
per user in this process, and a lease in the record store for the other processes (renewed at
every commit, released at the end; a lease held by a process of this host that is gone is
free). It adds each run's counts into the :class:`~lightmem_core.ConsolidationReport`.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .._config import LightMemConfig
from .._errors import ConsolidationInProgress
from .._types import ConsolidationReport
from ..embedding import Embedder
from ..store import RecordStore, VectorIndex
from .abstractor import Abstractor
from .plan import ConsolidationSettings, consolidate_user
from .runner import StoreHandler, adrive, drive

if TYPE_CHECKING:
    from .._indexer import VectorIndexer

__all__ = ["Consolidator"]

_LEASE = timedelta(minutes=2)  # a consolidation renews its lease at every commit
_HOST = socket.gethostname()


@dataclass(slots=True)
class _Tally:
    """What a consolidation run over several users did, added up."""

    dry_run: bool
    counts: Counter[str] = field(default_factory=Counter)
    users: int = 0
    model_calls: int = 0
    skipped: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def add(self, counts: Counter[str], model_calls: int) -> None:
        self.counts += counts
        self.users += 1
        self.model_calls += model_calls

    def report(self) -> ConsolidationReport:
        c = self.counts
        return ConsolidationReport(
            users=self.users,
            entries=c["entries"],
            new=c["new"],
            merged=c["merged"],
            superseded=c["superseded"],
            linked=c["linked"],
            reactivated=c["reactivated"],
            archived=c["archived"],
            deleted=c["deleted"],
            evicted=c["evicted"],
            shared=c["shared"],
            seconds=time.perf_counter() - self.started,
            model_calls=self.model_calls,
            dry_run=self.dry_run,
            skipped=tuple(self.skipped),
        )


class Consolidator:
    """Consolidation runs for one store: see the module's docstring."""

    def __init__(
        self,
        *,
        records: RecordStore,
        vectors: Callable[[], VectorIndex],
        indexer: VectorIndexer,
        embedder: Embedder,
        abstractor: Abstractor,
        config: LightMemConfig,
        speakers: Callable[[str], frozenset[str]],
    ) -> None:
        """``speakers``: the names that speak in a user's conversations (kept out of shared
        knowledge when sharing is on)."""
        self._records = records
        self._vectors = vectors
        self._indexer = indexer
        self._embedder = embedder
        self._abstractor = abstractor
        self._config = config
        self._speakers = speakers
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._owner = f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex[:12]}"

    def lock_of(self, user: str) -> threading.Lock:
        """The lock a run of the user holds in this process (an erasure waits on it)."""
        with self._locks_guard:
            return self._locks.setdefault(user, threading.Lock())

    def run(
        self,
        users: Sequence[str],
        *,
        now: datetime,
        dry_run: bool,
        progress: Callable[[int], None] | None,
        explicit: str | None,
    ) -> ConsolidationReport:
        """Consolidate each user in turn; a busy one is skipped, or an error when it is the
        ``explicit`` user the caller named."""
        tally = _Tally(dry_run=dry_run)
        for user in users:
            run = self._begin_or_skip(user, now, dry_run, progress, tally, explicit=explicit)
            if run is None:
                continue
            plan, handler = run
            try:
                counts = drive(plan, handler)
            finally:
                self._end(user, dry_run)
            tally.add(counts, handler.model_calls)
        return tally.report()

    async def arun(
        self,
        users: Sequence[str],
        *,
        now: datetime,
        dry_run: bool,
        progress: Callable[[int], None] | None,
        explicit: str | None,
    ) -> ConsolidationReport:
        """:meth:`run` with the async driver: store work in worker threads, an async
        abstractor awaited."""
        tally = _Tally(dry_run=dry_run)
        for user in users:
            run = await asyncio.to_thread(
                self._begin_or_skip, user, now, dry_run, progress, tally, explicit=explicit
            )
            if run is None:
                continue
            plan, handler = run
            try:
                counts = await adrive(plan, handler.ahandle)
            finally:
                await asyncio.to_thread(self._end, user, dry_run)
            tally.add(counts, handler.model_calls)
        return tally.report()

    def _settings(self) -> ConsolidationSettings:
        config = self._config
        return ConsolidationSettings(
            merge_similarity=config.merge_similarity,
            link_similarity=config.link_similarity,
            half_life=timedelta(days=config.decay_half_life_days),
            archive_below=config.archive_below,
            archive_ttl=timedelta(days=config.archive_ttl_days)
            if config.archive_ttl_days is not None
            else None,
            mtm_capacity=config.mtm_capacity,
        )

    def _begin_or_skip(
        self,
        user: str,
        now: datetime,
        dry_run: bool,
        progress: Callable[[int], None] | None,
        tally: _Tally,
        *,
        explicit: str | None,
    ) -> tuple[Any, StoreHandler] | None:
        """Begin the user's run; a busy user is skipped (``None``) in a run over every user,
        and an error when the caller named them."""
        try:
            return self._begin(user, now, dry_run, progress)
        except ConsolidationInProgress:
            if explicit is not None:
                raise
            tally.skipped.append(user)
            return None

    def _begin(
        self,
        user: str,
        now: datetime,
        dry_run: bool,
        progress: Callable[[int], None] | None,
    ) -> tuple[Any, StoreHandler]:
        """Take the user (one run at a time: a lock here, a lease in the store for other
        processes) and set up the plan and its handler."""
        lock = self.lock_of(user)
        if not lock.acquire(blocking=False):
            raise ConsolidationInProgress(f"user {user!r} is being consolidated by another thread")
        try:
            if not dry_run:
                self._renew_lease(user)
                # Consolidation looks up long-term records by vector: the index must hold
                # every one (a crash may have left some pending).
                self._indexer.flush_user(user)
            watermark, last_run = self._records.consolidation_state(user)
            handler = StoreHandler(
                user,
                records=self._records,
                vectors=self._vectors,
                embedder=self._embedder,
                abstractor=self._abstractor,
                index_vectors=self._indexer.index_vectors,
                now=now,
                last_run=last_run,
                clock=lambda: datetime.now(UTC),
                dry_run=dry_run,
                on_commit=(lambda: self._renew_lease(user)) if not dry_run else (lambda: None),
                on_entries=progress or (lambda n: None),
            )
            if dry_run:
                handler.preload_pending(self._embedder)
            plan = consolidate_user(
                user,
                watermark=watermark,
                since_last_run=last_run is not None,
                now=now,
                settings=self._settings(),
                share_names=(user, *self._speakers(user)) if self._config.share_knowledge else None,
            )
        except BaseException:
            self._end(user, dry_run, lock_only=dry_run)
            raise
        return plan, handler

    def _end(self, user: str, dry_run: bool, *, lock_only: bool = False) -> None:
        try:
            if not dry_run and not lock_only:
                self._records.release_lease(user, self._owner)
        finally:
            lock = self._locks.get(user)
            if lock is not None and lock.locked():
                lock.release()

    def _renew_lease(self, user: str) -> None:
        holder = self._records.acquire_lease(
            user,
            self._owner,
            until=datetime.now(UTC) + _LEASE,
            holder_alive=self._lease_holder_alive,
        )
        if holder is not None:
            raise ConsolidationInProgress(
                f"user {user!r} is being consolidated by another process ({holder})"
            )

    def _lease_holder_alive(self, holder: str) -> bool:
        """Whether the run holding a lease may still be running. A process of this host
        that is gone (killed mid-run) holds nothing; other hosts' leases run out."""
        host, _, rest = holder.partition(":")
        pid_text = rest.partition(":")[0]
        if host != _HOST or not pid_text.isdigit():
            return True
        try:
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
