"""Where a call's time goes: spans the engine records for whoever is listening.

The engine wraps its collaborators (the record store, the vector index, the embedder, the
re-ranker, the abstractor) and marks its own stages (the query plan, fusion, packing, indexing)
with named spans. They cost one context-variable read each until someone collects them::

    from lightmem_core import tracing

    with tracing.trace() as t:
        mem.search("alice", "where does she work?")
    print(t.seconds())  # {'search.plan': 0.0004, 'embedder.embed': 0.011, ...}

A trace collects the spans of its own context only: the calling thread, and the worker threads
the async twins hand work to (``asyncio.to_thread`` copies the context). The background indexer's
thread is not in it, so a search's trace holds that search's work and nothing else. Benchmarks
time the engine this way, so none of them patches a private attribute.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["Span", "Trace", "span", "trace", "traced", "untraced"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Span:
    """One timed step."""

    name: str
    """What ran: ``"records.lexical_search"``, ``"search.pack"``, ..."""
    seconds: float
    depth: int
    """How many spans enclose it in its trace (0: outermost)."""


class Trace:
    """The spans recorded inside one :func:`trace` block, in the order they finished."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self._lock = threading.Lock()

    def _add(self, record: Span) -> None:
        with self._lock:  # to_thread workers of one trace finish concurrently
            self.spans.append(record)

    def seconds(self, *, outermost: bool = True) -> dict[str, float]:
        """Total seconds by span name. ``outermost`` (the default) counts each step once:
        a store read inside the query plan is the plan's time, not the store's too."""
        totals: dict[str, float] = defaultdict(float)
        for s in self.spans:
            if s.depth == 0 or not outermost:
                totals[s.name] += s.seconds
        return dict(totals)

    def calls(self, *, outermost: bool = True) -> dict[str, int]:
        """How many times each span ran (outermost ones only, by default)."""
        counts: dict[str, int] = defaultdict(int)
        for s in self.spans:
            if s.depth == 0 or not outermost:
                counts[s.name] += 1
        return dict(counts)


_trace: ContextVar[Trace | None] = ContextVar("lightmem_trace", default=None)
_depth: ContextVar[int] = ContextVar("lightmem_span_depth", default=0)


@contextmanager
def trace() -> Iterator[Trace]:
    """Collect the spans of everything this context runs until the block ends (nested
    traces each collect their own)."""
    collected = Trace()
    token, depth = _trace.set(collected), _depth.set(0)
    try:
        yield collected
    finally:
        _depth.reset(depth)
        _trace.reset(token)


@contextmanager
def span(name: str) -> Iterator[None]:
    """Time the block as ``name`` when a trace is collecting (else it costs a lookup)."""
    collecting = _trace.get()
    if collecting is None:
        yield
        return
    depth = _depth.get()
    token = _depth.set(depth + 1)
    started = time.perf_counter()
    try:
        yield
    finally:
        collecting._add(Span(name, time.perf_counter() - started, depth))
        _depth.reset(token)


def _timed(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def timed(*args: Any, **kwargs: Any) -> Any:
        if _trace.get() is None:  # the common case: nobody is listening
            return method(*args, **kwargs)
        with span(name):
            return method(*args, **kwargs)

    return timed


class _Traced:
    """``target`` with a span around each public method call; everything else passes through."""

    def __init__(self, target: object, label: str) -> None:
        object.__setattr__(self, "_lightmem_target", target)
        object.__setattr__(self, "_lightmem_label", label)

    def __getattr__(self, name: str) -> Any:
        target = object.__getattribute__(self, "_lightmem_target")
        value = getattr(target, name)
        if name.startswith("_") or not callable(value) or isinstance(value, type):
            return value  # data and properties are read afresh each time
        label = object.__getattribute__(self, "_lightmem_label")
        wrapped = _timed(f"{label}.{name}", value)
        object.__setattr__(self, name, wrapped)  # the next look-up is a plain attribute
        return wrapped

    def __setattr__(self, name: str, value: Any) -> None:
        # Set on the target (a test patching a method patches the real object), and forget
        # the wrapper kept for the old value.
        setattr(object.__getattribute__(self, "_lightmem_target"), name, value)
        self.__dict__.pop(name, None)

    def __delattr__(self, name: str) -> None:
        delattr(object.__getattribute__(self, "_lightmem_target"), name)
        self.__dict__.pop(name, None)

    def __repr__(self) -> str:
        return repr(object.__getattribute__(self, "_lightmem_target"))


def traced(target: T, label: str) -> T:
    """``target`` with every public method call recorded as the span ``label.method``.

    The engine wraps its collaborators once, as it builds them. Protocol checks
    (``isinstance(x, RecordStore)``) see the target's methods; a class check does not, so
    the engine keeps its own unwrapped reference wherever it needs one."""
    return _Traced(target, label)  # type: ignore[return-value]


def untraced(target: T) -> T:
    """The object :func:`traced` wrapped (or ``target`` itself)."""
    if isinstance(target, _Traced):
        return object.__getattribute__(target, "_lightmem_target")  # type: ignore[no-any-return]
    return target
