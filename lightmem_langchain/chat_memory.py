"""``memory=`` for LangChain's classic chains and agents (``langchain_classic``).

``ConversationChain``, ``LLMChain`` and the classic ``AgentExecutor`` call
``load_memory_variables`` before the model (``Chain.prep_inputs``) and ``save_context``
after it (``Chain.prep_outputs``), or their async twins under ``ainvoke``. Nothing in a
chain calls ``clear``: it is there for the application.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_classic.memory.chat_memory import BaseChatMemory
from langchain_classic.memory.utils import get_prompt_input_key
from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import BaseMessage, SystemMessage
from pydantic import ConfigDict

from lightmem_core import Context, InvalidArgument, LightMem, SearchResults, Turn, check_user_id
from lightmem_core.integration import check_token_budget
from lightmem_core.retrieval import render_context

from ._common import engine, message_of, message_text, turn_of

__all__ = ["LightMemChatMemory"]


class LightMemChatMemory(BaseChatMemory):
    """Long-term memory for a classic chain: one user, one session (conversation).

    ``load_memory_variables`` gives the session's recent turns (short-term memory) and the
    user's memories retrieved for the current input (two-stage retrieval, within
    ``token_budget``), under ``memory_key``: as one text block, or with
    ``return_messages=True`` as messages (the memories as a system message of quoted data,
    then the recent turns as human and AI messages). ``save_context`` records both sides of
    the turn durably, with the session id and a timestamp, and calls no model.

    ``clear()`` clears the session's *short-term view* only: the turns so far stop being
    shown as recent conversation, durably and for every process on the store. The user's
    long-term memory is untouched, and those turns stay retrievable as memories. To erase
    a user, call ``mem.forget(user_id)``.

    Args:
        mem: the :class:`~lightmem_core.LightMem` engine (first argument, or ``mem=``).
        user_id: whose memory this is (required).
        session_id: the conversation; its recent turns are short-term memory.
        token_budget: tokens the memory variable may take (default: the engine's
            ``token_budget``).
        memory_key: the prompt variable (``"history"`` fits ``ConversationChain``'s prompt).
        return_messages: messages instead of one text block.
        input_key, output_key: which input and output to record when a chain has several.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    mem: LightMem
    user_id: str
    session_id: str = "default"
    token_budget: int | None = None
    memory_key: str = "history"
    # The history is a live view of the session in LightMem (see _SessionHistory): replacing
    # the default also keeps LangChain's deprecated InMemoryChatMessageHistory out.
    chat_memory: BaseChatMessageHistory | None = None  # type: ignore[assignment]

    def __init__(self, mem: LightMem | None = None, /, **data: Any) -> None:
        if mem is not None:
            data["mem"] = mem
        # Checked here, not in pydantic validators: those would wrap the typed errors.
        data["mem"] = engine(data.get("mem"), "LightMemChatMemory")
        data["user_id"] = check_user_id(data.get("user_id"))
        session = data.setdefault("session_id", "default")
        if not isinstance(session, str) or not session.strip() or session != session.strip():
            raise InvalidArgument(f"session_id must be a non-empty id, got {session!r}")
        check_token_budget(data.get("token_budget"))
        super().__init__(**data)
        self.chat_memory = _SessionHistory(self)

    @property
    def memory_variables(self) -> list[str]:
        return [self.memory_key]

    # --- the shared, I/O-free halves of each call ---------------------------------------------

    def _query(self, inputs: dict[str, Any]) -> str:
        key = self.input_key or get_prompt_input_key(inputs, self.memory_variables)
        return message_text(inputs[key])

    def _variables(self, found: Context) -> dict[str, Any]:
        if not self.return_messages:
            return {self.memory_key: found.text}
        messages: list[BaseMessage] = []
        if found.memories_text:
            messages.append(SystemMessage(content=found.memories_text))
        messages += [message_of(turn) for turn in found.recent]
        return {self.memory_key: messages}

    @staticmethod
    def _recent_only(recent: list[Turn]) -> Context:
        """What a blank input gets: nothing to retrieve for, so the recent turns alone."""
        return Context(
            text=render_context(recent, []), memories_text="", hits=SearchResults(), recent=recent
        )

    def _turns(self, inputs: dict[str, Any], outputs: dict[str, Any]) -> list[dict[str, Any]]:
        said, answered = self._get_input_output(inputs, outputs)
        turns = [
            {"content": message_text(said), "role": "user"},
            {"content": message_text(answered), "role": "assistant"},
        ]
        # A side with no text (an empty answer) has nothing to remember; the other is kept.
        return [t for t in turns if t["content"].strip()]

    # --- sync ---------------------------------------------------------------------------------

    def load_memory_variables(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """The recent turns and the memories retrieved for the input, under ``memory_key``."""
        query = self._query(inputs)
        if not query.strip():
            return self._variables(self._recent_only(self._recent()))
        found = self.mem.context(
            self.user_id, query, token_budget=self.token_budget, session_id=self.session_id
        )
        return self._variables(found)

    def save_context(self, inputs: dict[str, Any], outputs: dict[str, Any]) -> None:
        """Record the human input and the AI output of the turn (durable; no model call)."""
        turns = self._turns(inputs, outputs)
        if turns:
            self.mem.add_many(self.user_id, turns, session_id=self.session_id)

    def clear(self) -> None:
        """Clear the session's short-term view (not the user's long-term memory)."""
        self.mem.clear_recent(self.user_id, self.session_id)

    def _recent(self) -> list[Turn]:
        return self.mem.recent(self.user_id, session_id=self.session_id)

    # --- async --------------------------------------------------------------------------------

    async def aload_memory_variables(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Async :meth:`load_memory_variables`."""
        query = self._query(inputs)
        if not query.strip():
            recent = await self.mem.arecent(self.user_id, session_id=self.session_id)
            return self._variables(self._recent_only(recent))
        found = await self.mem.acontext(
            self.user_id, query, token_budget=self.token_budget, session_id=self.session_id
        )
        return self._variables(found)

    async def asave_context(self, inputs: dict[str, Any], outputs: dict[str, Any]) -> None:
        """Async :meth:`save_context`."""
        turns = self._turns(inputs, outputs)
        if turns:
            await self.mem.aadd_many(self.user_id, turns, session_id=self.session_id)

    async def aclear(self) -> None:
        """Async :meth:`clear` (the short-term view only)."""
        await self.mem.aclear_recent(self.user_id, self.session_id)


class _SessionHistory(BaseChatMessageHistory):
    """``chat_memory`` of a :class:`LightMemChatMemory`: the session's recent turns in
    LightMem, for code that reads or writes ``memory.chat_memory`` directly."""

    def __init__(self, owner: LightMemChatMemory) -> None:
        self._owner = owner

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        return [message_of(t) for t in self._owner._recent()]

    async def aget_messages(self) -> list[BaseMessage]:
        owner = self._owner
        return [
            message_of(t)
            for t in await owner.mem.arecent(owner.user_id, session_id=owner.session_id)
        ]

    def _entries(self, messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
        return [t for t in (turn_of(m) for m in messages) if t is not None]

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        if entries := self._entries(messages):
            self._owner.mem.add_many(
                self._owner.user_id, entries, session_id=self._owner.session_id
            )

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        if entries := self._entries(messages):
            owner = self._owner
            await owner.mem.aadd_many(owner.user_id, entries, session_id=owner.session_id)

    def clear(self) -> None:
        self._owner.clear()

    async def aclear(self) -> None:
        await self._owner.aclear()
