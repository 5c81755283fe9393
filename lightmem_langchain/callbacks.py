"""Record the turns of any runnable (a chain, an agent, a bare chat model) into LightMem.

Only a *root* run is recorded: its input (the human side) when it starts and its output
(the answer) when it ends. Nested runs, token streams and the messages a chat model is
finally sent are ignored, so the system prompt and memories injected by LightMem itself are
never recorded back as turns.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, LLMResult

from lightmem_core import LightMem, check_user_id

from ._common import TurnCounter, engine, message_text, required_user

__all__ = ["LightMemCallbackHandler"]

_INPUT_KEYS = ("input", "question", "query", "human_input", "user_input", "messages")
_OUTPUT_KEYS = ("output", "response", "answer", "text", "result", "messages")


def _said(value: Any) -> str:
    """The human side of a run's input: a string, the last human message of a list, or the
    usual key of a dict (or its only value)."""
    if isinstance(value, str):
        return value
    if isinstance(value, BaseMessage):
        return message_text(value) if isinstance(value, HumanMessage) else ""
    if isinstance(value, Sequence):
        for item in reversed(value):
            if isinstance(item, HumanMessage):
                return message_text(item)
            if isinstance(item, tuple) and len(item) == 2 and item[0] in ("human", "user"):
                return str(item[1])
        return ""
    if isinstance(value, Mapping):
        for key in _INPUT_KEYS:
            if key in value:
                return _said(value[key])
        texts = [v for v in value.values() if isinstance(v, str)]
        return texts[0] if len(texts) == 1 else ""
    return ""


def _answered(value: Any) -> str:
    """The answer in a run's output: a string, an AI message, the last AI message of a
    list, or the usual key of a dict (or its only value)."""
    if isinstance(value, str):
        return value
    if isinstance(value, AIMessage):
        return "" if value.tool_calls else message_text(value)
    if isinstance(value, Sequence):
        for item in reversed(value):
            if isinstance(item, AIMessage) and not item.tool_calls:
                return message_text(item)
        return ""
    if isinstance(value, Mapping):
        for key in _OUTPUT_KEYS:
            if key in value:
                return _answered(value[key])
        texts = [v for v in value.values() if isinstance(v, str)]
        return texts[0] if len(texts) == 1 else ""
    return ""


class LightMemCallbackHandler(BaseCallbackHandler):
    """Records each root run's turn (what was asked, what was answered) for one user.

    ``chain.invoke(x, config={"callbacks": [handler]})``: works with any runnable. The user
    is the one given here, or ``config["metadata"]["user_id"]`` per run (so one handler can
    serve many users). A run with neither raises ``InvalidUserId``; because
    ``raise_error=True``, LangChain lets that reach the caller instead of logging it.

    Runs as a plain (sync) handler: under ``ainvoke`` LangChain calls it in a worker thread,
    so the event loop does not wait on the database.

    Args:
        mem: the :class:`~lightmem_core.LightMem` engine (first argument, or ``mem=``).
        user_id: the user (default: each run's ``metadata["user_id"]``).
        session_id: the session of the recorded turns (default: each run's
            ``metadata["session_id"]`` or ``metadata["thread_id"]``, else ``"default"``).
        consolidate_every: ask the engine for a background consolidation of the user every
            N recorded turns (off the hot path; default: never from here).
    """

    raise_error = True

    def __init__(
        self,
        mem: LightMem | None = None,
        /,
        *,
        user_id: str | None = None,
        session_id: str | None = None,
        consolidate_every: int | None = None,
        **options: Any,
    ) -> None:
        if mem is None:
            mem = options.pop("mem", None)
        if options:
            raise TypeError(
                f"unknown LightMemCallbackHandler option(s): {', '.join(sorted(options))}"
            )
        self.mem = engine(mem, "LightMemCallbackHandler")
        self.user_id = check_user_id(user_id) if user_id is not None else None
        self.session_id = session_id
        self._counter = TurnCounter(consolidate_every)
        self._open: dict[UUID, tuple[str, str, str]] = {}  # run -> (user, session, said)
        self._lock = threading.Lock()

    def _begin(self, run_id: UUID, said: str, metadata: Mapping[str, Any] | None) -> None:
        metadata = metadata or {}
        user = required_user(
            self.user_id if self.user_id is not None else metadata.get("user_id"),
            where="give LightMemCallbackHandler(user_id=...), or "
            'config={"metadata": {"user_id": ...}} per run',
        )
        session = self.session_id or metadata.get("session_id") or metadata.get("thread_id")
        with self._lock:
            self._open[run_id] = (user, str(session or "default"), said)

    def _end(self, run_id: UUID, answer: str) -> None:
        with self._lock:
            opened = self._open.pop(run_id, None)
        if opened is None:
            return
        user, session, said = opened
        turns = [
            turn
            for turn in (
                {"content": said, "role": "user"},
                {"content": answer, "role": "assistant"},
            )
            if turn["content"].strip()
        ]
        if turns:
            self.mem.add_many(user, turns, session_id=session)
            self._counter.recorded(self.mem, user, len(turns))

    def _drop(self, run_id: UUID) -> None:
        with self._lock:
            self._open.pop(run_id, None)

    # --- chains, agents, graphs ---------------------------------------------------------------

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: dict[str, Any] | Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """A root chain, agent or graph run starts: keep the human side of its input."""
        if parent_run_id is None:
            self._begin(run_id, _said(inputs), metadata)

    def on_chain_end(
        self,
        outputs: dict[str, Any] | Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """A root run ends: record its input and its answer as the user's turns."""
        if parent_run_id is None:
            self._end(run_id, _answered(outputs))

    def on_chain_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """A run failed: it has no answer, so nothing of it is recorded."""
        self._drop(run_id)  # a failed run has no answer; nothing is recorded

    # --- a chat model or LLM invoked on its own -----------------------------------------------

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """A chat model invoked on its own starts: keep the last human message."""
        if parent_run_id is None and messages:
            self._begin(run_id, _said(messages[0]), metadata)

    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """An LLM invoked on its own starts: keep its prompt."""
        if parent_run_id is None and prompts:
            self._begin(run_id, prompts[0], metadata)

    def on_llm_end(
        self,
        response: LLMResult,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """A chat model or LLM invoked on its own ends: record the prompt and its answer."""
        if parent_run_id is not None or not response.generations or not response.generations[0]:
            return
        generation = response.generations[0][0]
        if isinstance(generation, ChatGeneration):
            self._end(run_id, _answered(generation.message))
        else:
            self._end(run_id, generation.text)

    def on_llm_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """A model call failed: nothing of it is recorded."""
        self._drop(run_id)
