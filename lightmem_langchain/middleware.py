"""LightMem as agent middleware for ``langchain.agents.create_agent(middleware=[...])``.

Before each model call, the memories retrieved for the latest human message are added to
the system message of *that call only* (``wrap_model_call`` with ``request.override``):
nothing is written to the thread's state, so memories never pile up in the checkpointed
history. After the agent finishes, the turn (the human message and the final answer) is
recorded, once: turn ids come from the message ids, so a thread replayed from a
checkpointer is not stored twice.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from langchain.agents.middleware import AgentMiddleware, AgentState, ModelRequest, ModelResponse
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langgraph.runtime import Runtime

from lightmem_core import DuplicateTurnId, LightMem
from lightmem_core.integration import check_token_budget

from ._common import TurnCounter, context_value, engine, message_text, required_user, turn_of

__all__ = ["LightMemMiddleware"]

logger = logging.getLogger("lightmem")

_TURN_PREFIX = "lc-"


class LightMemMiddleware(AgentMiddleware[AgentState[Any], Any, Any]):
    """Long-term memory for an agent: memories in, turns out.

    The user id comes from the runtime context, never from anything the model writes:
    ``create_agent(..., context_schema=Ctx)`` and ``agent.invoke(..., context={"user_id":
    "alice"})``. The context may be a dict, a dataclass or a pydantic model. A missing
    user id raises ``InvalidUserId`` before the model is called, and nothing is written.
    The session is ``context[session_id_key]`` when given, else the thread id of the run's
    config, else ``"default"``.

    Args:
        mem: the :class:`~lightmem_core.LightMem` engine (first argument, or ``mem=``).
        user_id_key: the context field holding the user id.
        session_id_key: the context field holding the session id (optional).
        token_budget: tokens the injected memories may take (default: the engine's).
        k: the most memories injected.
        record: record each turn after the agent (``False``: read-only memory).
        consolidate_every: ask the engine for a background consolidation of the user
            every N recorded turns (never inside a model call; default: only the engine's
            own ``consolidate_every``).
        name: the middleware's name (two LightMem middlewares on one agent need two).
    """

    def __init__(
        self,
        mem: LightMem | None = None,
        /,
        *,
        user_id_key: str = "user_id",
        session_id_key: str = "session_id",
        token_budget: int | None = None,
        k: int | None = None,
        record: bool = True,
        consolidate_every: int | None = None,
        name: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__()
        if mem is None:
            mem = options.pop("mem", None)
        if options:
            raise TypeError(f"unknown LightMemMiddleware option(s): {', '.join(sorted(options))}")
        self.mem = engine(mem, "LightMemMiddleware")
        self.user_id_key = user_id_key
        self.session_id_key = session_id_key
        self.token_budget = check_token_budget(token_budget)
        self.k = k
        self.record = record
        self._counter = TurnCounter(consolidate_every)
        self._name = name

    @property
    def name(self) -> str:
        return self._name or type(self).__name__

    # --- who and where ------------------------------------------------------------------------

    def _user(self, runtime: Runtime[Any]) -> str:
        return required_user(
            context_value(runtime.context, self.user_id_key),
            where=f"LightMemMiddleware reads it from the runtime context key "
            f"{self.user_id_key!r}: create_agent(..., context_schema=...) and "
            f"agent.invoke(..., context={{{self.user_id_key!r}: ...}})",
        )

    def _session(self, runtime: Runtime[Any]) -> str:
        session = context_value(runtime.context, self.session_id_key)
        if session is not None:
            return str(session)
        try:
            from langgraph.config import get_config

            thread = get_config().get("configurable", {}).get("thread_id")
        except RuntimeError:  # outside a runnable context
            thread = None
        return str(thread) if thread is not None else "default"

    # --- before the model: inject memories ----------------------------------------------------

    @staticmethod
    def _query(messages: Sequence[BaseMessage]) -> str:
        for message in reversed(messages):
            if isinstance(message, HumanMessage):
                return message_text(message)
        return ""

    @staticmethod
    def _with_memories(request: ModelRequest[Any], block: str) -> ModelRequest[Any]:
        system = request.system_message
        if system is None:
            return request.override(system_message=SystemMessage(content=block))
        if isinstance(system.content, str):
            content: Any = f"{system.content}\n\n{block}" if system.content else block
        else:
            content = [*system.content, {"type": "text", "text": block}]
        return request.override(system_message=SystemMessage(content=content))

    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> Any:
        """Add the memories for the latest human message to this call's system message."""
        user = self._user(request.runtime)
        query = self._query(request.messages)
        if query.strip():
            found = self.mem.context(
                user,
                query,
                token_budget=self.token_budget,
                k=self.k,
                session_id=self._session(request.runtime),
                include_recent=False,  # the thread's own messages are in the request
            )
            if found.memories_text:
                request = self._with_memories(request, found.memories_text)
        return handler(request)

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> Any:
        """Async :meth:`wrap_model_call` (the engine's work off the event loop)."""
        user = self._user(request.runtime)
        query = self._query(request.messages)
        if query.strip():
            found = await self.mem.acontext(
                user,
                query,
                token_budget=self.token_budget,
                k=self.k,
                session_id=self._session(request.runtime),
                include_recent=False,
            )
            if found.memories_text:
                request = self._with_memories(request, found.memories_text)
        return await handler(request)

    # --- after the agent: record the turn -----------------------------------------------------

    @staticmethod
    def _turn(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
        """This invocation's human message and the agent's final answer. With a
        checkpointer the state holds the whole thread: only the part after the latest
        human message is this turn; tool calls and tool results are not remembered."""
        start = next(
            (i for i in range(len(messages) - 1, -1, -1) if isinstance(messages[i], HumanMessage)),
            None,
        )
        if start is None:
            return []
        said = turn_of(messages[start], id_prefix=_TURN_PREFIX)
        answer = next(
            (
                m
                for m in reversed(messages[start + 1 :])
                if isinstance(m, AIMessage) and not m.tool_calls and message_text(m).strip()
            ),
            None,
        )
        replied = turn_of(answer, id_prefix=_TURN_PREFIX) if answer is not None else None
        return [t for t in (said, replied) if t is not None]

    def _record(self, user: str, session: str, turns: list[dict[str, Any]]) -> int:
        stored = 0
        for turn in turns:  # one by one: a part recorded before is skipped, not fatal
            try:
                self.mem.add_many(user, [turn], session_id=session)
                stored += 1
            except DuplicateTurnId:
                logger.debug("lightmem: turn %s recorded before", turn.get("turn_id"))
        return stored

    async def _arecord(self, user: str, session: str, turns: list[dict[str, Any]]) -> int:
        stored = 0
        for turn in turns:
            try:
                await self.mem.aadd_many(user, [turn], session_id=session)
                stored += 1
            except DuplicateTurnId:
                logger.debug("lightmem: turn %s recorded before", turn.get("turn_id"))
        return stored

    def after_agent(self, state: AgentState[Any], runtime: Runtime[Any]) -> dict[str, Any] | None:
        """Record the turn (the human message and the final AI answer), durably."""
        if self.record:
            user = self._user(runtime)
            stored = self._record(user, self._session(runtime), self._turn(state["messages"]))
            self._counter.recorded(self.mem, user, stored)
        return None

    async def aafter_agent(
        self, state: AgentState[Any], runtime: Runtime[Any]
    ) -> dict[str, Any] | None:
        """Async :meth:`after_agent`."""
        if self.record:
            user = self._user(runtime)
            turns = self._turn(state["messages"])
            stored = await self._arecord(user, self._session(runtime), turns)
            self._counter.recorded(self.mem, user, stored)
        return None
