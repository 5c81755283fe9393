"""What the LangChain adapters share: turning messages into turns and turns into messages
(and, from :mod:`lightmem_core.integration`, the engine, user and consolidation helpers).

Nothing here retrieves, stores or consolidates: that is the engine's job.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
)

from lightmem_core import Turn
from lightmem_core.integration import TurnCounter, context_value, engine, required_user

__all__ = [
    "TurnCounter",
    "context_value",
    "engine",
    "message_of",
    "message_text",
    "required_user",
    "turn_of",
]


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
