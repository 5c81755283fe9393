"""LightMem: lightweight long-term memory for LLM agents.

    from lightmem_core import LightMem

    mem = LightMem(path="./memory")
    mem.add("alice", "I just adopted a beagle called Max.", session_id="s1")
    for hit in mem.search("alice", "What pet does Alice have?"):
        print(hit.tier, hit.score, hit.text, hit.source_ids)

Importing this package is cheap: torch, sentence-transformers and chromadb load on first use.
"""

from ._config import DEFAULT_EMBEDDER, LightMemConfig
from ._errors import (
    ConfigurationError,
    ConsolidationInProgress,
    ContentTooLarge,
    DuplicateTurnId,
    EmbeddingDimensionMismatch,
    InvalidArgument,
    InvalidContent,
    InvalidTimestamp,
    InvalidUserId,
    LightMemError,
    MissingDependency,
    ModelIntegrityError,
    StorageError,
    StoreClosed,
    StoreInUse,
    StoreNotWritable,
    ValidationError,
)
from ._memory import LightMem
from ._tokens import TokenCounter, approx_token_count
from ._types import (
    ConsolidationReport,
    Context,
    ForgetReceipt,
    Hit,
    Memory,
    SearchResults,
    Status,
    Tier,
    TimeReference,
    Turn,
)
from ._validation import user_id as check_user_id
from .consolidation import Abstractor, KnowledgeCandidate
from .embedding import Embedder
from .retrieval import Reranker
from .writer import MemoryDraft, Writer

__version__ = "0.1.0"
"""The version of the ``lightmem-slm`` distribution: set here only (``pyproject.toml``
reads it; ``CHANGELOG.md`` says what changed)."""

__all__ = [
    "DEFAULT_EMBEDDER",
    "Abstractor",
    "ConfigurationError",
    "ConsolidationInProgress",
    "ConsolidationReport",
    "ContentTooLarge",
    "Context",
    "DuplicateTurnId",
    "Embedder",
    "EmbeddingDimensionMismatch",
    "ForgetReceipt",
    "Hit",
    "InvalidArgument",
    "InvalidContent",
    "InvalidTimestamp",
    "InvalidUserId",
    "KnowledgeCandidate",
    "LightMem",
    "LightMemConfig",
    "LightMemError",
    "Memory",
    "MemoryDraft",
    "MissingDependency",
    "ModelIntegrityError",
    "Reranker",
    "SearchResults",
    "Status",
    "StorageError",
    "StoreClosed",
    "StoreInUse",
    "StoreNotWritable",
    "Tier",
    "TimeReference",
    "TokenCounter",
    "Turn",
    "ValidationError",
    "Writer",
    "__version__",
    "approx_token_count",
    "check_user_id",
]
