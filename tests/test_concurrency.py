"""Concurrency: threads and processes adding and searching for different users at once.

No write is lost, no error escapes (SQLite's "database is locked" least of all), and no
search returns another user's memory. Embedded Chroma is safe for one process only, so a
second process on an embedded store is refused with a typed error, and several processes
share one store through a Chroma server.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
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
    import sys
    from lightmem_core import LightMem
    from lightmem_core.testing import HashingEmbedder

    path, server, users = sys.argv[1], sys.argv[2], sys.argv[3:]
    with LightMem(path, embedder=HashingEmbedder(), chroma_url=server or None,
                  collection_prefix="procs", busy_timeout_s=60) as mem:
        for i in range(40):
            for user in users:
                mem.add(user, f"{user} wrote note {i} about boats", turn_id=f"t{i}")
                for hit in mem.search(user, "note about boats", k=5):
                    assert hit.text.startswith(user + " "), (user, hit.text)
        mem.flush()
    print("done", flush=True)
    """
)


def _worker(path: Path, server: str, users: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, str(path), server, *users],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )


@pytest.mark.slow
def test_processes_share_one_store_through_a_chroma_server(
    tmp_path: Path, chroma_server: str
) -> None:
    path = tmp_path / "shared"
    groups = [[f"p{p}u{u}" for u in range(2)] for p in range(3)]
    workers = [_worker(path, chroma_server, users) for users in groups]
    for worker in workers:
        out, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err
        assert out.strip() == "done"
        assert "database is locked" not in err
    with LightMem(
        path, embedder=HashingEmbedder(), chroma_url=chroma_server, collection_prefix="procs"
    ) as mem:
        for user in [u for users in groups for u in users]:
            stats = mem.stats(user)
            assert stats["turns"] == 40, user
            assert stats["vectors"] == 40, user
            assert {h.text.split()[0] for h in mem.search(user, "boats", k=20)} == {user}


def test_a_second_process_on_an_embedded_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with LightMem(path, embedder=HashingEmbedder()) as mem:
        mem.add("u", "held by the test process")
        worker = _worker(path, "", ["other"])
        _, err = worker.communicate(timeout=120)
        assert worker.returncode != 0
        assert "StoreInUse" in err
        assert f"pid {os.getpid()}" in err
        assert mem.stats("u")["turns"] == 1  # the holder is unaffected
    worker = _worker(path, "", ["other"])  # once released, another process may open it
    _, err = worker.communicate(timeout=300)
    assert worker.returncode == 0, err
    with LightMem(path, embedder=HashingEmbedder()) as mem:
        assert mem.stats("other")["turns"] == 40


def test_the_same_process_may_reopen_its_store(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with LightMem(path, embedder=HashingEmbedder()) as first:
        first.add("u", "one")
        with LightMem(path, embedder=HashingEmbedder()) as second:
            assert second.stats("u")["turns"] == 1


def test_store_in_use_is_a_typed_storage_error() -> None:
    from lightmem_core import LightMemError, StorageError

    assert issubclass(StoreInUse, StorageError)
    assert issubclass(StoreInUse, LightMemError)
