"""Backends given to ``LightMem`` (``records=``, ``vectors=``) are used instead of the
defaults, checked against their contracts once at construction, and closed with it."""

from __future__ import annotations

from pathlib import Path

import pytest

from lightmem_core import ConfigurationError, LightMem, StorageError
from lightmem_core.store import SQLiteRecordStore
from lightmem_core.store.chroma import ChromaVectorIndex
from lightmem_core.testing import HashingEmbedder


def test_given_backends_are_used_and_closed(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    records = SQLiteRecordStore(tmp_path / "elsewhere" / "records.sqlite3")
    vectors = ChromaVectorIndex(path=tmp_path / "elsewhere" / "vectors")
    store = tmp_path / "store"
    with LightMem(store, embedder=HashingEmbedder(), records=records, vectors=vectors) as mem:
        mem.add("ana", "My sister Lena lives in Porto.")
        mem.flush()
        assert vectors.count("ana") == 1  # the given index, not one in the store folder
        assert "Porto" in mem.search("ana", "where does Lena live?")[0].text
        assert mem.forget("ana").vectors == 1
    assert not (store / "records.sqlite3").exists()
    assert not (store / "chroma").exists()
    with pytest.raises(StorageError, match="closed"):  # closed with the engine
        records.users()


def test_a_backend_missing_part_of_its_contract_is_refused_before_anything_is_made(
    tmp_path: Path,
) -> None:
    class HalfAnIndex:
        def upsert(self, *args: object) -> None: ...

    with pytest.raises(ConfigurationError, match=r"vectors= must be a VectorIndex.*query"):
        LightMem(tmp_path / "s", embedder=HashingEmbedder(), vectors=HalfAnIndex())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="records= must be a RecordStore"):
        LightMem(tmp_path / "s", embedder=HashingEmbedder(), records=object())  # type: ignore[arg-type]
    assert not (tmp_path / "s").exists()


def test_a_given_index_and_a_chroma_server_are_not_both_taken(tmp_path: Path) -> None:
    vectors = ChromaVectorIndex(path=tmp_path / "v")
    try:
        with pytest.raises(ConfigurationError, match="not both"):
            LightMem(
                tmp_path / "s",
                embedder=HashingEmbedder(),
                vectors=vectors,
                chroma_url="http://127.0.0.1:9",
            )
    finally:
        vectors.close()
