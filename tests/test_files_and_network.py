"""Files private to the user, no path escape through user ids, no network."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest
import pytest_socket

from lightmem_core import LightMem
from lightmem_core.testing import HashingEmbedder

HOSTILE_IDS = [
    "../escape",
    "../../../../tmp/lightmem-escape",
    "/tmp/lightmem-absolute",
    "a/b/c",
    "..",
    ".",
    "..\\..\\windows",
    "~root",
    "$HOME",
    "con",
    "lightmem_" + "0" * 40,  # looks like a collection name
]


def _modes(root: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for folder, folders, files in os.walk(root):
        for name in [*folders, *files]:
            path = Path(folder, name)
            found[str(path.relative_to(root))] = stat.S_IMODE(path.stat().st_mode)
    return found


def test_every_folder_and_file_of_the_store_is_private(tmp_path: Path) -> None:
    path = tmp_path / "store"
    with LightMem(path, embedder=HashingEmbedder()) as mem:
        for user in ("alice", "bob"):
            mem.add_many(user, [{"content": f"note {i} of {user}"} for i in range(150)])
        mem.remember("alice", "Alice likes tea.")
        mem.flush()
        mem.consolidate()
    modes = _modes(path)
    assert len(modes) > 5  # the SQLite file and Chroma's folders and files
    wrong = {
        name: oct(mode)
        for name, mode in modes.items()
        if mode != (0o700 if (path / name).is_dir() else 0o600)
    }
    assert wrong == {}


@pytest.mark.parametrize("user", HOSTILE_IDS)
def test_no_user_id_reaches_the_file_system(tmp_path: Path, user: str) -> None:
    before = set(tmp_path.iterdir())
    path = tmp_path / "store"
    with LightMem(path, embedder=HashingEmbedder()) as mem:
        mem.add(user, "hello from a hostile id")
        mem.flush()
        assert [h.text for h in mem.search(user, "hello")] == ["hello from a hostile id"]
        mem.forget(user)
    assert set(tmp_path.iterdir()) - before == {path}  # nothing was created beside it
    names = [name for folder, folders, files in os.walk(path) for name in [*folders, *files]]
    assert all(user not in name for name in names if len(user) > 3)
    assert not Path("/tmp/lightmem-escape").exists()
    assert not Path("/tmp/lightmem-absolute").exists()


@pytest.mark.filterwarnings("ignore:A test tried to use socket")
def test_the_suite_cannot_reach_the_network() -> None:
    with pytest.raises(pytest_socket.SocketConnectBlockedError):
        socket.create_connection(("203.0.113.1", 80), timeout=1)  # TEST-NET-3, never routed
    with pytest.raises(pytest_socket.SocketConnectBlockedError):
        socket.create_connection(("pypi.org", 443), timeout=1)


def test_loopback_stays_open_for_local_servers() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    try:
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            pass
    finally:
        server.close()
