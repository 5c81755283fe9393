"""The vector layout: users share a fixed number of partition collections, filtered by their
owner token; a user who grows gets collections of their own; stores made before partitions
are read as they are; a partition rebuilt for an erasure is never left half done."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import pytest

from lightmem_core.store.chroma import PARTITIONS, ChromaVectorIndex, owner_token


def _vector(rng: random.Random, dim: int = 16) -> list[float]:
    values = [rng.gauss(0.0, 1.0) for _ in range(dim)]
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values]


def _exact(
    vectors: dict[str, list[float]], ids: list[str], query: list[float], k: int
) -> list[str]:
    def similarity(memory_id: str) -> float:
        return sum(a * b for a, b in zip(vectors[memory_id], query, strict=True))

    return sorted(ids, key=similarity, reverse=True)[:k]


def _neighbours(index: ChromaVectorIndex, user: str, how_many: int) -> list[str]:
    """Other users whose vectors share ``user``'s partition."""
    found: list[str] = []
    number = 0
    while len(found) < how_many:
        candidate = f"neighbour-{number}"
        if index.partition_name(candidate) == index.partition_name(user):
            found.append(candidate)
        number += 1
    return found


class _Users:
    """Writes random vectors for users and remembers them, to check answers exactly."""

    def __init__(self, index: ChromaVectorIndex, seed: int = 7) -> None:
        self.index = index
        self.rng = random.Random(seed)
        self.vectors: dict[str, list[float]] = {}
        self.owned: dict[str, list[str]] = {}

    def write(self, user: str, count: int, *, batch: int = 5, tier: str = "mtm") -> None:
        ids = [f"{user}/{tier}/{len(self.owned.get(user, [])) + i}" for i in range(count)]
        for start in range(0, count, batch):
            chunk = ids[start : start + batch]
            vectors = [_vector(self.rng) for _ in chunk]
            self.vectors.update(zip(chunk, vectors, strict=True))
            self.index.upsert(user, chunk, vectors, [{"tier": tier, "n": 1} for _ in chunk])
        self.owned.setdefault(user, []).extend(ids)

    def check_exact(self, user: str, k: int = 5) -> None:
        query = _vector(self.rng)
        found = [memory_id for memory_id, _ in self.index.query(user, query, k=k)]
        assert found == _exact(self.vectors, self.owned[user], query, k)


def test_many_users_share_a_fixed_number_of_collections(tmp_path: Path) -> None:
    index = ChromaVectorIndex(path=tmp_path / "chroma")
    users = _Users(index)
    names = [f"user-{i}" for i in range(150)]
    for name in names:
        users.write(name, 4)
    collections = index._client.list_collections()
    assert len(collections) <= PARTITIONS  # not one per user
    for name in names[:40]:
        users.check_exact(name, k=3)  # only their own, and exactly the nearest
        assert index.count(name) == 4
        assert not index.is_dedicated(name)
    index.close()


def test_a_user_who_grows_gets_collections_of_their_own(tmp_path: Path) -> None:
    index = ChromaVectorIndex(path=tmp_path / "chroma", dedicate_at=25)
    users = _Users(index)
    [neighbour] = _neighbours(index, "heavy", 1)
    users.write(neighbour, 6)
    users.write("heavy", 20, batch=8)
    assert not index.is_dedicated("heavy")
    users.write("heavy", 20, batch=8)  # crosses 25
    assert index.is_dedicated("heavy")
    assert index.count("heavy") == 40
    users.check_exact("heavy", k=10)
    users.write("heavy", 3)  # later writes go straight to its own collection
    assert index.count("heavy") == 43
    users.check_exact("heavy", k=10)
    # Moved, not copied: the partition keeps only the neighbour.
    partition = index._client.get_collection(index.partition_name("heavy"), embedding_function=None)
    assert partition.count() == 6
    users.check_exact(neighbour, k=3)
    assert index.delete_user("heavy") == 43
    assert index.count("heavy") == 0
    assert index.count(neighbour) == 6
    index.close()


def test_a_dedicated_user_is_looked_for_in_their_partition_only_while_it_holds_theirs(
    tmp_path: Path,
) -> None:
    index = ChromaVectorIndex(path=tmp_path / "chroma", dedicate_at=10)
    users = _Users(index)
    users.write("heavy", 12)
    assert index.is_dedicated("heavy")
    partition_name = index.partition_name("heavy")
    asked: list[str] = []
    real_query = index._query

    def counting(collection: Any, *args: Any, **kwargs: Any) -> list[tuple[str, float]]:
        asked.append(collection.name)
        return real_query(collection, *args, **kwargs)

    index._query = counting  # type: ignore[method-assign]
    # A promotion by another process copies first and empties the partition last: while a
    # vector of the user's is still there, every query looks there too, and finds it.
    partition = index._client.get_collection(partition_name, embedding_function=None)
    straggler = _vector(users.rng)
    partition.upsert(
        ids=["heavy/straggler"],
        embeddings=[straggler],  # type: ignore[arg-type]
        metadatas=[{"tier": "mtm", "owner": owner_token("heavy")}],
    )
    for _ in range(2):
        assert index.query("heavy", straggler, k=1)[0][0] == "heavy/straggler"
    assert asked.count(partition_name) == 2
    # Emptied: one more query finds none of theirs there, and the next ones skip it.
    partition.delete(ids=["heavy/straggler"])
    asked.clear()
    for _ in range(3):
        users.check_exact("heavy")
    assert asked.count(partition_name) == 1
    # An erasure forgets the belief: the user starts again in the partition, found there.
    assert index.delete_user("heavy") == 12
    users.owned["heavy"] = []
    users.write("heavy", 3)
    users.check_exact("heavy", k=3)
    index.close()


def test_a_store_made_before_partitions_is_read_as_it_is(tmp_path: Path) -> None:
    old = ChromaVectorIndex(path=tmp_path / "chroma")
    rng = random.Random(3)
    vectors = {f"old-{i}": _vector(rng) for i in range(8)}
    # The layout before partitions: one collection per user, no owner token on the vectors.
    collection = old._client.get_or_create_collection(
        old.collection_name("legacy"), embedding_function=None, metadata={"hnsw:space": "cosine"}
    )
    collection.upsert(
        ids=list(vectors),
        embeddings=list(vectors.values()),  # type: ignore[arg-type]
        metadatas=[{"tier": "mtm"} for _ in vectors],
    )
    old.close()

    index = ChromaVectorIndex(path=tmp_path / "chroma")
    assert index.is_dedicated("legacy")
    assert index.count("legacy") == 8
    query = _vector(rng)
    assert [i for i, _ in index.query("legacy", query, k=3)] == _exact(
        vectors, list(vectors), query, 3
    )
    index.upsert("legacy", ["new-0"], [_vector(rng)], [{"tier": "mtm"}])
    assert index.count("legacy") == 9
    assert index.delete_user("legacy") == 9
    index.close()


def test_an_erasure_rebuilds_the_partition_without_the_user(tmp_path: Path) -> None:
    index = ChromaVectorIndex(path=tmp_path / "chroma")
    users = _Users(index)
    neighbours = _neighbours(index, "leaving", 2)
    for name in [*neighbours, "leaving"]:
        users.write(name, 5)
        users.write(name, 2, tier="ltm")
    before = index._client.get_collection(index.partition_name("leaving"), embedding_function=None)
    assert index.delete_user("leaving") == 7
    after = index._client.get_collection(index.partition_name("leaving"), embedding_function=None)
    assert after.id != before.id  # a new collection, not the old one with rows deleted
    assert index.count("leaving") == 0
    for name in neighbours:
        assert index.count(name) == 7
        users.check_exact(name, k=3)
    index.close()


@pytest.mark.parametrize("old_one_dropped", [True, False])
def test_an_interrupted_rebuild_is_finished_on_next_use(
    tmp_path: Path, old_one_dropped: bool
) -> None:
    index = ChromaVectorIndex(path=tmp_path / "chroma")
    users = _Users(index)
    [neighbour] = _neighbours(index, "leaving", 1)
    users.write(neighbour, 5)
    users.write("leaving", 5)
    name = index.partition_name(neighbour)
    # What a process killed inside a rebuild leaves: the new collection, with the old one
    # dropped or not yet.
    rebuilt = index._client.create_collection(
        f"{name}_next", embedding_function=None, metadata={"hnsw:space": "cosine"}
    )
    rebuilt.upsert(
        ids=users.owned[neighbour],
        embeddings=[users.vectors[i] for i in users.owned[neighbour]],  # type: ignore[misc]
        metadatas=[{"tier": "mtm", "owner": owner_token(neighbour)} for _ in range(5)],
    )
    if old_one_dropped:
        index._client.delete_collection(name)
    index.close()

    reopened = ChromaVectorIndex(path=tmp_path / "chroma")
    users.index = reopened
    assert reopened.count(neighbour) == 5
    users.check_exact(neighbour, k=3)
    names = {c if isinstance(c, str) else c.name for c in reopened._client.list_collections()}
    assert f"{name}_next" not in names
    # The interrupted erasure is not undone by the repair: forget runs it again.
    assert reopened.count("leaving") == (0 if old_one_dropped else 5)
    reopened.close()


def test_on_a_server_the_user_is_deleted_from_the_shared_partition(chroma_server: str) -> None:
    host, port = chroma_server.removeprefix("http://").split(":")
    index = ChromaVectorIndex(server=(host, int(port), False), prefix="partitiontest")
    users = _Users(index)
    [neighbour] = _neighbours(index, "leaving", 1)
    users.write(neighbour, 4)
    users.write("leaving", 4)
    assert index.delete_user("leaving") == 4
    assert index.count("leaving") == 0
    assert index.count(neighbour) == 4
    assert any("partitions" in line for line in index.erasure_residue())
    index.reset()
    index.close()
