"""Storage: the record store (SQLite, the record of truth) and the vector index (Chroma).

Both sit behind small protocols (:class:`RecordStore`, :class:`VectorIndex`); a second
backend is a new module that satisfies one of them.
"""

from ._contracts import (
    ConsolidationChanges,
    DeletedCounts,
    Evidence,
    NewRecord,
    PendingVector,
    RecordChange,
    RecordStore,
    VectorFilter,
    VectorIndex,
)
from .chroma import ChromaVectorIndex
from .sqlite import SQLiteRecordStore

__all__ = [
    "ChromaVectorIndex",
    "ConsolidationChanges",
    "DeletedCounts",
    "Evidence",
    "NewRecord",
    "PendingVector",
    "RecordChange",
    "RecordStore",
    "SQLiteRecordStore",
    "VectorFilter",
    "VectorIndex",
]
