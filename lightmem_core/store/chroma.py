"""Chroma vector index: on disk (embedded) or a Chroma server, users in a fixed number of
partitions, heavy users in collections of their own.

Layout. A collection per user does not scale in users (``benchmarks/users.py``: at 10,000
users, 40,000 files, 10 GB of memory and 61 ms a search), and one collection for everyone
makes every query filter the whole store. So each user's vectors live in one of
:data:`PARTITIONS` partition collections, the one their *owner token* (a hash of the user
id; never the id itself) falls in, and every query of a partition is filtered by that token.
A filter in Chroma costs in proportion to the rows of its collection, so a user who reaches
``dedicate_at`` vectors in a tier is moved to collections of their own (*dedicated*), where a
query is a plain nearest-neighbour search; this also keeps consolidation's look-ups flat as a
user's long-term memory grows. Stores made before partitions have a dedicated collection for
every user, and go on working as they are (``lightmem reindex`` moves them to partitions).

Each user has two of each: mid-term entries, and long-term records. A filtered query in
Chroma evaluates its filter over every row before the vector search, so looking up
long-term records inside one mixed collection costs in proportion to the user's whole
memory; in a collection of their own it is not (consolidation does one per candidate).
Queries that want both tiers ask both and merge. A query asks the user's dedicated
collection and their partition both, so a user moved by another process (on a Chroma
server) is found in either place.

Isolation: a partition query is filtered by the owner token, and the engine re-reads every
hit from the record store by user id, so no query can surface another user's memory.
Collection names and tokens are hashes, so user ids appear in no name or metadata. We always
pass embeddings ourselves: Chroma's default embedding function (which would download a model)
is never used.

Erasure on disk. Deleting vectors is not enough to forget a user: Chroma leaves deleted rows
in freed pages of ``chroma.sqlite3`` and deleted vectors in its HNSW segment files. So the
embedded index drops the user's dedicated collections and *rebuilds* their partitions without
them (the other users' vectors copied into a new collection, which then takes the
partition's name), removes every segment folder no collection owns, and vacuums
``chroma.sqlite3`` (see :func:`scrub`). This reads Chroma's own SQLite schema (its
``segments`` and ``collections`` tables); ``tests/test_erasure.py`` holds it to the pinned
Chroma version. A Chroma server's files are the server's, and its partitions are shared with
other processes that may be writing: there the user's vectors are deleted, not rebuilt
around (see :meth:`ChromaVectorIndex.erasure_residue`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sqlite3
import stat
import threading
import time
import uuid
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import MissingDependency, StorageError, StoreNotWritable
from .._heap import overwrite_freed_memory
from ._contracts import VectorFilter

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

logger = logging.getLogger("lightmem")

__all__ = ["DEDICATE_AT", "PARTITIONS", "ChromaVectorIndex", "owner_token", "partition_number"]

#: How many partition collections (per tier) users are spread over. Part of a store's
#: layout: changing it needs a reindex.
PARTITIONS = 64
#: How many vectors in one tier move a user from their partition to collections of their own.
DEDICATE_AT = 1_000


def owner_token(user_id: str) -> str:
    """The user's mark on their vectors and in their collection names: a hash of the id."""
    return hashlib.sha256(user_id.encode("utf-8")).hexdigest()[:40]


def partition_number(user_id: str) -> int:
    """Which of the :data:`PARTITIONS` partitions holds the user's vectors."""
    return int(owner_token(user_id)[:8], 16) % PARTITIONS


def _chromadb() -> Any:
    # onnxruntime (pulled in by chromadb) phones home unless told not to.
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    try:
        import chromadb
    except ImportError as err:  # pragma: no cover - chromadb is a core dependency
        raise MissingDependency("chromadb is required: pip install lightmem-slm") from err
    return chromadb


class ChromaVectorIndex:
    """The :class:`~lightmem_core.store.VectorIndex` on Chroma."""

    def __init__(
        self,
        *,
        path: str | os.PathLike[str] | None = None,
        server: tuple[str, int, bool] | None = None,
        prefix: str = "lightmem",
        dedicate_at: int = DEDICATE_AT,
        sole_client: bool = False,
    ) -> None:
        """Open the index on disk at ``path``, or on the server ``(host, port, ssl)``.

        ``dedicate_at``: how many vectors in one tier move a user to collections of their
        own (any value is safe to change between runs: queries look in both places).
        ``sole_client``: every write to these collections goes through this object (the
        host of an embedded store), so a collection it found missing stays missing until
        it creates it, and is not asked for again."""
        if (path is None) == (server is None):
            raise ValueError("give exactly one of path or server")
        if dedicate_at < 1:
            raise ValueError("dedicate_at must be at least 1")
        if path is not None:
            overwrite_freed_memory()  # this process writes the HNSW files (see _heap.py)
        self._prefix = prefix
        self._path = Path(path) if path is not None else None
        self._dedicate_at = dedicate_at
        self._missing_ttl_s = float("inf") if sole_client else _MISSING_TTL_S
        self._collections: dict[str, Collection] = {}
        # Collections found missing, and when: another process (a shared server) may create
        # one, so "missing" is believed for a few seconds only.
        self._missing: dict[str, float] = {}
        # How many vectors each (user, tier) has in its partition, where known: counted
        # once, then kept up to date by upserts, so that only a user near the threshold
        # is counted again.
        self._partition_counts: dict[tuple[str, str], int] = {}
        self._rows: dict[str, int] = {}  # partitions' sizes, at least (see _partition_rows)
        # (user, tier) of dedicated users whose partition a query found empty of theirs, and
        # when: their next queries skip it (a query fewer per search) until the belief expires.
        self._partition_empty: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()  # the caches above
        # Writes: a promotion or a partition rebuild must not interleave with an upsert.
        self._write_lock = threading.RLock()
        self._erased = False  # whether to look for dropped collections' folders on close
        chromadb = _chromadb()
        from chromadb.config import Settings

        settings = Settings(anonymized_telemetry=False, allow_reset=False)
        if server is not None:
            host, port, ssl = server
            self.location = f"{'https' if ssl else 'http'}://{host}:{port}"
        else:
            self.location = str(path)
        try:
            if server is not None:
                self._client: ClientAPI = chromadb.HttpClient(
                    host=host, port=port, ssl=ssl, settings=settings
                )
            else:
                assert path is not None
                Path(path).mkdir(mode=0o700, parents=True, exist_ok=True)
                self._client = chromadb.PersistentClient(path=str(path), settings=settings)
        except PermissionError as err:
            raise StoreNotWritable(f"cannot write the vector index at {path}: {err}") from err
        except Exception as err:
            raise StorageError(
                f"cannot open the Chroma vector index at {self.location}: {err}"
            ) from err

    # --- names ----------------------------------------------------------------------------

    def collection_name(self, user_id: str, tier: str = "mtm") -> str:
        """The user's dedicated collection of a tier (every user's, in stores made before
        partitions)."""
        return _tiered(f"{self._prefix}_{owner_token(user_id)}", tier)

    def partition_name(self, user_id: str, tier: str = "mtm") -> str:
        """The partition collection holding the user's vectors of a tier until they are
        dedicated."""
        return _tiered(f"{self._prefix}_part{partition_number(user_id):02d}", tier)

    def is_dedicated(self, user_id: str, tier: str = "mtm") -> bool:
        """Whether the user's vectors of a tier have collections of their own."""
        return self._open(self.collection_name(user_id, tier), tier, create=False) is not None

    # --- collections ----------------------------------------------------------------------

    def _open(self, name: str, tier: str, *, create: bool) -> Collection | None:
        with self._lock:
            cached = self._collections.get(name)
            missing_since = self._missing.get(name)
        if cached is not None:
            return cached
        if (
            not create
            and missing_since is not None
            and time.monotonic() - missing_since < self._missing_ttl_s
        ):
            return None  # most users have no dedicated collection: do not ask every search
        if self._path is not None and _is_partition(name):
            self._finish_rebuild(name)
        try:
            if create:
                metadata: dict[str, Any] = {"hnsw:space": "cosine"}
                if tier == "ltm":
                    # Consolidation asks for few neighbours; at HNSW's default breadth (10)
                    # the answer would depend on the order records were inserted in, and
                    # a resumed run must decide exactly as an uninterrupted one.
                    metadata["hnsw:search_ef"] = 100
                collection = self._client.get_or_create_collection(
                    name, embedding_function=None, metadata=metadata
                )
            else:
                collection = self._client.get_collection(name, embedding_function=None)
        except Exception as err:
            if not create and _is_not_found(err):
                with self._lock:
                    self._missing[name] = time.monotonic()
                return None
            raise StorageError(f"vector index error ({self.location}): {err}") from err
        with self._lock:
            self._collections[name] = collection
            self._missing.pop(name, None)
        return collection

    def _places(self, user_id: str, tier: str) -> list[tuple[Collection, dict[str, Any] | None]]:
        """Where the user's vectors of a tier are, with the filter that keeps a query to
        theirs: their dedicated collection (no filter) and their partition (their token)."""
        places: list[tuple[Collection, dict[str, Any] | None]] = []
        dedicated = self._open(self.collection_name(user_id, tier), tier, create=False)
        if dedicated is not None:
            places.append((dedicated, None))
        partition = self._open(self.partition_name(user_id, tier), tier, create=False)
        if partition is not None:
            places.append((partition, _owned(owner_token(user_id))))
        return places

    def _forget_handles(self, user_id: str) -> None:
        with self._lock:
            for tier in _TIERS:
                for name in (
                    self.collection_name(user_id, tier),
                    self.partition_name(user_id, tier),
                ):
                    self._collections.pop(name, None)
                    self._missing.pop(name, None)
                self._partition_counts.pop((user_id, tier), None)
                self._partition_empty.pop((user_id, tier), None)

    # --- the contract ---------------------------------------------------------------------

    def upsert(
        self,
        user_id: str,
        ids: Sequence[str],
        embeddings: Sequence[Sequence[float]],
        metadatas: Sequence[dict[str, Any]],
    ) -> None:
        by_tier: dict[str, list[int]] = {}
        for position, metadata in enumerate(metadatas):
            by_tier.setdefault(_tier_of(metadata), []).append(position)
        token = owner_token(user_id)
        with self._write_lock:
            for tier, positions in by_tier.items():
                dedicated = self._open(self.collection_name(user_id, tier), tier, create=False)
                target = dedicated or self._open(
                    self.partition_name(user_id, tier), tier, create=True
                )
                assert target is not None
                mark = {} if dedicated is not None else {_OWNER: token}
                try:
                    target.upsert(
                        ids=[ids[p] for p in positions],
                        embeddings=[list(map(float, embeddings[p])) for p in positions],  # type: ignore[arg-type]
                        metadatas=[{**metadatas[p], **mark} for p in positions],
                    )
                except Exception as err:
                    self._forget_handles(user_id)
                    raise StorageError(
                        f"vector index upsert failed ({self.location}): {err}"
                    ) from err
                if dedicated is None:
                    self._dedicate_if_due(user_id, tier, target, added=len(positions))

    def _dedicate_if_due(self, user_id: str, tier: str, partition: Collection, added: int) -> None:
        """Move the user's vectors of a tier to a collection of their own once they reach
        ``dedicate_at``: copied first, then deleted from the partition, so a query in
        between finds them in one place or both."""
        key = (user_id, tier)
        mine: Any = {_OWNER: owner_token(user_id)}
        try:
            size = self._partition_rows(partition, added)
            with self._lock:
                known = self._partition_counts.get(key)
                if known is not None and known + added < self._dedicate_at:
                    self._partition_counts[key] = known + added
                    return
            if known is None and size < self._dedicate_at:
                return  # no user of a partition this small is due: no need to count theirs
            count = len(partition.get(where=mine, include=[])["ids"])
            if count < self._dedicate_at:
                with self._lock:
                    self._partition_counts[key] = count
                return
            rows = partition.get(where=mine, include=["embeddings", "metadatas"])
            dedicated = self._open(self.collection_name(user_id, tier), tier, create=True)
            assert dedicated is not None
            ids, embeddings = rows["ids"], rows["embeddings"]
            metadatas = [_unmarked(m) for m in rows["metadatas"] or []]
            for start in range(0, len(ids), _BATCH):
                stop = start + _BATCH
                dedicated.upsert(
                    ids=ids[start:stop],
                    embeddings=embeddings[start:stop],  # type: ignore[index]
                    metadatas=metadatas[start:stop],  # type: ignore[arg-type]
                )
            partition.delete(ids=ids, where=mine)
        except StorageError:
            raise
        except Exception as err:
            self._forget_handles(user_id)
            raise StorageError(f"vector index upsert failed ({self.location}): {err}") from err
        with self._lock:
            self._partition_counts.pop(key, None)
        logger.debug("vectors of one user (%s tier) moved to a collection of their own", tier)

    def _partition_rows(self, partition: Collection, added: int) -> int:
        """At least how many rows the partition holds (counted once, then added to: it
        only decides whether a user's own vectors need counting)."""
        with self._lock:
            rows = self._rows.get(partition.name)
        rows = partition.count() if rows is None else rows + added
        with self._lock:
            self._rows[partition.name] = rows
        return rows

    def query(
        self,
        user_id: str,
        embedding: Sequence[float],
        *,
        k: int,
        where: VectorFilter | None = None,
    ) -> list[tuple[str, float]]:
        best: dict[str, float] = {}
        tiers = _TIERS if where is None or where.tiers is None else [t.value for t in where.tiers]
        unbounded = where is None or (where.before is None and where.after is None)
        for tier in tiers:
            places = self._places(user_id, tier)
            dedicated = any(mine is None for _, mine in places)
            for collection, mine in places:
                # A dedicated user's partition holds their vectors only while a promotion
                # copies them (the partition is emptied last) or after an erasure (which
                # forgets this belief): once a query found none there, skip it for a while.
                in_partition = mine is not None and dedicated
                if in_partition and self._believed_empty(user_id, tier):
                    continue
                found = self._query(
                    collection, user_id, embedding, k=k, where=_chroma_where(mine, where)
                )
                if in_partition and unbounded and not found:
                    with self._lock:
                        self._partition_empty[(user_id, tier)] = time.monotonic()
                for memory_id, score in found:
                    if score > best.get(memory_id, -2.0):
                        best[memory_id] = score
        ranked = sorted(best.items(), key=lambda item: item[1], reverse=True)
        return ranked[:k]

    def _believed_empty(self, user_id: str, tier: str) -> bool:
        with self._lock:
            since = self._partition_empty.get((user_id, tier))
        return since is not None and time.monotonic() - since < self._missing_ttl_s

    def _query(
        self,
        collection: Collection,
        user_id: str,
        embedding: Sequence[float],
        *,
        k: int,
        where: dict[str, Any] | None,
    ) -> list[tuple[str, float]]:
        for attempt in range(len(_UNFLUSHED_RETRIES) + 1):
            try:
                result = collection.query(
                    query_embeddings=[list(map(float, embedding))],  # type: ignore[arg-type]
                    n_results=k,
                    where=where,
                    # No metadata: fetching it doubles the cost of a query, and isolation
                    # does not need it (the filter is the user's token; rows are re-read
                    # by user id).
                    include=["distances"],
                )
                break
            except Exception as err:
                self._forget_handles(user_id)
                if _is_not_found(err):
                    return []
                if _UNFLUSHED in str(err):
                    # A Chroma server answers a query on a collection whose first vectors
                    # are not on disk yet with this error (chroma-core/chroma#4212): they
                    # will be in a moment. Wait a little; if they are still not there, this
                    # search goes without them (BM25 still finds the rows).
                    if attempt < len(_UNFLUSHED_RETRIES):
                        time.sleep(_UNFLUSHED_RETRIES[attempt])
                        continue
                    logger.warning(
                        "vector index not ready for a query (%s): %s", self.location, err
                    )
                    return []
                raise StorageError(f"vector index query failed ({self.location}): {err}") from err
        ids = result["ids"][0]
        distances = (result["distances"] or [[]])[0]
        return [(i, 1.0 - float(d)) for i, d in zip(ids, distances, strict=True)]

    def delete(self, user_id: str, ids: Sequence[str]) -> None:
        if not ids:
            return
        with self._write_lock:
            for tier in _TIERS:
                for collection, mine in self._places(user_id, tier):
                    try:
                        collection.delete(ids=list(ids), where=mine)
                    except Exception as err:
                        self._forget_handles(user_id)
                        if _is_not_found(err):
                            continue
                        raise StorageError(
                            f"vector index delete failed ({self.location}): {err}"
                        ) from err
                with self._lock:
                    self._partition_counts.pop((user_id, tier), None)

    def delete_user(self, user_id: str) -> int:
        with self._write_lock:
            count = self.count(user_id)
            self._forget_handles(user_id)
            for name in [self.collection_name(user_id, tier) for tier in _TIERS]:
                try:
                    self._client.delete_collection(name)
                except Exception as err:
                    if not _is_not_found(err):
                        raise StorageError(
                            f"vector index delete failed ({self.location}): {err}"
                        ) from err
            for tier in _TIERS:
                name = self.partition_name(user_id, tier)
                if self._path is not None:
                    self._rebuild_without(name, tier, owner_token(user_id))
                else:
                    self._delete_from_partition(name, tier, owner_token(user_id))
            self._forget_handles(user_id)
            if self._path is not None:
                scrub(self._path)
                self._erased = True
        return count

    def _delete_from_partition(self, name: str, tier: str, token: str) -> None:
        partition = self._open(name, tier, create=False)
        if partition is None:
            return
        try:
            partition.delete(where=_owned(token))
        except Exception as err:
            if not _is_not_found(err):
                raise StorageError(f"vector index delete failed ({self.location}): {err}") from err

    def _rebuild_without(self, name: str, tier: str, token: str) -> None:
        """Copy the partition without the user's vectors into a new collection that then
        takes its name (the old one's folder is left to :func:`scrub`). Deleting the user's
        rows would leave their vectors in the partition's HNSW files (and the vectors of
        anything they deleted before, or moved to a collection of their own).

        Killed at any point, nothing of the other users is lost: the new collection takes
        the name only once the old one is dropped, and :meth:`_finish_rebuild` completes (or
        discards) a rebuild it finds half done."""
        partition = self._open(name, tier, create=False)
        if partition is None:
            return
        building = f"{name}{_REBUILDING}"
        try:
            with suppress(Exception):
                self._client.delete_collection(building)  # a stale half-built one
            keep: tuple[list[str], list[Any], list[Any]] = ([], [], [])
            offset = 0
            while True:
                page = partition.get(
                    include=["embeddings", "metadatas"],
                    limit=_BATCH,
                    offset=offset,
                )
                if not page["ids"]:
                    break
                offset += len(page["ids"])
                for memory_id, vector, metadata in zip(
                    page["ids"],
                    list(page["embeddings"] if page["embeddings"] is not None else []),
                    page["metadatas"] or [],
                    strict=True,
                ):
                    if (metadata or {}).get(_OWNER) != token:
                        keep[0].append(memory_id)
                        keep[1].append(vector)
                        keep[2].append(metadata)
            rebuilt = self._client.create_collection(
                building, embedding_function=None, metadata=partition.metadata
            )
            for start in range(0, len(keep[0]), _BATCH):
                stop = start + _BATCH
                rebuilt.upsert(
                    ids=keep[0][start:stop],
                    embeddings=keep[1][start:stop],
                    metadatas=keep[2][start:stop],
                )
            with self._lock:
                self._collections.pop(name, None)
                self._rows.pop(name, None)
            self._client.delete_collection(name)
            rebuilt.modify(name=name)
        except Exception as err:
            raise StorageError(f"vector index erasure failed ({self.location}): {err}") from err

    def _finish_rebuild(self, name: str) -> None:
        """Complete a partition rebuild that a killed process left half done: the new
        collection takes the name if the old one is gone, and is discarded if not (the old
        one is whole; the erasure that was interrupted runs again with ``forget``)."""
        with self._write_lock:
            building = f"{name}{_REBUILDING}"
            try:
                self._client.get_collection(building, embedding_function=None)
            except Exception:
                return  # the usual case: nothing was interrupted
            try:
                try:
                    self._client.get_collection(name, embedding_function=None)
                except Exception as err:
                    if not _is_not_found(err):
                        raise
                    self._client.get_collection(building, embedding_function=None).modify(name=name)
                else:
                    self._client.delete_collection(building)
            except Exception as err:
                raise StorageError(f"vector index repair failed ({self.location}): {err}") from err

    def erasure_residue(self) -> tuple[str, ...]:
        if self._path is not None:
            return ()  # scrubbed: no folder, page or row of the user is left
        return (
            f"the Chroma server at {self.location} dropped the user's collections and "
            "deleted their vectors from their shared partitions, but its own files keep them "
            "(freed pages, and deleted entries of the partitions' HNSW indexes) until it "
            "compacts them: stop the server and run `chroma vacuum --path <its data folder>`; "
            "`lightmem reindex` rebuilds every collection",
        )

    def count(self, user_id: str) -> int:
        total = 0
        for tier in _TIERS:
            for collection, mine in self._places(user_id, tier):
                try:
                    if mine is None:
                        total += int(collection.count())
                    else:
                        total += len(collection.get(where=mine, include=[])["ids"])
                except Exception as err:
                    self._forget_handles(user_id)
                    if _is_not_found(err):
                        continue
                    raise StorageError(
                        f"vector index count failed ({self.location}): {err}"
                    ) from err
        return total

    def reset(self) -> None:
        with self._write_lock:
            with self._lock:
                self._collections.clear()
                self._missing.clear()
                self._partition_counts.clear()
                self._partition_empty.clear()
                self._rows.clear()
            try:
                for collection in self._client.list_collections():
                    name = collection if isinstance(collection, str) else collection.name
                    if name.startswith(self._prefix + "_"):
                        self._client.delete_collection(name)
            except Exception as err:
                raise StorageError(f"vector index reset failed ({self.location}): {err}") from err

    def close(self) -> None:
        with self._lock:
            self._collections.clear()
        # Stops Chroma's system for this folder once no client of this process uses it, so
        # the next client here reads the files afresh (another process may have written them).
        close = getattr(self._client, "close", None)  # chromadb >= 1.1
        if close is not None:
            with suppress(Exception):
                close()
        if self._path is not None:
            if self._erased:
                # Chroma may write a dropped collection's folder once more before it stops.
                with suppress(StorageError):
                    scrub(self._path, vacuum=False)
            make_private(self._path)


def _chroma_database(root: Path) -> sqlite3.Connection:
    return sqlite3.connect(root / "chroma.sqlite3", timeout=30.0)


def scrub(root: Path, *, vacuum: bool = True) -> None:
    """Leave no trace of dropped collections in an embedded Chroma folder: remove every
    segment folder that no collection owns (Chroma leaves a dropped collection's HNSW
    folder behind, and may write it once more after the drop), and vacuum
    ``chroma.sqlite3`` so that no freed page keeps their rows (ids, metadata, vectors)."""
    database = root / "chroma.sqlite3"
    if not database.exists():
        return
    try:
        conn = _chroma_database(root)
        try:
            owned = {str(row[0]) for row in conn.execute("SELECT id FROM segments")}
            for folder in root.iterdir():
                if folder.is_dir() and _is_uuid(folder.name) and folder.name not in owned:
                    shutil.rmtree(folder, ignore_errors=True)
            if vacuum:
                conn.execute("VACUUM")
        finally:
            conn.close()
    except sqlite3.Error as err:
        raise StorageError(f"could not scrub the vector index at {root}: {err}") from err


def _is_uuid(name: str) -> bool:
    try:
        uuid.UUID(name)
    except ValueError:
        return False
    return True


def make_private(root: Path) -> None:
    """Folders 0700 and files 0600 under ``root``. Chroma creates its files with the
    process umask (often 0644); the store folder is 0700 already, so nothing was reachable,
    but files at rest should say private too. Run when the index closes (Chroma writes its
    files lazily); only entries not yet private are changed."""
    for folder, _folders, files in os.walk(root):
        for path, mode in ((folder, 0o700), *((os.path.join(folder, f), 0o600) for f in files)):
            with suppress(OSError):
                if stat.S_IMODE(os.stat(path).st_mode) != mode:
                    os.chmod(path, mode)


_TIERS = ("mtm", "ltm")
_OWNER = "owner"  # the metadata key of the owner token, in partitions
_REBUILDING = "_next"  # the suffix of a partition being rebuilt
_BATCH = 1_000  # rows per call when copying (well inside Chroma's maximum batch)
_UNFLUSHED = "Nothing found on disk"
_UNFLUSHED_RETRIES = (0.05, 0.2, 0.5)
_MISSING_TTL_S = 5.0


def _owned(token: str) -> Any:
    return {_OWNER: token}


def _tiered(base: str, tier: str) -> str:
    return base if tier == "mtm" else f"{base}_{tier}"


def _is_partition(name: str) -> bool:
    return "_part" in name and not name.endswith(_REBUILDING)


def _unmarked(metadata: Any) -> dict[str, Any]:
    return {key: value for key, value in dict(metadata or {}).items() if key != _OWNER}


def _chroma_where(mine: dict[str, Any] | None, where: VectorFilter | None) -> Any:
    """Chroma's filter for a query: the owner clause (in a partition) and the time bounds
    (the tier is the collection)."""
    clauses: list[dict[str, Any]] = [mine] if mine else []
    if where is not None and where.before is not None:
        clauses.append({"ts": {"$lte": where.before.timestamp()}})
    if where is not None and where.after is not None:
        clauses.append({"ts": {"$gte": where.after.timestamp()}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def _tier_of(metadata: dict[str, Any]) -> str:
    return "ltm" if metadata.get("tier") == "ltm" else "mtm"


def _is_not_found(err: Exception) -> bool:
    return type(err).__name__ in ("NotFoundError", "InvalidCollectionException") or (
        "does not exist" in str(err)
    )
