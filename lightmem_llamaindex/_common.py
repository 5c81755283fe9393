"""What the LlamaIndex adapters share: turning chat messages into turns and back, and
finding the engine again when a serialised adapter is restored.

Nothing here retrieves, stores or consolidates: that is the engine's job.
"""

from __future__ import annotations

import threading
import weakref
from pathlib import Path
from typing import Any

from llama_index.core.base.llms.types import ChatMessage, MessageRole, TextBlock

from lightmem_core import LightMem, Turn
from lightmem_core.integration import engine

__all__ = [
    "check_token_limit",
    "engine_for_path",
    "message_of",
    "message_text",
    "register",
    "resolve_engine",
    "turn_of",
]

_ROLES = {
    MessageRole.USER: "user",
    MessageRole.ASSISTANT: "assistant",
    MessageRole.SYSTEM: "system",
    MessageRole.DEVELOPER: "system",
}
REMEMBERED_ROLES = frozenset(_ROLES)
"""Roles whose messages become turns. Tool calls and tool results are a run's scratch
work, not conversation: they are not remembered (a tool message, recalled without the call
it answers, is also refused by most chat APIs)."""


def message_text(message: ChatMessage | str | None) -> str:
    """The text of a chat message (its text blocks joined), or of a plain string."""
    if message is None:
        return ""
    if isinstance(message, str):
        return message
    texts = [b.text for b in message.blocks if isinstance(b, TextBlock) and b.text]
    return "\n".join(texts)


def turn_of(message: ChatMessage) -> dict[str, Any] | None:
    """The ``add_many`` entry of a chat message, or ``None`` when it is not remembered (no
    text, or a tool message)."""
    if not isinstance(message, ChatMessage):
        from lightmem_core import InvalidArgument

        raise InvalidArgument(f"a memory takes ChatMessage objects, got {type(message).__name__}")
    role = _ROLES.get(MessageRole(message.role)) if message.role in set(MessageRole) else None
    text = message_text(message)
    if role is None or not text.strip():
        return None
    return {"content": text, "role": role}


def message_of(turn: Turn) -> ChatMessage:
    """A stored turn as a LlamaIndex chat message of its role."""
    roles = {"assistant": MessageRole.ASSISTANT, "system": MessageRole.SYSTEM}
    return ChatMessage(role=roles.get(turn.role, MessageRole.USER), content=turn.content)


# Adapters kept in a workflow Context are serialised with it; the engine itself is not
# (it is an open store). They keep the store's path, and on restore find the engine this
# process has open on that path, or open it.
_OPEN: weakref.WeakValueDictionary[str, LightMem] = weakref.WeakValueDictionary()
_OPEN_LOCK = threading.Lock()


def register(mem: object, owner: str) -> LightMem:
    """Check the engine an adapter was given and remember it by store path."""
    checked = engine(mem, owner)
    with _OPEN_LOCK:
        _OPEN[str(Path(checked.path).resolve())] = checked
    return checked


def engine_for_path(path: str) -> LightMem:
    """The open engine on ``path``, or a newly opened one (default settings)."""
    key = str(Path(path).resolve())
    with _OPEN_LOCK:
        found = _OPEN.get(key)
        if found is None or found.closed:
            found = LightMem(path)
            _OPEN[key] = found
    return found


def resolve_engine(data: Any, owner: str) -> Any:
    """A pydantic ``model_validator(mode="before")`` body for adapters that keep an engine:
    a restored adapter (``store_path``, no engine) gets the engine open on that path; a new
    one records its engine's path (so it can be serialised)."""
    if isinstance(data, dict):
        mem = data.get("mem")
        if mem is None and data.get("store_path"):
            data["mem"] = mem = engine_for_path(data["store_path"])
        if mem is not None:
            data["store_path"] = str(register(mem, owner).path)
        elif not data.get("store_path"):
            from lightmem_core import InvalidArgument

            raise InvalidArgument(f"{owner} needs a LightMem engine: mem=...")
    return data


def check_token_limit(value: object) -> None:
    """``None``, or a token budget the engine accepts (checked before pydantic, which would
    wrap the error, and before anything is stored: a limit the engine refuses at the first
    ``get`` must not let a ``put`` through first)."""
    from lightmem_core.integration import check_token_budget

    check_token_budget(value, what="token_limit")
