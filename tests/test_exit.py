"""A process that exits while the background indexer is embedding exits cleanly (issue 19).

Scripts, notebooks, CLI commands and web workers exit without ``close()`` all the time. Left
alone, the indexer is a daemon thread frozen inside torch or Chroma at interpreter exit, which
printed ``terminate called without an active exception`` and sometimes aborted (SIGABRT).
Each case runs in a fresh interpreter with the real MiniLM model, exits in the middle of
indexing, and then the store is checked: every memory is either in the vector index or still
pending, never lost, never half-written."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lightmem_core.store import ChromaVectorIndex, SQLiteRecordStore

TURNS = 1500

SCRIPT = textwrap.dedent(
    """
    import sys, time
    from lightmem_core import LightMem
    path, delay, user, url = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4] or None
    m = LightMem(path=path, **({"chroma_url": url} if url else {}))
    m.add_many(
        user,
        [{"content": f"note {i} about topic {i % 17}", "turn_id": f"t{i}"} for i in range(TURNS)],
    )
    while m.stats(user)["pending_index"] == TURNS:  # the model loads in the indexer thread
        time.sleep(0.05)
    time.sleep(delay)  # the indexer is embedding now
    print("exiting with pending", m.stats(user)["pending_index"])
    """
).replace("TURNS", str(TURNS))


def _run(args: list[str], timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)


def _assert_nothing_lost(
    path: Path, user: str = "u", url: str | None = None, turns: int = TURNS
) -> tuple[int, int]:
    """Every memory is indexed or pending, and the index holds exactly the indexed ones."""
    records = SQLiteRecordStore(path / "records.sqlite3")
    try:
        counts = records.counts(user)
    finally:
        records.close()
    if url is None:
        vectors = ChromaVectorIndex(path=path / "chroma")
    else:
        host, port = url.removeprefix("http://").split(":")
        vectors = ChromaVectorIndex(server=(host, int(port), False))
    try:
        in_index = vectors.count(user)
    finally:
        vectors.close()
    assert counts["turns"] == counts["mtm"] == turns
    assert in_index == counts["mtm"] - counts["pending_index"]
    return in_index, counts["pending_index"]


def _exit_mid_indexing(tmp_path: Path, url: str | None, delays: list[float]) -> None:
    outcomes = []
    for n, delay in enumerate(delays):
        store = tmp_path / f"store-{n}"
        user = f"exit-{tmp_path.name}-{n}"  # a server is shared by the whole test session
        done = _run([sys.executable, "-c", SCRIPT, str(store), str(delay), user, url or ""])
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stderr == "", done.stderr[-2000:]
        assert done.stdout.startswith("exiting with pending")
        outcomes.append(_assert_nothing_lost(store, user, url))
    # The exits did land in the middle of indexing: some rows were left for the next open...
    assert any(pending for _, pending in outcomes), outcomes
    # ...and the next open indexes them.
    reopen = textwrap.dedent(
        """
        import sys
        from lightmem_core import LightMem
        path, user, url = sys.argv[1], sys.argv[2], sys.argv[3] or None
        with LightMem(path=path, **({"chroma_url": url} if url else {})) as m:
            m.flush()
        """
    )
    user = f"exit-{tmp_path.name}-0"
    done = _run([sys.executable, "-c", reopen, str(tmp_path / "store-0"), user, url or ""])
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr == "", done.stderr[-2000:]
    assert _assert_nothing_lost(tmp_path / "store-0", user, url) == (TURNS, 0)


def test_a_script_that_exits_while_indexing_exits_cleanly(tmp_path: Path) -> None:
    rng = random.Random(19)
    _exit_mid_indexing(tmp_path, None, [rng.uniform(0.0, 1.5) for _ in range(5)])


def test_the_same_on_a_chroma_server(tmp_path: Path, chroma_server: str) -> None:
    _exit_mid_indexing(tmp_path, chroma_server, [0.2, 1.0])


def _messages_file(tmp_path: Path) -> Path:
    path = tmp_path / "messages.json"
    messages = [
        {"content": f"note {i} about topic {i % 17}", "turn_id": f"t{i}"} for i in range(TURNS)
    ]
    path.write_text(json.dumps({"user_id": "u", "messages": messages}))
    return path


def test_the_cli_exits_cleanly_when_it_finishes_or_is_interrupted(tmp_path: Path) -> None:
    lightmem = [sys.executable, "-m", "lightmem_core.cli"]
    messages = _messages_file(tmp_path)

    # Interrupted (Ctrl-C) while it indexes: a short message, no abort, nothing lost.
    store = tmp_path / "interrupted"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}
    proc = subprocess.Popen(
        [*lightmem, "--path", str(store), "ingest", str(messages), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 120
    while not (store / "records.sqlite3").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(4.0)  # the messages are stored; the flush is embedding them
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode in (0, 1, 130), err  # 0: it had finished after all
    assert "terminate called" not in err, err
    assert "Traceback" not in err, err
    records = SQLiteRecordStore(store / "records.sqlite3")
    try:
        stored = records.counts("u")["turns"]
    finally:
        records.close()
    _assert_nothing_lost(store, turns=stored)  # whole chunks, each indexed or pending

    # Run to the end: exit status 0, nothing on stderr, everything indexed.
    store = tmp_path / "finished"
    done = _run([*lightmem, "--path", str(store), "ingest", str(messages), "--json"])
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr == "", done.stderr[-2000:]
    assert _assert_nothing_lost(store) == (TURNS, 0)
    done = _run([*lightmem, "--path", str(store), "add", "v", "one more note"])
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr == "", done.stderr[-2000:]


def test_ctrl_c_while_the_model_loads_waits_for_the_load() -> None:
    from lightmem_core.embedding import _interrupts_deferred

    steps: list[str] = []

    def import_something() -> None:
        with _interrupts_deferred():
            signal.raise_signal(signal.SIGINT)  # as if Ctrl-C came in the middle of an import
            steps.append("the import finished")

    with pytest.raises(KeyboardInterrupt):
        import_something()
    assert steps == ["the import finished"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.fixture(autouse=True)
def _no_proxy_for_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
