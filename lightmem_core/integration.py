"""Helpers every framework adapter shares, free of any framework: checking the engine an
adapter is given, finding the user in a framework's runtime context, and asking for
consolidation every N recorded turns.

Adapters (``lightmem_langchain``, ``lightmem_llamaindex``) are translations onto the public
:class:`~lightmem_core.LightMem` API; what they have in common lives here, once.
"""

from __future__ import annotations

import importlib
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from . import _validation as check
from ._errors import InvalidArgument, InvalidUserId, MissingDependency
from ._memory import LightMem
from ._types import Hit
from ._validation import user_id as check_user_id
from .retrieval.render import time_words

__all__ = [
    "TurnCounter",
    "context_value",
    "engine",
    "hit_metadata",
    "lazy_exports",
    "required_user",
]


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


def check_token_budget(value: object, *, what: str = "token_budget") -> int | None:
    """``None`` (the engine's default), or a token budget the engine's searches accept: an
    adapter checks it when it is built, so a budget the first search would refuse cannot let
    a write through before it."""
    return None if value is None else check.positive_int(value, what=what)


def hit_metadata(hit: Hit) -> dict[str, Any]:
    """What a framework's document or node carries about a retrieved memory: ``tier``,
    ``score``, ``timestamp`` (ISO 8601), ``source_ids``, ``memory_id``, ``kind``,
    ``session_id``, ``speaker``, ``status``, ``flags`` and ``refers_to`` (``"yesterday =
    2023-05-07"``: when the memory's own time words say it happened; ``None`` if they do not)."""
    return {
        "tier": hit.tier.value,
        "score": hit.score,
        "timestamp": hit.timestamp.isoformat() if hit.timestamp else None,
        "source_ids": list(hit.source_ids),
        "memory_id": hit.memory_id,
        "kind": hit.kind,
        "session_id": hit.session_id,
        "speaker": hit.speaker,
        "status": hit.status.value,
        "flags": list(hit.flags),
        "refers_to": time_words(hit.refers_to) if hit.refers_to else None,
    }


def lazy_exports(
    package: str, names: Mapping[str, str], *, extra: str
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for an adapter package whose names load their module
    (and its framework) on first use; a framework that is not installed is a
    ``MissingDependency`` naming the extra to install."""

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        try:
            module = importlib.import_module(names[name], package)
        except ImportError as err:
            raise MissingDependency(
                f"{package}.{name} needs its framework: pip install 'lightmem-slm[{extra}]' ({err})"
            ) from err
        return getattr(module, name)

    def __dir__() -> list[str]:
        return sorted(names)

    return __getattr__, __dir__


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
