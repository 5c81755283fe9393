"""LightMem as a block of LlamaIndex's ``Memory`` (``Memory.from_defaults(memory_blocks=[...])``).

``Memory`` hands its blocks only the messages it flushes out of short-term memory, once the
chat history outgrows its share of ``token_limit`` (about 21,000 tokens by default), so a
block that waited for those would not see a turn for a long time. This block also records
the messages ``Memory`` shows it on every ``aget`` (the session's active history), so each
turn reaches LightMem as soon as the next message is asked for. A message is identified by
its session, role and text: seeing it again, flushed or shown, never stores it twice (and
a message repeated word for word in one session is stored once).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from contextlib import suppress
from typing import Any

from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.memory.memory import BaseMemoryBlock
from pydantic import ConfigDict, Field, PrivateAttr, model_validator

from lightmem_core import DuplicateTurnId, LightMem, check_user_id
from lightmem_core.integration import required_user

from ._common import check_token_limit, message_text, resolve_engine, turn_of

__all__ = ["LightMemBlock"]

_SEEN_CAP = 4096  # message ids known to be stored, per block (a cache, not a record)


class LightMemBlock(BaseMemoryBlock[str]):
    """The user's memories retrieved for the latest message, as a ``Memory`` block.

    - ``_aget`` retrieves for the latest user message and returns the memories as quoted
      data, within ``token_limit``; memories written from the session's active history are
      left out (the chat history already holds them).
    - ``_aput`` records the messages ``Memory`` flushes out of short-term memory
      (only when ``accept_short_term_memory`` is true, as ``Memory`` decides).
    - ``atruncate`` drops the lowest-ranked memories until the block is the requested
      number of tokens smaller (``Memory`` truncates blocks with ``priority`` above 0,
      lowest priority first; 0 means never).

    The user is ``user_id``, or the ``user_id`` keyword of a ``memory.aget(...)`` call; the
    session is the one ``Memory`` passes with each call. Nothing per call is kept on the
    block, so one block can serve many sessions (and, with per-call user ids, many users).

    Args:
        mem: the :class:`~lightmem_core.LightMem` engine (``mem=``).
        user_id: the user (default: each call's ``user_id`` keyword).
        token_limit: tokens the block's memories may take (default: the engine's
            ``token_budget``).
        name, priority, accept_short_term_memory, description: as ``BaseMemoryBlock``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: str = "lightmem"
    description: str | None = "Long-term memories about the user, retrieved for the latest message."
    mem: LightMem | None = Field(default=None, exclude=True)
    store_path: str | None = None
    user_id: str | None = None
    token_limit: int | None = None
    _seen: OrderedDict[tuple[str, str], None] = PrivateAttr(default_factory=OrderedDict)
    _seen_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @model_validator(mode="before")
    @classmethod
    def _resolve(cls, data: Any) -> Any:
        return resolve_engine(data, "LightMemBlock")

    def __init__(self, mem: LightMem | None = None, /, **data: Any) -> None:
        if mem is not None:
            data["mem"] = mem
        # Checked here, not in pydantic validators: those would wrap the typed errors.
        resolve_engine(data, "LightMemBlock")  # a typed error when there is no engine
        if data.get("user_id") is not None:
            data["user_id"] = check_user_id(data["user_id"])
        check_token_limit(data.get("token_limit"))
        super().__init__(**data)

    @property
    def engine(self) -> LightMem:
        assert self.mem is not None  # set by the validator
        return self.mem

    def _user(self, block_kwargs: dict[str, Any]) -> str:
        return required_user(
            self.user_id if self.user_id is not None else block_kwargs.get("user_id"),
            where="give LightMemBlock(user_id=...), or memory.aget(..., user_id=...)",
        )

    # --- recording, once per message -----------------------------------------------------------

    @staticmethod
    def _turn_id(session: str, entry: dict[str, Any]) -> str:
        digest = hashlib.sha256(f"{session}\x1f{entry['role']}\x1f{entry['content']}".encode())
        return f"li-{digest.hexdigest()[:32]}"

    async def _record(self, user: str, session: str, messages: list[ChatMessage]) -> None:
        for message in messages:
            entry = turn_of(message)
            if entry is None:
                continue
            entry["turn_id"] = self._turn_id(session, entry)
            key = (user, entry["turn_id"])
            with self._seen_lock:
                if key in self._seen:
                    continue
            # A DuplicateTurnId: stored before (by another process, or another block).
            with suppress(DuplicateTurnId):
                await self.engine.aadd_many(user, [entry], session_id=session)
            with self._seen_lock:
                self._seen[key] = None
                while len(self._seen) > _SEEN_CAP:
                    self._seen.popitem(last=False)

    # --- the block ------------------------------------------------------------------------------

    async def _aget(self, messages: list[ChatMessage] | None = None, **block_kwargs: Any) -> str:
        """The memories for the latest user message, as quoted data (``""``: none)."""
        user = self._user(block_kwargs)
        session = str(block_kwargs.get("session_id") or "default")
        history = list(messages or [])
        await self._record(user, session, history)
        query = next(
            (
                message_text(m)
                for m in reversed(history)
                if m.role == MessageRole.USER and message_text(m).strip()
            ),
            "",
        )
        if not query:
            return ""
        found = await self.engine.acontext(
            user, query, token_budget=self.token_limit, session_id=session, include_recent=False
        )
        return found.memories_text

    async def _aput(self, messages: list[ChatMessage]) -> None:
        """Record the messages flushed out of short-term memory."""
        if not messages:
            return
        user = self._user({})
        session = str(messages[0].additional_kwargs.get("session_id") or "default")
        await self._record(user, session, messages)

    async def atruncate(self, content: str, tokens_to_truncate: int) -> str | None:
        """``content`` less its lowest-ranked memories, at least ``tokens_to_truncate``
        tokens shorter (counted with LlamaIndex's tokenizer); ``None`` when none is left."""
        from llama_index.core.utils import get_tokenizer

        count = get_tokenizer()
        lines = content.split("\n")
        # The block is: header, <memories>, one line per memory (best first), </memories>.
        memory_lines = [i for i, line in enumerate(lines) if line.startswith("- [")]
        removed = 0
        while memory_lines and removed < tokens_to_truncate:
            index = memory_lines.pop()
            removed += len(count(lines[index])) + 1
            lines[index] = ""
        if not memory_lines:
            return None
        return "\n".join(line for line in lines if line)
