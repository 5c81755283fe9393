"""The ``lightmem`` command line.

Every test but one runs with ``LIGHTMEM_EMBEDDER=hashing`` (the deterministic
``HashingEmbedder``), so no model loads; the ``slow`` demo test uses the real MiniLM.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from lightmem_core.cli import _app, app

Invoke = Callable[..., Result]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """An empty store (read-only commands refuse a folder that holds none)."""
    from lightmem_core import LightMem
    from lightmem_core.testing import HashingEmbedder

    path = tmp_path / "store"
    LightMem(path, embedder=HashingEmbedder()).close()
    return path


@pytest.fixture
def cli(store: Path) -> Invoke:
    """Run ``lightmem ARGS`` in-process on a fresh store with the hashing embedder."""
    runner = CliRunner()
    env: dict[str, str | None] = {
        "LIGHTMEM_EMBEDDER": "hashing",
        "LIGHTMEM_PATH": str(store),
        "LIGHTMEM_CHROMA_URL": None,
        "LIGHTMEM_RECORDS": None,
    }

    def invoke(*args: str, input: str | None = None, **extra_env: str | None) -> Result:
        return runner.invoke(app, list(args), input=input, env={**env, **extra_env})

    return invoke


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def as_json(result: Result) -> Any:
    return json.loads(ok(result).stdout)


def assert_reported_error(result: Result, *fragments: str) -> None:
    """Exit code 2, one ``error:`` line on stderr, no traceback."""
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.stderr.startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def add_turns(cli: Invoke, user: str, texts: Sequence[str], *, session: str = "s1") -> None:
    for i, text in enumerate(texts, start=1):
        ok(cli("add", user, text, "--session", session, "--turn-id", f"{user}-{session}-{i}"))


def user_turns(cli: Invoke, user: str) -> int:
    turns: int = as_json(cli("stats", "--user", user, "--json"))["turns"]
    return turns


# --- add, search, context ---------------------------------------------------------------------


def test_add_then_search_returns_the_turn_with_its_id(cli: Invoke) -> None:
    added = as_json(
        cli(
            "add",
            "alice",
            "I adopted a beagle called Max.",
            "--session",
            "s1",
            "--turn-id",
            "t-42",
            "--speaker",
            "Alice",
            "--timestamp",
            "2024-05-08T13:56:00",
            "--json",
        )
    )
    assert added["turn_id"] == "t-42"
    assert added["session_id"] == "s1"
    assert added["timestamp"].startswith("2024-05-08T13:56:00")

    found = as_json(cli("search", "alice", "beagle called Max", "--json"))
    assert found["user_id"] == "alice"
    hit = found["hits"][0]
    assert hit["text"] == "I adopted a beagle called Max."
    assert hit["source_ids"] == ["t-42"]
    assert hit["speaker"] == "Alice"
    assert found["omitted"] == 0


def test_search_table_and_budget_line(cli: Invoke) -> None:
    add_turns(cli, "alice", ["My beagle Max loves the beach.", "Max the beagle is four years old."])
    table = ok(cli("search", "alice", "beagle Max", "-k", "5")).stdout
    assert "alice-s1-1" in table
    assert "left out by the budget" not in table

    tight = ok(cli("search", "alice", "beagle Max", "--budget", "8")).stdout
    assert "1 memory left out by the budget or k" in tight

    assert as_json(cli("search", "alice", "beagle Max", "--budget", "8", "--json"))["omitted"] == 1
    nothing = ok(cli("search", "nobody", "beagle"))
    assert "No memories found" in nothing.stdout


def test_search_as_of_a_time(cli: Invoke) -> None:
    ok(cli("add", "alice", "I live in Paris.", "--timestamp", "2020-01-01T00:00:00"))
    ok(cli("add", "alice", "I moved to Rome.", "--timestamp", "2023-01-01T00:00:00"))
    texts = [
        h["text"]
        for h in as_json(cli("search", "alice", "live", "--now", "2021-06-01", "--json"))["hits"]
    ]
    assert texts == ["I live in Paris."]


def test_context_prints_the_block(cli: Invoke) -> None:
    add_turns(cli, "alice", ["I adopted a beagle called Max."], session="s1")
    add_turns(cli, "alice", ["What should I cook tonight?"], session="s2")
    block = ok(cli("context", "alice", "beagle Max", "--session", "s2")).stdout
    assert "<memories>" in block
    assert '"I adopted a beagle called Max."' in block
    assert "<recent_conversation>" in block
    assert "What should I cook tonight?" in block

    data = as_json(cli("context", "alice", "beagle", "--budget", "200", "--json"))
    assert "beagle called Max" in data["context"]

    empty = ok(cli("context", "nobody", "anything"))
    assert empty.stdout == ""
    assert "No memories" in empty.stderr


# --- stats, export, forget --------------------------------------------------------------------


def test_stats(cli: Invoke, store: Path) -> None:
    add_turns(cli, "alice", ["one fact", "another fact"])
    add_turns(cli, "bob", ["bob's fact"])
    whole = as_json(cli("stats", "--json"))
    assert whole["turns"] == 3
    assert whole["users"] == 2
    assert whole["path"] == str(store)
    assert whole["embedder"] == "hashing-256"
    alice = as_json(cli("stats", "--user", "alice", "--json"))
    # Vectors are written behind: indexed, or still pending, never lost.
    assert (alice["turns"], alice["mtm"], alice["vectors"] + alice["pending_index"]) == (2, 2, 2)
    ok(cli("reindex", "--json"))
    alice = as_json(cli("stats", "--user", "alice", "--json"))
    assert (alice["vectors"], alice["pending_index"]) == (2, 0)
    table = ok(cli("stats")).stdout
    assert "turns" in table
    assert "hashing-256" in table


def test_export_to_stdout_and_file(cli: Invoke, tmp_path: Path) -> None:
    add_turns(cli, "alice", ["I adopted a beagle called Max."])
    data = as_json(cli("export", "alice"))
    assert data["user_id"] == "alice"
    assert [t["turn_id"] for t in data["turns"]] == ["alice-s1-1"]
    assert data["memories"][0]["source_ids"] == ["alice-s1-1"]

    out = tmp_path / "alice.json"
    result = ok(cli("export", "alice", "--out", str(out)))
    assert "Exported 1 turn and 1 memory" in result.stdout
    assert json.loads(out.read_text(encoding="utf-8"))["turns"][0]["content"].startswith(
        "I adopted"
    )
    if os.name == "posix":
        assert stat.S_IMODE(out.stat().st_mode) == 0o600

    assert_reported_error(
        cli("export", "alice", "--out", str(tmp_path / "no" / "dir.json")), "cannot write"
    )


def test_forget_with_yes(cli: Invoke) -> None:
    add_turns(cli, "alice", ["I adopted a beagle called Max.", "I live in Lisbon."])
    add_turns(cli, "bob", ["I play the violin."])
    ok(cli("reindex", "--json"))  # every memory in the vector index too
    receipt = as_json(cli("forget", "alice", "--yes", "--json"))
    assert receipt["user_id"] == "alice"
    assert receipt["turns"] == 2
    assert receipt["memories"]["mtm"] == 2
    assert receipt["vectors"] == 2
    assert user_turns(cli, "alice") == 0
    assert user_turns(cli, "bob") == 1
    assert as_json(cli("search", "alice", "beagle", "--json"))["hits"] == []

    readable = ok(cli("forget", "bob", "-y")).stdout
    assert "Forgot user 'bob': 1 turn" in readable


def test_forget_refuses_without_yes_when_stdin_is_not_a_tty(cli: Invoke) -> None:
    add_turns(cli, "alice", ["I adopted a beagle called Max."])
    assert_reported_error(cli("forget", "alice"), "--yes", "not a terminal")
    assert user_turns(cli, "alice") == 1


def test_forget_asks_on_a_terminal(cli: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_app, "_stdin_is_tty", lambda: True)
    add_turns(cli, "alice", ["I adopted a beagle called Max."])
    declined = cli("forget", "alice", input="n\n")
    assert declined.exit_code == 1
    assert "Nothing was forgotten" in declined.stderr
    assert user_turns(cli, "alice") == 1

    accepted = ok(cli("forget", "alice", input="y\n"))
    assert "Forget everything about 'alice' (1 turn, 1 memory)?" in accepted.stderr
    assert "Forgot user 'alice'" in accepted.stdout
    assert user_turns(cli, "alice") == 0


# --- reindex ------------------------------------------------------------------------------------


def test_reindex(cli: Invoke) -> None:
    add_turns(cli, "alice", ["I adopted a beagle called Max.", "I live in Lisbon."])
    report = as_json(cli("reindex", "--json"))
    assert report == {"reindexed": 2, "total": 2, "embedder": "hashing-256"}
    assert "Reindexed 2 memories with hashing-256" in ok(cli("reindex")).stdout
    assert as_json(cli("search", "alice", "beagle", "--json"))["hits"][0]["source_ids"] == [
        "alice-s1-1"
    ]


def test_reindex_after_changing_the_embedder(cli: Invoke) -> None:
    add_turns(cli, "alice", ["I adopted a beagle called Max."])
    ok(cli("search", "alice", "beagle"))  # indexes the turn: the store now records hashing-256
    assert_reported_error(
        cli("search", "alice", "beagle", LIGHTMEM_EMBEDDER="hashing-64"), "reindex"
    )
    report = as_json(cli("reindex", "--json", LIGHTMEM_EMBEDDER="hashing-64"))
    assert report == {"reindexed": 1, "total": 1, "embedder": "hashing-64"}
    hits = as_json(cli("search", "alice", "beagle", "--json", LIGHTMEM_EMBEDDER="hashing-64"))[
        "hits"
    ]
    assert hits[0]["source_ids"] == ["alice-s1-1"]


# --- ingest -------------------------------------------------------------------------------------


def test_ingest_json_list_with_default_user(cli: Invoke, tmp_path: Path) -> None:
    messages = [
        {
            "content": "I adopted a beagle called Max.",
            "turn_id": "m1",
            "session_id": "s1",
            "timestamp": "2024-05-08T13:56:00",
            "speaker": "Alice",
            "metadata": {"src": "chat"},
        },
        {"content": "Max is a lovely name!", "role": "assistant", "turn_id": "m2"},
        {"content": "I play the violin.", "user_id": "bob", "turn_id": "b1"},
    ]
    path = tmp_path / "conversation.json"
    path.write_text(json.dumps(messages), encoding="utf-8")
    report = as_json(
        cli("ingest", str(path), "--user", "alice", "--session", "default-s", "--json")
    )
    assert report["messages"] == 3
    assert report["stored"] == 3
    assert report["users"] == {"alice": 2, "bob": 1}

    turns = {t["turn_id"]: t for t in as_json(cli("export", "alice"))["turns"]}
    assert turns["m1"]["session_id"] == "s1"
    assert turns["m1"]["metadata"] == {"src": "chat"}
    assert turns["m2"]["session_id"] == "default-s"
    assert turns["m2"]["role"] == "assistant"
    assert [t["turn_id"] for t in as_json(cli("export", "bob"))["turns"]] == ["b1"]


def test_ingest_json_object_and_readable_report(cli: Invoke, tmp_path: Path) -> None:
    path = tmp_path / "carol.json"
    path.write_text(
        json.dumps(
            {
                "user_id": "carol",
                "messages": [{"content": "I grow tomatoes."}, {"content": "I have two cats."}],
            }
        ),
        encoding="utf-8",
    )
    result = ok(cli("ingest", str(path)))
    assert "Stored 2 messages for 1 user" in result.stdout
    assert user_turns(cli, "carol") == 2


def test_ingest_jsonl(cli: Invoke, tmp_path: Path) -> None:
    path = tmp_path / "chat.jsonl"
    lines = [
        json.dumps(
            {"user_id": "alice", "content": "I adopted a beagle called Max.", "turn_id": "a1"}
        ),
        "",
        json.dumps({"content": "I play the violin.", "turn_id": "b1"}),
        # a raw U+2028 inside a string is valid JSON and must not split the line
        json.dumps({"content": "viola\u2028and cello", "turn_id": "b2"}, ensure_ascii=False),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = as_json(cli("ingest", str(path), "--user", "bob", "--json"))
    assert report["users"] == {"alice": 1, "bob": 2}
    hits = as_json(cli("search", "bob", "violin", "--json"))["hits"]
    assert hits[0]["source_ids"] == ["b1"]


def test_ingest_malformed_jsonl_line_stores_nothing(cli: Invoke, tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text(
        '{"content": "first", "user_id": "alice"}\n'
        '{"content": "second", "user_id": "alice"}\n'
        '{"content": "third", "user_id": \n',
        encoding="utf-8",
    )
    assert_reported_error(cli("ingest", str(path)), "line 3", "not valid JSON")
    assert user_turns(cli, "alice") == 0


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        ('[{"content": "hi"}]', ("message 1", "names no user")),
        ('[{"content": "hi", "user_id": "a", "colour": "red"}]', ("unknown field", "colour")),
        ('[{"role": "user", "user_id": "a"}]', ("no 'content'",)),
        ('[{"content": "hi", "user_id": " a"}]', ("user_id",)),
        ('{"content": "hi"}', ("expected a JSON array",)),
        ('[{"content": "hi", "user_id": "a"},', ("invalid JSON at line 1",)),
    ],
)
def test_ingest_rejects_bad_files(
    cli: Invoke, tmp_path: Path, body: str, fragments: tuple[str, ...]
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(body, encoding="utf-8")
    assert_reported_error(cli("ingest", str(path)), *fragments)
    assert as_json(cli("stats", "--json"))["turns"] == 0


def test_a_bad_message_anywhere_stores_nothing_and_is_named(cli: Invoke, tmp_path: Path) -> None:
    messages: list[dict[str, str]] = [{"content": f"fact number {i}"} for i in range(1200)]
    messages[1100]["content"] = "   "  # far past the first chunks
    path = tmp_path / "many.json"
    path.write_text(json.dumps({"user_id": "alice", "messages": messages}), encoding="utf-8")
    result = cli("ingest", str(path), "--json")
    assert_reported_error(result, "message 1101", "Nothing was stored")
    assert "to message" not in result.stderr  # the message, not its chunk
    assert user_turns(cli, "alice") == 0


def test_ingest_again_stores_nothing_twice(cli: Invoke, tmp_path: Path) -> None:
    lines = [json.dumps({"user_id": "alice", "content": f"note {i}"}) for i in range(300)]
    lines.append(json.dumps({"user_id": "alice", "content": "note 0"}))  # same text, other line
    path = tmp_path / "notes.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")
    first = as_json(cli("ingest", str(path), "--json"))
    assert first["stored"] == 301
    again = as_json(cli("ingest", str(path), "--json"))
    assert again["stored"] == 0
    assert again["skipped"] == 301
    assert user_turns(cli, "alice") == 301
    assert as_json(cli("stats", "--json"))["pending_index"] == 0  # indexed before exit


def test_deeply_nested_input_is_a_clear_error(cli: Invoke, tmp_path: Path) -> None:
    deep = '{"a": ' * 5000 + "1" + "}" * 5000
    path = tmp_path / "deep.jsonl"
    path.write_text(
        '{"user_id": "alice", "content": "x", "metadata": ' + deep + "}\n", encoding="utf-8"
    )
    result = cli("ingest", str(path))
    assert_reported_error(result, "line 1", "nested too deeply")
    assert "Traceback" not in result.stderr


# --- bad input and isolation ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("add", "alice", ""), "content must not be empty"),
        (("add", "alice", "   "), "content must not be empty"),
        (("add", " alice", "hello"), "user_id"),
        (("add", "alice", "hello", "--role", "narrator"), "role"),
        (("add", "alice", "hello", "--timestamp", "not a date"), "timestamp"),
        (("search", "alice", "hello", "--k", "0"), "k must be"),
        (("search", "", "hello"), "user_id"),
        (("context", "alice", " "), "query"),
        (("stats", "--user", ""), "user_id"),
        (("--chroma-url", "ftp://nowhere", "stats"), "chroma_url"),
    ],
)
def test_bad_input_is_one_error_line(cli: Invoke, args: tuple[str, ...], fragment: str) -> None:
    assert_reported_error(cli(*args), fragment)


def test_duplicate_turn_id_is_reported(cli: Invoke) -> None:
    ok(cli("add", "alice", "hello", "--turn-id", "t1"))
    assert_reported_error(cli("add", "alice", "again", "--turn-id", "t1"), "t1")


def test_users_are_isolated(cli: Invoke) -> None:
    add_turns(cli, "alice", ["I adopted a beagle called Max.", "My beagle Max hates the rain."])
    add_turns(cli, "bob", ["I play the violin in an orchestra."])
    for query in ("beagle called Max", "Max the beagle", "violin"):
        found = as_json(cli("search", "bob", query, "--json"))
        assert found["hits"], query
        for hit in found["hits"]:
            assert "beagle" not in hit["text"]
            assert all(source.startswith("bob-") for source in hit["source_ids"])
    assert "beagle" not in ok(cli("context", "bob", "beagle called Max")).stdout
    assert "beagle" not in ok(cli("search", "bob", "beagle called Max")).stdout


# --- demo ---------------------------------------------------------------------------------------


def test_demo_with_the_hashing_embedder_uses_a_temporary_folder(
    cli: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    result = ok(cli("demo", COLUMNS="120"))
    for text in ("Questions from alice", "Questions from bob", "Best memory:", "<memories>"):
        assert text in result.stdout
    assert "none of bob's" in result.stdout
    assert "allergic to peanuts" in result.stdout.split("prompt-ready context")[1]
    assert [p for p in tmp_path.iterdir() if p.name.startswith("lightmem-demo-")] == []

    kept = ok(cli("demo", "--keep", COLUMNS="120"))
    [made] = [p for p in tmp_path.iterdir() if p.name.startswith("lightmem-demo-")]
    assert str(made) in kept.stdout
    again = cli("--path", str(made), "demo")  # the global --path is honoured
    assert_reported_error(again, "already holds the demo user")


def test_read_commands_refuse_a_folder_without_a_store(cli: Invoke, tmp_path: Path) -> None:
    typo = tmp_path / "no-such-store"
    for command in (("search", "u", "q"), ("stats",), ("export", "u"), ("forget", "u", "--yes")):
        assert_reported_error(cli("--path", str(typo), *command), "no LightMem store")
    assert not typo.exists()  # nothing was created
    ok(cli("--path", str(typo), "add", "u", "hello"))  # a write creates it
    assert as_json(cli("--path", str(typo), "stats", "--json"))["turns"] == 1


def test_the_global_json_option_and_export_json(cli: Invoke, tmp_path: Path) -> None:
    ok(cli("add", "alice", "I keep bees."))
    assert as_json(cli("--json", "stats"))["turns"] == 1
    assert as_json(cli("--json", "search", "alice", "bees"))["hits"]
    out = tmp_path / "alice.json"
    report = as_json(cli("export", "alice", "--out", str(out), "--json"))
    assert report == {"user_id": "alice", "file": str(out), "turns": 1, "memories": 1}
    assert as_json(cli("stats", "--json"))["pending_index"] == 0  # add indexed before exit


@pytest.mark.slow
def test_demo_with_the_real_model(cli: Invoke, tmp_path: Path) -> None:
    """The one run of the real MiniLM: the demo as shipped, asked for JSON."""
    result = cli("demo", "--path", str(tmp_path / "demo"), "--json", LIGHTMEM_EMBEDDER=None)
    data = as_json(result)
    assert data["embedder"] == "all-MiniLM-L6-v2"
    assert data["temporary"] is False
    assert data["isolation"]["ok"] is True
    assert data["isolation"]["bob_hits_checked"] > 0
    answers = {(a["user_id"], a["question"]): a for a in data["questions"]}
    for key, expected in [
        (("alice", "What is my dog called?"), "Pepper"),
        (("alice", "Which foods am I allergic to?"), "peanuts"),
        (("bob", "Which instrument do I play?"), "bass guitar"),
    ]:
        assert any(expected in hit["text"] for hit in answers[key]["hits"]), answers[key]
    for answer in data["questions"]:
        assert answer["hits"]
        assert answer["hits"][0]["text"] == answer["answer"]
        prefix = answer["user_id"] + "-"
        assert all(s.startswith(prefix) for h in answer["hits"] for s in h["source_ids"])
    for probe in data["isolation_probes"]:
        assert all(s.startswith("bob-") for h in probe["hits"] for s in h["source_ids"])
    assert "<recent_conversation>" in data["context"]["text"]


# --- the installed script -----------------------------------------------------------------------


def _script() -> str:
    found = shutil.which("lightmem", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip("the lightmem script is not installed")
    return found


def test_installed_script_smoke(store: Path) -> None:
    env = {**os.environ, "LIGHTMEM_EMBEDDER": "hashing", "LIGHTMEM_PATH": str(store)}
    env.pop("LIGHTMEM_CHROMA_URL", None)
    script = _script()
    help_text = subprocess.run(
        [script, "--help"], env=env, capture_output=True, text=True, check=True
    )
    for command in (
        "demo",
        "add",
        "search",
        "context",
        "stats",
        "export",
        "forget",
        "reindex",
        "ingest",
    ):
        assert command in help_text.stdout
    assert "LIGHTMEM_EMBEDDER" in help_text.stdout

    subprocess.run([script, "add", "alice", "hello world", "--turn-id", "t1"], env=env, check=True)
    found = subprocess.run(
        [script, "search", "alice", "hello", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(found.stdout)["hits"][0]["source_ids"] == ["t1"]

    bad = subprocess.run([script, "add", "alice", ""], env=env, capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: ")
    assert "Traceback" not in bad.stderr


def test_importing_the_cli_loads_no_heavy_modules() -> None:
    code = (
        "import sys, lightmem_core.cli; "
        "print(sorted(m for m in ('torch', 'chromadb', 'sentence_transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_consolidate(cli: Invoke) -> None:
    ok(cli("add", "alice", "I live in Paris.", "--speaker", "Alice", "--turn-id", "t1"))
    ok(cli("add", "alice", "I love hiking in the mountains.", "--speaker", "Alice"))
    ok(cli("add", "bob", "I work at Acme Corp.", "--speaker", "Bob"))
    dry = as_json(cli("consolidate", "--dry-run", "--json"))
    assert dry["dry_run"] is True
    assert (dry["users"], dry["entries"], dry["new"]) == (2, 3, 3)
    assert as_json(cli("stats", "--json"))["ltm"] == 0  # a dry run writes nothing
    one = ok(cli("consolidate", "--user", "alice"))
    assert "Consolidated 2 entries of 1 user" in one.stdout
    assert "2 new" in one.stdout
    rest = as_json(cli("consolidate", "--json"))
    assert (rest["entries"], rest["new"]) == (1, 1)
    assert as_json(cli("stats", "--json"))["ltm"] == 3
    again = as_json(cli("consolidate", "--json"))
    assert again["entries"] == again["new"] == 0
    memories = as_json(cli("export", "alice"))["memories"]
    ltm = {m["text"]: m for m in memories if m["tier"] == "ltm"}
    assert ltm["Alice lives in Paris."]["source_ids"] == ["t1"]


def test_consolidate_rejects_a_bad_user(cli: Invoke) -> None:
    assert_reported_error(cli("consolidate", "--user", " padded "), "user_id")


def test_consolidate_watch_runs_again_until_interrupted(store: Path) -> None:
    env = {**os.environ, "LIGHTMEM_EMBEDDER": "hashing", "LIGHTMEM_PATH": str(store)}
    lightmem = [sys.executable, "-m", "lightmem_core.cli"]
    subprocess.run([*lightmem, "add", "alice", "I live in Paris.", "--speaker", "Alice"],
                   env=env, check=True, capture_output=True)  # fmt: skip
    watch = subprocess.Popen(
        [*lightmem, "consolidate", "--watch", "0.2", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert watch.stdout is not None
        reports = [json.loads(watch.stdout.readline() + _rest_of_json(watch.stdout))]
        reports.append(json.loads(watch.stdout.readline() + _rest_of_json(watch.stdout)))
    finally:
        watch.send_signal(signal.SIGINT)
        code = watch.wait(timeout=30)
    assert reports[0]["entries"] == 1  # the first pass takes the turn in
    assert reports[1]["entries"] == 0  # the next finds nothing new
    assert code == 0


def _rest_of_json(stream: Any) -> str:
    """Lines up to the closing brace of a pretty-printed JSON object."""
    lines = []
    while True:
        line = stream.readline()
        lines.append(line)
        if line.startswith("}") or not line:
            return "".join(lines)


def test_stored_terminal_escapes_are_shown_not_obeyed(cli: Invoke) -> None:
    hostile = "clear \x1b[2J title \x1b]0;pwned\x07 csi \x9b31m bidi \u202eevil"
    ok(cli("add", "eve", hostile, "--turn-id", "t1"))
    for command in (("search", "eve", "clear title"), ("context", "eve", "clear title")):
        out = ok(cli(*command)).stdout
        assert "\x1b" not in out
        assert "\x9b" not in out
        assert "\u202e" not in out
        assert "\\x1b" in out or "\\\\u001b" in out or "\\u001b" in out
