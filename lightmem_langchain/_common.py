"""What every LangChain adapter shares: finding the engine, the user and the session, turning
messages into turns and turns into messages, and counting turns towards consolidation.

Nothing here retrieves, stores or consolidates: that is the engine's job.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
)

from lightmem_core import InvalidArgument, InvalidUserId, LightMem, Turn, check_user_id

__all__ = [
    "TurnCounter",
    "context_value",
    "engine",
    "message_of",
    "message_text",
    "required_user",
    "turn_of",
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
    """``key`` of a LangGraph runtime context, whatever its shape: ``None`` (no context
    passed), a dict (a TypedDict schema, or none), a dataclass or a pydantic model."""
    if context is None:
        return None
    if isinstance(context, Mapping):
        return context.get(key)
    return getattr(context, key, None)  # a dataclass, a pydantic model, any object


def required_user(value: object, *, where: str) -> str:
    """A user id that must be there: a clear, typed error saying where it was looked for."""
    if value is None:
        raise InvalidUserId(f"no user id: {where}")
    return check_user_id(value)


def message_text(message: object) -> str:
    """The text of a message, a content-block list or a plain value (text blocks joined;
    images and tool calls have no text to remember)."""
    content = message.content if isinstance(message, BaseMessage) else message
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        parts = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, Mapping) and block.get("type") == "text":
                parts.append(str(block.get("text", "")))
        return "\n".join(p for p in parts if p)
    return "" if content is None else str(content)


_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}


def turn_of(message: BaseMessage, *, id_prefix: str | None = None) -> dict[str, Any] | None:
    """The ``add_many`` entry of a LangChain message, or ``None`` when it has no text.

    With ``id_prefix`` and a message id, the turn id is derived from the message id, so
    recording the same message twice is refused by the engine (``DuplicateTurnId``)
    instead of storing it twice."""
    text = message_text(message)
    if not text.strip():
        return None
    role = _ROLES.get(message.type, "user")
    if isinstance(message, ChatMessage):
        role = message.role if message.role in ("user", "assistant", "system", "tool") else "user"
    turn: dict[str, Any] = {"content": text, "role": role}
    if id_prefix is not None and message.id:
        turn["turn_id"] = f"{id_prefix}{message.id}"
    if message.name:
        turn["speaker"] = message.name
    return turn


def message_of(turn: Turn) -> BaseMessage:
    """A stored turn as the LangChain message of its role."""
    if turn.role == "assistant":
        return AIMessage(content=turn.content)
    if turn.role == "system":
        return SystemMessage(content=turn.content)
    if turn.role == "tool":
        return ChatMessage(role="tool", content=turn.content)
    return HumanMessage(content=turn.content)


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
        if self.every is None or turns <= 0:
            return
        with self._lock:
            self._counts[user_id] += turns
            due = self._counts[user_id] >= self.every
            if due:
                self._counts[user_id] = 0
        if due:
            mem.schedule_consolidation(user_id)
