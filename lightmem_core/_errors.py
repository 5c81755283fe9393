"""The exceptions LightMem raises.

Every error derives from :class:`LightMemError`, so ``except LightMemError`` catches them all.
Builtin bases are mixed in where they carry meaning, so callers that already catch
``ValueError`` or ``ImportError`` keep working::

    LightMemError
    ├── ValidationError (ValueError)           bad input; nothing was stored
    │   ├── InvalidUserId
    │   ├── InvalidContent
    │   │   └── ContentTooLarge
    │   ├── InvalidTimestamp
    │   ├── InvalidArgument
    │   └── DuplicateTurnId
    ├── ConfigurationError (ValueError)        the store or its configuration cannot be used
    │   ├── EmbeddingDimensionMismatch
    │   └── ModelIntegrityError                model weights failed their checksum
    ├── StorageError (OSError)                 the record store or vector index failed
    │   ├── StoreNotWritable (PermissionError)
    │   └── StoreInUse                         the process hosting an embedded store does not answer
    ├── MissingDependency (ImportError)        an optional extra is not installed
    ├── StoreClosed (RuntimeError)             the LightMem instance was closed
    └── ConsolidationInProgress (RuntimeError) another run is consolidating that user
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "ConsolidationInProgress",
    "ContentTooLarge",
    "DuplicateTurnId",
    "EmbeddingDimensionMismatch",
    "InvalidArgument",
    "InvalidContent",
    "InvalidTimestamp",
    "InvalidUserId",
    "LightMemError",
    "MissingDependency",
    "ModelIntegrityError",
    "StorageError",
    "StoreClosed",
    "StoreInUse",
    "StoreNotWritable",
    "ValidationError",
]


class LightMemError(Exception):
    """Root of every error LightMem raises."""


class ValidationError(LightMemError, ValueError):
    """An argument was rejected before anything was stored."""


class InvalidUserId(ValidationError):
    """A user id is missing, empty, too long, or contains control characters."""


class InvalidContent(ValidationError):
    """Message content is empty, not text, or not valid UTF-8."""


class ContentTooLarge(InvalidContent):
    """Message content exceeds the configured ``max_content_chars``."""


class InvalidTimestamp(ValidationError):
    """A timestamp could not be parsed."""


class InvalidArgument(ValidationError):
    """Any other argument (budget, role, metadata, ids) is malformed."""


class DuplicateTurnId(ValidationError):
    """The caller supplied a ``turn_id`` this user already has."""


class ConfigurationError(LightMemError, ValueError):
    """The configuration, or the store it points at, cannot be used as asked."""


class EmbeddingDimensionMismatch(ConfigurationError):
    """The embedder produces vectors of another size than the existing index holds."""


class ModelIntegrityError(ConfigurationError):
    """Model weights on disk do not match their published checksum."""


class StorageError(LightMemError, OSError):
    """The record store or the vector index failed."""


class StoreNotWritable(StorageError, PermissionError):
    """The store path cannot be created or written."""


class StoreInUse(StorageError):
    """Another process hosts this embedded store's vector index and does not answer.

    Processes that open one embedded store share its Chroma on disk through the process
    hosting it; this is raised when that process stops answering (stopped with SIGSTOP, or
    hung) while still holding the store. A host that exits is replaced without an error."""


class MissingDependency(LightMemError, ImportError):
    """An optional dependency is not installed; the message names the extra."""


class StoreClosed(LightMemError, RuntimeError):
    """The LightMem instance was used after ``close()``."""


class ConsolidationInProgress(LightMemError, RuntimeError):
    """Another consolidation (a thread, or a process on the same store) holds this user.

    Two runs of one user never overlap; wait for the other to finish, or let the scheduler
    pick the user up next time."""
