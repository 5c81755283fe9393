"""One implementation of each operation, for the sync methods and their async twins.

An operation that needs the record store is written as a generator of *steps*: it yields
``record(RecordStore.method, ...)`` where it needs a record-store call, and
``blocking(fn, ...)`` where it needs work that exists only as blocking code (the embedding
model, the vector index, a model that drives a role), and returns its result.

- :func:`run` does each step in the caller's thread: the sync methods.
- :func:`arun` awaits the record store's native async twin where it has one
  (``PostgresRecordStore.async_store()``: psycopg's async pool) and hands only the blocking
  steps to a worker thread, so a coroutine waiting on the database holds no thread. For a
  store with no async twin (SQLite: no non-blocking interface) the whole operation runs in
  one worker thread.

Either way the logic is the same lines; only the waiting differs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

__all__ = [
    "AsyncRecords",
    "Blocking",
    "RecordCall",
    "Steps",
    "advance",
    "arun",
    "async_records",
    "blocking",
    "record",
    "run",
]

T = TypeVar("T")
P = ParamSpec("P")


@dataclass(frozen=True, slots=True)
class RecordCall:
    """A call of the record store's method ``method`` (its async twin's, under ``arun``)."""

    method: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Blocking:
    """Work that blocks (a model, the vector index): a worker thread's, under ``arun``."""

    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


Steps = Generator[RecordCall | Blocking, Any, T]


def record(
    method: Callable[Concatenate[Any, P], Any], /, *args: P.args, **kwargs: P.kwargs
) -> RecordCall:
    """A step calling ``method`` (named on the contract, ``RecordStore.get_memories``, so
    the arguments are type-checked) on whichever store the driver has."""
    return RecordCall(method.__name__, args, kwargs)


def blocking(fn: Callable[P, Any], /, *args: P.args, **kwargs: P.kwargs) -> Blocking:
    """A step running ``fn(*args, **kwargs)``, which may block."""
    return Blocking(fn, args, kwargs)


class AsyncRecords(Protocol):
    """A record store's native async twin: the contract's methods as coroutines, and a
    session that runs one task's calls on one connection."""

    def session(self) -> AbstractAsyncContextManager[None]: ...

    async def close(self) -> None: ...


def async_records(records: object) -> AsyncRecords | None:
    """The record store's async twin for the running event loop, if it has one."""
    twin = getattr(records, "async_store", None)
    return twin() if callable(twin) else None


def advance(
    steps: Generator[Any, Any, T], value: Any, error: BaseException | None
) -> tuple[bool, Any]:
    """One step of a generator: send it the last step's result, or throw in its error.
    ``(True, result)`` once it has returned, ``(False, step)`` before."""
    try:
        return False, steps.throw(error) if error is not None else steps.send(value)
    except StopIteration as done:
        return True, done.value


def run(steps: Steps[T], records: object) -> T:
    """Drive ``steps`` in this thread, calling ``records`` (a record store) for each
    :class:`RecordCall`."""
    value: Any = None
    error: BaseException | None = None
    while True:
        finished, step = advance(steps, value, error)
        if finished:
            return step  # type: ignore[no-any-return]
        value, error = None, None
        try:
            if isinstance(step, RecordCall):
                value = getattr(records, step.method)(*step.args, **step.kwargs)
            else:
                value = step.fn(*step.args, **step.kwargs)
        except Exception as err:  # thrown into the operation, which may handle it
            error = err


async def arun(steps: Steps[T], records: object) -> T:
    """Drive ``steps`` from a coroutine: natively on the store's async twin, else (no twin)
    all of it in one worker thread."""
    twin = async_records(records)
    if twin is None:
        return await asyncio.to_thread(run, steps, records)
    # One connection for the whole operation: under many coroutines each queues once, not
    # once per query.
    async with twin.session():
        value: Any = None
        error: BaseException | None = None
        while True:
            finished, step = advance(steps, value, error)
            if finished:
                return step  # type: ignore[no-any-return]
            value, error = None, None
            try:
                if isinstance(step, RecordCall):
                    value = await getattr(twin, step.method)(*step.args, **step.kwargs)
                else:
                    value = await asyncio.to_thread(step.fn, *step.args, **step.kwargs)
            except Exception as err:  # thrown into the operation, which may handle it
                error = err
