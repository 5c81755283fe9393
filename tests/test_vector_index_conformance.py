"""The :class:`~lightmem_core.store.VectorIndex` contract, checked on every backend against a
reference model: isolation between users, :class:`VectorFilter` semantics (tiers and time
bounds, as :meth:`VectorFilter.admits` defines them), idempotent upserts, deletes and
erasure. A new backend joins by adding a factory to ``BACKENDS``.

Queries ask for more results than a user has vectors, so the answer is the whole admitted
set (HNSW is approximate; which vectors pass is not), ranked by similarity."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from lightmem_core import Tier
from lightmem_core.store import VectorFilter, VectorIndex
from lightmem_core.store.chroma import ChromaVectorIndex

USERS = ("alice", "Alice", "alice ", "bob")  # look-alikes: isolation must be exact
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
DIM = 8


def _unit(seed: int) -> list[float]:
    values = [
        math.sin(seed * 7.3 + i * 1.7) + (0.5 if i == seed % DIM else 0.0) for i in range(DIM)
    ]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


def _embedded(tmp: Path) -> VectorIndex:
    return ChromaVectorIndex(path=tmp / f"chroma-{uuid.uuid4().hex[:8]}", dedicate_at=6)


BACKENDS: dict[str, Callable[[Path, str | None], VectorIndex]] = {
    "chroma-embedded": lambda tmp, _server: _embedded(tmp),
    "chroma-server": lambda _tmp, server: ChromaVectorIndex(
        server=_address(server), prefix=f"conf{uuid.uuid4().hex[:8]}", dedicate_at=6
    ),
}


def _address(url: str | None) -> tuple[str, int, bool]:
    assert url is not None
    host, port = url.removeprefix("http://").split(":")
    return host, int(port), False


@pytest.fixture(params=sorted(BACKENDS))
def make_index(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[], VectorIndex]]:
    server = request.getfixturevalue("chroma_server") if "server" in request.param else None
    opened: list[VectorIndex] = []

    def make() -> VectorIndex:
        index = BACKENDS[request.param](tmp_path, server)
        opened.append(index)
        return index

    yield make
    for index in opened:
        index.reset()
        index.close()


filters = st.builds(
    VectorFilter,
    tiers=st.one_of(st.none(), st.sampled_from([(Tier.MTM,), (Tier.LTM,), (Tier.MTM, Tier.LTM)])),
    before=st.one_of(st.none(), st.integers(0, 12).map(lambda d: EPOCH + timedelta(days=d))),
    after=st.one_of(st.none(), st.integers(0, 12).map(lambda d: EPOCH + timedelta(days=d))),
)


class VectorIndexMachine(RuleBasedStateMachine):
    make: Callable[[], VectorIndex]

    @initialize()
    def start(self) -> None:
        self.index = self.make()
        # The model: per user, memory id -> (vector, metadata).
        self.model: dict[str, dict[str, tuple[list[float], dict[str, Any]]]] = {
            u: {} for u in USERS
        }
        self.next_id = 0
        for number, user in enumerate(USERS):  # something to find from the first step
            for day in range(number, 12, 3):
                self.upsert(user, 1, "mtm" if day % 2 else "ltm", day, again=False)

    @rule(
        user=st.sampled_from(USERS),
        count=st.integers(1, 4),
        tier=st.sampled_from(["mtm", "ltm"]),
        day=st.integers(0, 12),
        again=st.booleans(),
    )
    def upsert(self, user: str, count: int, tier: str, day: int, again: bool) -> None:
        # An upsert of ids the index has (in the same tier: a memory never changes tier)
        # replaces them; it does not add copies.
        known = [i for i, (_, meta) in self.model[user].items() if meta["tier"] == tier]
        if again and known:
            ids = known[:count]
        else:
            ids = [f"m{self.next_id + i}" for i in range(count)]
            self.next_id += count
        vectors = [_unit(int(i[1:]) + day) for i in ids]
        metadata = [{"tier": tier, "kind": "turn", "ts": (EPOCH + timedelta(days=day)).timestamp()}]
        self.index.upsert(user, ids, vectors, metadata * len(ids))
        for memory_id, vector in zip(ids, vectors, strict=True):
            self.model[user][memory_id] = (vector, metadata[0])

    @rule(user=st.sampled_from(USERS), data=st.data())
    def delete(self, user: str, data: st.DataObject) -> None:
        known = sorted(self.model[user])
        if not known:
            return
        chosen = data.draw(st.lists(st.sampled_from(known), max_size=3, unique=True))
        self.index.delete(user, chosen)
        for memory_id in chosen:
            del self.model[user][memory_id]

    @rule(user=st.sampled_from(USERS))
    def forget(self, user: str) -> None:
        assert self.index.delete_user(user) == len(self.model[user])
        self.model[user] = {}

    @rule(user=st.sampled_from(USERS), where=st.one_of(st.none(), filters), seed=st.integers(0, 50))
    def query(self, user: str, where: VectorFilter | None, seed: int) -> None:
        probe = _unit(seed)
        found = self.index.query(user, probe, k=64, where=where)
        admitted = {
            memory_id: sum(a * b for a, b in zip(vector, probe, strict=True))
            for memory_id, (vector, metadata) in self.model[user].items()
            if where is None or where.admits(metadata)
        }
        assert {memory_id for memory_id, _ in found} == set(admitted)
        for memory_id, score in found:
            assert score == pytest.approx(admitted[memory_id], abs=1e-4)
        scores = [score for _, score in found]
        assert scores == sorted(scores, reverse=True)

    @invariant()
    def counts(self) -> None:
        if hasattr(self, "index"):
            for user in USERS:
                assert self.index.count(user) == len(self.model[user])


def test_vector_index_conformance(make_index: Callable[[], VectorIndex]) -> None:
    machine: Any = type("Machine", (VectorIndexMachine,), {"make": staticmethod(make_index)})
    machine.TestCase.settings = settings(
        max_examples=20,
        stateful_step_count=16,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    machine.TestCase().runTest()
