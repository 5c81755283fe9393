"""PostgreSQL record store: one database shared by every app server and worker.

The same record of truth as :mod:`.sqlite`, on a server, for deployments beyond one machine
(extra ``postgres``: psycopg 3 and psycopg-pool). What this backend adds to make the SQLite
guarantees hold with many writers on many machines:

- **Per-user serialisation.** Every write transaction locks its users' ``user_state`` rows
  first (users in a fixed order, shared knowledge last), so one user's writes commit one at
  a time while different users' writes run in parallel. The consolidation cursor of a
  memory is taken from that row while it is locked: cursors follow commit order, and a
  watermark never steps over an entry committed late by another machine. An erasure and a
  consolidation step of the same user serialise the same way, so no step writes knowledge
  back for a user being forgotten.
- **BM25 in SQL.** PostgreSQL's ``ts_rank`` is not BM25; the search scores with Okapi BM25
  (k1 = 1.2, b = 0.75, FTS5's idf floor) over each user's own rows, from a ``tsvector``
  column (English stemming, accents folded like FTS5's ``remove_diacritics``) with a GIN
  index, and per-user document counts kept by triggers.
- **Leases that work across machines.** A consolidation lease is a row with an expiry on
  the server's clock (no PID checks: a holder on another machine cannot be probed). A killed
  worker's lease runs out; the coordinator renews its lease at every commit.
- **Versioned migrations**, applied by the library in one transaction under an advisory
  lock, so app servers starting together do not race.

One schema (``schema=``, default ``lightmem``) holds one store; several stores can share a
database under different schemas.

The logic (SQL, locking order, error handling) is written once, as plans
(:mod:`._pg_plans`); this module runs them on a psycopg connection pool, and
:mod:`.postgres_async` runs the same plans on psycopg's async pool.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from array import array
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from .._errors import ConfigurationError, StorageError, StoreNotWritable
from .._types import Memory, Tier, Turn
from ._contracts import (
    ConsolidationChanges,
    DeletedCounts,
    Evidence,
    PendingVector,
    Surroundings,
)
from ._pg_plans import (
    _SCHEMA_NAME,
    MIGRATIONS,
    SCHEMA_VERSION,
    Maintenance,
    Plan,
    PostgresPlans,
    Query,
    Result,
    Transaction,
    Work,
    advance,
    fold,
)
from ._psycopg import ConnectionPool, PoolTimeout, conninfo_to_dict, pg_errors, psycopg

if TYPE_CHECKING:
    from .postgres_async import AsyncPostgresRecordStore

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "PostgresRecordStore", "fold"]

T = TypeVar("T")

RETRIED = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure)
"""Errors after which a transaction runs again: another machine wrote the same rows."""
ATTEMPTS = 6


def redacted(url: str) -> str:
    """Where the store is, without the password, for messages."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "(an unreadable PostgreSQL URL)"
    user = f"{parts['user']}@" if parts.get("user") else ""
    host, port = parts.get("host") or "localhost", parts.get("port") or 5432
    return f"postgresql://{user}{host}:{port}/{parts.get('dbname') or ''}"


def translate(err: psycopg.Error, where: str) -> StorageError:
    """A typed error for a server error, without the URL's password."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if isinstance(err, pg_errors.InsufficientPrivilege | pg_errors.ReadOnlySqlTransaction):
        return StoreNotWritable(f"the record store at {where} is not writable: {text}")
    if isinstance(err, psycopg.OperationalError):
        return StorageError(f"the record store at {where} is unreachable: {text}")
    return StorageError(f"record store error at {where}: {text}")


def conflicted(err: psycopg.Error, where: str) -> StorageError:
    return StorageError(
        f"the record store at {where} kept aborting this write as it conflicted with "
        f"concurrent ones ({err.sqlstate}); try again"
    )


def pool_timed_out(where: str) -> StorageError:
    return StorageError(
        f"no connection to the record store at {where} came free in time; raise "
        "max_connections or check the server"
    )


def connection_options(schema: str, connect_timeout_s: float) -> dict[str, Any]:
    return {
        "autocommit": True,  # transactions are explicit (conn.transaction())
        "options": f"-c search_path={schema}",
        "connect_timeout": max(1, round(connect_timeout_s)),
        "application_name": "lightmem",
    }


def check_options(schema: str, erasure: str, min_connections: int, max_connections: int) -> None:
    if not _SCHEMA_NAME.fullmatch(schema):
        raise ConfigurationError(
            f"schema={schema!r} must be a lower-case identifier ([a-z_][a-z0-9_]*, "
            "at most 63 characters)"
        )
    if erasure not in ("vacuum", "full"):
        raise ConfigurationError(f"erasure={erasure!r}: give 'vacuum' or 'full'")
    if min_connections < 1 or max_connections < min_connections:
        raise ConfigurationError("need 1 <= min_connections <= max_connections")


def erasure_residue(where: str, erasure: str) -> tuple[str, ...]:
    left = [
        f"PostgreSQL at {where}: the server's write-ahead log holds the erased rows "
        "until its segments are recycled (after the next checkpoints), and any base "
        "backup, WAL archive or replica keeps them for its own retention"
    ]
    if erasure == "vacuum":
        left.append(
            f"PostgreSQL at {where}: the rows are vacuumed away, but their bytes stay "
            "in the tables' freed space until it is reused; PostgresRecordStore.scrub() "
            "(VACUUM FULL) rewrites the tables without them"
        )
    return tuple(left)


class PostgresRecordStore:
    """The :class:`~lightmem_core.store.RecordStore` on a PostgreSQL database.

    Args:
        url: a libpq URL, ``postgresql://user[:password]@host[:port]/database`` (or
            ``?host=/path/to/socket-folder`` for a Unix socket).
        schema: the schema that holds this store (created if missing).
        min_connections / max_connections: the connection pool's size per process (and,
            separately, the size of each event loop's async pool).
        connect_timeout_s: how long opening waits for the server.
        erasure: what :meth:`delete_user` does after deleting the rows. ``"vacuum"``
            (default): ``VACUUM`` the tables, so the rows leave the table and index pages at
            once (no lock on other users' work), though their bytes stay in the freed
            space until it is reused; ``"full"``: ``VACUUM FULL``, which rewrites the tables
            into new files so no byte of the user is left in them, but locks each table
            while it is rewritten (every user waits). :meth:`scrub` does the same on demand,
            from a maintenance job. See ``docs/reliability.md``.

    :meth:`async_store` gives the same store's native async twin, for code running in an
    event loop (``LightMem``'s async methods use it).

    Raises:
        ConfigurationError: the schema name is not a plain lower-case identifier.
        StorageError: the server cannot be reached, or the schema was made by a newer
            LightMem.
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
    ) -> None:
        check_options(schema, erasure, min_connections, max_connections)
        self.url = redacted(url)
        self.schema = schema
        self._erasure = erasure
        self._conninfo = url
        self._pool_size = (min_connections, max_connections)
        self._connect_timeout_s = connect_timeout_s
        self._closed = False
        self._erase_lock = threading.Lock()
        self._plans = PostgresPlans(schema=schema, where=self.url, vacuum_full=erasure == "full")
        # One async twin per event loop: an async pool serves the loop it was opened in.
        self._async_stores: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, AsyncPostgresRecordStore
        ] = weakref.WeakKeyDictionary()
        self._async_lock = threading.Lock()
        self._pool = ConnectionPool(
            url,
            min_size=min_connections,
            max_size=max_connections,
            kwargs=connection_options(schema, connect_timeout_s),
            open=False,
            timeout=connect_timeout_s,
            name=f"lightmem-{schema}",
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout_s)
            self._run(self._plans.migrate())
        except PoolTimeout as err:
            self._pool.close()
            raise StorageError(
                f"cannot reach the record store at {self.url} within {connect_timeout_s:g}s; "
                "is the server running and the URL right?"
            ) from err
        except BaseException:
            self._pool.close()
            raise

    # --- running plans ------------------------------------------------------------------

    def _run(self, plan: Plan[T]) -> T:
        value: Any = None
        error: BaseException | None = None
        while True:
            finished, out = advance(plan, value, error)
            if finished:
                return out  # type: ignore[no-any-return]
            value, error = None, None
            try:
                value = self._do(out)
            except Exception as err:  # thrown into the plan, which may handle it
                error = err

    def _do(self, effect: Query | Transaction | Maintenance) -> Any:
        if isinstance(effect, Query):
            try:
                with self._connection() as conn:
                    cur = conn.execute(effect.sql, effect.params)
                    return cur.fetchall() if cur.description else []
            except psycopg.Error as err:
                raise translate(err, self.url) from err
        if isinstance(effect, Transaction):
            return self._transact(effect.body)
        with self._erase_lock, self._connection() as conn:
            for sql in effect.statements:
                try:
                    conn.execute(sql)
                except psycopg.Error as err:
                    raise translate(err, self.url) from err
        return None

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        if self._closed:
            raise StorageError("the record store is closed")
        try:
            with self._pool.connection() as conn:
                yield conn
        except PoolTimeout as err:
            raise pool_timed_out(self.url) from err

    def _transact(self, body: Callable[[], Work[T]]) -> T:
        """Run a fresh ``body()`` in one transaction, all or nothing; a deadlock or a
        serialisation failure rolls back and runs it again."""
        for attempt in range(ATTEMPTS):
            try:
                with self._connection() as conn, conn.transaction(), conn.cursor() as cur:
                    return self._work(body(), cur)
            except RETRIED as err:
                if attempt == ATTEMPTS - 1:
                    raise conflicted(err, self.url) from err
                time.sleep(0.005 * 2**attempt)
            except pg_errors.IntegrityError:
                raise  # the plan knows what a constraint means (a duplicate turn id)
            except psycopg.Error as err:
                raise translate(err, self.url) from err
        raise AssertionError("unreachable")

    @staticmethod
    def _work(body: Work[T], cur: psycopg.Cursor[Any]) -> T:
        value: Result | None = None
        try:
            while True:
                finished, statement = advance(body, value, None)
                if finished:
                    return statement  # type: ignore[no-any-return]
                if statement.many:
                    cur.executemany(statement.sql, statement.params)
                else:
                    cur.execute(statement.sql, statement.params)
                value = Result(cur.fetchall() if cur.description else [], cur.rowcount)
        finally:
            body.close()

    # --- the store ----------------------------------------------------------------------

    def async_store(self) -> AsyncPostgresRecordStore:
        """This store's native async twin for the running event loop (one per loop, opened
        on first use, closed with this store)."""
        from .postgres_async import AsyncPostgresRecordStore

        if self._closed:
            raise StorageError("the record store is closed")
        loop = asyncio.get_running_loop()
        with self._async_lock:
            twin = self._async_stores.get(loop)
            if twin is None or twin.closed:
                twin = AsyncPostgresRecordStore(
                    self._conninfo,
                    schema=self.schema,
                    min_connections=self._pool_size[0],
                    max_connections=self._pool_size[1],
                    connect_timeout_s=self._connect_timeout_s,
                    erasure=self._erasure,
                    migrate=False,  # this store applied them
                )
                self._async_stores[loop] = twin
        return twin

    async def close_async_store(self) -> None:
        """Close the running loop's async twin, on its loop (``LightMem.aclose`` does)."""
        with self._async_lock:
            twin = self._async_stores.pop(asyncio.get_running_loop(), None)
        if twin is not None:
            await twin.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self._async_lock:
            twins = list(self._async_stores.items())
            self._async_stores.clear()
        for loop, twin in twins:
            twin.close_from_outside(loop)
        with suppress(Exception):
            self._pool.close()

    def erasure_residue(self) -> tuple[str, ...]:
        return erasure_residue(self.url, self._erasure)

    def scrub(self) -> None:
        """Rewrite every table of the store into new files (``VACUUM FULL``), so that no
        byte of an erased user is left in the freed space of the old ones. Each table is
        locked while it is rewritten: run it from a maintenance job, at a quiet hour."""
        self._run(self._plans.vacuum(full=True))

    # --- the contract, each method one plan (see _pg_plans) --------------------------

    def add(
        self, turns: Sequence[Turn], memories: Sequence[Memory], *, replaces: Sequence[str] = ()
    ) -> None:
        return self._run(self._plans.add(turns, memories, replaces=replaces))

    def mark_indexed(self, indexed: Sequence[tuple[PendingVector, Sequence[float]]]) -> None:
        return self._run(self._plans.mark_indexed(indexed))

    def mark_all_pending(self) -> int:
        return self._run(self._plans.mark_all_pending())

    def record_access(self, user_id: str, memory_ids: Sequence[str], at: datetime) -> None:
        return self._run(self._plans.record_access(user_id, memory_ids, at))

    def delete_user(self, user_id: str) -> DeletedCounts:
        return self._run(self._plans.delete_user(user_id))

    def set_meta(self, key: str, value: str) -> None:
        return self._run(self._plans.set_meta(key, value))

    def delete_memories(
        self, user_id: str, *, memory_ids: Sequence[str] = (), keys: Sequence[str] = ()
    ) -> list[str]:
        return self._run(self._plans.delete_memories(user_id, memory_ids=memory_ids, keys=keys))

    def clear_recent(self, user_id: str, session_id: str) -> None:
        return self._run(self._plans.clear_recent(user_id, session_id))

    def list_memories(
        self,
        user_id: str,
        *,
        keys: Sequence[str] | None = None,
        key_prefix: str | None = None,
        tiers: Sequence[Tier] | None = None,
    ) -> list[Memory]:
        return self._run(
            self._plans.list_memories(user_id, keys=keys, key_prefix=key_prefix, tiers=tiers)
        )

    def get_meta(self, key: str) -> str | None:
        return self._run(self._plans.get_meta(key))

    def get_memories(self, user_id: str, memory_ids: Sequence[str]) -> dict[str, Memory]:
        return self._run(self._plans.get_memories(user_id, memory_ids))

    def vectors(self, user_id: str, memory_ids: Sequence[str]) -> dict[str, array[float]]:
        return self._run(self._plans.vectors(user_id, memory_ids))

    def neighbors(
        self, user_id: str, memory_ids: Sequence[str], *, span: int = 1
    ) -> dict[str, Surroundings]:
        return self._run(self._plans.neighbors(user_id, memory_ids, span=span))

    def lexical_search(
        self,
        user_id: str,
        terms: Sequence[str],
        *,
        limit: int,
        tiers: Sequence[Tier] | None = None,
        before: datetime | None = None,
        after: datetime | None = None,
    ) -> list[tuple[str, float]]:
        return self._run(
            self._plans.lexical_search(
                user_id, terms, limit=limit, tiers=tiers, before=before, after=after
            )
        )

    def recent_turns(
        self, user_id: str, *, session_id: str | None, limit: int, before: datetime | None = None
    ) -> list[Turn]:
        return self._run(
            self._plans.recent_turns(user_id, session_id=session_id, limit=limit, before=before)
        )

    def pending_vectors(self, *, limit: int, user_id: str | None = None) -> list[PendingVector]:
        return self._run(self._plans.pending_vectors(limit=limit, user_id=user_id))

    def pending_ids(self, memory_ids: Sequence[str]) -> set[str]:
        return self._run(self._plans.pending_ids(memory_ids))

    def speakers(self, user_id: str) -> set[str]:
        return self._run(self._plans.speakers(user_id))

    def speaker_turns(self, user_id: str, *, limit: int) -> list[tuple[str, str, str]]:
        return self._run(self._plans.speaker_turns(user_id, limit=limit))

    def existing_turn_ids(self, user_id: str, turn_ids: Sequence[str]) -> set[str]:
        return self._run(self._plans.existing_turn_ids(user_id, turn_ids))

    def export_user(self, user_id: str) -> tuple[list[Turn], list[Memory]]:
        return self._run(self._plans.export_user(user_id))

    def counts(self, user_id: str | None = None) -> dict[str, int]:
        return self._run(self._plans.counts(user_id))

    def users(self) -> list[str]:
        return self._run(self._plans.users())

    def links(self, user_id: str, memory_ids: Sequence[str]) -> dict[str, set[str]]:
        return self._run(self._plans.links(user_id, memory_ids))

    def consolidation_state(self, user_id: str) -> tuple[int, datetime | None]:
        return self._run(self._plans.consolidation_state(user_id))

    def new_evidence(self, user_id: str, *, after_seq: int, limit: int) -> list[Evidence]:
        return self._run(self._plans.new_evidence(user_id, after_seq=after_seq, limit=limit))

    def count_new_evidence(self, user_id: str, *, after_seq: int) -> int:
        return self._run(self._plans.count_new_evidence(user_id, after_seq=after_seq))

    def reactivated_evidence(
        self, user_id: str, *, since: datetime, up_to_seq: int, limit: int
    ) -> list[Evidence]:
        return self._run(
            self._plans.reactivated_evidence(user_id, since=since, up_to_seq=up_to_seq, limit=limit)
        )

    def ltm_vectors(self, user_id: str, *, limit: int) -> dict[str, Sequence[float]] | None:
        return self._run(self._plans.ltm_vectors(user_id, limit=limit))

    def ltm_by_slot(self, user_id: str, slot: str) -> list[tuple[Memory, str | None]]:
        return self._run(self._plans.ltm_by_slot(user_id, slot))

    def ltm_citing(self, user_id: str, turn_ids: Sequence[str]) -> list[Memory]:
        return self._run(self._plans.ltm_citing(user_id, turn_ids))

    def due_records(self, user_id: str, *, now: datetime, limit: int) -> list[Memory]:
        return self._run(self._plans.due_records(user_id, now=now, limit=limit))

    def eviction_candidates(self, user_id: str, *, capacity: int) -> list[str]:
        return self._run(self._plans.eviction_candidates(user_id, capacity=capacity))

    def apply_consolidation(
        self,
        user_id: str,
        changes: ConsolidationChanges,
        *,
        shared: tuple[str, ConsolidationChanges] | None = None,
    ) -> None:
        return self._run(self._plans.apply_consolidation(user_id, changes, shared=shared))

    def acquire_lease(
        self, user_id: str, owner: str, *, until: datetime, holder_alive: Callable[[str], bool]
    ) -> str | None:
        del (
            holder_alive
        )  # a holder on another machine cannot be probed: a dead one's lease runs out
        return self._run(self._plans.acquire_lease(user_id, owner, until=until))

    def release_lease(self, user_id: str, owner: str) -> None:
        return self._run(self._plans.release_lease(user_id, owner))
