"""``memory=`` for LlamaIndex chat engines and agents (``llama_index.core.memory.BaseMemory``).

What calls what (llama-index-core 0.14): ``SimpleChatEngine`` puts the user message, then
``get()`` with no input, then puts the answer; ``ContextChatEngine`` and
``CondensePlusContextChatEngine`` call ``get(input=message)`` before putting either side;
the workflow agents (``FunctionAgent``, ``ReActAgent``, ``AgentWorkflow``) ``aput`` the user
message, ``aget()`` with no input, and ``aput_messages`` the run's messages at the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.memory.types import BaseMemory
from pydantic import ConfigDict, Field, model_validator

from lightmem_core import Context, InvalidArgument, LightMem, Turn, check_user_id

from ._common import check_token_limit, message_of, message_text, resolve_engine, turn_of

__all__ = ["LightMemMemory"]

_EVERYTHING = 1_000_000  # tokens and turns: no cap (get_all)


class LightMemMemory(BaseMemory):
    """Long-term memory for a chat engine or agent: one user, one session.

    ``get(input=...)`` returns the memories retrieved for the input (or, without one, for
    the latest user message of the session) as a system message of quoted data, then the
    session's recent messages, together within ``token_limit``. The latest message is always
    among them, however long. ``put`` records a message durably and calls no model; messages
    without text and tool messages (a run's scratch work) are not remembered.

    ``reset()`` clears the session's *short-term view* only: the messages so far stop being
    returned as chat history, durably. The user's long-term memory is untouched, and those
    messages stay retrievable as memories. To erase a user, call ``mem.forget(user_id)``.

    Build it with :meth:`from_defaults`. It can be serialised with a workflow ``Context``:
    it keeps the store's path, and on restore uses the engine this process has open there.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    mem: LightMem | None = Field(default=None, exclude=True)
    store_path: str | None = None
    user_id: str
    session_id: str = "default"
    token_limit: int | None = None
    insert_method: str = "system"
    """Where the memories go: ``"system"``, a system message first; ``"user"``, in front
    of the latest user message (as LlamaIndex's ``Memory`` does with ``InsertMethod.USER``).
    ``ReActAgent`` drops a leading system message unless it has a ``system_prompt`` of its
    own: use ``"user"`` there."""

    @model_validator(mode="before")
    @classmethod
    def _resolve(cls, data: Any) -> Any:
        return resolve_engine(data, "LightMemMemory")

    def __init__(self, **data: Any) -> None:
        # Checked here, not in pydantic validators: those would wrap the typed errors.
        resolve_engine(data, "LightMemMemory")  # a typed error when there is no engine
        data["user_id"] = check_user_id(data.get("user_id"))
        session = data.setdefault("session_id", "default")
        if not isinstance(session, str) or not session.strip() or session != session.strip():
            raise InvalidArgument(f"session_id must be a non-empty id, got {session!r}")
        check_token_limit(data.get("token_limit"))
        if data.get("insert_method", "system") not in ("system", "user"):
            raise InvalidArgument(
                f"insert_method must be 'system' or 'user', got {data['insert_method']!r}"
            )
        super().__init__(**data)

    @classmethod
    def class_name(cls) -> str:
        """The name LlamaIndex knows this memory by."""
        return "LightMemMemory"

    @classmethod
    def from_defaults(
        cls,
        mem: LightMem | None = None,
        *,
        user_id: str | None = None,
        session_id: str = "default",
        token_limit: int | None = None,
        insert_method: str = "system",
        **kwargs: Any,
    ) -> LightMemMemory:
        """A memory for ``user_id``'s ``session_id`` on the engine ``mem``.

        Args:
            mem: the :class:`~lightmem_core.LightMem` engine (first argument, or ``mem=``).
            user_id: whose memory this is (required).
            session_id: the conversation; its recent messages are the chat history.
            token_limit: tokens the memories and history take together (default: the
                engine's ``token_budget``).
            insert_method: ``"system"`` (a system message first) or ``"user"`` (in front of
                the latest user message; for ``ReActAgent``).
        """
        if kwargs:
            raise InvalidArgument(f"unknown LightMemMemory option(s): {', '.join(sorted(kwargs))}")
        return cls(
            mem=mem,
            user_id=user_id,
            session_id=session_id,
            token_limit=token_limit,
            insert_method=insert_method,
        )

    @property
    def engine(self) -> LightMem:
        assert self.mem is not None  # set by the validator
        return self.mem

    # --- the shared, I/O-free halves -----------------------------------------------------------

    def _budget(self, initial_token_count: object) -> int:
        budget = self.token_limit or self.engine.config.token_budget
        used = initial_token_count if isinstance(initial_token_count, int) else 0
        # A long system prompt leaves less room; it never makes get() fail.
        return max(1, budget - max(0, used))

    @staticmethod
    def _query(input: str | ChatMessage | None, recent: Sequence[Turn]) -> str:
        text = message_text(input)
        if text.strip():
            return text
        for turn in reversed(recent):  # no input: the latest user message of the session
            if turn.role == "user":
                return turn.content
        return ""

    def _messages(self, found: Context, latest: Sequence[Turn]) -> list[ChatMessage]:
        # The latest message is always there, even when it alone is over the budget.
        messages = [message_of(t) for t in found.recent or list(latest[-1:])]
        if not found.memories_text:
            return messages
        if self.insert_method == "user":
            for i in range(len(messages) - 1, -1, -1):
                if messages[i].role == MessageRole.USER:
                    text = f"{found.memories_text}\n\n{message_text(messages[i])}"
                    messages[i] = ChatMessage(role=MessageRole.USER, content=text)
                    return messages
        return [ChatMessage(role=MessageRole.SYSTEM, content=found.memories_text), *messages]

    @staticmethod
    def _entries(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
        return [t for t in (turn_of(m) for m in messages) if t is not None]

    @staticmethod
    def _unseen(current: Sequence[Turn], wanted: Sequence[ChatMessage]) -> list[ChatMessage] | None:
        """The messages of ``wanted`` after the session's current ones, or ``None`` when
        the current history is not where ``wanted`` starts (set() must start over)."""
        entries = [(t["role"], t["content"]) for t in LightMemMemory._entries(wanted)]
        have = [(t.role, t.content) for t in current]
        if entries[: len(have)] != have:
            return None
        kept = [m for m in wanted if turn_of(m) is not None]
        return kept[len(have) :]

    # --- sync ------------------------------------------------------------------------------------

    def get(self, input: str | ChatMessage | None = None, **kwargs: Any) -> list[ChatMessage]:
        """Memories for ``input`` (or the latest user message) and the recent messages."""
        mem, latest = self.engine, []
        query = message_text(input)
        if not query.strip():  # SimpleChatEngine, FunctionAgent: the latest user message
            latest = mem.recent(self.user_id, session_id=self.session_id, token_budget=_EVERYTHING)
            query = self._query(None, latest)
            if not query.strip():
                return [message_of(t) for t in latest]
        found = mem.context(
            self.user_id,
            query,
            token_budget=self._budget(kwargs.get("initial_token_count")),
            session_id=self.session_id,
        )
        if not found.recent and not latest:  # the latest message alone is over the budget
            latest = mem.recent(
                self.user_id, session_id=self.session_id, token_budget=_EVERYTHING, limit=1
            )
        return self._messages(found, latest)

    def get_all(self) -> list[ChatMessage]:
        """Every message of the session since the last :meth:`reset`."""
        turns = self.engine.recent(
            self.user_id, session_id=self.session_id, token_budget=_EVERYTHING, limit=_EVERYTHING
        )
        return [message_of(t) for t in turns]

    def put(self, message: ChatMessage) -> None:
        """Record one message (durable; no model call)."""
        self.put_messages([message])

    def put_messages(self, messages: list[ChatMessage]) -> None:
        """Record several messages, all or none."""
        if entries := self._entries(messages):
            self.engine.add_many(self.user_id, entries, session_id=self.session_id)

    def set(self, messages: list[ChatMessage]) -> None:
        """Make ``messages`` the session's chat history. Messages the session already holds
        (the history given again, grown by new ones) are not recorded twice."""
        current = self.engine.recent(
            self.user_id, session_id=self.session_id, token_budget=_EVERYTHING, limit=_EVERYTHING
        )
        unseen = self._unseen(current, messages)
        if unseen is None:
            self.engine.clear_recent(self.user_id, self.session_id)
            unseen = list(messages)
        self.put_messages(unseen)

    def reset(self) -> None:
        """Clear the session's short-term view (not the user's long-term memory)."""
        self.engine.clear_recent(self.user_id, self.session_id)

    # --- async -----------------------------------------------------------------------------------

    async def aget(
        self, input: str | ChatMessage | None = None, **kwargs: Any
    ) -> list[ChatMessage]:
        """Async :meth:`get`."""
        mem, latest = self.engine, []
        query = message_text(input)
        if not query.strip():
            latest = await mem.arecent(
                self.user_id, session_id=self.session_id, token_budget=_EVERYTHING
            )
            query = self._query(None, latest)
            if not query.strip():
                return [message_of(t) for t in latest]
        found = await mem.acontext(
            self.user_id,
            query,
            token_budget=self._budget(kwargs.get("initial_token_count")),
            session_id=self.session_id,
        )
        if not found.recent and not latest:
            latest = await mem.arecent(
                self.user_id, session_id=self.session_id, token_budget=_EVERYTHING, limit=1
            )
        return self._messages(found, latest)

    async def aget_all(self) -> list[ChatMessage]:
        """Async :meth:`get_all`."""
        turns = await self.engine.arecent(
            self.user_id, session_id=self.session_id, token_budget=_EVERYTHING, limit=_EVERYTHING
        )
        return [message_of(t) for t in turns]

    async def aput(self, message: ChatMessage) -> None:
        """Async :meth:`put`."""
        await self.aput_messages([message])

    async def aput_messages(self, messages: list[ChatMessage]) -> None:
        """Async :meth:`put_messages`."""
        if entries := self._entries(messages):
            await self.engine.aadd_many(self.user_id, entries, session_id=self.session_id)

    async def aset(self, messages: list[ChatMessage]) -> None:
        """Async :meth:`set`."""
        current = await self.engine.arecent(
            self.user_id, session_id=self.session_id, token_budget=_EVERYTHING, limit=_EVERYTHING
        )
        unseen = self._unseen(current, messages)
        if unseen is None:
            await self.engine.aclear_recent(self.user_id, self.session_id)
            unseen = list(messages)
        await self.aput_messages(unseen)

    async def areset(self) -> None:
        """Async :meth:`reset` (the short-term view only)."""
        await self.engine.aclear_recent(self.user_id, self.session_id)
