"""The engine's timing spans (``lightmem_core.tracing``): what a trace collects, and what it
leaves out (other threads, other traces), on a real store."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime

from lightmem_core import LightMem, tracing
from lightmem_core.store import RecordStore

SEARCH_STEPS = {
    "search.plan",
    "embedder.embed",
    "vectors.query",
    "records.lexical_search",
    "search.fuse",
    "search.pack",
}


def _fill(mem: LightMem) -> None:
    mem.add_many(
        "alice",
        [
            {"content": f"I visited museum number {i} in town", "turn_id": f"t{i}"}
            for i in range(30)
        ],
    )
    mem.flush()


def test_a_search_is_traced_step_by_step(mem: LightMem) -> None:
    _fill(mem)
    mem.search("alice", "warm the caches")
    with tracing.trace() as t:
        started = time.perf_counter()
        mem.search("alice", "which museum did I visit?")
        total = time.perf_counter() - started
    seconds = t.seconds()
    assert set(seconds) >= SEARCH_STEPS
    # Outermost spans do not overlap: together they fit inside the call.
    assert sum(seconds.values()) <= total
    assert t.calls()["search.pack"] == 1
    # Nested spans are there when asked for: the plan reads the store.
    assert set(t.seconds(outermost=False)) >= set(seconds)


def test_nothing_is_collected_outside_a_trace_or_in_another_thread(mem: LightMem) -> None:
    _fill(mem)
    with tracing.trace() as outer:
        worker = threading.Thread(target=mem.search, args=("alice", "museum"))
        worker.start()
        worker.join()
        with tracing.trace() as inner:
            mem.search("alice", "museum in town")
    assert outer.spans == []  # the thread had no trace; the inner trace kept its own
    assert "search.plan" in inner.seconds()
    mem.search("alice", "museum")  # no trace: nothing to record, nothing fails


def test_async_twins_are_traced_through_their_worker_threads(mem: LightMem) -> None:
    _fill(mem)

    async def search() -> set[str]:
        with tracing.trace() as t:
            await mem.asearch("alice", "which museum?")
        return set(t.seconds())

    assert asyncio.run(search()) >= SEARCH_STEPS


def test_consolidation_and_add_are_traced(mem: LightMem) -> None:
    with tracing.trace() as t:
        mem.add("alice", "I moved to Lisbon last year", timestamp=datetime(2026, 1, 5, tzinfo=UTC))
        mem.consolidate("alice")
    names = set(t.seconds())
    assert {"writer.write", "records.add", "abstractor.abstract"} <= names
    assert "records.apply_consolidation" in names


def test_wrapped_collaborators_keep_their_contracts(mem: LightMem) -> None:
    records = mem._records
    assert isinstance(records, RecordStore)  # the protocol sees the target's methods
    assert tracing.untraced(records) is not records
    calls: list[str] = []
    original = records.speakers

    def spy(user_id: str) -> list[str]:
        calls.append(user_id)
        return original(user_id)

    records.speakers = spy  # type: ignore[method-assign]
    try:
        mem.search("bob", "anything")
        assert calls == ["bob"]  # a patch on the wrapper reaches the engine's calls
    finally:
        del records.speakers
    mem.search("carol", "anything")
    assert calls == ["bob"]
