"""Erasure leaves nothing of the user in any file of the store: not the user id (an e-mail
address here), not their words, not their metadata, not the bytes of their vectors, raw or
normalised. Chroma's SQLite, its segment folders and LightMem's SQLite all included."""

from __future__ import annotations

import math
import platform
import struct
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from lightmem_core import LightMem
from lightmem_core.store.chroma import owner_token, partition_number
from lightmem_core.testing import HashingEmbedder

USER = "zqx.marker@example.com"
OTHER = "bob"


def _windows(vector: list[float]) -> list[bytes]:
    """Distinctive byte runs of a vector as float32, raw and normalised (Chroma's cosine
    space stores the unit vector): seven values around its first non-zero one."""
    first = next(i for i, v in enumerate(vector) if v)
    start = max(0, first - 3)
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    raw = vector[start : start + 7]
    return [
        struct.pack(f"<{len(raw)}f", *raw),
        struct.pack(f"<{len(raw)}f", *(v / norm for v in raw)),
    ]


def _files(root: Path) -> Iterator[tuple[Path, bytes]]:
    for path in root.rglob("*"):
        if path.is_file():  # not the host's socket
            yield path, path.read_bytes()


def _traces(root: Path, patterns: dict[str, bytes]) -> list[str]:
    return [
        f"{path.relative_to(root)}: {name}"
        for path, data in _files(root)
        for name, pattern in patterns.items()
        if pattern in data
    ]


@pytest.fixture
def patterns() -> dict[str, bytes]:
    vector = HashingEmbedder().embed(["zqxsecret plan number 7 for the garden"])[0]
    raw, unit = _windows(vector)
    return {
        "user id": USER.encode(),
        "user id (utf-16)": USER.encode("utf-16-le"),
        "owner token": owner_token(USER).encode(),
        "a word": b"zqxsecret",
        "metadata": b"zqxmeta",
        "vector": raw,
        "unit vector": unit,
    }


def test_forget_leaves_no_byte_of_the_user_in_any_file(
    tmp_path: Path, patterns: dict[str, bytes]
) -> None:
    store = tmp_path / "store"
    with LightMem(store, embedder=HashingEmbedder()) as mem:
        # Enough vectors that Chroma writes its HNSW segment files, not only its queue.
        mem.add_many(
            USER,
            [
                {
                    "content": f"zqxsecret plan number {i} for the garden",
                    "metadata": {"m": "zqxmeta"},
                }
                for i in range(1200)
            ],
        )
        mem.remember(USER, "zqxsecret fact in long-term memory", metadata={"m": "zqxmeta"})
        mem.add(OTHER, "bob's own note stays")
        mem.flush()
        assert _traces(store, patterns)  # the test can see the user before
        receipt = mem.forget(USER)
        assert receipt.vectors == 1201
        assert receipt.remaining == ()  # embedded: nothing left to scrub elsewhere
        assert mem.search(OTHER, "note")  # the other user is intact
    assert _traces(store, patterns) == []


def test_forget_of_a_user_in_a_shared_partition_leaves_no_byte_of_them(
    tmp_path: Path, patterns: dict[str, bytes]
) -> None:
    # A user with a few vectors shares a partition collection with others; erasure rebuilds
    # that partition without them (deleting rows would leave their vectors in its HNSW files).
    neighbour = next(
        name
        for name in (f"neighbour-{i}" for i in range(10_000))
        if partition_number(name) == partition_number(USER)
    )
    store = tmp_path / "store"
    with LightMem(store, embedder=HashingEmbedder()) as mem:
        for i in range(300):  # enough for HNSW segment files in the partition
            mem.add(neighbour, f"neighbour note {i} about the orchard")
        mem.add_many(
            USER,
            [
                {
                    "content": f"zqxsecret plan number {i} for the garden",
                    "metadata": {"m": "zqxmeta"},
                }
                for i in range(40)
            ],
        )
        mem.delete(USER, memory_ids=[h.memory_id for h in mem.search(USER, "plan 3", k=2)])
        mem.flush()
        assert _traces(store, patterns)
        receipt = mem.forget(USER)
        assert receipt.remaining == ()
        assert mem.stats(neighbour)["vectors"] == 300
        assert "orchard" in mem.search(neighbour, "orchard note 12")[0].text
    assert _traces(store, patterns) == []


def test_a_chroma_server_receipt_says_what_the_server_keeps(
    chroma_server: str, tmp_path: Path
) -> None:
    with LightMem(tmp_path / "s", embedder=HashingEmbedder(), chroma_url=chroma_server) as mem:
        mem.add(USER, "zqxsecret on a server")
        mem.flush()
        receipt = mem.forget(USER)
    assert len(receipt.remaining) == 1
    assert "chroma vacuum" in receipt.remaining[0]
    assert receipt.to_dict()["remaining"] == list(receipt.remaining)


FREED_MEMORY = textwrap.dedent(
    """
    import ctypes, sys
    from lightmem_core import LightMem
    from lightmem_core.testing import HashingEmbedder

    LightMem(sys.argv[1], embedder=HashingEmbedder()).close()
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = (ctypes.c_size_t,)
    libc.free.argtypes = (ctypes.c_void_p,)
    size = 8192  # past glibc's per-thread cache, which keeps chunks as they are
    secret = b"zqxsecret" * (size // 9)
    first = libc.malloc(size)
    ctypes.memmove(first, secret, len(secret))
    libc.free(first)
    again = libc.malloc(size)
    print("reused" if again == first else "other", ctypes.string_at(again, size).count(b"zqx"))
    """
)


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="freed memory is overwritten with glibc only",
)
def test_memory_freed_in_a_process_with_a_store_is_overwritten(tmp_path: Path) -> None:
    # Chroma's HNSW writer persists buffers it never zeroed (chroma-core/chroma#7688), so
    # a file written after an erasure could otherwise hold the erased user's bytes.
    done = subprocess.run(
        [sys.executable, "-c", FREED_MEMORY, str(tmp_path / "s")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    where, traces = done.stdout.split()
    assert where == "reused"  # the same chunk came back, as glibc does
    assert traces == "0"
