"""Native async on PostgreSQL: ``LightMem``'s async twins await psycopg's async pool instead
of holding a worker thread while the server answers, give the same answers as the sync
methods, keep users apart under many concurrent coroutines, and work across event loops.
(The async record store itself runs the conformance suite: ``postgres-async`` there.)"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from lightmem_core import DuplicateTurnId, LightMem
from lightmem_core.testing import HashingEmbedder

pytest.importorskip("psycopg")

pytestmark = pytest.mark.slow


@pytest.fixture
def mem(tmp_path: Path, postgres_db: str) -> Iterator[LightMem]:
    with LightMem(tmp_path / "app", embedder=HashingEmbedder(), records=postgres_db) as m:
        yield m


async def _with_every_worker_busy() -> threading.Event:
    """Give the loop a one-thread default executor and occupy that thread: any
    ``asyncio.to_thread`` now waits until the returned event is set."""
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(max_workers=1))
    gate = threading.Event()
    loop.run_in_executor(None, gate.wait)
    await asyncio.sleep(0)
    return gate


def test_record_work_needs_no_worker_thread(mem: LightMem) -> None:
    async def main() -> None:
        await mem.arecent("ana")  # the pool's first connection (its address lookup is a thread's)
        gate = await _with_every_worker_busy()
        try:
            # Each of these completes while no worker thread is free: the waiting is on the
            # server's socket, in the loop.
            async def everyday() -> None:
                turn = await mem.aadd("ana", "I moved to Lisbon in May", session_id="s1")
                await mem.aadd_many(
                    "ana", [{"content": "My sister Rita lives in Porto"}], session_id="s1"
                )
                pinned = await mem.aremember("ana", "Ana is vegetarian", key="diet")
                assert next(t.turn_id for t in await mem.arecent("ana", session_id="s1")) == (
                    turn.turn_id
                )
                assert pinned.id in {m.id for m in await mem.amemories("ana")}
                assert [m.id for m in await mem.amemories("ana", keys=["diet"])] == [pinned.id]
                exported = await mem.aexport("ana")
                assert len(exported["turns"]) == 2
                await mem.aclear_recent("ana", "s1")
                assert await mem.arecent("ana", session_id="s1") == []
                with pytest.raises(DuplicateTurnId):
                    await mem.aadd("ana", "again", turn_id=turn.turn_id)

            await asyncio.wait_for(everyday(), timeout=30)
        finally:
            gate.set()

    asyncio.run(main())


def test_async_search_answers_as_the_sync_search(mem: LightMem) -> None:
    facts = [
        "I adopted a beagle called Toby last spring",
        "My favourite food is grilled sardines",
        "I work as a nurse at the children's hospital",
        "We are planning a trip to Japan in October",
    ]
    for fact in facts:
        mem.add("ana", fact)
    mem.add("ben", "I adopted a cat called Toby")
    mem.flush()

    async def main() -> None:
        for query in ("what pet did I adopt?", "where do I work?", "trip plans"):
            mine = await mem.asearch("ana", query, k=3)
            theirs = mem.search("ana", query, k=3)
            assert [h.memory_id for h in mine] == [h.memory_id for h in theirs]
            assert all("cat" not in h.text for h in mine)  # ben's turn never shows
            context = await mem.acontext("ana", query, k=3)
            assert context.text == mem.context("ana", query, k=3).text
            assert await mem.aget_context("ana", query, k=3) == context.text
        stats = await mem.astats("ana")
        assert stats["turns"] == 4
        assert stats["vectors"] == 4

    asyncio.run(main())


def test_many_coroutines_many_users_nothing_lost_nothing_crossed(mem: LightMem) -> None:
    users = [f"user{i}" for i in range(12)]

    async def one_user(user: str) -> None:
        for n in range(5):
            await mem.aadd(user, f"{user} note {n}: the secret word is {user}-word-{n}")
        found = await mem.asearch(user, "what is the secret word?", k=10)
        assert found
        assert all(h.text.startswith(f"{user} ") for h in found)

    async def main() -> None:
        await asyncio.gather(*(one_user(u) for u in users))
        for user in users:
            assert (await mem.astats(user))["turns"] == 5

    asyncio.run(main())
    assert sorted(mem.users()) == sorted(users)


def test_each_event_loop_gets_its_own_connections(mem: LightMem) -> None:
    # Notebooks and scripts call asyncio.run more than once; a pool serves one loop.
    asyncio.run(mem.aadd("ana", "first loop"))
    asyncio.run(mem.aadd("ana", "second loop"))
    assert [t.content for t in asyncio.run(mem.arecent("ana"))] == ["first loop", "second loop"]


def test_aclose_closes_the_async_connections_on_their_loop(
    tmp_path: Path, postgres_db: str
) -> None:
    async def main() -> None:
        async with LightMem(tmp_path / "a", embedder=HashingEmbedder(), records=postgres_db) as m:
            await m.aadd("ana", "hello")
            twin = m._records.async_store()  # type: ignore[attr-defined]
        assert twin.closed

    asyncio.run(main())


def test_a_cancelled_call_leaves_all_or_nothing_and_the_pool_usable(mem: LightMem) -> None:
    # asyncio.wait_for and request timeouts cancel coroutines at any await: a batch is then
    # stored whole or not at all, and the connection it held goes back to the pool clean.
    async def batch(n: int) -> None:
        await mem.aadd_many(
            f"user{n}",
            [{"content": f"batch {n} part {i}", "turn_id": f"b{n}-{i}"} for i in range(3)],
        )

    async def main() -> None:
        for n in range(30):
            task = asyncio.create_task(batch(n))
            await asyncio.sleep(0.0005 * (n % 7))  # cancel at different points of the call
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for n in range(30):
            turns = (await mem.aexport(f"user{n}"))["turns"]
            assert len(turns) in (0, 3), n
        await batch(99)  # the pool still serves
        assert len(await mem.arecent("user99")) == 3

    asyncio.run(main())
    assert mem.flush() >= 0
