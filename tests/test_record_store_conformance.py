"""The :class:`~lightmem_core.store.RecordStore` contract's core, checked on every record
store against a reference model: atomic adds and idempotent turn ids, per-user isolation of
reads, lexical search and deletes, erasure counts, and the consolidation watermark (new
evidence is what was stored after it, in order, and nothing twice). A new backend joins by
adding a factory to ``BACKENDS``.

Consolidation's own reads and writes are covered by the engine's consolidation suites; this
machine holds the parts every caller of a record store relies on."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from lightmem_core import DuplicateTurnId, Memory, Tier, Turn
from lightmem_core.store import RecordStore, SQLiteRecordStore

USERS = ("alice", "Alice", "alice ", "bob")  # look-alikes: isolation must be exact
WORDS = ("apple", "river", "violin", "harbour", "cactus", "meadow")
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


def _postgres(place: Path, request: pytest.FixtureRequest) -> RecordStore:
    from lightmem_core.store.postgres import PostgresRecordStore

    # One schema per place, on the session's server (its database is dropped at the end).
    schema = "s_" + hashlib.sha256(str(place).encode()).hexdigest()[:16]
    return PostgresRecordStore(request.getfixturevalue("postgres_url"), schema=schema)


class _OnItsOwnLoop:
    """An async record store behind the sync contract: each call is awaited on an event
    loop in a thread of its own, so this suite checks the async twin unchanged."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._store, name)
        if not inspect.iscoroutinefunction(method):
            return method

        def call(*args: Any, **kwargs: Any) -> Any:
            return asyncio.run_coroutine_threadsafe(method(*args, **kwargs), self._loop).result()

        return call

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._store.close(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


def _postgres_async(place: Path, request: pytest.FixtureRequest) -> RecordStore:
    from lightmem_core.store.postgres_async import AsyncPostgresRecordStore

    schema = "a_" + hashlib.sha256(str(place).encode()).hexdigest()[:16]
    store = AsyncPostgresRecordStore(request.getfixturevalue("postgres_url"), schema=schema)
    return cast(RecordStore, _OnItsOwnLoop(store))


BACKENDS: dict[str, Callable[[Path, pytest.FixtureRequest], RecordStore]] = {
    "sqlite": lambda place, _: SQLiteRecordStore(place / "records.sqlite3"),
    "postgres": _postgres,
    "postgres-async": _postgres_async,
}
"""Each backend, opened on the store that lives at a place (a folder here; a server
backend maps it to a database or schema): the same place twice is one store, two handles."""


@pytest.fixture(params=sorted(BACKENDS))
def make_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[..., RecordStore]]:
    """``make()`` opens a new, empty store; ``make(name)`` the store called ``name`` (again)."""
    opened: list[RecordStore] = []

    def make(name: str | None = None) -> RecordStore:
        place = tmp_path / (name or uuid.uuid4().hex[:8])
        place.mkdir(exist_ok=True)
        store = BACKENDS[request.param](place, request)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


class RecordStoreMachine(RuleBasedStateMachine):
    make: Callable[[], RecordStore]

    @initialize()
    def start(self) -> None:
        self.store = self.make()
        self.turns: dict[str, dict[str, str]] = {u: {} for u in USERS}  # turn id -> text
        self.memories: dict[str, dict[str, str]] = {u: {} for u in USERS}  # id -> text
        self.taken: dict[str, list[str]] = {u: [] for u in USERS}  # evidence, stored order
        self.watermark: dict[str, int] = {u: 0 for u in USERS}
        self.consumed: dict[str, set[str]] = {u: set() for u in USERS}  # taken in by a run
        self.clock = 0

    def _turn(self, user: str, turn_id: str, text: str) -> tuple[Turn, Memory]:
        self.clock += 1
        moment = EPOCH + timedelta(minutes=self.clock)
        turn = Turn(user, turn_id, "s1", "user", text, moment)
        memory = Memory(
            id=uuid.uuid4().hex,
            user_id=user,
            tier=Tier.MTM,
            kind="turn",
            text=text,
            timestamp=moment,
            session_id="s1",
            source_ids=(turn_id,),
            created_at=moment,
        )
        return turn, memory

    @rule(
        user=st.sampled_from(USERS),
        words=st.lists(st.sampled_from(WORDS), min_size=1, max_size=3),
        count=st.integers(1, 3),
        reuse=st.booleans(),
    )
    def add(self, user: str, words: list[str], count: int, reuse: bool) -> None:
        known = sorted(self.turns[user])
        ids = [f"t{self.clock + i}" for i in range(count)]
        if reuse and known:
            ids[-1] = known[0]  # one id the user already has: the whole batch is refused
        pairs = [self._turn(user, i, f"{' '.join(words)} {user!r} note {i}") for i in ids]
        if reuse and known:
            with pytest.raises(DuplicateTurnId):
                self.store.add([t for t, _ in pairs], [m for _, m in pairs])
            return
        self.store.add([t for t, _ in pairs], [m for _, m in pairs])
        for turn, memory in pairs:
            self.turns[user][turn.turn_id] = turn.content
            self.memories[user][memory.id] = memory.text
            self.taken[user].append(memory.id)

    @rule(user=st.sampled_from(USERS), other=st.sampled_from(USERS))
    def read_by_id(self, user: str, other: str) -> None:
        ids = [*self.memories[user], *self.memories[other]]
        found = self.store.get_memories(user, ids)
        assert {i: m.text for i, m in found.items()} == self.memories[user]
        assert all(m.user_id == user for m in found.values())

    @rule(user=st.sampled_from(USERS), word=st.sampled_from(WORDS))
    def search(self, user: str, word: str) -> None:
        found = dict(self.store.lexical_search(user, [word], limit=1000))
        expected = {i for i, text in self.memories[user].items() if word in text.split()}
        assert set(found) == expected
        scores = [s for _, s in self.store.lexical_search(user, [word], limit=1000)]
        assert scores == sorted(scores, reverse=True)

    @rule(user=st.sampled_from(USERS), other=st.sampled_from(USERS), data=st.data())
    def delete(self, user: str, other: str, data: st.DataObject) -> None:
        theirs = sorted(self.memories[other])
        chosen = (
            data.draw(st.lists(st.sampled_from(theirs), max_size=2, unique=True)) if theirs else []
        )
        deleted = self.store.delete_memories(user, memory_ids=chosen)
        if user == other:
            assert sorted(deleted) == sorted(chosen)
            for memory_id in chosen:
                del self.memories[user][memory_id]
        else:
            assert deleted == []  # another user's ids delete nothing

    @rule(user=st.sampled_from(USERS), limit=st.integers(1, 4))
    def consolidate_some(self, user: str, limit: int) -> None:
        batch = self.store.new_evidence(user, after_seq=self.watermark[user], limit=limit)
        alive = [i for i in self.taken[user] if i in self.memories[user]]
        waiting = [i for i in alive if i not in self.consumed[user]]
        assert [e.memory.id for e in batch] == waiting[:limit]
        seqs = [e.seq for e in batch]
        assert seqs == sorted(seqs)
        assert all(s > self.watermark[user] for s in seqs)
        if batch:
            self.watermark[user] = seqs[-1]
            self.consumed[user].update(e.memory.id for e in batch)
        count = self.store.count_new_evidence(user, after_seq=self.watermark[user])
        assert count == len(waiting) - len(batch)

    @rule(user=st.sampled_from(USERS))
    def forget(self, user: str) -> None:
        counts = self.store.delete_user(user)
        assert counts.turns == len(self.turns[user])
        assert sum(counts.memories.values()) == len(self.memories[user])
        self.turns[user], self.memories[user], self.taken[user] = {}, {}, []
        self.watermark[user] = 0
        self.consumed[user] = set()

    @invariant()
    def agrees(self) -> None:
        if not hasattr(self, "store"):
            return
        assert set(self.store.users()) == {u for u in USERS if self.turns[u] or self.memories[u]}
        for user in USERS:
            assert self.store.existing_turn_ids(user, [*self.turns[user], "nope"]) == set(
                self.turns[user]
            )
            counts = self.store.counts(user)
            assert counts["turns"] == len(self.turns[user])
            assert counts["mtm"] == len(self.memories[user])


def test_record_store_conformance(make_store: Callable[..., RecordStore]) -> None:
    machine: Any = type("Machine", (RecordStoreMachine,), {"make": staticmethod(make_store)})
    machine.TestCase.settings = settings(
        max_examples=25,
        stateful_step_count=20,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    machine.TestCase().runTest()


def test_the_evidence_cursor_never_steps_over_a_concurrent_commit(
    make_store: Callable[..., RecordStore],
) -> None:
    """Writers on their own connections add a user's entries while a consolidation-like
    reader follows the cursor: every entry is read exactly once, none skipped because a
    writer that began earlier committed later (the cursor follows commit order)."""
    writers, per_writer = 3, 40
    stores = [make_store("shared") for _ in range(writers + 1)]
    reader = stores[0]
    seen: list[str] = []
    failures: list[BaseException] = []

    def write(store: RecordStore, w: int) -> None:
        try:
            for i in range(per_writer):
                text = f"writer {w} entry {i}"
                moment = EPOCH + timedelta(seconds=i)
                turn = Turn("alice", f"w{w}-{i}", "s1", "user", text, moment)
                memory = Memory(
                    id=f"w{w}-{i}", user_id="alice", tier=Tier.MTM, kind="turn", text=text,
                    timestamp=moment, session_id="s1", source_ids=(turn.turn_id,),
                    created_at=moment,
                )  # fmt: skip
                store.add([turn], [memory])
        except BaseException as err:  # reported by the main thread
            failures.append(err)

    threads = [
        threading.Thread(target=write, args=(store, w)) for w, store in enumerate(stores[1:])
    ]
    for thread in threads:
        thread.start()
    cursor = 0

    def read_on() -> None:
        nonlocal cursor
        for entry in reader.new_evidence("alice", after_seq=cursor, limit=7):
            assert entry.seq > cursor
            seen.append(entry.memory.id)
            cursor = entry.seq

    while any(t.is_alive() for t in threads):
        read_on()
    for thread in threads:
        thread.join()
    read_on()
    while len(seen) < writers * per_writer and reader.count_new_evidence("alice", after_seq=cursor):
        read_on()
    assert not failures, failures
    assert sorted(seen) == sorted(f"w{w}-{i}" for w in range(writers) for i in range(per_writer))


def test_speaker_turns_are_the_users_latest_in_order(
    make_store: Callable[..., RecordStore],
) -> None:
    store = make_store()
    for user in ("alice", "Alice"):
        turns = [
            Turn(user, f"t{i}", f"s{i // 3}", "user", f"{user} says {i}", EPOCH, speaker=speaker)
            for i, speaker in enumerate(["dk_92", None, "samuel.o", "dk_92", "samuel.o"])
        ]
        store.add(turns, [])
    assert store.speaker_turns("alice", limit=10) == [
        ("s0", "dk_92", "alice says 0"),
        ("s0", "samuel.o", "alice says 2"),
        ("s1", "dk_92", "alice says 3"),
        ("s1", "samuel.o", "alice says 4"),
    ]
    assert store.speaker_turns("alice", limit=2) == [
        ("s1", "dk_92", "alice says 3"),
        ("s1", "samuel.o", "alice says 4"),
    ]
    assert store.speaker_turns("bob", limit=10) == []


def test_a_reply_is_linked_to_the_turn_it_answers(make_store: Callable[..., RecordStore]) -> None:
    store = make_store()

    def said(user: str, turn_id: str, text: str, reply_to: str | None = None) -> None:
        metadata = {"reply_to": reply_to} if reply_to else {}
        turn = Turn(user, turn_id, "s1", "user", text, EPOCH, metadata=metadata)
        memory = Memory(
            id=f"{user}-{turn_id}",
            user_id=user,
            tier=Tier.MTM,
            kind="turn",
            text=text,
            timestamp=EPOCH,
            session_id="s1",
            source_ids=(turn_id,),
            created_at=EPOCH,
        )
        store.add([turn], [memory])

    said("alice", "q", "how's the commute?")
    said("bob", "q", "bob's own q")
    for n in range(5):
        said("alice", f"x{n}", f"unrelated {n}")
    said("alice", "a", "two buses, 40 min", reply_to="q")
    said("alice", "b", "replies to nothing stored", reply_to="nope")
    said("bob", "a", "bob answers his own q", reply_to="q")
    assert store.links("alice", ["alice-a"]) == {"alice-a": {"alice-q"}}
    assert store.links("alice", ["alice-q"]) == {"alice-q": {"alice-a"}}  # both directions
    assert store.links("alice", ["alice-b"]) == {}
    assert store.links("bob", ["bob-a"]) == {"bob-a": {"bob-q"}}  # never another user's q
