"""Helpers every framework adapter shares, free of any framework: checking the engine an
adapter is given, finding the user in a framework's runtime context, and asking for
consolidation every N recorded turns.

Adapters (``lightmem_langchain``, ``lightmem_llamaindex``) are translations onto the public
:class:`~lightmem_core.LightMem` API; what they have in common lives here, once.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any

from ._errors import InvalidArgument, InvalidUserId
from ._memory import LightMem
from ._validation import user_id as check_user_id

__all__ = ["TurnCounter", "context_value", "engine", "required_user"]


def engine(mem: object, owner: str) -> LightMem:
    """The engine an adapter was given, checked (a clear error beats an AttributeError on
    the user's first turn)."""
    if not isinstance(mem, LightMem):
        raise InvalidArgument(
            f"{owner} needs a LightMem engine as its first argument (or mem=), "
            f"got {type(mem).__name__}"
        )
    return mem


def context_value(context: object, key: str) -> Any:
    """``key`` of a runtime context, whatever its shape: ``None`` (no context passed), a
    mapping, a dataclass, a pydantic model or any object with that attribute."""
    if context is None:
        return None
    if isinstance(context, Mapping):
        return context.get(key)
    return getattr(context, key, None)


def required_user(value: object, *, where: str) -> str:
    """A user id that must be there: a clear, typed error saying where it was looked for."""
    if value is None:
        raise InvalidUserId(f"no user id: {where}")
    return check_user_id(value)


class TurnCounter:
    """Asks the engine for a background consolidation of a user every ``every`` recorded
    turns (``None``: never; the engine's own ``consolidate_every`` may still apply).
    The request returns at once: consolidation never runs on the caller's path."""

    def __init__(self, every: int | None) -> None:
        if every is not None and (
            not isinstance(every, int) or isinstance(every, bool) or every < 1
        ):
            raise InvalidArgument(f"consolidate_every must be a positive integer, got {every!r}")
        self.every = every
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def recorded(self, mem: LightMem, user_id: str, turns: int) -> None:
        """``turns`` turns of the user were recorded; maybe ask for a consolidation."""
        if self.every is None or turns <= 0:
            return
        with self._lock:
            self._counts[user_id] += turns
            due = self._counts[user_id] >= self.every
            if due:
                self._counts[user_id] = 0
        if due:
            mem.schedule_consolidation(user_id)
