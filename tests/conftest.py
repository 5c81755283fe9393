"""Shared fixtures: stores on real SQLite files and Chroma, the real MiniLM model (loaded
once), real Chroma and PostgreSQL servers on loopback, and a tiny sentence-transformers model
built here."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lightmem_core import LightMem, testing
from lightmem_core.embedding import SentenceTransformerEmbedder, default_embedder
from lightmem_core.testing import HashingEmbedder

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture
def mem(tmp_path: Path) -> Iterator[LightMem]:
    """A store on real SQLite and embedded Chroma, with the fast deterministic embedder."""
    with LightMem(tmp_path / "store", embedder=HashingEmbedder()) as store:
        yield store


@pytest.fixture(scope="session")
def minilm() -> SentenceTransformerEmbedder:
    """The real default embedder, loaded once for the whole session."""
    embedder = default_embedder()
    assert embedder.dimension == 384
    return embedder


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``chroma run`` server on 127.0.0.1, stopped by its pid at the end."""
    try:
        with testing.chroma_server(tmp_path_factory.mktemp("chroma-server")) as url:
            yield url
    except RuntimeError as err:
        pytest.fail(str(err))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server on 127.0.0.1 (a fresh cluster in a temporary folder, stopped
    by its pid at the end). Skipped, saying how to get one, where the machine has no
    PostgreSQL binaries, unless ``LIGHTMEM_REQUIRE_POSTGRES=1`` (CI) makes that a failure."""
    try:
        # fsync off: no test here crashes the server itself, only its clients.
        with testing.postgres_server(fsync=False) as url:
            yield url
    except testing.PostgresNotFound as err:
        if os.environ.get("LIGHTMEM_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"LIGHTMEM_REQUIRE_POSTGRES=1 but {err}")
        pytest.skip(f"PostgreSQL tests skipped: {err}")
    except RuntimeError as err:
        pytest.fail(str(err))


@pytest.fixture
def postgres_db(postgres_url: str) -> Iterator[str]:
    """The URL of a new, empty database on the test server, dropped afterwards."""
    psycopg = pytest.importorskip("psycopg")
    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield postgres_url.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def postgres_store(postgres_db: str) -> Iterator[Callable[..., object]]:
    """``make(**options)`` opens a :class:`PostgresRecordStore` on the test database;
    every one opened is closed afterwards."""
    from lightmem_core.store.postgres import PostgresRecordStore

    opened: list[PostgresRecordStore] = []

    def make(**options: object) -> PostgresRecordStore:
        store = PostgresRecordStore(postgres_db, **options)  # type: ignore[arg-type]
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


def _tiny_bert(root: Path, *, classifier: bool) -> Path:
    """A 2-layer BERT (hidden size 64) with its own WordPiece tokenizer, saved to a folder."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        BertModel,
        PreTrainedTokenizerFast,
    )

    corpus = [
        "alice adopted a beagle called max",
        "bob moved to berlin last spring",
        "the weather is nice today in paris",
        "what pet does alice have",
    ] * 4
    wordpiece = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    wordpiece.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordPieceTrainer(
        vocab_size=200, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    )
    wordpiece.train_from_iterator(corpus, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=wordpiece,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    config = BertConfig(
        vocab_size=wordpiece.get_vocab_size(),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=128,
        num_labels=1,
    )
    model = BertForSequenceClassification(config) if classifier else BertModel(config)
    model.save_pretrained(root)
    tokenizer.save_pretrained(root)
    return root


@pytest.fixture(scope="session")
def tiny_st_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny sentence-transformers model: exercises the real loading path, no download."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    root = tmp_path_factory.mktemp("tiny-st")
    raw = _tiny_bert(root / "raw", classifier=False)
    transformer = Transformer(str(raw), max_seq_length=64)
    pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
    model_dir = root / "model"
    SentenceTransformer(modules=[transformer, pooling], device="cpu").save(str(model_dir))
    return model_dir


@pytest.fixture(scope="session")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random cross-encoder (BERT with a 1-label head), saved to a folder."""
    return _tiny_bert(tmp_path_factory.mktemp("tiny-ce"), classifier=True)


@pytest.fixture(scope="session")
def tiny_lm_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random causal LM (2-layer Llama, byte-level BPE) with a chat template."""
    from _tiny_models import build_tiny_causal_lm

    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm") / "model")


@pytest.fixture(scope="session")
def tiny_lm_no_template_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same kind of tiny causal LM, its tokenizer without a chat template."""
    from _tiny_models import build_tiny_causal_lm

    return build_tiny_causal_lm(
        tmp_path_factory.mktemp("tiny-lm-plain") / "model", chat_template=False
    )
