"""Storage: the record store (the record of truth: SQLite embedded, PostgreSQL on a server)
and the vector index (Chroma, embedded or a server).

Both sit behind small protocols (:class:`RecordStore`, :class:`VectorIndex`); a second
backend is a new module that satisfies one of them.
"""

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from .postgres import PostgresRecordStore
    from .postgres_async import AsyncPostgresRecordStore

__all__ = [
    "Adjacent",
    "AsyncPostgresRecordStore",
    "ChromaVectorIndex",
    "ConsolidationChanges",
    "DeletedCounts",
    "Evidence",
    "NewRecord",
    "PendingVector",
    "PostgresRecordStore",
    "RecordChange",
    "RecordStore",
    "SQLiteRecordStore",
    "Surroundings",
    "VectorFilter",
    "VectorIndex",
]


def __getattr__(name: str) -> Any:
    # The PostgreSQL stores import their driver (extra ``postgres``) only when asked for.
    if name == "PostgresRecordStore":
        from .postgres import PostgresRecordStore

        return PostgresRecordStore
    if name == "AsyncPostgresRecordStore":
        from .postgres_async import AsyncPostgresRecordStore

        return AsyncPostgresRecordStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
