"""The embedded vector index shared between processes (``store/chroma_shared.py``): who may
call the host, what a guest sees when the host stops answering, and how errors travel."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from contextlib import suppress
from multiprocessing import AuthenticationError
from multiprocessing.connection import Connection, answer_challenge
from pathlib import Path

import pytest

from lightmem_core import LightMem, StorageError, StoreInUse
from lightmem_core.store.chroma_shared import SharedChromaIndex
from lightmem_core.testing import HashingEmbedder

HOST = textwrap.dedent(
    """
    import sys, time
    from lightmem_core import LightMem
    from lightmem_core.testing import HashingEmbedder

    with LightMem(sys.argv[1], embedder=HashingEmbedder()) as mem:
        mem.add("u", "a memory in the hosting process")
        mem.flush()
        print("hosting", flush=True)
        time.sleep(120)
    """
)


DIM = len(HashingEmbedder().embed(["x"])[0])


def _lock_fields(store: Path) -> list[str]:
    return (store / ".lock").read_text().split()


def test_a_caller_without_the_key_is_refused(tmp_path: Path) -> None:
    with LightMem(tmp_path / "s", embedder=HashingEmbedder()) as mem:
        mem.add("u", "private")
        mem.flush()
        address = _lock_fields(tmp_path / "s")[2]
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(address)
        stranger = Connection(sock.detach())
        with pytest.raises(AuthenticationError):  # the host's challenge, answered wrongly
            answer_challenge(stranger, b"not the key")
        with suppress(OSError):  # the host may have hung up already
            stranger.send(("lightmem", "count", ("u",), {}))
        with pytest.raises((EOFError, OSError)):  # hung up on, unanswered
            stranger.recv()
        stranger.close()
        assert mem.stats("u")["vectors"] == 1  # the host serves on


def test_the_lock_file_is_private_to_the_owner(tmp_path: Path) -> None:
    with LightMem(tmp_path / "s", embedder=HashingEmbedder()) as mem:
        mem.add("u", "opens the index")
        mem.flush()
        assert (tmp_path / "s" / ".lock").stat().st_mode & 0o777 == 0o600


@pytest.fixture
def other_host(tmp_path: Path) -> subprocess.Popen[str]:
    """A process hosting the store at ``tmp_path / 's'``, until the test ends."""
    host = subprocess.Popen(
        [sys.executable, "-c", HOST, str(tmp_path / "s")], stdout=subprocess.PIPE, text=True
    )
    assert host.stdout is not None
    assert host.stdout.readline().strip() == "hosting"
    yield host
    host.kill()
    host.wait(timeout=60)


def test_a_guest_forwards_to_the_host(tmp_path: Path, other_host: subprocess.Popen[str]) -> None:
    index = SharedChromaIndex(tmp_path / "s")
    try:
        assert not index.hosting
        assert index.count("u") == 1
        # The store's dimension (the host's HashingEmbedder): users may share a collection.
        index.upsert("v", ["m1"], [[1.0] + [0.0] * (DIM - 1)], [{"tier": "mtm"}])
        assert index.query("v", [1.0] + [0.0] * (DIM - 1), k=3) == [("m1", pytest.approx(1.0))]
        assert index.delete_user("v") == 1
    finally:
        index.close()


def test_errors_come_back_typed(tmp_path: Path, other_host: subprocess.Popen[str]) -> None:
    index = SharedChromaIndex(tmp_path / "s")
    try:
        with pytest.raises(StorageError, match="upsert failed"):  # wrong dimension, host-side
            index.upsert("u", ["x"], [[1.0, 2.0]], [{"tier": "mtm"}])
        assert index.count("u") == 1  # and the connection still works
    finally:
        index.close()


def test_a_stopped_host_is_reported(tmp_path: Path, other_host: subprocess.Popen[str]) -> None:
    index = SharedChromaIndex(tmp_path / "s", answer_timeout_s=1.0)
    os.kill(other_host.pid, signal.SIGSTOP)
    try:
        with pytest.raises(StoreInUse, match=f"pid {other_host.pid}"):
            index.count("u")
    finally:
        os.kill(other_host.pid, signal.SIGCONT)
    assert index.count("u") == 1  # once it runs again, so do the calls
    index.close()


def test_a_deep_store_listens_in_a_private_temporary_folder(tmp_path: Path) -> None:
    """Unix socket paths are short: a store too deep for one listens elsewhere, privately."""
    store = tmp_path / ("deep" * 30) / "s"
    with LightMem(store, embedder=HashingEmbedder()) as mem:
        mem.add("u", "far down")
        mem.flush()
        address = Path(_lock_fields(store)[2])
        assert not address.is_relative_to(store)
        assert address.parent.stat().st_mode & 0o777 == 0o700
        index = SharedChromaIndex(store)  # this process: it shares the host
        assert index.count("u") == 1
        index.close()
