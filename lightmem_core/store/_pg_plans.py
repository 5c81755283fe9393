"""The PostgreSQL record store's logic, written once for its sync and async drivers.

Every operation of :class:`PostgresPlans` is a *plan*: a generator that yields what it needs
from the database (a :class:`Query` outside any transaction, a :class:`Transaction` whose
body yields :class:`Statement` s, or :class:`Maintenance` statements such as ``VACUUM``)
and returns the operation's result. :class:`~.postgres.PostgresRecordStore` runs plans on a
psycopg connection pool; :class:`~.postgres_async.AsyncPostgresRecordStore` runs the very
same plans on psycopg's async pool, awaiting the server instead of holding a thread. The
SQL, the row conversions, the locking order and the error handling live here, once.

A driver sends each effect's result back into the plan and throws its error (a psycopg
error, untranslated) back in, so a plan can react to a constraint the server names.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from array import array
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from .._errors import DuplicateTurnId, StorageError
from .._steps import advance
from .._types import Memory, Status, Tier, Turn
from ._contracts import (
    Adjacent,
    ConsolidationChanges,
    DeletedCounts,
    Evidence,
    PendingVector,
    Surroundings,
)
from ._psycopg import pg_errors
from ._rows import dt as _dt
from ._rows import epoch as _epoch
from ._rows import memory_from_row, owner_token, turn_from_row

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Maintenance",
    "Plan",
    "PostgresPlans",
    "Query",
    "Result",
    "Statement",
    "Transaction",
    "Work",
    "advance",
    "fold",
]

T = TypeVar("T")

Params = Sequence[Any] | dict[str, Any]


# --- effects ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Query:
    """One read outside a transaction; its result is the rows."""

    sql: str
    params: Params = ()


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement inside a transaction (``many``: run once per parameter set)."""

    sql: str
    params: Params | Sequence[Params] = ()
    many: bool = False


@dataclass(frozen=True, slots=True)
class Result:
    """What a :class:`Statement` gave back."""

    rows: list[tuple[Any, ...]]
    rowcount: int

    def one(self) -> tuple[Any, ...] | None:
        return self.rows[0] if self.rows else None


Work = Generator[Statement, Result, T]
"""A transaction's body: all of it commits, or none of it."""


@dataclass(frozen=True, slots=True)
class Transaction:
    """Run ``body()`` in one transaction; its result is the body's. A deadlock or a
    serialisation failure (another machine writing the same rows) rolls back and runs a
    fresh ``body()`` again, so a body must not act outside the database."""

    body: Callable[[], Work[Any]]


@dataclass(frozen=True, slots=True)
class Maintenance:
    """Statements that cannot run in a transaction (``VACUUM``), in order, on one
    connection; erasures of one process take turns."""

    statements: tuple[str, ...]


Effect = Query | Transaction | Maintenance
Plan = Generator[Effect, Any, T]
"""An operation: yields effects, receives their results, returns its own."""


def transaction(body: Callable[[], Work[T]]) -> Generator[Effect, Any, T]:
    """``result = yield from transaction(body)``: a typed :class:`Transaction`."""
    result: T = yield Transaction(body)
    return result


def query(sql: str, params: Params = ()) -> Generator[Effect, Any, list[tuple[Any, ...]]]:
    """``rows = yield from query(sql, params)``: a typed :class:`Query`."""
    rows: list[tuple[Any, ...]] = yield Query(sql, params)
    return rows


def execute(sql: str, params: Params = ()) -> Work[Result]:
    """``result = yield from execute(sql, params)`` inside a transaction's body."""
    result: Result = yield Statement(sql, params)
    return result


def execute_many(sql: str, params: Sequence[Params]) -> Work[Result]:
    result: Result = yield Statement(sql, params, many=True)
    return result


# --- schema -----------------------------------------------------------------------------------

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")

# --- migrations -------------------------------------------------------------------------------
# Each is applied once, in order, inside the transaction that records it in
# schema_migrations. Never edit a released one: add the next.

_V1 = """
CREATE TABLE meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);
-- One row per user: locked by every write transaction of the user (serialising them), the
-- source of consolidation cursors, and BM25's collection statistics (kept by triggers).
CREATE TABLE user_state (
    user_id     text PRIMARY KEY,
    last_cursor bigint NOT NULL DEFAULT 0,
    docs        bigint NOT NULL DEFAULT 0,
    words       bigint NOT NULL DEFAULT 0
);
CREATE TABLE turns (
    seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    text NOT NULL,
    turn_id    text NOT NULL,
    session_id text NOT NULL,
    role       text NOT NULL,
    speaker    text,
    content    text NOT NULL,
    ts         double precision NOT NULL,
    metadata   text NOT NULL DEFAULT '{}',
    CONSTRAINT turns_unique_turn_id UNIQUE (user_id, turn_id)
);
CREATE INDEX turns_by_session ON turns (user_id, session_id, seq);
CREATE INDEX turns_by_user ON turns (user_id, seq);
CREATE TABLE memories (
    seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              text NOT NULL UNIQUE,
    user_id         text NOT NULL,
    cursor          bigint NOT NULL DEFAULT 0,  -- set by a trigger from user_state
    tier            text NOT NULL CHECK (tier IN ('mtm', 'ltm')),
    kind            text NOT NULL,
    text            text NOT NULL,
    session_id      text,
    speaker         text,
    ts              double precision,
    created_at      double precision NOT NULL,
    access_count    integer NOT NULL DEFAULT 0,
    last_accessed   double precision,
    metadata        text NOT NULL DEFAULT '{}',
    position        bigint,             -- turns.seq of the source turn: orders a session
    indexed         boolean NOT NULL DEFAULT false,
    embedding       bytea,              -- float32 vector, written with its index entry
    status          text NOT NULL DEFAULT 'active',
    confidence      double precision NOT NULL DEFAULT 1.0,
    support         integer NOT NULL DEFAULT 1,
    slot            text,
    slot_value      text,
    valid_from      double precision,
    valid_to        double precision,
    superseded_by   text,
    last_supported  double precision,
    due_at          double precision,
    consolidated_at double precision,
    key             text,
    words           integer NOT NULL,   -- whitespace words: BM25's document length
    lexemes         tsvector NOT NULL   -- the text's stemmed words, accents folded
);
CREATE INDEX memories_by_user ON memories (user_id, tier);
CREATE INDEX memories_by_cursor ON memories (user_id, cursor);
CREATE INDEX memories_by_position ON memories (user_id, session_id, position);
CREATE INDEX memories_pending ON memories (seq) WHERE NOT indexed;
CREATE INDEX memories_pending_by_user ON memories (user_id, seq) WHERE NOT indexed;
CREATE INDEX memories_by_slot ON memories (user_id, slot) WHERE slot IS NOT NULL;
CREATE INDEX memories_due ON memories (user_id, due_at) WHERE due_at IS NOT NULL;
CREATE INDEX memories_eviction ON memories (
    user_id, tier, (consolidated_at IS NULL), access_count,
    (coalesce(last_accessed, created_at)), seq
);
CREATE UNIQUE INDEX memories_by_key ON memories (user_id, key) WHERE key IS NOT NULL;
CREATE INDEX memories_lexemes ON memories USING gin (lexemes);
CREATE TABLE memory_sources (
    memory_id text NOT NULL REFERENCES memories (id) ON DELETE CASCADE,
    turn_id   text NOT NULL,
    PRIMARY KEY (memory_id, turn_id)
);
CREATE INDEX memory_sources_by_turn ON memory_sources (turn_id, memory_id);
CREATE TABLE memory_links (
    user_id  text NOT NULL,
    source   text NOT NULL REFERENCES memories (id) ON DELETE CASCADE,
    target   text NOT NULL REFERENCES memories (id) ON DELETE CASCADE,
    relation text NOT NULL,
    PRIMARY KEY (source, target, relation)
);
CREATE INDEX memory_links_by_target ON memory_links (target);
CREATE TABLE consolidation_state (
    user_id     text PRIMARY KEY,
    watermark   bigint NOT NULL DEFAULT 0,   -- cursor of the last MTM entry taken in
    last_run    double precision,
    lease_owner text,
    lease_until timestamptz                  -- on the server's clock: machines' clocks differ
);
CREATE TABLE shared_contributions (
    memory_id   text NOT NULL,
    contributor text NOT NULL,               -- owner tokens, never user ids
    PRIMARY KEY (memory_id, contributor)
);
CREATE INDEX shared_contributions_by_contributor ON shared_contributions (contributor);
CREATE TABLE stm_floors (
    user_id    text NOT NULL,
    session_id text NOT NULL,
    seq        bigint NOT NULL,
    PRIMARY KEY (user_id, session_id)
);

-- A memory's cursor comes from its user's row, which stays locked until the transaction
-- ends: a later cursor of the same user can only be issued after this one is committed.
CREATE FUNCTION next_cursor() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO user_state AS s (user_id, last_cursor) VALUES (NEW.user_id, 1)
    ON CONFLICT (user_id) DO UPDATE SET last_cursor = s.last_cursor + 1
    RETURNING last_cursor INTO NEW.cursor;
    RETURN NEW;
END $$;
CREATE TRIGGER memories_cursor BEFORE INSERT ON memories
    FOR EACH ROW EXECUTE FUNCTION next_cursor();

-- BM25's statistics (documents and words per user), one update per statement and user.
CREATE FUNCTION count_added() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE user_state s SET docs = s.docs + a.n, words = s.words + a.w
    FROM (SELECT user_id, count(*) AS n, sum(words) AS w FROM added GROUP BY user_id) a
    WHERE s.user_id = a.user_id;
    RETURN NULL;
END $$;
CREATE TRIGGER memories_counted_in AFTER INSERT ON memories
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION count_added();
CREATE FUNCTION count_removed() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE user_state s SET docs = s.docs - r.n, words = s.words - r.w
    FROM (SELECT user_id, count(*) AS n, sum(words) AS w FROM removed GROUP BY user_id) r
    WHERE s.user_id = r.user_id;
    RETURN NULL;
END $$;
CREATE TRIGGER memories_counted_out AFTER DELETE ON memories
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION count_removed();
"""

MIGRATIONS: tuple[tuple[int, str], ...] = ((1, _V1),)
SCHEMA_VERSION = MIGRATIONS[-1][0]

# --- lexical search ---------------------------------------------------------------------------
# Okapi BM25 as FTS5 computes it: idf = ln((N - n + 0.5) / (n + 0.5)), floored at 1e-6;
# tf * (k1 + 1) / (tf + k1 * (1 - b + b * |d| / avgdl)); k1 = 1.2, b = 0.75. N, n and avgdl
# are the user's own (FTS5's are the whole table's), so one user's words never weigh on
# another's ranking. Filters (tier, time) apply after n is counted, before the limit.
_BM25 = """
WITH query AS (
    SELECT array_agg(DISTINCT lexeme) AS words,
           string_agg(DISTINCT quote_literal(lexeme), ' | ')::tsquery AS q
    FROM unnest(to_tsvector('english', %(text)s))
), matched AS (
    SELECT m.seq, m.id, m.words, m.lexemes, m.tier, m.ts
    FROM memories m, query WHERE m.user_id = %(user)s AND m.lexemes @@ query.q
), hits AS (
    SELECT matched.seq, matched.id, matched.words AS len, matched.tier, matched.ts,
           t.lexeme, cardinality(t.positions) AS tf
    FROM matched CROSS JOIN LATERAL unnest(matched.lexemes) t, query
    WHERE t.lexeme = ANY (query.words)
), df AS (
    SELECT lexeme, count(*) AS n FROM hits GROUP BY lexeme
), stats AS (
    SELECT greatest(docs, 1)::float8 AS docs,
           greatest(words::float8 / greatest(docs, 1), 1e-9) AS avgdl
    FROM user_state WHERE user_id = %(user)s
)
SELECT hits.id, sum(
    greatest(1e-6, ln((stats.docs - df.n + 0.5) / (df.n + 0.5)))
    * hits.tf * 2.2 / (hits.tf + 1.2 * (0.25 + 0.75 * hits.len / stats.avgdl))
) AS score
FROM hits JOIN df USING (lexeme) CROSS JOIN stats
WHERE {filters}
GROUP BY hits.id, hits.seq
ORDER BY score DESC, hits.seq
LIMIT %(limit)s
"""


def fold(text: str) -> str:
    """Text as the full-text index reads it: accents removed (José, jose), like FTS5's
    ``remove_diacritics``, in Python so that no server extension is needed."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


_MEMORY_COLUMNS = (
    "m.id, m.user_id, m.tier, m.kind, m.text, m.ts, m.session_id, m.speaker, "
    "m.created_at, m.access_count, m.last_accessed, m.metadata, "
    "(SELECT string_agg(s.turn_id, chr(31)) FROM memory_sources s WHERE s.memory_id = m.id) "
    "AS sources, "
    "m.status, m.confidence, m.support, m.slot, m.valid_from, m.valid_to, m.superseded_by, "
    "m.last_supported, m.key"
)
_TURN_COLUMNS = "user_id, turn_id, session_id, role, speaker, content, ts, metadata"
_EVIDENCE_SQL = (
    f"SELECT {_MEMORY_COLUMNS}, m.cursor, "
    "(SELECT t.role FROM memory_sources s JOIN turns t ON t.user_id = m.user_id "
    "AND t.turn_id = s.turn_id WHERE s.memory_id = m.id LIMIT 1) AS role "
    "FROM memories m WHERE m.user_id = %s AND m.tier = 'mtm' "
)


class PostgresPlans:
    """Every operation of the PostgreSQL record store, as plans (see the module's docstring).

    ``schema`` names the store's schema (connections set their ``search_path`` to it);
    ``where`` is the store's redacted address, for messages; ``vacuum_full`` is what an
    erasure does after deleting the rows (``VACUUM FULL`` rather than ``VACUUM``)."""

    def __init__(self, *, schema: str, where: str, vacuum_full: bool) -> None:
        self.schema = schema
        self.where = where
        self.vacuum_full = vacuum_full

    # --- schema ---------------------------------------------------------------------------

    def migrate(self) -> Plan[None]:
        """Bring the schema to :data:`SCHEMA_VERSION`, once, whoever else starts now."""
        key = int.from_bytes(
            hashlib.sha256(f"lightmem-migrate\0{self.schema}".encode()).digest()[:8],
            "big",
            signed=True,
        )

        def work() -> Work[None]:
            yield from execute("SELECT pg_advisory_xact_lock(%s)", (key,))
            yield from execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema}")
            yield from execute(f"SET LOCAL search_path TO {self.schema}")
            yield from execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            row = yield from execute("SELECT coalesce(max(version), 0) FROM schema_migrations")
            current = int(row.rows[0][0]) if row.rows else 0
            if current > SCHEMA_VERSION:
                raise StorageError(
                    f"the record store at {self.where} (schema {self.schema}) is at version "
                    f"{current}, made by a newer LightMem than this one (knows up to "
                    f"{SCHEMA_VERSION}); upgrade lightmem-slm"
                )
            for version, ddl in MIGRATIONS:
                if version > current:
                    yield from execute(ddl)
                    yield from execute(
                        "INSERT INTO schema_migrations (version) VALUES (%s)", (version,)
                    )

        yield from transaction(work)

    @staticmethod
    def _lock_users(users: Sequence[str]) -> Work[None]:
        """Lock the users' rows until the transaction ends, in the given order (callers pass
        users sorted, with shared knowledge last, so two transactions never wait on each
        other in a cycle)."""
        for user in users:
            yield from execute(
                "INSERT INTO user_state AS s (user_id) VALUES (%s) "
                "ON CONFLICT (user_id) DO UPDATE SET last_cursor = s.last_cursor",
                (user,),
            )

    # --- writes ---------------------------------------------------------------------------

    def add(
        self, turns: Sequence[Turn], memories: Sequence[Memory], *, replaces: Sequence[str] = ()
    ) -> Plan[None]:
        users = sorted({t.user_id for t in turns} | {m.user_id for m in memories})

        def work() -> Work[None]:
            yield from self._lock_users(users)
            if replaces:
                replaced = set(replaces)
                for owner in sorted({m.user_id for m in memories if m.id in replaced}):
                    yield from self._delete_memories(owner, list(replaces))
            for memory in memories:
                if memory.key is not None:  # one memory per key: the new one wins
                    yield from execute(
                        "DELETE FROM memories WHERE user_id = %s AND key = %s",
                        (memory.user_id, memory.key),
                    )
            positions: dict[str, int] = {}
            for turn in turns:
                inserted = yield from execute(
                    "INSERT INTO turns (user_id, turn_id, session_id, role, speaker, content, "
                    "ts, metadata) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING seq",
                    (
                        turn.user_id,
                        turn.turn_id,
                        turn.session_id,
                        turn.role,
                        turn.speaker,
                        turn.content,
                        turn.timestamp.timestamp(),
                        json.dumps(turn.metadata, ensure_ascii=False),
                    ),
                )
                row = inserted.one()
                assert row is not None
                positions[turn.turn_id] = int(row[0])
            for memory in memories:
                position = (
                    positions.get(memory.source_ids[0]) if len(memory.source_ids) == 1 else None
                )
                yield from self._insert_memory(memory, position)
            for turn in turns:
                replied = turn.metadata.get("reply_to")
                if isinstance(replied, str) and replied != turn.turn_id:
                    yield from self._link_reply(turn, replied)

        try:
            yield from transaction(work)
        except pg_errors.UniqueViolation as err:
            # The turn-id constraint, named by the server (not read from the message).
            if err.diag.constraint_name == "turns_unique_turn_id":
                ids = [(t.user_id, t.turn_id) for t in turns]
                by_user: dict[str, list[str]] = {}
                for turn in turns:
                    by_user.setdefault(turn.user_id, []).append(turn.turn_id)
                taken: list[str] = []
                for user, wanted in by_user.items():
                    taken += yield from self.existing_turn_ids(user, wanted)
                if taken or len(set(ids)) != len(ids):
                    raise DuplicateTurnId(
                        f"turn_id {', '.join(map(repr, sorted(taken))) or '(repeated in the batch)'}"
                        " already exists for this user; turn ids must be unique per user"
                    ) from err
            raise StorageError(f"record store integrity error: {err}") from err
        except pg_errors.IntegrityError as err:
            raise StorageError(f"record store integrity error: {err}") from err

    @staticmethod
    def _link_reply(turn: Turn, replied: str) -> Work[None]:
        """Link the turn's memories to those of the user's turn it replies to (if stored)."""
        yield from execute(
            "INSERT INTO memory_links (user_id, source, target, relation) "
            "SELECT %s, mine.memory_id, theirs.memory_id, 'replies_to' "
            "FROM memory_sources mine JOIN memories m ON m.id = mine.memory_id "
            "JOIN memory_sources theirs ON theirs.turn_id = %s "
            "JOIN memories t ON t.id = theirs.memory_id "
            "WHERE mine.turn_id = %s AND m.user_id = %s AND t.user_id = %s AND t.tier = 'mtm' "
            "AND mine.memory_id != theirs.memory_id ON CONFLICT DO NOTHING",
            (turn.user_id, replied, turn.turn_id, turn.user_id, turn.user_id),
        )

    @staticmethod
    def _insert_memory(
        memory: Memory,
        position: int | None,
        *,
        due_at: datetime | None = None,
        slot_value: str | None = None,
    ) -> Work[None]:
        yield from execute(
            "INSERT INTO memories (id, user_id, tier, kind, text, session_id, speaker, ts, "
            "created_at, access_count, last_accessed, metadata, position, status, confidence, "
            "support, slot, slot_value, valid_from, valid_to, superseded_by, last_supported, "
            "due_at, key, words, lexemes) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
            "%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
            "to_tsvector('english', %s))",
            (
                memory.id,
                memory.user_id,
                memory.tier.value,
                memory.kind,
                memory.text,
                memory.session_id,
                memory.speaker,
                _epoch(memory.timestamp),
                _epoch(memory.created_at) or datetime.now(UTC).timestamp(),
                memory.access_count,
                _epoch(memory.last_accessed),
                json.dumps(memory.metadata, ensure_ascii=False),
                position,
                memory.status.value,
                memory.confidence,
                memory.support,
                memory.slot,
                slot_value,
                _epoch(memory.valid_from),
                _epoch(memory.valid_to),
                memory.superseded_by,
                _epoch(memory.last_supported),
                _epoch(due_at),
                memory.key,
                len(memory.text.split()),
                fold(memory.text),
            ),
        )
        if memory.source_ids:
            yield from execute_many(
                "INSERT INTO memory_sources (memory_id, turn_id) VALUES (%s, %s) "
                "ON CONFLICT DO NOTHING",
                [(memory.id, turn_id) for turn_id in memory.source_ids],
            )

    def mark_indexed(self, indexed: Sequence[tuple[PendingVector, Sequence[float]]]) -> Plan[None]:
        if not indexed:
            return
        rows = [(array("f", v).tobytes(), p.memory_id, p.text) for p, v in indexed]
        yield from transaction(
            lambda: execute_many(
                "UPDATE memories SET indexed = true, embedding = %s WHERE id = %s AND text = %s",
                rows,
            )
        )

    def mark_all_pending(self) -> Plan[int]:
        def work() -> Work[int]:
            done = yield from execute("UPDATE memories SET indexed = false, embedding = NULL")
            return done.rowcount

        return (yield from transaction(work))

    def record_access(self, user_id: str, memory_ids: Sequence[str], at: datetime) -> Plan[None]:
        if not memory_ids:
            return
        # One statement, rows locked in id order: concurrent searches never deadlock.
        yield from transaction(
            lambda: execute(
                "UPDATE memories SET access_count = access_count + 1, last_accessed = %s "
                "WHERE id IN (SELECT id FROM memories WHERE id = ANY (%s::text[]) "
                "AND user_id = %s ORDER BY id FOR UPDATE)",
                (at.timestamp(), sorted(set(memory_ids)), user_id),
            )
        )

    def delete_user(self, user_id: str) -> Plan[DeletedCounts]:
        def work() -> Work[tuple[int, dict[str, int], list[str]]]:
            yield from self._lock_users([user_id])  # a consolidation step of the user waits
            deleted = yield from execute("DELETE FROM turns WHERE user_id = %s", (user_id,))
            turns = deleted.rowcount
            gone = yield from execute(
                "DELETE FROM memories WHERE user_id = %s RETURNING tier", (user_id,)
            )
            tiers: dict[str, int] = {}
            for (tier,) in gone.rows:
                tiers[tier] = tiers.get(tier, 0) + 1
            yield from execute("DELETE FROM memory_links WHERE user_id = %s", (user_id,))
            yield from execute("DELETE FROM consolidation_state WHERE user_id = %s", (user_id,))
            yield from execute("DELETE FROM stm_floors WHERE user_id = %s", (user_id,))
            shared = yield from self._withdraw_contributions(user_id)
            yield from execute("DELETE FROM user_state WHERE user_id = %s", (user_id,))
            return turns, tiers, shared

        turns, tiers, shared = yield from transaction(work)
        if turns or tiers:
            yield from self.vacuum(full=self.vacuum_full)
        return DeletedCounts(
            turns=turns,
            memories={"mtm": tiers.get("mtm", 0), "ltm": tiers.get("ltm", 0)},
            lexical_rows=sum(tiers.values()),  # each memory's lexemes are in its own row
            shared=tuple(shared),
        )

    TABLES = (
        "turns", "memories", "memory_sources", "memory_links", "user_state",
        "consolidation_state", "stm_floors", "shared_contributions",
    )  # fmt: skip

    def vacuum(self, *, full: bool) -> Plan[None]:
        """Remove dead rows from the tables and their indexes now (``VACUUM`` runs outside a
        transaction, one table at a time); ``full``: rewrite the tables into new files."""
        yield Maintenance(tuple(f"VACUUM {'FULL ' if full else ''}{t}" for t in self.TABLES))

    def _withdraw_contributions(self, user_id: str) -> Work[list[str]]:
        """Withdraw what the user contributed to shared knowledge; the shared records no
        other user stated are deleted (their ids are returned, for their vectors)."""
        withdrawn = yield from execute(
            "DELETE FROM shared_contributions WHERE contributor = %s RETURNING memory_id",
            (owner_token(user_id),),
        )
        touched = sorted({row[0] for row in withdrawn.rows})
        if not touched:
            return []
        found = yield from execute(
            "SELECT id, user_id FROM memories m WHERE id = ANY (%s::text[]) AND NOT EXISTS "
            "(SELECT 1 FROM shared_contributions c WHERE c.memory_id = m.id)",
            (touched,),
        )
        orphans = found.rows
        owners = sorted({owner for _, owner in orphans})
        yield from self._lock_users(owners)  # shared knowledge: always locked last
        for memory_id, owner in orphans:
            yield from self._delete_memories(owner, [memory_id])
        gone = {memory_id for memory_id, _ in orphans}
        yield from self._count_contributors([i for i in touched if i not in gone])
        return sorted(gone)

    def set_meta(self, key: str, value: str) -> Plan[None]:
        yield from transaction(
            lambda: execute(
                "INSERT INTO meta (key, value) VALUES (%s, %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )
        )

    def delete_memories(
        self, user_id: str, *, memory_ids: Sequence[str] = (), keys: Sequence[str] = ()
    ) -> Plan[list[str]]:
        def work() -> Work[list[str]]:
            yield from self._lock_users([user_id])
            rows = (
                yield from execute(
                    "SELECT id, key FROM memories WHERE user_id = %s "
                    "AND (id = ANY (%s::text[]) OR key = ANY (%s::text[]))",
                    (user_id, list(memory_ids), list(keys)),
                )
            ).rows
            by_id = {row[0] for row in rows}
            by_key: dict[str, list[str]] = {}
            for memory_id, key in rows:
                if key is not None:
                    by_key.setdefault(key, []).append(memory_id)
            found = [i for i in memory_ids if i in by_id]
            found += [i for key in keys for i in by_key.get(key, [])]
            found = list(dict.fromkeys(found))
            yield from self._delete_memories(user_id, found)
            return found

        return (yield from transaction(work))

    def clear_recent(self, user_id: str, session_id: str) -> Plan[None]:
        yield from transaction(
            lambda: execute(
                "INSERT INTO stm_floors (user_id, session_id, seq) SELECT %s, %s, "
                "coalesce(max(seq), 0) FROM turns WHERE user_id = %s AND session_id = %s "
                "ON CONFLICT (user_id, session_id) DO UPDATE SET seq = excluded.seq",
                (user_id, session_id, user_id, session_id),
            )
        )

    @staticmethod
    def _delete_memories(user_id: str, memory_ids: Sequence[str]) -> Work[None]:
        if memory_ids:
            # memory_sources and memory_links go with the rows (ON DELETE CASCADE).
            yield from execute(
                "DELETE FROM memories WHERE id = ANY (%s::text[]) AND user_id = %s",
                (list(memory_ids), user_id),
            )

    # --- reads ----------------------------------------------------------------------------

    def list_memories(
        self,
        user_id: str,
        *,
        keys: Sequence[str] | None = None,
        key_prefix: str | None = None,
        tiers: Sequence[Tier] | None = None,
    ) -> Plan[list[Memory]]:
        sql = f"SELECT {_MEMORY_COLUMNS} FROM memories m WHERE m.user_id = %s"
        params: list[Any] = [user_id]
        if keys is not None:
            if not keys:
                return []
            sql += " AND m.key = ANY (%s::text[])"
            params.append(list(keys))
        if key_prefix is not None:
            sql += " AND starts_with(m.key, %s)"  # LIKE would treat % and _ as wildcards
            params.append(key_prefix)
        if tiers:
            sql += " AND m.tier = ANY (%s::text[])"
            params.append([t.value for t in tiers])
        sql += " ORDER BY m.created_at, m.seq"
        return [memory_from_row(row) for row in (yield from query(sql, params))]

    def get_meta(self, key: str) -> Plan[str | None]:
        rows = yield from query("SELECT value FROM meta WHERE key = %s", (key,))
        return str(rows[0][0]) if rows else None

    def get_memories(self, user_id: str, memory_ids: Sequence[str]) -> Plan[dict[str, Memory]]:
        if not memory_ids:
            return {}
        rows = yield from query(
            f"SELECT {_MEMORY_COLUMNS} FROM memories m "
            "WHERE m.id = ANY (%s::text[]) AND m.user_id = %s",
            (list(memory_ids), user_id),
        )
        return {row[0]: memory_from_row(row) for row in rows}

    def vectors(self, user_id: str, memory_ids: Sequence[str]) -> Plan[dict[str, array[float]]]:
        if not memory_ids:
            return {}
        rows = yield from query(
            "SELECT id, embedding FROM memories WHERE id = ANY (%s::text[]) AND user_id = %s "
            "AND embedding IS NOT NULL",
            (list(memory_ids), user_id),
        )
        return {row[0]: array("f", bytes(row[1])) for row in rows}

    def neighbors(
        self, user_id: str, memory_ids: Sequence[str], *, span: int = 1
    ) -> Plan[dict[str, Surroundings]]:
        if not memory_ids:
            return {}
        # Each side's nearest ``span`` rows by position, through the (user, session,
        # position) index.
        side = (
            "(SELECT m.id, m.ts, m.words, m.position FROM memories m "
            "WHERE m.user_id = c.user_id AND m.session_id = c.session_id "
            "AND m.position {op} c.position ORDER BY m.position {order} LIMIT %(span)s)"
        )
        rows = yield from query(
            "SELECT c.id, c.ts, n.id, n.ts, n.words, n.position - c.position AS gap "
            "FROM memories c CROSS JOIN LATERAL ("
            f"{side.format(op='<', order='DESC')} UNION ALL {side.format(op='>', order='ASC')}"
            ") n WHERE c.id = ANY (%(ids)s::text[]) AND c.user_id = %(user)s "
            "AND c.position IS NOT NULL",
            {"span": span, "ids": list(memory_ids), "user": user_id},
        )
        own: dict[str, datetime | None] = {}
        sides: dict[str, tuple[list[Adjacent], list[Adjacent]]] = {}
        for memory_id, ts, other, other_ts, words, gap in sorted(rows, key=lambda r: abs(r[5])):
            own[memory_id] = _dt(ts)
            sides.setdefault(memory_id, ([], []))[gap > 0].append(
                Adjacent(other, _dt(other_ts), words)
            )
        return {
            memory_id: Surroundings(own[memory_id], tuple(before), tuple(after))
            for memory_id, (before, after) in sides.items()
        }

    def lexical_search(
        self,
        user_id: str,
        terms: Sequence[str],
        *,
        limit: int,
        tiers: Sequence[Tier] | None = None,
        before: datetime | None = None,
        after: datetime | None = None,
    ) -> Plan[list[tuple[str, float]]]:
        if not terms:
            return []
        filters = ["true"]
        params: dict[str, Any] = {"text": fold(" ".join(terms)), "user": user_id, "limit": limit}
        if tiers:
            filters.append("hits.tier = ANY (%(tiers)s::text[])")
            params["tiers"] = [t.value for t in tiers]
        if before is not None:
            filters.append("(hits.ts IS NULL OR hits.ts <= %(before)s)")
            params["before"] = before.timestamp()
        if after is not None:
            filters.append("hits.ts >= %(after)s")
            params["after"] = after.timestamp()
        rows = yield from query(_BM25.format(filters=" AND ".join(filters)), params)
        return [(row[0], float(row[1])) for row in rows]

    def recent_turns(
        self,
        user_id: str,
        *,
        session_id: str | None,
        limit: int,
        before: datetime | None = None,
    ) -> Plan[list[Turn]]:
        until = before.timestamp() if before is not None else float("inf")
        if session_id is None:
            latest = yield from query(
                "SELECT session_id FROM turns WHERE user_id = %s AND ts <= %s "
                "ORDER BY seq DESC LIMIT 1",
                (user_id, until),
            )
            if not latest:
                return []
            session_id = latest[0][0]
        rows = yield from query(
            f"SELECT {_TURN_COLUMNS} FROM turns WHERE user_id = %s AND session_id = %s "
            "AND ts <= %s AND seq > coalesce((SELECT f.seq FROM stm_floors f "
            "WHERE f.user_id = %s AND f.session_id = %s), 0) ORDER BY seq DESC LIMIT %s",
            (user_id, session_id, until, user_id, session_id, limit),
        )
        return [turn_from_row(row) for row in reversed(rows)]

    def pending_vectors(
        self, *, limit: int, user_id: str | None = None
    ) -> Plan[list[PendingVector]]:
        sql = "SELECT id, user_id, text, tier, kind, ts FROM memories WHERE NOT indexed"
        params: list[Any] = []
        if user_id is not None:
            sql += " AND user_id = %s"
            params.append(user_id)
        sql += " ORDER BY seq LIMIT %s"
        params.append(limit)
        pending = []
        for memory_id, owner, text, tier, kind, ts in (yield from query(sql, params)):
            meta: dict[str, str | int | float | bool] = {"tier": tier, "kind": kind}
            if ts is not None:
                meta["ts"] = ts
            pending.append(PendingVector(memory_id, owner, text, meta))
        return pending

    def pending_ids(self, memory_ids: Sequence[str]) -> Plan[set[str]]:
        if not memory_ids:
            return set()
        rows = yield from query(
            "SELECT id FROM memories WHERE id = ANY (%s::text[]) AND NOT indexed",
            (list(memory_ids),),
        )
        return {row[0] for row in rows}

    def speakers(self, user_id: str) -> Plan[set[str]]:
        rows = yield from query(
            "SELECT DISTINCT speaker FROM turns WHERE user_id = %s AND speaker IS NOT NULL",
            (user_id,),
        )
        return {row[0] for row in rows}

    def speaker_turns(self, user_id: str, *, limit: int) -> Plan[list[tuple[str, str, str]]]:
        rows = yield from query(
            "SELECT session_id, speaker, content FROM turns "
            "WHERE user_id = %s AND speaker IS NOT NULL ORDER BY seq DESC LIMIT %s",
            (user_id, limit),
        )
        return [(row[0], row[1], row[2]) for row in reversed(rows)]

    def existing_turn_ids(self, user_id: str, turn_ids: Sequence[str]) -> Plan[set[str]]:
        if not turn_ids:
            return set()
        rows = yield from query(
            "SELECT turn_id FROM turns WHERE user_id = %s AND turn_id = ANY (%s::text[])",
            (user_id, list(turn_ids)),
        )
        return {row[0] for row in rows}

    def export_user(self, user_id: str) -> Plan[tuple[list[Turn], list[Memory]]]:
        turns = yield from query(
            f"SELECT {_TURN_COLUMNS} FROM turns WHERE user_id = %s ORDER BY seq", (user_id,)
        )
        memories = yield from query(
            f"SELECT {_MEMORY_COLUMNS} FROM memories m WHERE m.user_id = %s ORDER BY m.seq",
            (user_id,),
        )
        return [turn_from_row(r) for r in turns], [memory_from_row(r) for r in memories]

    def counts(self, user_id: str | None = None) -> Plan[dict[str, int]]:
        mine = "user_id = %(user)s" if user_id is not None else "true"
        params = {"user": user_id}
        turns = (yield from query(f"SELECT count(*) FROM turns WHERE {mine}", params))[0][0]
        row = (
            yield from query(
                "SELECT count(*) FILTER (WHERE tier = 'mtm'), "
                "count(*) FILTER (WHERE tier = 'ltm'), "
                "count(*) FILTER (WHERE tier = 'ltm' AND status = 'superseded'), "
                "count(*) FILTER (WHERE tier = 'ltm' AND status = 'archived'), "
                f"count(*) FILTER (WHERE NOT indexed) FROM memories WHERE {mine}",
                params,
            )
        )[0]
        return {
            "turns": int(turns),
            "mtm": int(row[0]),
            "ltm": int(row[1]),
            "ltm_superseded": int(row[2]),
            "ltm_archived": int(row[3]),
            "pending_index": int(row[4]),
        }

    def users(self) -> Plan[list[str]]:
        # Code-point order, as SQLite sorts: the database's collation may be any locale.
        rows = yield from query(
            "SELECT u FROM (SELECT user_id FROM turns UNION SELECT user_id FROM memories) AS a (u) "
            'ORDER BY u COLLATE "C"'
        )
        return [row[0] for row in rows]

    def links(self, user_id: str, memory_ids: Sequence[str]) -> Plan[dict[str, set[str]]]:
        if not memory_ids:
            return {}
        rows = yield from query(
            "SELECT source, target FROM memory_links WHERE source = ANY (%(ids)s::text[]) "
            "AND user_id = %(user)s UNION SELECT target, source FROM memory_links "
            "WHERE target = ANY (%(ids)s::text[]) AND user_id = %(user)s",
            {"ids": list(memory_ids), "user": user_id},
        )
        linked: dict[str, set[str]] = {}
        for memory_id, other in rows:
            linked.setdefault(memory_id, set()).add(other)
        return linked

    # --- consolidation --------------------------------------------------------------------

    def consolidation_state(self, user_id: str) -> Plan[tuple[int, datetime | None]]:
        rows = yield from query(
            "SELECT watermark, last_run FROM consolidation_state WHERE user_id = %s", (user_id,)
        )
        return (int(rows[0][0]), _dt(rows[0][1])) if rows else (0, None)

    def new_evidence(self, user_id: str, *, after_seq: int, limit: int) -> Plan[list[Evidence]]:
        rows = yield from query(
            _EVIDENCE_SQL + "AND m.cursor > %s ORDER BY m.cursor LIMIT %s",
            (user_id, after_seq, limit),
        )
        return [Evidence(memory_from_row(row), int(row[-2]), row[-1]) for row in rows]

    def count_new_evidence(self, user_id: str, *, after_seq: int) -> Plan[int]:
        rows = yield from query(
            "SELECT count(*) FROM memories WHERE user_id = %s AND tier = 'mtm' AND cursor > %s",
            (user_id, after_seq),
        )
        return int(rows[0][0])

    def reactivated_evidence(
        self, user_id: str, *, since: datetime, up_to_seq: int, limit: int
    ) -> Plan[list[Evidence]]:
        rows = yield from query(
            _EVIDENCE_SQL + "AND m.last_accessed > %s AND m.cursor <= %s "
            "ORDER BY m.last_accessed, m.cursor LIMIT %s",
            (user_id, since.timestamp(), up_to_seq, limit),
        )
        return [
            Evidence(memory_from_row(row), int(row[-2]), row[-1], reactivated=True) for row in rows
        ]

    def ltm_vectors(self, user_id: str, *, limit: int) -> Plan[dict[str, Sequence[float]] | None]:
        rows = yield from query(
            "SELECT id, embedding FROM memories WHERE user_id = %s AND tier = 'ltm' "
            "AND status != 'archived' AND embedding IS NOT NULL LIMIT %s",
            (user_id, limit + 1),
        )
        if len(rows) > limit:
            return None
        return {row[0]: array("f", bytes(row[1])) for row in rows}

    def ltm_by_slot(self, user_id: str, slot: str) -> Plan[list[tuple[Memory, str | None]]]:
        rows = yield from query(
            f"SELECT {_MEMORY_COLUMNS}, m.slot_value FROM memories m "
            "WHERE m.user_id = %s AND m.slot = %s AND m.tier = 'ltm' AND m.status != 'archived' "
            "ORDER BY m.valid_from NULLS FIRST, m.seq",  # NULLS FIRST: as SQLite orders
            (user_id, slot),
        )
        return [(memory_from_row(row), row[-1]) for row in rows]

    def ltm_citing(self, user_id: str, turn_ids: Sequence[str]) -> Plan[list[Memory]]:
        if not turn_ids:
            return []
        rows = yield from query(
            f"SELECT {_MEMORY_COLUMNS} FROM memories m WHERE m.id IN "
            "(SELECT memory_id FROM memory_sources WHERE turn_id = ANY (%s::text[])) "
            "AND m.user_id = %s AND m.tier = 'ltm' AND m.status != 'superseded' ORDER BY m.seq",
            (list(turn_ids), user_id),
        )
        return [memory_from_row(row) for row in rows]

    def due_records(self, user_id: str, *, now: datetime, limit: int) -> Plan[list[Memory]]:
        rows = yield from query(
            f"SELECT {_MEMORY_COLUMNS} FROM memories m "
            "WHERE m.user_id = %s AND m.due_at IS NOT NULL AND m.due_at <= %s "
            "ORDER BY m.due_at, m.seq LIMIT %s",
            (user_id, now.timestamp(), limit),
        )
        return [memory_from_row(row) for row in rows]

    def eviction_candidates(self, user_id: str, *, capacity: int) -> Plan[list[str]]:
        count = (
            yield from query(
                "SELECT count(*) FROM memories WHERE user_id = %s AND tier = 'mtm'", (user_id,)
            )
        )[0][0]
        excess = int(count) - capacity
        if excess <= 0:
            return []
        rows = yield from query(
            "SELECT id FROM memories WHERE user_id = %s AND tier = 'mtm' "
            "AND consolidated_at IS NOT NULL "
            "ORDER BY access_count, coalesce(last_accessed, created_at), seq LIMIT %s",
            (user_id, excess),
        )
        return [row[0] for row in rows]

    def apply_consolidation(
        self,
        user_id: str,
        changes: ConsolidationChanges,
        *,
        shared: tuple[str, ConsolidationChanges] | None = None,
    ) -> Plan[None]:
        def work() -> Work[None]:
            # The user first, shared knowledge last: the order every writer locks them in.
            yield from self._lock_users([user_id] if shared is None else [user_id, shared[0]])
            yield from self._apply_step(user_id, changes)
            if shared is not None:
                owner, shared_changes = shared
                yield from self._apply_step(owner, shared_changes)
                touched = [new.memory.id for new in shared_changes.inserts] + [
                    change.memory_id for change in shared_changes.changes
                ]
                if touched:
                    yield from execute_many(
                        "INSERT INTO shared_contributions (memory_id, contributor) "
                        "VALUES (%s, %s) ON CONFLICT DO NOTHING",
                        [(memory_id, owner_token(user_id)) for memory_id in touched],
                    )
                yield from self._count_contributors(touched)

        yield from transaction(work)

    @staticmethod
    def _count_contributors(memory_ids: Sequence[str]) -> Work[None]:
        """A shared record's support is the number of different users who stated it."""
        if memory_ids:
            yield from execute(
                "UPDATE memories m SET support = greatest(1, (SELECT count(*) FROM "
                "shared_contributions c WHERE c.memory_id = m.id)) WHERE m.id = ANY (%s::text[])",
                (list(memory_ids),),
            )

    def _apply_step(self, user_id: str, changes: ConsolidationChanges) -> Work[None]:
        at = _epoch(changes.at) or datetime.now(UTC).timestamp()
        if changes.consolidated:
            # The evidence must still exist: a user forgotten (or entries evicted) by
            # another process mid-run must not get knowledge written back. The user's row
            # is locked, so no erasure can slip in between this check and the commit.
            found = yield from execute(
                "SELECT count(*) FROM memories WHERE id = ANY (%s::text[]) AND user_id = %s",
                (list(set(changes.consolidated)), user_id),
            )
            row = found.one()
            if row is None or row[0] != len(set(changes.consolidated)):
                raise StorageError(
                    "the evidence of this consolidation step was deleted meanwhile "
                    "(forget or eviction by another process); run it again"
                )
        for new in changes.inserts:
            if new.memory.user_id != user_id:
                raise StorageError("a consolidation step wrote a record for another user")
            yield from self._insert_memory(
                new.memory, None, due_at=new.due_at, slot_value=new.slot_value
            )
        for change in changes.changes:
            yield from execute(
                "UPDATE memories SET status = %s, confidence = %s, support = %s, "
                "last_supported = %s, due_at = %s, valid_to = %s, superseded_by = %s "
                "WHERE id = %s AND user_id = %s",
                (
                    change.status.value,
                    change.confidence,
                    change.support,
                    _epoch(change.last_supported),
                    _epoch(change.due_at),
                    _epoch(change.valid_to),
                    change.superseded_by,
                    change.memory_id,
                    user_id,
                ),
            )
            if change.add_sources:
                yield from execute_many(
                    "INSERT INTO memory_sources (memory_id, turn_id) VALUES (%s, %s) "
                    "ON CONFLICT DO NOTHING",
                    [(change.memory_id, turn_id) for turn_id in change.add_sources],
                )
        # The turns behind a superseded fact are out of date too: their MTM entries rank
        # below the current version, like the record itself.
        outdated = [
            (c.superseded_by, c.memory_id) for c in changes.changes if c.status is Status.SUPERSEDED
        ]
        outdated += [
            (n.memory.superseded_by, n.memory.id)
            for n in changes.inserts
            if n.memory.status is Status.SUPERSEDED
        ]
        if outdated:
            yield from execute_many(
                "UPDATE memories SET status = 'superseded', superseded_by = %s "
                "WHERE user_id = %s AND tier = 'mtm' AND id IN (SELECT e.memory_id "
                "FROM memory_sources r JOIN memory_sources e ON e.turn_id = r.turn_id "
                "WHERE r.memory_id = %s)",
                [(successor, user_id, memory_id) for successor, memory_id in outdated],
            )
        if changes.links:
            # Links are written only between two records of this user, checked by the join.
            yield from execute_many(
                "INSERT INTO memory_links (user_id, source, target, relation) "
                "SELECT %s, a.id, b.id, %s FROM memories a, memories b WHERE a.id = %s "
                "AND b.id = %s AND a.user_id = %s AND b.user_id = %s AND a.id != b.id "
                "ON CONFLICT DO NOTHING",
                [(user_id, rel, src, dst, user_id, user_id) for src, dst, rel in changes.links],
            )
        if changes.deletes:
            yield from self._delete_memories(user_id, changes.deletes)
        if changes.consolidated:
            yield from execute(
                "UPDATE memories SET consolidated_at = %s "
                "WHERE id = ANY (%s::text[]) AND user_id = %s",
                (at, list(changes.consolidated), user_id),
            )
        if changes.watermark is not None or changes.finished_at is not None:
            yield from execute(
                "INSERT INTO consolidation_state AS c (user_id, watermark, last_run) "
                "VALUES (%s, coalesce(%s, 0), %s) ON CONFLICT (user_id) DO UPDATE SET "
                "watermark = greatest(c.watermark, coalesce(%s, c.watermark)), "
                "last_run = coalesce(%s, c.last_run)",
                (
                    user_id,
                    changes.watermark,
                    _epoch(changes.finished_at),
                    changes.watermark,
                    _epoch(changes.finished_at),
                ),
            )

    def acquire_lease(self, user_id: str, owner: str, *, until: datetime) -> Plan[str | None]:
        """Take (or renew) the user's lease until ``until``. The expiry is kept on the
        server's clock (``until`` is read as a duration from now), so machines whose clocks
        disagree still agree on it."""
        seconds = max(0.0, (until - datetime.now(UTC)).total_seconds())

        def work() -> Work[str | None]:
            taken = yield from execute(
                "INSERT INTO consolidation_state AS c (user_id, lease_owner, lease_until) "
                "VALUES (%s, %s, clock_timestamp() + make_interval(secs => %s)) "
                "ON CONFLICT (user_id) DO UPDATE SET lease_owner = excluded.lease_owner, "
                "lease_until = excluded.lease_until WHERE c.lease_owner IS NULL "
                "OR c.lease_owner = excluded.lease_owner OR c.lease_until IS NULL "
                "OR c.lease_until <= clock_timestamp() RETURNING 1",
                (user_id, owner, seconds),
            )
            if taken.rows:
                return None
            holder = yield from execute(
                "SELECT lease_owner FROM consolidation_state WHERE user_id = %s", (user_id,)
            )
            row = holder.one()
            return str(row[0]) if row is not None and row[0] is not None else None

        return (yield from transaction(work))

    def release_lease(self, user_id: str, owner: str) -> Plan[None]:
        yield from transaction(
            lambda: execute(
                "UPDATE consolidation_state SET lease_owner = NULL, lease_until = NULL "
                "WHERE user_id = %s AND lease_owner = %s",
                (user_id, owner),
            )
        )
