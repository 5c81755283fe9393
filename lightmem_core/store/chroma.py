"""Chroma vector index: on disk (embedded) or a Chroma server, one collection per user.

One collection per user rather than one shared collection with a ``user_id`` filter:
isolation is structural (a query cannot reach another user's vectors), erasure drops the
user's collection and its files, and query latency does not grow with other users' data.
Each vector also carries its ``user_id`` in metadata (for operators); the engine re-reads every
hit from the record store by user id, so no query can surface another user's memory.

Each user has two collections: mid-term entries, and long-term records. A filtered query
in Chroma evaluates its filter over every row before the vector search, so looking up
long-term records inside one mixed collection costs in proportion to the user's whole
memory; in a collection of their own it is a plain nearest-neighbour search (consolidation
does one per candidate). Queries that want both tiers ask both and merge.

Collection names are a hash of the user id, so user ids never appear in file or
collection names, and vectors carry no user id in their metadata. We always pass embeddings
ourselves: Chroma's default embedding function (which would download a model) is never used.

Erasure on disk. Dropping a collection is not enough to forget a user: Chroma leaves the
collection's rows in freed pages of ``chroma.sqlite3`` and its HNSW segment folder on disk.
After dropping a user's collections the embedded index removes every segment folder no
collection owned and vacuums ``chroma.sqlite3`` (see :func:`scrub`). This reads Chroma's
own SQLite schema (its ``segments`` and ``collections`` tables); ``tests/test_erasure.py``
holds it to the pinned Chroma version. A Chroma server's files are the server's: see
:meth:`ChromaVectorIndex.erasure_residue`.
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
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import MissingDependency, StorageError, StoreNotWritable

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

logger = logging.getLogger("lightmem")

__all__ = ["ChromaVectorIndex"]


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
    ) -> None:
        """Open the index on disk at ``path``, or on the server ``(host, port, ssl)``."""
        if (path is None) == (server is None):
            raise ValueError("give exactly one of path or server")
        self._prefix = prefix
        self._path = Path(path) if path is not None else None
        self._collections: dict[tuple[str, str], Collection] = {}
        # Collections found missing, and when: another process (a shared server) may create
        # one, so "missing" is believed for a few seconds only.
        self._missing: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
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

    def collection_name(self, user_id: str, tier: str = "mtm") -> str:
        base = f"{self._prefix}_{hashlib.sha256(user_id.encode('utf-8')).hexdigest()[:40]}"
        return base if tier == "mtm" else f"{base}_{tier}"

    def _collection(self, user_id: str, tier: str, *, create: bool) -> Collection | None:
        key = (user_id, tier)
        with self._lock:
            cached = self._collections.get(key)
            missing_since = self._missing.get(key)
        if cached is not None:
            return cached
        if (
            not create
            and missing_since is not None
            and time.monotonic() - missing_since < _MISSING_TTL_S
        ):
            return None  # most users have no long-term collection: do not ask every search
        name = self.collection_name(user_id, tier)
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
                    self._missing[key] = time.monotonic()
                return None
            raise StorageError(f"vector index error ({self.location}): {err}") from err
        with self._lock:
            self._collections[key] = collection
            self._missing.pop(key, None)
        return collection

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
        for tier, positions in by_tier.items():
            collection = self._collection(user_id, tier, create=True)
            assert collection is not None
            try:
                collection.upsert(
                    ids=[ids[p] for p in positions],
                    embeddings=[list(map(float, embeddings[p])) for p in positions],  # type: ignore[arg-type]
                    metadatas=[dict(metadatas[p]) for p in positions],
                )
            except Exception as err:
                self._forget_handle(user_id)
                raise StorageError(f"vector index upsert failed ({self.location}): {err}") from err

    def query(
        self,
        user_id: str,
        embedding: Sequence[float],
        *,
        k: int,
        where: dict[str, Any] | None = None,
    ) -> list[tuple[str, float]]:
        found: list[tuple[str, float]] = []
        for tier in _tiers_wanted(where):
            found += self._query(user_id, tier, embedding, k=k, where=where)
        if len(found) > k:
            found.sort(key=lambda item: item[1], reverse=True)
            del found[k:]
        return found

    def _query(
        self,
        user_id: str,
        tier: str,
        embedding: Sequence[float],
        *,
        k: int,
        where: dict[str, Any] | None,
    ) -> list[tuple[str, float]]:
        collection = self._collection(user_id, tier, create=False)
        if collection is None:
            return []
        for attempt in range(len(_UNFLUSHED_RETRIES) + 1):
            try:
                result = collection.query(
                    query_embeddings=[list(map(float, embedding))],  # type: ignore[arg-type]
                    n_results=k,
                    # The tier is the collection: only the other clauses (time) filter.
                    where=_without_tier(where),
                    # No metadata: fetching it doubles the cost of a query, and isolation
                    # does not need it (the collection is the user's; rows are re-read by
                    # user id).
                    include=["distances"],
                )
                break
            except Exception as err:
                self._forget_handle(user_id)
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
        for tier in _TIERS:
            collection = self._collection(user_id, tier, create=False)
            if collection is None:
                continue
            try:
                collection.delete(ids=list(ids))
            except Exception as err:
                raise StorageError(f"vector index delete failed ({self.location}): {err}") from err

    def delete_user(self, user_id: str) -> int:
        count = self.count(user_id)
        self._forget_handle(user_id)
        names = [self.collection_name(user_id, tier) for tier in _TIERS]
        segments = segments_of(self._path, names) if self._path is not None else []
        for tier in _TIERS:
            try:
                self._client.delete_collection(self.collection_name(user_id, tier))
            except Exception as err:
                if not _is_not_found(err):
                    raise StorageError(
                        f"vector index delete failed ({self.location}): {err}"
                    ) from err
        if self._path is not None:
            scrub(self._path, segments)
        return count

    def erasure_residue(self) -> tuple[str, ...]:
        if self._path is not None:
            return ()  # scrubbed: no folder, page or row of the user is left
        return (
            f"the Chroma server at {self.location} dropped the user's collections, but its "
            "own files keep the user's vectors and metadata in freed pages until it is "
            "vacuumed: stop the server and run `chroma vacuum --path <its data folder>`",
        )

    def count(self, user_id: str) -> int:
        total = 0
        for tier in _TIERS:
            collection = self._collection(user_id, tier, create=False)
            if collection is None:
                continue
            try:
                total += int(collection.count())
            except Exception as err:
                self._forget_handle(user_id)
                if _is_not_found(err):
                    continue
                raise StorageError(f"vector index count failed ({self.location}): {err}") from err
        return total

    def reset(self) -> None:
        with self._lock:
            self._collections.clear()
            self._missing.clear()
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
            make_private(self._path)

    def _forget_handle(self, user_id: str) -> None:
        with self._lock:
            for tier in _TIERS:
                self._collections.pop((user_id, tier), None)
                self._missing.pop((user_id, tier), None)


def _chroma_database(root: Path) -> sqlite3.Connection:
    return sqlite3.connect(root / "chroma.sqlite3", timeout=30.0)


def segments_of(root: Path, collections: Sequence[str]) -> list[str]:
    """The segment ids (= the names of their folders on disk) of these collections, read
    from Chroma's own database before the collections are dropped."""
    if not (root / "chroma.sqlite3").exists():
        return []
    marks = ",".join("?" * len(collections))
    try:
        conn = _chroma_database(root)
        try:
            rows = conn.execute(
                f"SELECT s.id FROM segments s JOIN collections c ON s.collection = c.id "
                f"WHERE c.name IN ({marks})",
                list(collections),
            ).fetchall()
        finally:
            conn.close()
    except sqlite3.Error as err:
        raise StorageError(f"could not read the vector index at {root}: {err}") from err
    return [str(row[0]) for row in rows]


def scrub(root: Path, segments: Sequence[str]) -> None:
    """Leave no trace of dropped collections in an embedded Chroma folder: remove their
    HNSW segment folders (Chroma leaves them behind), and vacuum ``chroma.sqlite3`` so
    that no freed page keeps their rows (ids, metadata, vectors)."""
    for segment in segments:
        folder = root / segment
        if folder.is_dir() and folder.parent == root:
            shutil.rmtree(folder, ignore_errors=True)
    if not (root / "chroma.sqlite3").exists():
        return
    try:
        conn = _chroma_database(root)
        try:
            conn.execute("VACUUM")
        finally:
            conn.close()
    except sqlite3.Error as err:
        raise StorageError(f"could not scrub the vector index at {root}: {err}") from err


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
_UNFLUSHED = "Nothing found on disk"
_UNFLUSHED_RETRIES = (0.05, 0.2, 0.5)
_MISSING_TTL_S = 5.0


def _tier_of(metadata: dict[str, Any]) -> str:
    return "ltm" if metadata.get("tier") == "ltm" else "mtm"


def _tiers_wanted(where: dict[str, Any] | None) -> tuple[str, ...]:
    """The collections a filter can match: a tier clause (alone or in an ``$and``) narrows
    them; anything else needs both."""
    clauses = (where or {}).get("$and", [where] if where else [])
    for clause in clauses:
        tier = clause.get("tier")
        if isinstance(tier, str):
            return (_tier_of({"tier": tier}),)
        if isinstance(tier, dict) and "$in" in tier:
            return tuple(t for t in _TIERS if t in tier["$in"])
    return _TIERS


def _without_tier(where: dict[str, Any] | None) -> dict[str, Any] | None:
    if not where:
        return None
    clauses = [c for c in where.get("$and", [where]) if "tier" not in c]
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def _is_not_found(err: Exception) -> bool:
    return type(err).__name__ in ("NotFoundError", "InvalidCollectionException") or (
        "does not exist" in str(err)
    )
