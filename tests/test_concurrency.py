"""Concurrency: threads and processes adding and searching for different users at once.

No write is lost, no error escapes (SQLite's "database is locked" least of all), and no
search returns another user's memory: on an embedded store (one process hosts Chroma on
disk, the others forward to it, and a guest takes over when the host goes) and through a
Chroma server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from lightmem_core import LightMem, StoreInUse
from lightmem_core.testing import HashingEmbedder

TURNS = 40


def _work(mem: LightMem, user: str, errors: list[BaseException]) -> None:
    """Add turns for ``user``, searching after each; every hit must be the user's own."""
    try:
        for i in range(TURNS):
            mem.add(user, f"{user} wrote note {i} about boats", turn_id=f"t{i}")
            if i % 2:
                mem.add_many(user, [{"content": f"{user} batch {i}", "turn_id": f"b{i}"}])
            for hit in mem.search(user, "note about boats", k=5):
                assert hit.text.startswith(user + " "), (user, hit.text)
    except BaseException as err:  # collected: a thread's error must fail the test
        errors.append(err)


def _run_threads(mem: LightMem, users: list[str]) -> None:
    errors: list[BaseException] = []
    threads = [threading.Thread(target=_work, args=(mem, u, errors)) for u in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    mem.flush()
    for user in users:
        stats = mem.stats(user)
        assert stats["turns"] == TURNS + TURNS // 2, user
        assert stats["mtm"] == stats["turns"]
        assert stats["vectors"] == stats["mtm"]
        assert stats["pending_index"] == 0


def test_threads_of_one_process_share_an_embedded_store(tmp_path: Path) -> None:
    with LightMem(tmp_path / "s", embedder=HashingEmbedder()) as mem:
        _run_threads(mem, [f"user{i}" for i in range(6)])


@pytest.mark.slow
def test_threads_through_a_chroma_server(tmp_path: Path, chroma_server: str) -> None:
    with LightMem(
        tmp_path / "s",
        embedder=HashingEmbedder(),
        chroma_url=chroma_server,
        collection_prefix="threads",
    ) as mem:
        _run_threads(mem, [f"user{i}" for i in range(6)])


WORKER = textwrap.dedent(
    """
    import os, sys
    from lightmem_core import LightMem
    from lightmem_core.testing import HashingEmbedder

    path, server, turns, users = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    with LightMem(path, embedder=HashingEmbedder(), chroma_url=server or None,
                  collection_prefix="procs", busy_timeout_s=60) as mem:
        for i in range(turns):
            for user in users:
                mem.add(user, f"{user} wrote note {i} about boats", turn_id=f"t{i}")
                for hit in mem.search(user, "note about boats", k=5):
                    assert hit.text.startswith(user + " "), (user, hit.text)
                if i == 0:
                    print("started", flush=True)
        mem.flush()
        print("done", "host" if getattr(mem._vectors(), "hosting", False) else "guest",
              flush=True)
    """
)


def _worker(path: Path, server: str, users: list[str], turns: int = 40) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, str(path), server, str(turns), *users],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )


def _run_processes(path: Path, server: str) -> None:
    """3 processes of 2 users each, adding and searching at once; then every write is
    there, with its vector, and nobody sees anybody else."""
    groups = [[f"p{p}u{u}" for u in range(2)] for p in range(3)]
    workers = [_worker(path, server, users) for users in groups]
    roles = []
    for worker in workers:
        out, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err
        assert out.split()[-2] == "done"
        roles.append(out.split()[-1])
        assert "database is locked" not in err
    if not server:
        assert "host" in roles  # somebody hosted Chroma; the others forwarded to it
    with LightMem(
        path, embedder=HashingEmbedder(), chroma_url=server or None, collection_prefix="procs"
    ) as mem:
        for user in [u for users in groups for u in users]:
            stats = mem.stats(user)
            assert stats["turns"] == 40, user
            assert stats["vectors"] == 40, user
            assert stats["pending_index"] == 0, user
            assert {h.text.split()[0] for h in mem.search(user, "boats", k=20)} == {user}


@pytest.mark.slow
def test_processes_share_one_store_through_a_chroma_server(
    tmp_path: Path, chroma_server: str
) -> None:
    _run_processes(tmp_path / "shared", chroma_server)


def test_processes_share_one_embedded_store(tmp_path: Path) -> None:
    _run_processes(tmp_path / "shared", "")


def test_a_guest_takes_over_when_the_host_is_killed(tmp_path: Path) -> None:
    """The test process hosts; a guest process writes through it; the host's Chroma goes
    away mid-run (closed here, then a second guest's host is SIGKILLed): the guests carry
    on, hosting in turn, and lose nothing."""
    path = tmp_path / "s"
    mem = LightMem(path, embedder=HashingEmbedder(), collection_prefix="procs")
    mem.add("host-user", "the test process hosts the vector index")
    mem.flush()
    assert mem._vectors().hosting  # type: ignore[attr-defined]
    first = _worker(path, "", ["g1"], turns=5000)
    assert first.stdout is not None
    assert first.stdout.readline().strip() == "started"  # a guest, calling through us
    mem.close()  # hand over mid-run: the guest hosts from now on
    _wait_for(lambda: _host_pid(path) == str(first.pid))
    second = _worker(path, "", ["g2"], turns=150)
    assert second.stdout is not None
    assert second.stdout.readline().strip() == "started"
    assert first.poll() is None  # still writing
    first.kill()  # SIGKILL the host, mid-run
    first.wait(timeout=60)
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0, err
    assert out.split()[-2:] == ["done", "host"]  # it took over from the killed process
    with LightMem(path, embedder=HashingEmbedder(), collection_prefix="procs") as mem:
        assert mem.stats("host-user")["vectors"] == 1
        assert mem.stats("g2")["turns"] == mem.stats("g2")["vectors"] == 150
        g1 = mem.stats("g1")
        mem.flush()  # the killed process may have left pending rows: they are not lost
        assert mem.stats("g1")["vectors"] == g1["turns"] > 0


def _host_pid(path: Path) -> str:
    fields = (path / ".lock").read_text().split()
    return fields[0] if fields else ""


def _wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_the_same_process_may_reopen_its_store(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with LightMem(path, embedder=HashingEmbedder()) as first:
        first.add("u", "one")
        with LightMem(path, embedder=HashingEmbedder()) as second:
            assert second.stats("u")["turns"] == 1
            second.add("u", "two")
        first.flush()
        assert first.stats("u")["vectors"] == 2  # still hosting after the second closed


def test_store_in_use_is_a_typed_storage_error() -> None:
    from lightmem_core import LightMemError, StorageError

    assert issubclass(StoreInUse, StorageError)
    assert issubclass(StoreInUse, LightMemError)


def test_a_consolidate_command_runs_beside_the_app(tmp_path: Path) -> None:
    """`lightmem consolidate` as a separate process (a cron job) while the app holds the
    embedded store: it works through the app's Chroma, and the app sees its result."""
    path = tmp_path / "s"
    with LightMem(path, embedder=HashingEmbedder()) as app:
        app.add("alice", "I live in Paris.", speaker="Alice")
        app.flush()
        env = {**os.environ, "LIGHTMEM_EMBEDDER": "hashing", "LIGHTMEM_PATH": str(path)}
        done = subprocess.run(
            [sys.executable, "-m", "lightmem_core.cli", "consolidate", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        assert '"new": 1' in done.stdout
        assert app.stats("alice")["ltm"] == 1
        hits = app.search("alice", "where does Alice live?", tiers=["ltm"])
        assert [h.text for h in hits] == ["Alice lives in Paris."]
        assert app.stats("alice")["vectors"] == 2  # the record's vector, put there by the job


def test_a_forked_child_does_not_hold_the_store(tmp_path: Path) -> None:
    """A child forked from a host shares its open files; it must not keep the store's lock
    (and with it every other process from hosting) once the parent lets go."""
    import fcntl

    path = tmp_path / "s"
    mem = LightMem(path, embedder=HashingEmbedder())
    mem.add("u", "hosted by the parent")
    mem.flush()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child only waits to be killed
        time.sleep(60)
        os._exit(0)
    try:
        mem.close()
        fd = os.open(path / ".lock", os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free, though the child lives
        finally:
            os.close(fd)
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)


def test_a_forget_in_another_process_clears_this_ones_caches(tmp_path: Path) -> None:
    """A forgotten user's query texts and speaker names must not live on in the caches of
    the other processes on the store."""
    path = tmp_path / "s"
    with LightMem(path, embedder=HashingEmbedder()) as mem:
        mem.add("alice", "I adopted a beagle called Max.", speaker="Alice")
        mem.search("alice", "what is the name of Alice's beagle?")
        assert "alice" in mem._searcher.cached_users()
        env = {**os.environ, "LIGHTMEM_EMBEDDER": "hashing", "LIGHTMEM_PATH": str(path)}
        forget = [sys.executable, "-m", "lightmem_core.cli", "forget", "alice", "--yes"]
        done = subprocess.run(forget, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        mem.search("bob", "anything")  # this process's next search, for anybody
        assert "alice" not in mem._searcher.cached_users()
        assert mem.stats("alice")["turns"] == 0
