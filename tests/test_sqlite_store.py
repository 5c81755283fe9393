"""The SQLite record store's own tests: what only this backend promises about its file
(WAL, private permissions, schema upgrades, damage and read-only files reported as typed
errors, nothing left in its tables after an erasure). The only tests that open
``records.sqlite3`` themselves; everything backend-neutral is in
``test_record_store_conformance.py``."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lightmem_core import LightMem, StorageError, StoreNotWritable
from lightmem_core.testing import HashingEmbedder

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def _ltm(mem: LightMem, user: str) -> list[dict[str, Any]]:
    return [m for m in mem.export(user)["memories"] if m["tier"] == "ltm"]


def test_store_is_sqlite_wal_and_private(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with LightMem(path, embedder=HashingEmbedder()) as mem:
        mem.add("u", "hello", turn_id="t1")
    assert (path.stat().st_mode & 0o777) == 0o700
    assert ((path / "records.sqlite3").stat().st_mode & 0o777) == 0o600
    with sqlite3.connect(path / "records.sqlite3") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_read_only_store_file(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with LightMem(path, embedder=HashingEmbedder()) as mem:
        mem.add("u", "hello", turn_id="t1")
    db = path / "records.sqlite3"
    for extra in path.glob("records.sqlite3-*"):
        extra.unlink()
    db.chmod(0o400)
    path.chmod(0o500)
    try:
        if os.access(db, os.W_OK):
            pytest.skip("running as a user who can write read-only files")
        with pytest.raises(StoreNotWritable):
            LightMem(path, embedder=HashingEmbedder())
    finally:
        path.chmod(0o700)
        db.chmod(0o600)


def test_a_damaged_record_store_is_a_typed_error(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    (store / "records.sqlite3").write_bytes(b"this is not a database at all " * 200)
    with pytest.raises(StorageError, match="damaged or is not a LightMem store"):
        LightMem(store, embedder=HashingEmbedder())


def test_a_version_1_store_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old"
    path.mkdir()
    conn = sqlite3.connect(path / "records.sqlite3")
    conn.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '1');
        CREATE TABLE memories (
            seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, user_id TEXT NOT NULL,
            tier TEXT NOT NULL CHECK (tier IN ('mtm', 'ltm')), kind TEXT NOT NULL,
            text TEXT NOT NULL, session_id TEXT, speaker TEXT, ts REAL, created_at REAL NOT NULL,
            access_count INTEGER NOT NULL DEFAULT 0, last_accessed REAL,
            metadata TEXT NOT NULL DEFAULT '{}', position INTEGER,
            indexed INTEGER NOT NULL DEFAULT 0, embedding BLOB);
        INSERT INTO memories (id, user_id, tier, kind, text, created_at)
            VALUES ('m1', 'u', 'ltm', 'fact', 'Ann likes tea.', 0);
        """
    )
    conn.close()
    with LightMem(path, embedder=HashingEmbedder()) as mem:
        [record] = _ltm(mem, "u")
        assert record["status"] == "active"
        assert record["support"] == 1
        assert mem._records.get_meta("schema_version") == "3"
        # Version 3's keyed memories and short-term floors work on the upgraded file.
        mem.remember("u", "Ann likes coffee now.", key="drink")
        assert [m.key for m in mem.memories("u", keys=["drink"])] == ["drink"]
        mem.clear_recent("u", "default")


# --- kill and resume ------------------------------------------------------------------------------


def test_forget_leaves_no_row_of_the_user_in_any_table(tmp_path: Path) -> None:
    with LightMem(tmp_path / "s", embedder=HashingEmbedder()) as mem:
        for user in ("alice", "bob"):
            mem.add(user, "I live in Paris.", timestamp=NOW, turn_id="t1")
            mem.add(user, "I moved to Lisbon.", timestamp=NOW + timedelta(days=9), turn_id="t2")
        mem.consolidate(now=NOW + timedelta(days=10))
        mem.forget("alice")
    with sqlite3.connect(tmp_path / "s" / "records.sqlite3") as conn:
        tables = [
            row[0]
            for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if row[0] not in ("meta", "sqlite_sequence") and not row[0].startswith("memories_fts")
        ]
        for table in tables:
            columns = {c[1] for c in conn.execute(f"PRAGMA table_info({table})")}
            if "user_id" in columns:
                alice = conn.execute(
                    f"SELECT count(*) FROM {table} WHERE user_id = 'alice'"
                ).fetchone()[0]
                assert alice == 0, table
        bob = conn.execute("SELECT count(*) FROM memories WHERE user_id = 'bob'").fetchone()[0]
        assert bob > 0
