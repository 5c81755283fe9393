"""The PostgreSQL record store's own tests, on a real server the suite starts: what only this
backend promises (one memory shared by app servers on different machines, versioned
migrations, leases on the server's clock, BM25 ranking like SQLite's, typed errors without
the password, what erasure leaves). Everything backend-neutral runs on it through
``test_record_store_conformance.py``."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lightmem_core import ConfigurationError, LightMem, Memory, StorageError, Tier, Turn
from lightmem_core.store import SQLiteRecordStore
from lightmem_core.testing import HashingEmbedder

psycopg = pytest.importorskip("psycopg")
from lightmem_core.store.postgres import SCHEMA_VERSION, PostgresRecordStore  # noqa: E402

pytestmark = pytest.mark.slow

EPOCH = datetime(2025, 5, 1, tzinfo=UTC)


def _pair(user: str, turn_id: str, text: str, minute: int) -> tuple[Turn, Memory]:
    moment = EPOCH + timedelta(minutes=minute)
    turn = Turn(user, turn_id, "s1", "user", text, moment)
    memory = Memory(
        id=uuid.uuid4().hex,
        user_id=user,
        tier=Tier.MTM,
        kind="turn",
        text=text,
        timestamp=moment,
        session_id="s1",
        source_ids=(turn_id,),
        created_at=moment,
    )
    return turn, memory


def test_two_app_servers_share_one_memory(
    postgres_db: str, chroma_server: str, tmp_path: Path
) -> None:
    """Two engines with their own empty local folders (two machines) and one database and
    vector server: what one adds, the other finds; what one forgets, the other loses."""
    options: dict[str, Any] = {"embedder": HashingEmbedder(), "chroma_url": chroma_server}
    prefix = f"t{uuid.uuid4().hex[:6]}"
    with (
        LightMem(tmp_path / "a", records=postgres_db, collection_prefix=prefix, **options) as a,
        LightMem(tmp_path / "b", records=postgres_db, collection_prefix=prefix, **options) as b,
    ):
        a.add("ana", "My sister Lena lives in Porto.", turn_id="t1")
        a.add("bob", "My sister lives in Oslo.", turn_id="t1")
        a.flush()
        hits = b.search("ana", "where does my sister live?")
        assert [h.text for h in hits][:1] == ["My sister Lena lives in Porto."]
        assert all("Oslo" not in h.text for h in hits)  # never another user's
        receipt = b.forget("ana")
        assert receipt.turns == 1
        assert receipt.memories["mtm"] == 1
        assert receipt.vectors == 1
        assert any("write-ahead log" in line for line in receipt.remaining)
        assert a.search("ana", "where does my sister live?") == []
        assert a.users() == ["bob"]
    assert not (tmp_path / "a" / "records.sqlite3").exists()  # the folder holds no records


def test_records_takes_a_postgres_url_or_a_store_only(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="postgresql:// URL"):
        LightMem(tmp_path / "s", embedder=HashingEmbedder(), records="sqlite:///x.db")
    assert not (tmp_path / "s").exists()


def test_migrations_are_versioned_and_applied_once(
    postgres_db: str, postgres_store: Callable[..., PostgresRecordStore]
) -> None:
    opened: list[PostgresRecordStore] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            opened.append(postgres_store(schema="fleet"))
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    starters = [threading.Thread(target=open_one) for _ in range(4)]  # servers starting at once
    for starter in starters:
        starter.start()
    for starter in starters:
        starter.join()
    assert not errors
    assert len(opened) == 4
    with psycopg.connect(postgres_db) as conn:
        versions = conn.execute("SELECT version FROM fleet.schema_migrations").fetchall()
        assert [v for (v,) in versions] == list(range(1, SCHEMA_VERSION + 1))
        conn.execute("INSERT INTO fleet.schema_migrations (version) VALUES (999)")
    with pytest.raises(StorageError, match="newer LightMem"):
        postgres_store(schema="fleet")


def test_bad_settings_and_an_unreachable_server_are_typed_errors(postgres_db: str) -> None:
    with pytest.raises(ConfigurationError, match="lower-case identifier"):
        PostgresRecordStore(postgres_db, schema="Robert'); DROP TABLE x;--")
    with pytest.raises(ConfigurationError, match="erasure"):
        PostgresRecordStore(postgres_db, erasure="shred")  # type: ignore[arg-type]
    port = postgres_db.rsplit(":", 1)[1].split("/")[0]
    closed = postgres_db.replace(f"lightmem@127.0.0.1:{port}", "ops:s3cret@127.0.0.1:9")
    with pytest.raises(StorageError, match="cannot reach") as caught:
        PostgresRecordStore(closed, connect_timeout_s=2)
    assert "s3cret" not in str(caught.value)
    assert "ops@127.0.0.1:9" in str(caught.value)


def test_lexical_search_ranks_like_sqlite_bm25(
    postgres_store: Callable[..., PostgresRecordStore], tmp_path: Path
) -> None:
    """The same BM25 over the same words: the same matches, in nearly the same order."""
    texts = [
        "We adopted a rescue dog named Biscuit last spring.",
        "Biscuit loves the beach; the dog runs for hours.",
        "My running shoes wore out after the marathon in Berlin.",
        "I started painting landscapes with watercolours in Berlin.",
        "The marathon was hard, but running it with my sister helped.",
        "José opened a café near the beach.",
        "Dogs, dogs everywhere: the shelter had forty dogs.",
        "A quiet week: reading, cooking, and a long walk with the dog.",
    ]
    pg = postgres_store()
    lite = SQLiteRecordStore(tmp_path / "records.sqlite3")
    try:
        for i, text in enumerate(texts):
            turn, memory = _pair("ana", f"t{i}", text, i)
            pg.add([turn], [memory])
            lite.add([turn], [memory])
        ids = {m.id: m.text for m in lite.export_user("ana")[1]}
        for terms in (["dog"], ["running", "marathon"], ["jose", "cafe"], ["berlin", "dogs"]):
            ours = [ids[i] for i, _ in pg.lexical_search("ana", terms, limit=10)]
            theirs = [ids[i] for i, _ in lite.lexical_search("ana", terms, limit=10)]
            assert set(ours) == set(theirs), terms
            assert ours[0] == theirs[0], terms
        assert pg.lexical_search("bob", ["dog"], limit=10) == []  # per user
    finally:
        lite.close()


def test_leases_hold_across_machines_and_run_out_on_the_server_clock(
    postgres_store: Callable[..., PostgresRecordStore],
) -> None:
    one, two = postgres_store(), postgres_store()  # two machines, one database
    now = datetime.now(UTC)
    assert one.acquire_lease("ana", "host-a:1:x", until=now + timedelta(minutes=2),
                             holder_alive=lambda _: True) is None  # fmt: skip
    # Not probed: a holder on another machine cannot be asked whether it lives.
    assert two.acquire_lease("ana", "host-b:7:y", until=now + timedelta(minutes=2),
                             holder_alive=lambda _: False) == "host-a:1:x"  # fmt: skip
    assert one.acquire_lease("ana", "host-a:1:x", until=now + timedelta(minutes=2),
                             holder_alive=lambda _: True) is None  # renewal  # fmt: skip
    assert two.acquire_lease("bob", "host-b:7:y", until=now + timedelta(minutes=2),
                             holder_alive=lambda _: True) is None  # per user  # fmt: skip
    # A lease that ran out (a holder killed mid-run stops renewing) is free to take.
    assert one.acquire_lease("ana", "host-a:1:x", until=datetime.now(UTC),
                             holder_alive=lambda _: True) is None  # fmt: skip
    assert two.acquire_lease("ana", "host-b:7:y", until=now + timedelta(minutes=2),
                             holder_alive=lambda _: True) is None  # fmt: skip
    two.release_lease("ana", "host-b:7:y")
    assert one.acquire_lease("ana", "host-a:1:x", until=now + timedelta(minutes=2),
                             holder_alive=lambda _: True) is None  # fmt: skip


def test_forget_leaves_no_row_of_the_user_in_any_table(
    postgres_db: str, postgres_store: Callable[..., PostgresRecordStore], tmp_path: Path
) -> None:
    store = postgres_store(schema="erase")
    with LightMem(tmp_path / "s", embedder=HashingEmbedder(), records=store) as mem:
        for i in range(5):
            mem.add("ana-7f", f"ana's secret quokkafruit number {i}", turn_id=f"t{i}")
            mem.add("bob", f"bob's garden note {i}", turn_id=f"t{i}")
        mem.consolidate()
        receipt = mem.forget("ana-7f")
        assert receipt.turns == 5
        assert receipt.memories["mtm"] == 5
        assert any("scrub()" in line for line in receipt.remaining)
        with psycopg.connect(postgres_db) as conn:
            tables = conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'erase'"
            ).fetchall()
            for (table,) in tables:
                rows = conn.execute(f"SELECT t::text FROM erase.{table} t").fetchall()
                text = " ".join(r for (r,) in rows)
                assert "ana-7f" not in text, table
                assert "quokkafruit" not in text, table
                if table == "memories":
                    assert "garden" in text  # bob is untouched
            dead = conn.execute(
                "SELECT coalesce(sum(n_dead_tup), 0) FROM pg_stat_user_tables "
                "WHERE schemaname = 'erase'"
            ).fetchone()
            assert dead is not None
            assert dead[0] == 0
        store.scrub()  # VACUUM FULL: the tables rewritten, bob's rows intact
        assert len(mem.export("bob")["memories"]) >= 5


def test_full_erasure_rewrites_the_tables_at_every_forget(
    postgres_store: Callable[..., PostgresRecordStore], tmp_path: Path
) -> None:
    store = postgres_store(erasure="full")
    with LightMem(tmp_path / "s", embedder=HashingEmbedder(), records=store) as mem:
        mem.add("ana", "a secret", turn_id="t1")
        receipt = mem.forget("ana")
        assert receipt.turns == 1
        assert not any("scrub()" in line for line in receipt.remaining)
        assert any("write-ahead log" in line for line in receipt.remaining)


def test_without_postgres_binaries_the_message_says_how_to_get_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lightmem_core.testing import PostgresNotFound, postgres_bindir, postgres_server

    monkeypatch.setenv("LIGHTMEM_PG_BINDIR", str(tmp_path))  # a folder without initdb
    with pytest.raises(PostgresNotFound, match="apt install postgresql"):
        postgres_bindir()
    with pytest.raises(PostgresNotFound), postgres_server():
        pass


def test_the_cli_works_on_a_postgres_store_from_any_folder(
    postgres_db: str, tmp_path: Path
) -> None:
    """``--records`` (``LIGHTMEM_RECORDS``): a consolidation worker or an operator's shell on
    another machine runs the same commands on the shared records."""
    import json

    from typer.testing import CliRunner

    from lightmem_core.cli import app

    runner = CliRunner()
    env = {"LIGHTMEM_EMBEDDER": "hashing", "LIGHTMEM_RECORDS": postgres_db,
           "LIGHTMEM_CHROMA_URL": None}  # fmt: skip

    def run(folder: str, *args: str) -> Any:
        result = runner.invoke(app, ["--path", str(tmp_path / folder), "--json", *args], env=env)
        assert result.exit_code == 0, (result.output, result.exception)
        return json.loads(result.stdout)

    run("app", "add", "ana", "I live in Porto and I love hiking.")
    assert run("worker", "consolidate")["entries"] == 1
    assert run("ops", "stats")["turns"] == 1  # a fresh folder sees the shared records
    assert run("ops", "forget", "ana", "--yes")["turns"] == 1
