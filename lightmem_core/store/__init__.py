"""Storage: the record store (SQLite, the record of truth) and the vector index (Chroma).

Both sit behind small protocols (:class:`RecordStore`, :class:`VectorIndex`); a second
backend is a new module that satisfies one of them.
"""

from ._contracts import (
    Adjacent,
    ConsolidationChanges,
    DeletedCounts,
    Evidence,
    NewRecord,
    PendingVector,
    RecordChange,
    RecordStore,
    Surroundings,
    VectorFilter,
    VectorIndex,
)
from .chroma import ChromaVectorIndex
from .sqlite import SQLiteRecordStore

__all__ = [
    "Adjacent",
    "ChromaVectorIndex",
    "ConsolidationChanges",
    "DeletedCounts",
    "Evidence",
    "NewRecord",
    "PendingVector",
    "RecordChange",
    "RecordStore",
    "SQLiteRecordStore",
    "Surroundings",
    "VectorFilter",
    "VectorIndex",
]
