"""The same engine against a real Chroma server on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from lightmem_core import LightMem, StorageError
from lightmem_core.testing import HashingEmbedder

pytestmark = pytest.mark.slow


def test_server_backed_cycle(tmp_path: Path, chroma_server: str) -> None:
    with LightMem(tmp_path / "s", embedder=HashingEmbedder(), chroma_url=chroma_server) as mem:
        assert mem.stats()["vector_index"] == chroma_server
        mem.add("alice", "I just adopted a beagle called Max.", turn_id="t1")
        mem.add("bob", "My cat is called Whiskers.", turn_id="t1")
        assert mem.search("alice", "beagle")[0].source_ids == ("t1",)
        assert all("Whiskers" not in h.text for h in mem.search("alice", "cat called", k=10))
        mem.flush()
        assert mem.stats("alice")["vectors"] == 1
        receipt = mem.forget("alice")
        assert receipt.vectors == 1
        assert mem.search("alice", "beagle") == []
        assert mem.stats("bob")["vectors"] == 1


def test_host_and_port_configuration(tmp_path: Path, chroma_server: str) -> None:
    host, port = chroma_server.removeprefix("http://").split(":")
    with LightMem(tmp_path / "s", embedder=HashingEmbedder(), chroma_host=host, chroma_port=int(port),
                  collection_prefix="other") as mem:  # fmt: skip
        mem.add("carol", "Carol plays chess on Sundays", turn_id="t1")
        assert mem.search("carol", "chess")[0].source_ids == ("t1",)


def test_reindex_through_the_server(tmp_path: Path, chroma_server: str) -> None:
    with LightMem(tmp_path / "s", embedder=HashingEmbedder(), chroma_url=chroma_server,
                  collection_prefix="reidx") as mem:  # fmt: skip
        for i in range(5):
            mem.add("dave", f"dave note {i} on astronomy", turn_id=f"t{i}")
        assert mem.reindex() == 5
        assert mem.stats("dave")["vectors"] == 5


def test_unreachable_server_keeps_writes_and_fails_search_clearly(tmp_path: Path) -> None:
    with LightMem(
        tmp_path / "s", embedder=HashingEmbedder(), chroma_url="http://127.0.0.1:9"
    ) as mem:
        mem.add("erin", "this write must not be lost", turn_id="t1")
        with pytest.raises(StorageError, match="Chroma") as raised:
            mem.search("erin", "write")
        assert "http://127.0.0.1:9" in str(raised.value)  # the URL, not a tuple
        assert "('127.0.0.1'" not in str(raised.value)
        assert mem.export("erin")["turns"][0]["content"] == "this write must not be lost"
