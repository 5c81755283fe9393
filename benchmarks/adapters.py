"""Adapter overhead: each framework adapter against the engine call it wraps.

Run::

    python benchmarks/adapters.py                 # MiniLM, 1,000 turns, 200 calls per pair
    python benchmarks/adapters.py --quick         # hashing embedder, 200 turns, 60 calls

What it measures
----------------
One user's store holds ``--turns`` conversation turns (varied first-person statements)
and 100 LangGraph store items. For every pair below, the adapter call and the engine call
it translates to run alternately on the same queries (so drift on a busy machine hits both
alike), ``--calls`` times each, after a warm-up, each call with a question not asked
before (the engine caches query vectors, and a repeat would time the cache); the report
gives each one's p50 and p95, the ratio of the p50s (adapter / engine) and the difference. The target is a ratio within 1.1x: an
adapter is a translation, not a second engine.

==========================  =================================================================
pair                        adapter call / engine call
==========================  =================================================================
chat memory load            ``LightMemChatMemory.load_memory_variables`` / ``mem.context``
chat memory save            ``LightMemChatMemory.save_context`` / ``mem.add_many`` (2 turns)
retriever                   ``LightMemRetriever.invoke`` / ``mem.search``
store search                ``LightMemStore.search(query=...)`` / ``mem.search(tiers=ltm)``
store get                   ``LightMemStore.get`` / ``mem.memories(keys=[...])``
middleware                  ``LightMemMiddleware.wrap_model_call`` / ``mem.context``
memory tool                 ``search_memory`` tool / ``mem.context``
llamaindex memory get       ``LightMemMemory.get(input=...)`` / ``mem.context``
llamaindex memory put       ``LightMemMemory.put`` / ``mem.add_many`` (1 turn)
llamaindex retriever        ``LightMemRetriever.retrieve`` / ``mem.search``
llamaindex block            ``LightMemBlock.aget`` / ``mem.acontext`` (both in ``asyncio.run``)
==========================  =================================================================

Then a second pass counts language-model calls: the engine is opened with a scripted
LangChain chat model as its controller (one model call per search), and every read pair
runs once more: the adapter must add 0 model calls to what its engine call makes.

Timings are printed, never asserted. ``--out`` keeps a JSON report.
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (first: the offline environment)
from _common import (
    entry_point,
    environment,
    load_average,
    make_progress,
    percentile,
    write_json,
)
from rich.console import Console
from rich.table import Table

from lightmem_core import LightMem
from lightmem_core.testing import HashingEmbedder

USER = "bench-user"

_PEOPLE = ["my sister", "my boss", "Sam", "my neighbour", "Priya", "my dad", "Lena"]
_ACTS = ["went hiking", "cooked dinner", "bought a bike", "moved to a new flat", "took a trip"]
_PLACES = ["Lisbon", "the lake", "Kyoto", "the market", "Oslo", "the old town", "Austin"]
_THINGS = ["green tea", "jazz", "the cello", "board games", "tomatoes", "sci-fi novels"]
QUERIES = [
    "Where did I go hiking?",
    "What does my sister like?",
    "What did I buy last month?",
    "Who moved to a new flat?",
    "What music do I enjoy?",
    "When was the trip to Kyoto?",
    "What do I grow in the garden?",
    "What did Sam cook?",
]


def queries(count: int, seed: int = 3) -> list[str]:
    """``count`` different questions: the engine caches query vectors, so a repeated query
    would time a cache hit instead of a search."""
    rng = random.Random(seed)
    asked: list[str] = []
    while len(asked) < count:
        person, place, thing = rng.choice(_PEOPLE), rng.choice(_PLACES), rng.choice(_THINGS)
        asked.append(
            rng.choice(
                [
                    f"Did I go anywhere near {place} with {person}?",
                    f"What does {person} think of {thing}?",
                    f"When did {person} visit {place}?",
                    f"Who likes {thing} the most?",
                ]
            )
            + f" ({len(asked)})"
        )
    return asked


def statements(count: int, seed: int = 7) -> list[str]:
    """Varied first-person turns from small word lists (seeded, so runs compare)."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        if rng.random() < 0.5:
            out.append(
                f"I {rng.choice(_ACTS)} with {rng.choice(_PEOPLE)} in {rng.choice(_PLACES)}."
            )
        else:
            out.append(f"{rng.choice(_PEOPLE).capitalize()} really likes {rng.choice(_THINGS)}.")
    return out


@dataclass
class _Context:
    user_id: str


@dataclass
class Pair:
    name: str
    adapter: Callable[[str], Any]
    engine: Callable[[str], Any]
    reads: bool = True


def build_pairs(mem: LightMem) -> list[Pair]:
    """Each adapter next to the engine call it translates to."""
    return [*langchain_pairs(mem), *llamaindex_pairs(mem)]


def llamaindex_pairs(mem: LightMem) -> list[Pair]:
    import asyncio

    from llama_index.core.base.llms.types import ChatMessage

    from lightmem_llamaindex import LightMemBlock, LightMemMemory
    from lightmem_llamaindex import LightMemRetriever as NodeRetriever

    memory = LightMemMemory.from_defaults(mem=mem, user_id=USER, session_id="bench-li")
    retriever = NodeRetriever(mem, user_id=USER, similarity_top_k=4)
    block = LightMemBlock(mem, user_id=USER)
    seen: list[ChatMessage] = []  # the block records what it is shown: show it nothing new

    def put_pair(adapter: bool) -> Callable[[str], Any]:
        def put(query: str) -> Any:
            if adapter:
                return memory.put(ChatMessage(role="user", content=query))
            return mem.add_many(USER, [{"content": query, "role": "user"}], session_id="bench-li")

        return put

    def block_get(query: str) -> Any:
        return asyncio.run(
            block.aget([*seen, ChatMessage(role="user", content=query)], session_id="b")
        )

    return [
        Pair(
            "llamaindex memory get",
            lambda q: memory.get(input=q),
            lambda q: mem.context(USER, q, session_id="bench-li"),
        ),
        Pair("llamaindex memory put", put_pair(True), put_pair(False), reads=False),
        Pair(
            "llamaindex retriever",
            lambda q: retriever.retrieve(q),
            lambda q: mem.search(USER, q, k=4),
        ),
        Pair(
            "llamaindex block",
            block_get,
            lambda q: asyncio.run(mem.acontext(USER, q, session_id="b", include_recent=False)),
            # The block also records the message it is shown (once): a write the engine
            # call does not make. Counted in the timing, as a user would pay it.
        ),
    ]


def langchain_pairs(mem: LightMem) -> list[Pair]:
    """The LangChain and LangGraph adapters next to their engine calls."""
    from langchain.agents.middleware import ModelRequest, ModelResponse
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from langchain_core.messages import AIMessage, HumanMessage
    from langgraph.runtime import Runtime

    from lightmem_langchain import (
        LightMemChatMemory,
        LightMemMiddleware,
        LightMemRetriever,
        LightMemStore,
        memory_tools,
    )

    chat = LightMemChatMemory(mem, user_id=USER, session_id="bench")
    retriever = LightMemRetriever(mem, user_id=USER, k=4)
    store = LightMemStore(mem)
    middleware = LightMemMiddleware(mem)
    search_tool, _ = memory_tools(mem, user_id=USER)
    model = FakeListChatModel(responses=["ok"])
    runtime: Runtime[Any] = Runtime(context=_Context(USER))
    answer = ModelResponse(result=[AIMessage("ok")])
    saved = iter(range(10**9))

    def wrap(query: str) -> Any:
        request = ModelRequest(model=model, messages=[HumanMessage(query)], runtime=runtime)
        return middleware.wrap_model_call(request, lambda _: answer)

    def save_pair(adapter: bool) -> Callable[[str], Any]:
        def save(query: str) -> Any:
            n = next(saved)
            if adapter:
                return chat.save_context({"input": f"{query} {n}"}, {"output": "noted"})
            return mem.add_many(
                USER,
                [
                    {"content": f"{query} {n}", "role": "user"},
                    {"content": "noted", "role": "assistant"},
                ],
                session_id="bench",
            )

        return save

    return [
        Pair(
            "chat memory load",
            lambda q: chat.load_memory_variables({"input": q}),
            lambda q: mem.context(USER, q, session_id="bench"),
        ),
        Pair("chat memory save", save_pair(True), save_pair(False), reads=False),
        Pair("retriever", lambda q: retriever.invoke(q), lambda q: mem.search(USER, q, k=4)),
        Pair(
            "store search",
            lambda q: store.search((USER, "notes"), query=q, limit=10),
            lambda q: mem.search(USER, q, k=10, token_budget=1_000_000, tiers=["ltm"]),
        ),
        Pair(
            "store get",
            lambda q: store.get((USER, "notes"), f"n{len(q) % 100}"),
            lambda q: mem.memories(USER, keys=[f"langgraph:notes..n{len(q) % 100}"]),
        ),
        Pair(
            "middleware",
            wrap,
            lambda q: mem.context(USER, q, session_id="default", include_recent=False),
        ),
        Pair(
            "memory tool",
            lambda q: search_tool.invoke({"query": q}),
            lambda q: mem.context(USER, q, include_recent=False, k=5),
        ),
    ]


def seed_store(mem: LightMem, turns: int, progress: Any) -> None:
    from lightmem_langchain import LightMemStore

    texts = statements(turns)
    task = progress.add_task("seeding turns", total=turns)
    for start in range(0, turns, 100):
        batch = texts[start : start + 100]
        mem.add_many(
            USER,
            [{"content": t, "session_id": f"s{(start + i) // 20}"} for i, t in enumerate(batch)],
        )
        progress.advance(task, len(batch))
    store = LightMemStore(mem)
    for i, text in enumerate(statements(100, seed=11)):
        store.put((USER, "notes"), f"n{i}", {"content": text, "n": i})
    mem.flush()


def time_pairs(pairs: Sequence[Pair], calls: int, progress: Any) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    for pair in pairs:
        task = progress.add_task(pair.name, total=calls)
        for query in QUERIES[:3]:  # warm caches and lazy imports on both sides
            pair.adapter(query)
            pair.engine(query)
        adapter_ms: list[float] = []
        engine_ms: list[float] = []
        asked = queries(2 * calls, seed=len(results))
        for i in range(calls):
            order = [(pair.adapter, adapter_ms), (pair.engine, engine_ms)]
            for side, (call, sink) in enumerate(order if i % 2 == 0 else order[::-1]):
                query = asked[2 * i + side]  # a fresh query every call, on both sides
                started = time.perf_counter()
                call(query)
                sink.append((time.perf_counter() - started) * 1000)
            progress.advance(task)
        a50, e50 = percentile(adapter_ms, 50), percentile(engine_ms, 50)
        assert a50 is not None
        assert e50 is not None
        results.append(
            {
                "pair": pair.name,
                "adapter_p50_ms": round(a50, 3),
                "adapter_p95_ms": round(percentile(adapter_ms, 95) or 0.0, 3),
                "engine_p50_ms": round(e50, 3),
                "engine_p95_ms": round(percentile(engine_ms, 95) or 0.0, 3),
                "ratio_p50": round(a50 / e50, 3) if e50 else None,
                "added_p50_ms": round(a50 - e50, 3),
            }
        )
    return results


def count_model_calls(workdir: Path, embedder: Any) -> list[dict[str, Any]]:
    """Model calls per call, engine vs adapter, with a scripted model as the controller."""
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    path = workdir / "with-model"
    controller = FakeListChatModel(responses=['{"intent": "fact"}'])
    results = []
    with LightMem(path, embedder=embedder, slm={"controller": controller}) as mem:
        mem.add_many(USER, [{"content": t} for t in statements(50)])
        from lightmem_langchain import LightMemStore

        LightMemStore(mem).put((USER, "notes"), "n0", {"content": "a note"})
        mem.flush()

        def calls() -> int:
            return int(mem.stats()["models"].get("controller", {}).get("calls", 0))

        for pair in build_pairs(mem):
            if not pair.reads:
                continue
            before = calls()
            pair.engine(QUERIES[0])
            engine_calls = calls() - before
            before = calls()
            pair.adapter(QUERIES[0])
            adapter_calls = calls() - before
            results.append(
                {
                    "pair": pair.name,
                    "engine_model_calls": engine_calls,
                    "adapter_model_calls": adapter_calls,
                    "added": adapter_calls - engine_calls,
                }
            )
    return results


def run(
    *,
    turns: int,
    calls: int,
    embedder_name: str,
    workdir: Path,
    show_progress: bool = True,
    console: Console | None = None,
) -> dict[str, Any]:
    """The whole benchmark; returns the report (also what ``--out`` writes)."""
    console = console or Console()
    if embedder_name == "hashing":
        embedder: Any = HashingEmbedder()
    else:
        from lightmem_core.embedding import default_embedder

        embedder = default_embedder()
    with make_progress(console, enabled=show_progress) as progress:
        with LightMem(workdir / "store", embedder=embedder) as mem:
            seed_store(mem, turns, progress)
            timings = time_pairs(build_pairs(mem), calls, progress)
        model_calls = count_model_calls(workdir, embedder)
    return {
        "benchmark": "adapters",
        "turns": turns,
        "calls": calls,
        "embedder": embedder_name,
        "load_average": load_average(),
        "environment": environment(),
        "timings": timings,
        "model_calls": model_calls,
    }


def render(report: dict[str, Any], console: Console) -> None:
    table = Table(
        title=f"Adapter overhead ({report['turns']} turns, {report['calls']} calls, "
        f"{report['embedder']} embedder)"
    )
    columns = ("pair", "adapter p50 ms", "engine p50 ms", "ratio", "added ms", "adapter p95")
    for column in columns:
        table.add_column(column, justify="left" if column == "pair" else "right")
    for row in report["timings"]:
        ratio = row["ratio_p50"]
        style = "green" if ratio is not None and ratio <= 1.1 else "yellow"
        table.add_row(
            row["pair"],
            f"{row['adapter_p50_ms']:.2f}",
            f"{row['engine_p50_ms']:.2f}",
            f"[{style}]{ratio:.2f}x[/{style}]" if ratio is not None else "-",
            f"{row['added_p50_ms']:+.2f}",
            f"{row['adapter_p95_ms']:.2f}",
        )
    console.print(table)
    added = sum(row["added"] for row in report["model_calls"])
    console.print(
        f"Model calls added by the adapters: {added} "
        f"(engine calls make {report['model_calls'][0]['engine_model_calls']} each, with a "
        "model controller). Target: ratio <= 1.10x, 0 model calls added."
    )


@entry_point
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=200, help="timed calls per side of a pair")
    parser.add_argument("--embedder", choices=["minilm", "hashing"], default="minilm")
    parser.add_argument("--quick", action="store_true", help="200 turns, 60 calls, hashing")
    parser.add_argument("--out", type=Path, help="write the JSON report here")
    args = parser.parse_args(argv)
    if args.quick:
        args.turns, args.calls, args.embedder = 200, 60, "hashing"
    console = Console()
    workdir = Path(tempfile.mkdtemp(prefix="lightmem-adapters-"))
    try:
        report = run(
            turns=args.turns, calls=args.calls, embedder_name=args.embedder, workdir=workdir
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    render(report, console)
    if args.out:
        write_json(args.out, report)
        console.print(f"report: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
