"""SQLite record store: the record of truth, with FTS5 (BM25) full-text search.

One database file in WAL mode. Each thread gets its own connection; writes take the
write lock up front (``BEGIN IMMEDIATE``) and wait up to ``busy_timeout_s`` for it, so
"database is locked" never reaches the caller under ordinary contention.

Per-user scoping in full-text search: each FTS row carries an ``owner`` token derived from
the user id, and every MATCH requires it, so BM25 never scores another user's rows.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from array import array
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .._errors import DuplicateTurnId, StorageError, StoreNotWritable
from .._types import Memory, Status, Tier, Turn
from ._contracts import (
    Adjacent,
    ConsolidationChanges,
    DeletedCounts,
    Evidence,
    PendingVector,
    Surroundings,
)
from ._rows import dt as _dt
from ._rows import epoch as _epoch
from ._rows import memory_from_row, owner_token, turn_from_row

__all__ = ["SQLiteRecordStore"]

SCHEMA_VERSION = "3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS turns (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    TEXT NOT NULL,
    turn_id    TEXT NOT NULL,
    session_id TEXT NOT NULL,
    role       TEXT NOT NULL,
    speaker    TEXT,
    content    TEXT NOT NULL,
    ts         REAL NOT NULL,
    metadata   TEXT NOT NULL DEFAULT '{}',
    UNIQUE (user_id, turn_id)
);
CREATE INDEX IF NOT EXISTS turns_by_session ON turns (user_id, session_id, seq);
CREATE INDEX IF NOT EXISTS turns_by_speaker ON turns (user_id, speaker);
CREATE TABLE IF NOT EXISTS memories (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT NOT NULL UNIQUE,
    user_id       TEXT NOT NULL,
    tier          TEXT NOT NULL CHECK (tier IN ('mtm', 'ltm')),
    kind          TEXT NOT NULL,
    text          TEXT NOT NULL,
    session_id    TEXT,
    speaker       TEXT,
    ts            REAL,
    created_at    REAL NOT NULL,
    access_count  INTEGER NOT NULL DEFAULT 0,
    last_accessed REAL,
    metadata      TEXT NOT NULL DEFAULT '{}',
    position      INTEGER,            -- turns.seq of the source turn: orders a session's entries
    indexed       INTEGER NOT NULL DEFAULT 0,
    embedding     BLOB                -- float32 vector, written with its index entry
);
CREATE INDEX IF NOT EXISTS memories_by_user ON memories (user_id, tier);
CREATE INDEX IF NOT EXISTS memories_by_position ON memories (user_id, session_id, position);
-- Memories waiting for their vector: the indexer's queue, and each user's backlog (a search
-- checks it every time). Partial indexes, so they hold only the few pending rows.
CREATE INDEX IF NOT EXISTS memories_pending ON memories (seq) WHERE indexed = 0;
CREATE INDEX IF NOT EXISTS memories_pending_by_user ON memories (user_id, seq) WHERE indexed = 0;
CREATE TABLE IF NOT EXISTS memory_sources (
    memory_id TEXT NOT NULL REFERENCES memories (id) ON DELETE CASCADE,
    turn_id   TEXT NOT NULL,
    PRIMARY KEY (memory_id, turn_id)
) WITHOUT ROWID;
CREATE VIRTUAL TABLE IF NOT EXISTS memories_fts USING fts5 (
    owner, text, tokenize = 'porter unicode61 remove_diacritics 2'
);
"""

# Version 2: the life cycle of long-term records, links between them and each user's
# consolidation progress. Added in place to version-1 stores (ALTER TABLE ADD COLUMN is cheap:
# existing rows take the default without being rewritten).
_COLUMNS_V2 = {
    "status": "TEXT NOT NULL DEFAULT 'active'",
    "confidence": "REAL NOT NULL DEFAULT 1.0",
    "support": "INTEGER NOT NULL DEFAULT 1",
    "slot": "TEXT",  # subject|attribute of a single-valued fact
    "slot_value": "TEXT",  # its value, normalised, to tell "same again" from "changed"
    "valid_from": "REAL",
    "valid_to": "REAL",
    "superseded_by": "TEXT",
    "last_supported": "REAL",  # when evidence last backed the record (decay starts there)
    "due_at": "REAL",  # active LTM: when it decays below the archive threshold;
    #                    archived: when its TTL deletes it; NULL: never
    "consolidated_at": "REAL",  # MTM: when consolidation last took it in
}
_SCHEMA_V2 = """
CREATE INDEX IF NOT EXISTS memories_by_slot ON memories (user_id, slot) WHERE slot IS NOT NULL;
CREATE INDEX IF NOT EXISTS memories_due ON memories (user_id, due_at) WHERE due_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS memories_by_access ON memories (user_id, last_accessed)
    WHERE tier = 'mtm' AND last_accessed IS NOT NULL;
-- MTM eviction order: consolidated first, then least used, then stalest.
CREATE INDEX IF NOT EXISTS memories_eviction ON memories (
    user_id, tier, consolidated_at IS NULL, access_count, coalesce(last_accessed, created_at), seq
);
CREATE INDEX IF NOT EXISTS memory_sources_by_turn ON memory_sources (turn_id, memory_id);
CREATE TABLE IF NOT EXISTS memory_links (
    user_id  TEXT NOT NULL,
    source   TEXT NOT NULL REFERENCES memories (id) ON DELETE CASCADE,
    target   TEXT NOT NULL REFERENCES memories (id) ON DELETE CASCADE,
    relation TEXT NOT NULL,
    PRIMARY KEY (source, target, relation)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS memory_links_by_target ON memory_links (target);
CREATE TABLE IF NOT EXISTS consolidation_state (
    user_id     TEXT PRIMARY KEY,
    watermark   INTEGER NOT NULL DEFAULT 0,  -- memories.seq of the last MTM entry taken in
    last_run    REAL,                        -- re-activated entries are those accessed since
    lease_owner TEXT,                        -- host:pid:token of the running consolidation
    lease_until REAL
) WITHOUT ROWID;
"""

# Version 3: keyed memories (``remember(..., key=...)``: a key names one memory of its user,
# and remembering under it again replaces that memory) and each session's short-term floor
# (``clear_recent``: turns at or below it are no longer recent; they stay in MTM and LTM).
_COLUMNS_V3 = {"key": "TEXT"}
_SCHEMA_V3 = """
CREATE UNIQUE INDEX IF NOT EXISTS memories_by_key ON memories (user_id, key) WHERE key IS NOT NULL;
-- Who stated each piece of shared knowledge (owner tokens, never user ids): what one user
-- alone said is not readable by others, and forgetting a user withdraws what they said.
CREATE TABLE IF NOT EXISTS shared_contributions (
    memory_id   TEXT NOT NULL,
    contributor TEXT NOT NULL,
    PRIMARY KEY (memory_id, contributor)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS shared_contributions_by_contributor
    ON shared_contributions (contributor);
CREATE TABLE IF NOT EXISTS stm_floors (
    user_id    TEXT NOT NULL,
    session_id TEXT NOT NULL,
    seq        INTEGER NOT NULL,             -- turns.seq of the last turn cleared
    PRIMARY KEY (user_id, session_id)
) WITHOUT ROWID;
"""


class SQLiteRecordStore:
    """The :class:`~lightmem_core.store.RecordStore` on one SQLite file."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: str = "FULL",
        busy_timeout_s: float = 30.0,
    ) -> None:
        self.path = Path(path)
        self._synchronous = synchronous
        self._busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._closed = False
        new_file = not self.path.exists()
        conn = self._conn()
        self._identity = self._file_identity()
        if new_file:
            with suppress(OSError):
                os.chmod(self.path, 0o600)  # the records are personal data
        try:
            # Idempotent DDL; executescript runs it in its own transaction.
            conn.executescript(_SCHEMA)
            with self._write() as cur:
                present = {row[1] for row in cur.execute("PRAGMA table_info(memories)")}
                missing = {c: d for c, d in _COLUMNS_V2.items() if c not in present}
                for column, declaration in {**missing, **_COLUMNS_V3}.items():
                    if column not in present:
                        cur.execute(f"ALTER TABLE memories ADD COLUMN {column} {declaration}")
                if missing and present:
                    # Version 2 keeps long-term vectors in a collection of their own.
                    cur.execute("UPDATE memories SET indexed = 0 WHERE tier = 'ltm'")
                cur.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (SCHEMA_VERSION,),
                )
            conn.executescript(_SCHEMA_V2)
            conn.executescript(_SCHEMA_V3)
        except sqlite3.DatabaseError as err:  # not a database, damaged, locked, read-only
            self.close()
            raise self._translate(err) from err

    # --- connections ------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise StorageError("the record store is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout_s,
                isolation_level=None,  # explicit transactions only
                check_same_thread=False,  # one per thread, but close() may run elsewhere
            )
            conn.row_factory = sqlite3.Row  # rows read by column name
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            conn.execute("PRAGMA foreign_keys = ON")
            # Zero freed pages, so erased text does not linger in the file.
            conn.execute("PRAGMA secure_delete = ON")
        except sqlite3.OperationalError as err:
            raise StoreNotWritable(f"cannot open the record store at {self.path}: {err}") from err
        except sqlite3.DatabaseError as err:  # "file is not a database"
            raise self._translate(err) from err
        self._local.conn = conn
        with self._connections_lock:
            self._connections.append(conn)
        return conn

    def _file_identity(self) -> tuple[int, int] | None:
        try:
            found = os.stat(self.path)
        except OSError:
            return None
        return found.st_dev, found.st_ino

    def _check_still_there(self) -> None:
        """Refuse to write into a database file that was removed (or replaced) while open:
        SQLite would write to the unlinked file and the write would be lost with it."""
        if self._file_identity() != self._identity:
            raise StorageError(
                f"the record store {self.path} was removed or replaced while open; nothing "
                "was written (open the store again)"
            )

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Cursor]:
        """One write transaction; rolled back entirely on any error."""
        self._check_still_there()
        conn = self._conn()
        cur = conn.cursor()
        try:
            cur.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as err:
            raise self._translate(err) from err
        try:
            yield cur
        except sqlite3.IntegrityError:
            conn.rollback()
            raise  # the caller knows what a constraint means (a duplicate turn id)
        except sqlite3.DatabaseError as err:
            conn.rollback()
            raise self._translate(err) from err
        except BaseException:
            conn.rollback()
            raise
        try:
            cur.execute("COMMIT")
        except sqlite3.DatabaseError as err:
            conn.rollback()
            raise self._translate(err) from err

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        conn = self._conn()
        try:
            cur = conn.execute(sql, params)
            return cur.fetchall()
        except sqlite3.DatabaseError as err:
            raise self._translate(err) from err

    def _translate(self, err: sqlite3.Error) -> StorageError:
        """A typed error for an SQLite error, told apart by its result code."""
        text = str(err)
        code = getattr(err, "sqlite_errorname", "") or ""  # SQLITE_NOTADB, SQLITE_BUSY...
        if code.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")):
            return StorageError(
                f"the record store at {self.path} is damaged or is not a LightMem store "
                f"({text}); restore it from a backup, or move it away to start afresh"
            )
        if code.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM")):
            return StoreNotWritable(f"the record store at {self.path} is not writable: {text}")
        if code.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            return StorageError(
                f"the record store at {self.path} stayed locked by another writer for "
                f"{self._busy_timeout_s:g}s; raise busy_timeout_s or reduce concurrent writers"
            )
        return StorageError(f"record store error at {self.path}: {text}")

    def close(self) -> None:
        self._closed = True
        with self._connections_lock:
            for conn in self._connections:
                with suppress(sqlite3.Error):
                    conn.close()
            self._connections.clear()

    # --- writes -------------------------------------------------------------------------

    def add(
        self, turns: Sequence[Turn], memories: Sequence[Memory], *, replaces: Sequence[str] = ()
    ) -> None:
        try:
            with self._write() as cur:
                if replaces:
                    owners = {m.user_id for m in memories if m.id in set(replaces)}
                    for owner in owners:
                        self._delete_memories(cur, owner, list(replaces))
                for memory in memories:
                    if memory.key is not None:  # one memory per key: the new one wins
                        self._delete_memories(cur, memory.user_id, self._ids_of_key(cur, memory))
                positions: dict[str, int] = {}
                for turn in turns:
                    cur.execute(
                        "INSERT INTO turns (user_id, turn_id, session_id, role, speaker, "
                        "content, ts, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
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
                    assert cur.lastrowid is not None
                    positions[turn.turn_id] = cur.lastrowid
                for memory in memories:
                    position = (
                        positions.get(memory.source_ids[0]) if len(memory.source_ids) == 1 else None
                    )
                    self._insert_memory(cur, memory, position)
                for turn in turns:
                    replied = turn.metadata.get("reply_to")
                    if isinstance(replied, str) and replied != turn.turn_id:
                        self._link_reply(cur, turn, replied)
        except sqlite3.IntegrityError as err:
            # A unique turn id taken (or repeated in the batch), rather than another
            # constraint: asked of the database, not read from the message.
            ids = [(t.user_id, t.turn_id) for t in turns]
            taken = self._taken_turn_ids(turns)
            if taken or len(set(ids)) != len(ids):
                raise DuplicateTurnId(
                    f"turn_id {', '.join(map(repr, taken)) or '(repeated in the batch)'} "
                    "already exists for this user; turn ids must be unique per user"
                ) from err
            raise StorageError(f"record store integrity error: {err}") from err

    @staticmethod
    def _link_reply(cur: sqlite3.Cursor, turn: Turn, replied: str) -> None:
        """Link the turn's memories to those of the user's turn it replies to (if stored)."""
        cur.execute(
            "INSERT OR IGNORE INTO memory_links (user_id, source, target, relation) "
            "SELECT ?, mine.memory_id, theirs.memory_id, 'replies_to' "
            "FROM memory_sources mine JOIN memories m ON m.id = mine.memory_id "
            "JOIN memory_sources theirs ON theirs.turn_id = ? "
            "JOIN memories t ON t.id = theirs.memory_id "
            "WHERE mine.turn_id = ? AND m.user_id = ? AND t.user_id = ? AND t.tier = 'mtm' "
            "AND mine.memory_id != theirs.memory_id",
            (turn.user_id, replied, turn.turn_id, turn.user_id, turn.user_id),
        )

    def _taken_turn_ids(self, turns: Sequence[Turn]) -> list[str]:
        taken = []
        for turn in turns:
            rows = self._read(
                "SELECT 1 FROM turns WHERE user_id = ? AND turn_id = ?",
                (turn.user_id, turn.turn_id),
            )
            if rows:
                taken.append(turn.turn_id)
        return taken

    @staticmethod
    def _ids_of_key(cur: sqlite3.Cursor, memory: Memory) -> list[str]:
        rows = cur.execute(
            "SELECT id FROM memories WHERE user_id = ? AND key = ?", (memory.user_id, memory.key)
        ).fetchall()
        return [row[0] for row in rows]

    @staticmethod
    def _insert_memory(
        cur: sqlite3.Cursor,
        memory: Memory,
        position: int | None,
        *,
        due_at: datetime | None = None,
        slot_value: str | None = None,
    ) -> None:
        cur.execute(
            "INSERT INTO memories (id, user_id, tier, kind, text, session_id, speaker, ts, "
            "created_at, access_count, last_accessed, metadata, position, status, confidence, "
            "support, slot, slot_value, valid_from, valid_to, superseded_by, last_supported, "
            "due_at, key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "?, ?)",
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
            ),
        )
        seq = cur.lastrowid
        cur.executemany(
            "INSERT OR IGNORE INTO memory_sources (memory_id, turn_id) VALUES (?, ?)",
            [(memory.id, turn_id) for turn_id in memory.source_ids],
        )
        cur.execute(
            "INSERT INTO memories_fts (rowid, owner, text) VALUES (?, ?, ?)",
            (seq, owner_token(memory.user_id), memory.text),
        )

    def mark_indexed(self, indexed: Sequence[tuple[PendingVector, Sequence[float]]]) -> None:
        if not indexed:
            return
        with self._write() as cur:
            cur.executemany(
                "UPDATE memories SET indexed = 1, embedding = ? WHERE id = ? AND text = ?",
                [(array("f", v).tobytes(), p.memory_id, p.text) for p, v in indexed],
            )

    def mark_all_pending(self) -> int:
        with self._write() as cur:
            cur.execute("UPDATE memories SET indexed = 0, embedding = NULL")
            return cur.rowcount

    def record_access(self, user_id: str, memory_ids: Sequence[str], at: datetime) -> None:
        if not memory_ids:
            return
        with self._write() as cur:
            cur.executemany(
                "UPDATE memories SET access_count = access_count + 1, last_accessed = ? "
                "WHERE id = ? AND user_id = ?",
                [(at.timestamp(), i, user_id) for i in memory_ids],
            )

    def delete_user(self, user_id: str) -> DeletedCounts:
        with self._write() as cur:
            turns = cur.execute("DELETE FROM turns WHERE user_id = ?", (user_id,)).rowcount
            tiers = dict(
                cur.execute(
                    "SELECT tier, count(*) FROM memories WHERE user_id = ? GROUP BY tier",
                    (user_id,),
                ).fetchall()
            )
            fts = cur.execute(
                "DELETE FROM memories_fts WHERE rowid IN "
                "(SELECT seq FROM memories WHERE user_id = ?)",
                (user_id,),
            ).rowcount
            cur.execute(
                "DELETE FROM memory_sources WHERE memory_id IN "
                "(SELECT id FROM memories WHERE user_id = ?)",
                (user_id,),
            )
            cur.execute("DELETE FROM memory_links WHERE user_id = ?", (user_id,))
            cur.execute("DELETE FROM memories WHERE user_id = ?", (user_id,))
            cur.execute("DELETE FROM consolidation_state WHERE user_id = ?", (user_id,))
            cur.execute("DELETE FROM stm_floors WHERE user_id = ?", (user_id,))
            shared = self._withdraw_contributions(cur, user_id)
            # FTS5 keeps deleted terms in old index segments until they are merged:
            # merging everything now leaves no trace of the user's words in the index.
            cur.execute("INSERT INTO memories_fts (memories_fts) VALUES ('optimize')")
        # Fold the WAL back into the main file and truncate it, so the erased text does not
        # survive in the log either (secure_delete zeroes the freed pages).
        self._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return DeletedCounts(
            turns=turns,
            memories={"mtm": tiers.get("mtm", 0), "ltm": tiers.get("ltm", 0)},
            lexical_rows=fts,
            shared=tuple(shared),
        )

    def erasure_residue(self) -> tuple[str, ...]:
        return ()  # the WAL is truncated and freed pages zeroed by delete_user

    def _withdraw_contributions(self, cur: sqlite3.Cursor, user_id: str) -> list[str]:
        """Withdraw what the user contributed to shared knowledge; the shared records no
        other user stated are deleted (their ids are returned, for their vectors)."""
        token = owner_token(user_id)
        touched = [
            row[0]
            for row in cur.execute(
                "SELECT memory_id FROM shared_contributions WHERE contributor = ?", (token,)
            )
        ]
        if not touched:
            return []
        cur.execute("DELETE FROM shared_contributions WHERE contributor = ?", (token,))
        marks = ",".join("?" * len(touched))
        orphans = cur.execute(
            f"SELECT id, user_id FROM memories WHERE id IN ({marks}) AND NOT EXISTS "
            "(SELECT 1 FROM shared_contributions c WHERE c.memory_id = memories.id)",
            touched,
        ).fetchall()
        for memory_id, owner in orphans:  # the shared-knowledge owner
            self._delete_memories(cur, owner, [memory_id])
        gone = {memory_id for memory_id, _ in orphans}
        self._count_contributors(cur, [i for i in touched if i not in gone])
        return sorted(gone)

    def set_meta(self, key: str, value: str) -> None:
        with self._write() as cur:
            cur.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def delete_memories(
        self, user_id: str, *, memory_ids: Sequence[str] = (), keys: Sequence[str] = ()
    ) -> list[str]:
        with self._write() as cur:
            found = self._existing_ids(cur, user_id, memory_ids, keys)
            self._delete_memories(cur, user_id, found)
        return found

    @staticmethod
    def _existing_ids(
        cur: sqlite3.Cursor, user_id: str, memory_ids: Sequence[str], keys: Sequence[str]
    ) -> list[str]:
        found: list[str] = []
        for column, values in (("id", memory_ids), ("key", keys)):
            for start in range(0, len(values), 500):
                chunk = list(values[start : start + 500])
                marks = ",".join("?" * len(chunk))
                found += [
                    row[0]
                    for row in cur.execute(
                        f"SELECT id FROM memories WHERE {column} IN ({marks}) AND +user_id = ?",
                        (*chunk, user_id),
                    )
                ]
        return list(dict.fromkeys(found))

    def clear_recent(self, user_id: str, session_id: str) -> None:
        with self._write() as cur:
            cur.execute(
                "INSERT INTO stm_floors (user_id, session_id, seq) SELECT ?, ?, "
                "coalesce(max(seq), 0) FROM turns WHERE user_id = ? AND session_id = ? "
                "ON CONFLICT (user_id, session_id) DO UPDATE SET seq = excluded.seq",
                (user_id, session_id, user_id, session_id),
            )

    # --- reads --------------------------------------------------------------------------

    def list_memories(
        self,
        user_id: str,
        *,
        keys: Sequence[str] | None = None,
        key_prefix: str | None = None,
        tiers: Sequence[Tier] | None = None,
    ) -> list[Memory]:
        sql = f"SELECT {self._MEMORY_COLUMNS} FROM memories m WHERE m.user_id = ?"
        params: list[Any] = [user_id]
        if keys is not None:
            if not keys:
                return []
            sql += f" AND m.key IN ({','.join('?' * len(keys))})"
            params += list(keys)
        if key_prefix is not None:
            # A range on the (user_id, key) index; LIKE would treat % and _ as wildcards.
            sql += " AND m.key >= ? AND m.key < ?"
            params += [key_prefix, key_prefix + "\U0010ffff"]
        if tiers:
            sql += f" AND m.tier IN ({','.join('?' * len(tiers))})"
            params += [t.value for t in tiers]
        sql += " ORDER BY m.created_at, m.seq"
        return [self._memory(row) for row in self._read(sql, params)]

    def get_meta(self, key: str) -> str | None:
        rows = self._read("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    _MEMORY_COLUMNS = (
        "m.id, m.user_id, m.tier, m.kind, m.text, m.ts, m.session_id, m.speaker, "
        "m.created_at, m.access_count, m.last_accessed, m.metadata, "
        "(SELECT group_concat(s.turn_id, char(31)) FROM memory_sources s WHERE s.memory_id = m.id) "
        "AS sources, "
        "m.status, m.confidence, m.support, m.slot, m.valid_from, m.valid_to, m.superseded_by, "
        "m.last_supported, m.key"
    )

    _memory = staticmethod(memory_from_row)
    _turn = staticmethod(turn_from_row)

    _TURN_COLUMNS = "user_id, turn_id, session_id, role, speaker, content, ts, metadata"

    # In the look-ups by id below, "+user_id" keeps SQLite on the id index: otherwise it may
    # choose the (user_id, ...) index and walk every row the user has.
    def get_memories(self, user_id: str, memory_ids: Sequence[str]) -> dict[str, Memory]:
        if not memory_ids:
            return {}
        marks = ",".join("?" * len(memory_ids))
        rows = self._read(
            f"SELECT {self._MEMORY_COLUMNS} FROM memories m "
            f"WHERE m.id IN ({marks}) AND +m.user_id = ?",
            (*memory_ids, user_id),
        )
        return {row[0]: self._memory(row) for row in rows}

    def vectors(self, user_id: str, memory_ids: Sequence[str]) -> dict[str, array[float]]:
        if not memory_ids:
            return {}
        marks = ",".join("?" * len(memory_ids))
        rows = self._read(
            f"SELECT id, embedding FROM memories WHERE id IN ({marks}) AND +user_id = ? "
            "AND embedding IS NOT NULL",
            (*memory_ids, user_id),
        )
        return {row[0]: array("f", row[1]) for row in rows}

    def neighbors(
        self, user_id: str, memory_ids: Sequence[str], *, span: int = 1
    ) -> dict[str, Surroundings]:
        if not memory_ids:
            return {}
        marks = ",".join("?" * len(memory_ids))
        # Each side's nearest ``span`` rows by position, through the (user, session, position)
        # index; words counted as spaces + 1, an estimate that needs no row read in Python.
        side = (
            "SELECT c.id, c.ts, n.id, n.ts, "
            "length(n.text) - length(replace(n.text, ' ', '')) + 1, "
            "n.position - c.position AS offset "
            "FROM memories c JOIN memories n ON n.seq IN (SELECT m.seq FROM memories m "
            "WHERE m.user_id = c.user_id AND m.session_id = c.session_id "
            "AND m.position {op} c.position ORDER BY m.position {order} LIMIT ?) "
            f"WHERE c.id IN ({marks}) AND +c.user_id = ? AND c.position IS NOT NULL"
        )
        rows = self._read(
            f"{side.format(op='<', order='DESC')} UNION ALL {side.format(op='>', order='ASC')}",
            (span, *memory_ids, user_id, span, *memory_ids, user_id),
        )
        own: dict[str, datetime | None] = {}
        sides: dict[str, tuple[list[Adjacent], list[Adjacent]]] = {}
        for memory_id, ts, other, other_ts, words, offset in sorted(rows, key=lambda r: abs(r[5])):
            own[memory_id] = _dt(ts)
            sides.setdefault(memory_id, ([], []))[offset > 0].append(
                Adjacent(other, _dt(other_ts), words)
            )
        return {
            memory_id: Surroundings(own[memory_id], tuple(before), tuple(after))
            for memory_id, (before, after) in sides.items()
        }

    @staticmethod
    def _match(user_id: str, terms: Sequence[str]) -> str:
        quoted = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
        return f'owner : "{owner_token(user_id)}" AND text : ({quoted})'

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
        if not terms:
            return []
        match = self._match(user_id, terms)
        params: list[Any]
        if not tiers and after is None:
            # The usual case: rank inside FTS5 first (the owner token keeps it to this user),
            # then join only the winners, which costs half of joining every match. The as-of
            # bound is applied to the ranked list (it rarely removes anything).
            sql = (
                "SELECT m.id, f.score FROM (SELECT rowid, bm25(memories_fts, 0.0, 1.0) AS score "
                "FROM memories_fts WHERE memories_fts MATCH ? ORDER BY score, rowid LIMIT ?) f "
                "JOIN memories m ON m.seq = f.rowid WHERE m.user_id = ?"
            )
            params = [match, limit, user_id]
            if before is not None:
                sql += " AND (m.ts IS NULL OR m.ts <= ?)"
                params.append(before.timestamp())
            sql += " ORDER BY f.score, m.seq"  # ties in a fixed order, the same in both forms
            return [(row[0], -float(row[1])) for row in self._read(sql, params)]
        # Tier or time-window searches filter before ranking, so rows in the window are found
        # even when they are far down the user's overall ranking. CROSS JOIN keeps FTS5 as
        # the outer loop: otherwise SQLite may run the whole MATCH once per row.
        sql = (
            "SELECT m.id, bm25(memories_fts, 0.0, 1.0) AS score FROM memories_fts "
            "CROSS JOIN memories m ON m.seq = memories_fts.rowid "
            "WHERE memories_fts MATCH ? AND m.user_id = ?"
        )
        params = [match, user_id]
        if tiers:
            sql += f" AND m.tier IN ({','.join('?' * len(tiers))})"
            params += [t.value for t in tiers]
        if before is not None:
            sql += " AND (m.ts IS NULL OR m.ts <= ?)"
            params.append(before.timestamp())
        if after is not None:
            sql += " AND m.ts >= ?"
            params.append(after.timestamp())
        sql += " ORDER BY score, m.seq LIMIT ?"
        params.append(limit)
        return [(row[0], -float(row[1])) for row in self._read(sql, params)]

    def recent_turns(
        self,
        user_id: str,
        *,
        session_id: str | None,
        limit: int,
        before: datetime | None = None,
    ) -> list[Turn]:
        until = before.timestamp() if before is not None else float("inf")
        if session_id is None:
            latest = self._read(
                "SELECT session_id FROM turns WHERE user_id = ? AND ts <= ? "
                "ORDER BY seq DESC LIMIT 1",
                (user_id, until),
            )
            if not latest:
                return []
            session_id = latest[0][0]
        rows = self._read(
            f"SELECT {self._TURN_COLUMNS} FROM turns WHERE user_id = ? AND session_id = ? "
            "AND ts <= ? AND seq > coalesce((SELECT f.seq FROM stm_floors f "
            "WHERE f.user_id = ? AND f.session_id = ?), 0) ORDER BY seq DESC LIMIT ?",
            (user_id, session_id, until, user_id, session_id, limit),
        )
        return [self._turn(row) for row in reversed(rows)]

    def pending_vectors(self, *, limit: int, user_id: str | None = None) -> list[PendingVector]:
        sql = "SELECT id, user_id, text, tier, kind, ts FROM memories WHERE indexed = 0"
        params: list[Any] = []
        if user_id is not None:
            sql += " AND user_id = ?"
            params.append(user_id)
        sql += " ORDER BY seq LIMIT ?"
        params.append(limit)
        pending = []
        for memory_id, owner, text, tier, kind, ts in self._read(sql, params):
            meta: dict[str, str | int | float | bool] = {
                "tier": tier,
                "kind": kind,
            }
            if ts is not None:
                meta["ts"] = ts
            pending.append(PendingVector(memory_id, owner, text, meta))
        return pending

    def pending_ids(self, memory_ids: Sequence[str]) -> set[str]:
        if not memory_ids:
            return set()
        marks = ",".join("?" * len(memory_ids))
        rows = self._read(
            f"SELECT id FROM memories WHERE id IN ({marks}) AND indexed = 0", list(memory_ids)
        )
        return {row[0] for row in rows}

    def speakers(self, user_id: str) -> set[str]:
        rows = self._read(
            "SELECT DISTINCT speaker FROM turns WHERE user_id = ? AND speaker IS NOT NULL",
            (user_id,),
        )
        return {row[0] for row in rows}

    def speaker_turns(self, user_id: str, *, limit: int) -> list[tuple[str, str, str]]:
        rows = self._read(
            "SELECT session_id, speaker, content FROM turns "
            "WHERE user_id = ? AND speaker IS NOT NULL ORDER BY seq DESC LIMIT ?",
            (user_id, limit),
        )
        return [(row[0], row[1], row[2]) for row in reversed(rows)]

    def existing_turn_ids(self, user_id: str, turn_ids: Sequence[str]) -> set[str]:
        if not turn_ids:
            return set()
        marks = ",".join("?" * len(turn_ids))
        rows = self._read(
            f"SELECT turn_id FROM turns WHERE user_id = ? AND turn_id IN ({marks})",
            (user_id, *turn_ids),
        )
        return {row[0] for row in rows}

    def export_user(self, user_id: str) -> tuple[list[Turn], list[Memory]]:
        turns = [
            self._turn(row)
            for row in self._read(
                f"SELECT {self._TURN_COLUMNS} FROM turns WHERE user_id = ? ORDER BY seq",
                (user_id,),
            )
        ]
        memories = [
            self._memory(row)
            for row in self._read(
                f"SELECT {self._MEMORY_COLUMNS} FROM memories m WHERE m.user_id = ? ORDER BY m.seq",
                (user_id,),
            )
        ]
        return turns, memories

    def counts(self, user_id: str | None = None) -> dict[str, int]:
        where, params = ("WHERE user_id = ?", (user_id,)) if user_id is not None else ("", ())
        turns = self._read(f"SELECT count(*) FROM turns {where}", params)[0][0]
        tiers: dict[str, int] = {
            row[0]: row[1]
            for row in self._read(
                f"SELECT tier, count(*) FROM memories {where} GROUP BY tier", params
            )
        }
        pending_where = f"{where} AND indexed = 0" if where else "WHERE indexed = 0"
        pending = self._read(f"SELECT count(*) FROM memories {pending_where}", params)[0][0]
        ltm_where = f"{where} AND tier = 'ltm'" if where else "WHERE tier = 'ltm'"
        states: dict[str, int] = dict(
            (row[0], row[1])
            for row in self._read(
                f"SELECT status, count(*) FROM memories {ltm_where} GROUP BY status", params
            )
        )
        return {
            "turns": int(turns),
            "mtm": int(tiers.get("mtm", 0)),
            "ltm": int(tiers.get("ltm", 0)),
            "ltm_superseded": int(states.get("superseded", 0)),
            "ltm_archived": int(states.get("archived", 0)),
            "pending_index": int(pending),
        }

    def users(self) -> list[str]:
        rows = self._read("SELECT user_id FROM turns UNION SELECT user_id FROM memories ORDER BY 1")
        return [row[0] for row in rows]

    # --- consolidation ------------------------------------------------------------------

    def consolidation_state(self, user_id: str) -> tuple[int, datetime | None]:
        rows = self._read(
            "SELECT watermark, last_run FROM consolidation_state WHERE user_id = ?", (user_id,)
        )
        return (int(rows[0][0]), _dt(rows[0][1])) if rows else (0, None)

    _EVIDENCE_SQL = (
        "SELECT {columns}, m.seq AS seq, "
        "(SELECT t.role FROM memory_sources s JOIN turns t ON t.user_id = m.user_id "
        "AND t.turn_id = s.turn_id WHERE s.memory_id = m.id LIMIT 1) AS role "
        "FROM memories m WHERE m.user_id = ? AND m.tier = 'mtm' "
    )

    def new_evidence(self, user_id: str, *, after_seq: int, limit: int) -> list[Evidence]:
        # seq is the primary key: the range scan starts at the watermark, whatever the store's size.
        rows = self._read(
            self._EVIDENCE_SQL.format(columns=self._MEMORY_COLUMNS)
            + "AND m.seq > ? ORDER BY m.seq LIMIT ?",
            (user_id, after_seq, limit),
        )
        return [Evidence(self._memory(row), int(row["seq"]), row["role"]) for row in rows]

    def count_new_evidence(self, user_id: str, *, after_seq: int) -> int:
        rows = self._read(
            "SELECT count(*) FROM memories WHERE user_id = ? AND tier = 'mtm' AND seq > ?",
            (user_id, after_seq),
        )
        return int(rows[0][0])

    def reactivated_evidence(
        self, user_id: str, *, since: datetime, up_to_seq: int, limit: int
    ) -> list[Evidence]:
        rows = self._read(
            self._EVIDENCE_SQL.format(columns=self._MEMORY_COLUMNS)
            + "AND m.last_accessed > ? AND m.seq <= ? ORDER BY m.last_accessed, m.seq LIMIT ?",
            (user_id, since.timestamp(), up_to_seq, limit),
        )
        return [
            Evidence(self._memory(row), int(row["seq"]), row["role"], reactivated=True)
            for row in rows
        ]

    def ltm_vectors(self, user_id: str, *, limit: int) -> dict[str, Sequence[float]] | None:
        rows = self._read(
            "SELECT id, embedding FROM memories WHERE user_id = ? AND tier = 'ltm' "
            "AND status != 'archived' AND embedding IS NOT NULL LIMIT ?",
            (user_id, limit + 1),
        )
        if len(rows) > limit:
            return None
        return {row[0]: array("f", row[1]) for row in rows}

    def ltm_by_slot(self, user_id: str, slot: str) -> list[tuple[Memory, str | None]]:
        # "+m.tier": the slot index, never a (user_id, tier) index that holds every row.
        rows = self._read(
            f"SELECT {self._MEMORY_COLUMNS}, m.slot_value FROM memories m "
            "WHERE m.user_id = ? AND m.slot = ? AND +m.tier = 'ltm' AND m.status != 'archived' "
            "ORDER BY m.valid_from, m.seq",
            (user_id, slot),
        )
        return [(self._memory(row), row[-1]) for row in rows]

    def ltm_citing(self, user_id: str, turn_ids: Sequence[str]) -> list[Memory]:
        if not turn_ids:
            return []
        marks = ",".join("?" * len(turn_ids))
        rows = self._read(
            f"SELECT {self._MEMORY_COLUMNS} FROM memories m WHERE m.id IN "
            f"(SELECT memory_id FROM memory_sources WHERE turn_id IN ({marks})) "
            "AND +m.user_id = ? AND m.tier = 'ltm' AND m.status != 'superseded' ORDER BY m.seq",
            (*turn_ids, user_id),
        )
        return [self._memory(row) for row in rows]

    def due_records(self, user_id: str, *, now: datetime, limit: int) -> list[Memory]:
        rows = self._read(
            f"SELECT {self._MEMORY_COLUMNS} FROM memories m "
            "WHERE m.user_id = ? AND m.due_at IS NOT NULL AND m.due_at <= ? "
            "ORDER BY m.due_at, m.seq LIMIT ?",
            (user_id, now.timestamp(), limit),
        )
        return [self._memory(row) for row in rows]

    def eviction_candidates(self, user_id: str, *, capacity: int) -> list[str]:
        count = self._read(
            "SELECT count(*) FROM memories WHERE user_id = ? AND tier = 'mtm'", (user_id,)
        )[0][0]
        excess = int(count) - capacity
        if excess <= 0:
            return []
        # The ORDER BY matches the memories_eviction index, so this reads `excess` index rows.
        rows = self._read(
            "SELECT id FROM memories WHERE user_id = ? AND tier = 'mtm' "
            "AND (consolidated_at IS NULL) = 0 "
            "ORDER BY consolidated_at IS NULL, access_count, "
            "coalesce(last_accessed, created_at), seq LIMIT ?",
            (user_id, excess),
        )
        return [row[0] for row in rows]

    def apply_consolidation(
        self,
        user_id: str,
        changes: ConsolidationChanges,
        *,
        shared: tuple[str, ConsolidationChanges] | None = None,
    ) -> None:
        with self._write() as cur:
            self._apply_step(cur, user_id, changes)
            if shared is not None:
                owner, shared_changes = shared
                self._apply_step(cur, owner, shared_changes)
                touched = [new.memory.id for new in shared_changes.inserts] + [
                    change.memory_id for change in shared_changes.changes
                ]
                cur.executemany(
                    "INSERT OR IGNORE INTO shared_contributions (memory_id, contributor) "
                    "VALUES (?, ?)",
                    [(memory_id, owner_token(user_id)) for memory_id in touched],
                )
                self._count_contributors(cur, touched)

    @staticmethod
    def _count_contributors(cur: sqlite3.Cursor, memory_ids: Sequence[str]) -> None:
        """A shared record's support is the number of different users who stated it."""
        cur.executemany(
            "UPDATE memories SET support = max(1, (SELECT count(*) FROM shared_contributions "
            "WHERE memory_id = ?)) WHERE id = ?",
            [(memory_id, memory_id) for memory_id in memory_ids],
        )

    def _apply_step(self, cur: sqlite3.Cursor, user_id: str, changes: ConsolidationChanges) -> None:
        at = _epoch(changes.at) or datetime.now(UTC).timestamp()
        if changes.consolidated:
            # The evidence must still exist: a user forgotten (or entries evicted) by
            # another process mid-run must not get knowledge written back.
            marks = ",".join("?" * len(changes.consolidated))
            alive = cur.execute(
                f"SELECT count(*) FROM memories WHERE id IN ({marks}) AND +user_id = ?",
                (*changes.consolidated, user_id),
            ).fetchone()[0]
            if alive != len(set(changes.consolidated)):
                raise StorageError(
                    "the evidence of this consolidation step was deleted meanwhile "
                    "(forget or eviction by another process); run it again"
                )
        for new in changes.inserts:
            if new.memory.user_id != user_id:
                raise StorageError("a consolidation step wrote a record for another user")
            self._insert_memory(cur, new.memory, None, due_at=new.due_at, slot_value=new.slot_value)
        for change in changes.changes:
            cur.execute(
                "UPDATE memories SET status = ?, confidence = ?, support = ?, "
                "last_supported = ?, due_at = ?, valid_to = ?, superseded_by = ? "
                "WHERE id = ? AND user_id = ?",
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
            cur.executemany(
                "INSERT OR IGNORE INTO memory_sources (memory_id, turn_id) VALUES (?, ?)",
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
        cur.executemany(
            "UPDATE memories SET status = 'superseded', superseded_by = ? "
            "WHERE +user_id = ? AND +tier = 'mtm' AND id IN (SELECT e.memory_id "
            "FROM memory_sources r JOIN memory_sources e ON e.turn_id = r.turn_id "
            "WHERE r.memory_id = ?)",
            [(successor, user_id, memory_id) for successor, memory_id in outdated],
        )
        # Links are written only between two records of this user, checked by the join.
        cur.executemany(
            "INSERT OR IGNORE INTO memory_links (user_id, source, target, relation) "
            "SELECT ?, a.id, b.id, ? FROM memories a, memories b "
            "WHERE a.id = ? AND b.id = ? AND a.user_id = ? AND b.user_id = ? AND a.id != b.id",
            [(user_id, rel, src, dst, user_id, user_id) for src, dst, rel in changes.links],
        )
        if changes.deletes:
            self._delete_memories(cur, user_id, changes.deletes)
        if changes.consolidated:
            cur.executemany(
                "UPDATE memories SET consolidated_at = ? WHERE id = ? AND user_id = ?",
                [(at, memory_id, user_id) for memory_id in changes.consolidated],
            )
        if changes.watermark is not None or changes.finished_at is not None:
            cur.execute(
                "INSERT INTO consolidation_state (user_id) VALUES (?) "
                "ON CONFLICT (user_id) DO NOTHING",
                (user_id,),
            )
        if changes.watermark is not None:
            cur.execute(
                "UPDATE consolidation_state SET watermark = max(watermark, ?) WHERE user_id = ?",
                (changes.watermark, user_id),
            )
        if changes.finished_at is not None:
            cur.execute(
                "UPDATE consolidation_state SET last_run = ? WHERE user_id = ?",
                (changes.finished_at.timestamp(), user_id),
            )

    @staticmethod
    def _delete_memories(cur: sqlite3.Cursor, user_id: str, memory_ids: Sequence[str]) -> None:
        for start in range(0, len(memory_ids), 500):
            chunk = list(memory_ids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            cur.execute(
                f"DELETE FROM memories_fts WHERE rowid IN (SELECT seq FROM memories "
                f"WHERE id IN ({marks}) AND +user_id = ?)",
                (*chunk, user_id),
            )
            # memory_sources and memory_links go with the rows (ON DELETE CASCADE).
            cur.execute(
                f"DELETE FROM memories WHERE id IN ({marks}) AND +user_id = ?", (*chunk, user_id)
            )

    def acquire_lease(
        self, user_id: str, owner: str, *, until: datetime, holder_alive: Callable[[str], bool]
    ) -> str | None:
        with self._write() as cur:
            row = cur.execute(
                "SELECT lease_owner, lease_until FROM consolidation_state WHERE user_id = ?",
                (user_id,),
            ).fetchone()
            if row is not None and row[0] is not None and row[0] != owner:
                expired = row[1] is None or row[1] <= datetime.now(UTC).timestamp()
                if not expired and holder_alive(row[0]):
                    return str(row[0])
            cur.execute(
                "INSERT INTO consolidation_state (user_id, lease_owner, lease_until) "
                "VALUES (?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET "
                "lease_owner = excluded.lease_owner, lease_until = excluded.lease_until",
                (user_id, owner, until.timestamp()),
            )
        return None

    def release_lease(self, user_id: str, owner: str) -> None:
        with self._write() as cur:
            cur.execute(
                "UPDATE consolidation_state SET lease_owner = NULL, lease_until = NULL "
                "WHERE user_id = ? AND lease_owner = ?",
                (user_id, owner),
            )

    def links(self, user_id: str, memory_ids: Sequence[str]) -> dict[str, set[str]]:
        if not memory_ids:
            return {}
        marks = ",".join("?" * len(memory_ids))
        rows = self._read(
            f"SELECT source, target FROM memory_links WHERE source IN ({marks}) AND user_id = ? "
            f"UNION SELECT target, source FROM memory_links WHERE target IN ({marks}) "
            "AND user_id = ?",
            (*memory_ids, user_id, *memory_ids, user_id),
        )
        linked: dict[str, set[str]] = {}
        for memory_id, other in rows:
            linked.setdefault(memory_id, set()).add(other)
        return linked
