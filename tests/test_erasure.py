"""Erasure leaves nothing of the user in any file of the store: not the user id (an e-mail
address here), not their words, not their metadata, not the bytes of their vectors, raw or
normalised. Chroma's SQLite, its segment folders and LightMem's SQLite all included."""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from lightmem_core import LightMem
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
