"""The PostgreSQL record store for event loops: the same plans as
:class:`~.postgres.PostgresRecordStore` (:mod:`._pg_plans`), run on psycopg's async
connection pool, so a coroutine waiting on the server holds no thread.

``LightMem``'s async methods use it through :meth:`PostgresRecordStore.async_store` (one
per event loop); it can also be opened on its own (``await store.open()`` applies the
migrations, as the sync store does).
"""

from __future__ import annotations

import asyncio
import functools
from array import array
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from contextvars import ContextVar
from datetime import datetime
from typing import Any, Literal, TypeVar

from .._errors import StorageError
from .._types import Memory, Tier, Turn
from ._contracts import (
    ConsolidationChanges,
    DeletedCounts,
    Evidence,
    PendingVector,
    Surroundings,
)
from ._pg_plans import Maintenance, Plan, PostgresPlans, Query, Result, Transaction, Work, advance
from ._psycopg import AsyncConnectionPool, PoolTimeout, pg_errors, psycopg
from .postgres import (
    ATTEMPTS,
    RETRIED,
    check_options,
    conflicted,
    connection_options,
    erasure_residue,
    pool_timed_out,
    redacted,
    translate,
)

__all__ = ["AsyncPostgresRecordStore"]

T = TypeVar("T")

_CLOSING: set[asyncio.Task[None]] = set()


class AsyncPostgresRecordStore:
    """The record store contract as coroutines, on a PostgreSQL database.

    Takes the arguments of :class:`~.postgres.PostgresRecordStore`; ``migrate=False`` skips
    the migrations (the sync store of the same schema applied them). The pool opens on
    first use in the running event loop and serves that loop only.
    """

    def __init__(
        self,
        url: str,
        *,
        schema: str = "lightmem",
        min_connections: int = 1,
        max_connections: int = 10,
        connect_timeout_s: float = 10.0,
        erasure: Literal["vacuum", "full"] = "vacuum",
        migrate: bool = True,
    ) -> None:
        check_options(schema, erasure, min_connections, max_connections)
        self.url = redacted(url)
        self.schema = schema
        self._erasure = erasure
        self._timeout = connect_timeout_s
        self._migrate = migrate
        self._plans = PostgresPlans(schema=schema, where=self.url, vacuum_full=erasure == "full")
        self._new_pool = functools.partial(
            AsyncConnectionPool,
            url,
            min_size=min_connections,
            max_size=max_connections,
            kwargs=connection_options(schema, connect_timeout_s),
            open=False,
            timeout=connect_timeout_s,
            name=f"lightmem-async-{schema}",
        )
        self._pool = self._new_pool()
        self._opened = False
        self.closed = False
        self._opening: asyncio.Future[None] | None = None
        # The connection of the running task's session (a task's own: a ContextVar).
        self._session: ContextVar[psycopg.AsyncConnection[Any] | None] = ContextVar(
            f"lightmem-session-{id(self)}", default=None
        )
        self._erase_lock: asyncio.Lock | None = None

    async def open(self) -> None:
        """Open the pool (and apply the migrations); :meth:`_run` does it on first use.

        The opening is one task that every caller awaits, shielded: a caller cancelled
        meanwhile (a request timeout) leaves it to finish for the others."""
        if self._opened:
            return
        if self.closed:
            raise StorageError("the record store is closed")
        if self._opening is None:
            self._opening = asyncio.ensure_future(self._open())
        await asyncio.shield(self._opening)

    async def _open(self) -> None:
        try:
            await self._pool.open(wait=True, timeout=self._timeout)
            if self._migrate:
                await self._drive(self._plans.migrate())
        except BaseException as err:
            # A later call tries again, on a fresh pool (a closed one cannot reopen).
            with suppress(Exception):
                await self._pool.close()
            self._pool, self._opening = self._new_pool(), None
            if isinstance(err, PoolTimeout):
                raise StorageError(
                    f"cannot reach the record store at {self.url} within {self._timeout:g}s; "
                    "is the server running and the URL right?"
                ) from err
            raise
        self._opened = True

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._opening is not None and not self._opening.done():
            with suppress(Exception):
                await self._opening  # then close what it opened
        if self._opened:
            with suppress(Exception):
                await self._pool.close()

    def close_from_outside(self, loop: asyncio.AbstractEventLoop) -> None:
        """Close from sync code (the sync store's ``close``): on the pool's own loop if it
        still runs; a finished loop's connections are dropped with it."""
        if self.closed or not self._opened or loop.is_closed():
            self.closed = True
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            task = loop.create_task(self.close())
            _CLOSING.add(task)  # the loop holds tasks weakly: keep it until it is done
            task.add_done_callback(_CLOSING.discard)
        elif loop.is_running():
            asyncio.run_coroutine_threadsafe(self.close(), loop)
        else:
            loop.run_until_complete(self.close())

    # --- running plans ------------------------------------------------------------------

    async def _run(self, plan: Plan[T]) -> T:
        if not self._opened:
            await self.open()
        return await self._drive(plan)

    async def _drive(self, plan: Plan[T]) -> T:
        """Run ``plan`` on the open pool."""
        value: Any = None
        error: BaseException | None = None
        while True:
            finished, out = advance(plan, value, error)
            if finished:
                return out  # type: ignore[no-any-return]
            value, error = None, None
            try:
                value = await self._do(out)
            except Exception as err:  # thrown into the plan, which may handle it
                error = err

    async def _do(self, effect: Query | Transaction | Maintenance) -> Any:
        if isinstance(effect, Query):
            try:
                async with self._connection() as conn:
                    cur = await conn.execute(effect.sql, effect.params)
                    return await cur.fetchall() if cur.description else []
            except psycopg.Error as err:
                raise translate(err, self.url) from err
        if isinstance(effect, Transaction):
            return await self._transact(effect.body)
        if self._erase_lock is None:
            self._erase_lock = asyncio.Lock()
        async with self._erase_lock, self._connection() as conn:
            for sql in effect.statements:
                try:
                    await conn.execute(sql)
                except psycopg.Error as err:
                    raise translate(err, self.url) from err
        return None

    @asynccontextmanager
    async def session(self) -> AsyncIterator[None]:
        """Run this task's calls inside the block on one pooled connection (``LightMem``'s
        async methods hold one per operation). Many coroutines then queue once each, for
        a connection, rather than once per query; a search's dozen queries run back to
        back, as they do on a worker thread."""
        if self._session.get() is not None:
            yield
            return
        if not self._opened:
            await self.open()
        async with self._checkout() as conn:
            token = self._session.set(conn)
            try:
                yield
            finally:
                self._session.reset(token)

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        pinned = self._session.get()
        if pinned is not None:
            if self.closed:
                raise StorageError("the record store is closed")
            yield pinned
            return
        async with self._checkout() as conn:
            yield conn

    @asynccontextmanager
    async def _checkout(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        if self.closed:
            raise StorageError("the record store is closed")
        try:
            async with self._pool.connection() as conn:
                yield conn
        except PoolTimeout as err:
            raise pool_timed_out(self.url) from err

    async def _transact(self, body: Callable[[], Work[T]]) -> T:
        for attempt in range(ATTEMPTS):
            try:
                async with (
                    self._connection() as conn,
                    conn.transaction(),
                    conn.cursor() as cur,
                ):
                    return await self._work(body(), cur)
            except RETRIED as err:
                if attempt == ATTEMPTS - 1:
                    raise conflicted(err, self.url) from err
                await asyncio.sleep(0.005 * 2**attempt)
            except pg_errors.IntegrityError:
                raise  # the plan knows what a constraint means (a duplicate turn id)
            except psycopg.Error as err:
                raise translate(err, self.url) from err
        raise AssertionError("unreachable")

    @staticmethod
    async def _work(body: Work[T], cur: psycopg.AsyncCursor[Any]) -> T:
        value: Result | None = None
        try:
            while True:
                finished, statement = advance(body, value, None)
                if finished:
                    return statement  # type: ignore[no-any-return]
                if statement.many:
                    await cur.executemany(statement.sql, statement.params)
                else:
                    await cur.execute(statement.sql, statement.params)
                rows = await cur.fetchall() if cur.description else []
                value = Result(rows, cur.rowcount)
        finally:
            body.close()

    # --- the store ----------------------------------------------------------------------

    def erasure_residue(self) -> tuple[str, ...]:
        return erasure_residue(self.url, self._erasure)

    async def scrub(self) -> None:
        """``VACUUM FULL`` every table (see :meth:`PostgresRecordStore.scrub`)."""
        await self._run(self._plans.vacuum(full=True))

    # --- the contract, each method one plan (see _pg_plans) --------------------------

    async def add(
        self, turns: Sequence[Turn], memories: Sequence[Memory], *, replaces: Sequence[str] = ()
    ) -> None:
        return await self._run(self._plans.add(turns, memories, replaces=replaces))

    async def mark_indexed(self, indexed: Sequence[tuple[PendingVector, Sequence[float]]]) -> None:
        return await self._run(self._plans.mark_indexed(indexed))

    async def mark_all_pending(self) -> int:
        return await self._run(self._plans.mark_all_pending())

    async def record_access(self, user_id: str, memory_ids: Sequence[str], at: datetime) -> None:
        return await self._run(self._plans.record_access(user_id, memory_ids, at))

    async def delete_user(self, user_id: str) -> DeletedCounts:
        return await self._run(self._plans.delete_user(user_id))

    async def set_meta(self, key: str, value: str) -> None:
        return await self._run(self._plans.set_meta(key, value))

    async def delete_memories(
        self, user_id: str, *, memory_ids: Sequence[str] = (), keys: Sequence[str] = ()
    ) -> list[str]:
        return await self._run(
            self._plans.delete_memories(user_id, memory_ids=memory_ids, keys=keys)
        )

    async def clear_recent(self, user_id: str, session_id: str) -> None:
        return await self._run(self._plans.clear_recent(user_id, session_id))

    async def list_memories(
        self,
        user_id: str,
        *,
        keys: Sequence[str] | None = None,
        key_prefix: str | None = None,
        tiers: Sequence[Tier] | None = None,
    ) -> list[Memory]:
        return await self._run(
            self._plans.list_memories(user_id, keys=keys, key_prefix=key_prefix, tiers=tiers)
        )

    async def get_meta(self, key: str) -> str | None:
        return await self._run(self._plans.get_meta(key))

    async def get_memories(self, user_id: str, memory_ids: Sequence[str]) -> dict[str, Memory]:
        return await self._run(self._plans.get_memories(user_id, memory_ids))

    async def vectors(self, user_id: str, memory_ids: Sequence[str]) -> dict[str, array[float]]:
        return await self._run(self._plans.vectors(user_id, memory_ids))

    async def neighbors(
        self, user_id: str, memory_ids: Sequence[str], *, span: int = 1
    ) -> dict[str, Surroundings]:
        return await self._run(self._plans.neighbors(user_id, memory_ids, span=span))

    async def lexical_search(
        self,
        user_id: str,
        terms: Sequence[str],
        *,
        limit: int,
        tiers: Sequence[Tier] | None = None,
        before: datetime | None = None,
        after: datetime | None = None,
    ) -> list[tuple[str, float]]:
        return await self._run(
            self._plans.lexical_search(
                user_id, terms, limit=limit, tiers=tiers, before=before, after=after
            )
        )

    async def recent_turns(
        self, user_id: str, *, session_id: str | None, limit: int, before: datetime | None = None
    ) -> list[Turn]:
        return await self._run(
            self._plans.recent_turns(user_id, session_id=session_id, limit=limit, before=before)
        )

    async def pending_vectors(
        self, *, limit: int, user_id: str | None = None
    ) -> list[PendingVector]:
        return await self._run(self._plans.pending_vectors(limit=limit, user_id=user_id))

    async def pending_ids(self, memory_ids: Sequence[str]) -> set[str]:
        return await self._run(self._plans.pending_ids(memory_ids))

    async def speakers(self, user_id: str) -> set[str]:
        return await self._run(self._plans.speakers(user_id))

    async def speaker_turns(self, user_id: str, *, limit: int) -> list[tuple[str, str, str]]:
        return await self._run(self._plans.speaker_turns(user_id, limit=limit))

    async def existing_turn_ids(self, user_id: str, turn_ids: Sequence[str]) -> set[str]:
        return await self._run(self._plans.existing_turn_ids(user_id, turn_ids))

    async def export_user(self, user_id: str) -> tuple[list[Turn], list[Memory]]:
        return await self._run(self._plans.export_user(user_id))

    async def counts(self, user_id: str | None = None) -> dict[str, int]:
        return await self._run(self._plans.counts(user_id))

    async def users(self) -> list[str]:
        return await self._run(self._plans.users())

    async def links(self, user_id: str, memory_ids: Sequence[str]) -> dict[str, set[str]]:
        return await self._run(self._plans.links(user_id, memory_ids))

    async def consolidation_state(self, user_id: str) -> tuple[int, datetime | None]:
        return await self._run(self._plans.consolidation_state(user_id))

    async def new_evidence(self, user_id: str, *, after_seq: int, limit: int) -> list[Evidence]:
        return await self._run(self._plans.new_evidence(user_id, after_seq=after_seq, limit=limit))

    async def count_new_evidence(self, user_id: str, *, after_seq: int) -> int:
        return await self._run(self._plans.count_new_evidence(user_id, after_seq=after_seq))

    async def reactivated_evidence(
        self, user_id: str, *, since: datetime, up_to_seq: int, limit: int
    ) -> list[Evidence]:
        return await self._run(
            self._plans.reactivated_evidence(user_id, since=since, up_to_seq=up_to_seq, limit=limit)
        )

    async def ltm_vectors(self, user_id: str, *, limit: int) -> dict[str, Sequence[float]] | None:
        return await self._run(self._plans.ltm_vectors(user_id, limit=limit))

    async def ltm_by_slot(self, user_id: str, slot: str) -> list[tuple[Memory, str | None]]:
        return await self._run(self._plans.ltm_by_slot(user_id, slot))

    async def ltm_citing(self, user_id: str, turn_ids: Sequence[str]) -> list[Memory]:
        return await self._run(self._plans.ltm_citing(user_id, turn_ids))

    async def due_records(self, user_id: str, *, now: datetime, limit: int) -> list[Memory]:
        return await self._run(self._plans.due_records(user_id, now=now, limit=limit))

    async def eviction_candidates(self, user_id: str, *, capacity: int) -> list[str]:
        return await self._run(self._plans.eviction_candidates(user_id, capacity=capacity))

    async def apply_consolidation(
        self,
        user_id: str,
        changes: ConsolidationChanges,
        *,
        shared: tuple[str, ConsolidationChanges] | None = None,
    ) -> None:
        return await self._run(self._plans.apply_consolidation(user_id, changes, shared=shared))

    async def acquire_lease(
        self, user_id: str, owner: str, *, until: datetime, holder_alive: Callable[[str], bool]
    ) -> str | None:
        del (
            holder_alive
        )  # a holder on another machine cannot be probed: a dead one's lease runs out
        return await self._run(self._plans.acquire_lease(user_id, owner, until=until))

    async def release_lease(self, user_id: str, owner: str) -> None:
        return await self._run(self._plans.release_lease(user_id, owner))
