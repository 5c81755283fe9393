"""Record the turns of any LlamaIndex chat engine into LightMem, through instrumentation.

A chat engine's ``chat`` / ``achat`` is a span of LlamaIndex's dispatcher; there is no
end-of-chat event for a non-streaming chat. This handler watches root chat spans and, when
one ends, records what was asked and what was answered.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from llama_index_instrumentation import get_dispatcher
from llama_index_instrumentation.dispatcher import Dispatcher
from llama_index_instrumentation.span.simple import SimpleSpan
from llama_index_instrumentation.span_handlers import BaseSpanHandler
from pydantic import ConfigDict

from lightmem_core import LightMem, check_user_id
from lightmem_core.integration import TurnCounter

from ._common import register

__all__ = ["LightMemEventHandler"]

logger = logging.getLogger("lightmem")

_CHAT_METHODS = frozenset({"chat", "achat"})


class LightMemEventHandler(BaseSpanHandler[SimpleSpan]):
    """Records each chat turn of a chat engine (``chat`` or ``achat``) for one user.

    ``LightMemEventHandler(mem, user_id="alice").attach()`` adds it to LlamaIndex's root
    dispatcher (``detach()`` removes it). When a root chat span ends, the message and the
    response become two turns; a chat that fails records nothing. Streaming chats
    (``stream_chat``) are not recorded here: their answer is written after the span ends.
    Use it with engines whose memory is not LightMem's (``LightMemMemory`` records already).

    LlamaIndex swallows every error of a span handler, so this one logs its own (logger
    ``lightmem``) and keeps the last in ``last_error``.

    Args:
        mem: the :class:`~lightmem_core.LightMem` engine (first argument, or ``mem=``).
        user_id: the user (required).
        session_id: the session of the recorded turns.
        consolidate_every: ask the engine for a background consolidation of the user every
            N recorded turns (off the hot path; default: never from here).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    mem: Any = None
    user_id: str = ""
    session_id: str = "default"
    last_error: str | None = None

    def __init__(
        self,
        mem: LightMem | None = None,
        /,
        *,
        user_id: str | None = None,
        session_id: str = "default",
        consolidate_every: int | None = None,
        **options: Any,
    ) -> None:
        if mem is None:
            mem = options.pop("mem", None)
        if options:
            raise TypeError(f"unknown LightMemEventHandler option(s): {', '.join(sorted(options))}")
        engine = register(mem, "LightMemEventHandler")
        user = check_user_id(user_id)
        counter = TurnCounter(consolidate_every)
        super().__init__()
        self.mem, self.user_id, self.session_id = engine, user, session_id
        self._counter = counter
        self._dispatcher: Dispatcher | None = None

    @classmethod
    def class_name(cls) -> str:
        """The name LlamaIndex knows this handler by."""
        return "LightMemEventHandler"

    def attach(self, dispatcher: Dispatcher | None = None) -> LightMemEventHandler:
        """Add this handler to ``dispatcher`` (default: LlamaIndex's root dispatcher)."""
        self._dispatcher = dispatcher or get_dispatcher()
        self._dispatcher.add_span_handler(self)
        return self

    def detach(self) -> None:
        """Remove this handler from the dispatcher it was attached to."""
        if self._dispatcher is not None and self in self._dispatcher.span_handlers:
            self._dispatcher.span_handlers.remove(self)
        self._dispatcher = None

    # --- spans ----------------------------------------------------------------------------------

    def new_span(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any | None = None,
        parent_span_id: str | None = None,
        tags: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> SimpleSpan | None:
        """Track a root chat call (``chat``, ``achat``); ignore every other span."""
        method = id_.split("-", 1)[0].rsplit(".", 1)[-1]
        if parent_span_id is None and method in _CHAT_METHODS:
            return SimpleSpan(id_=id_, parent_id=None, tags=tags or {})
        return None  # not a chat turn: not tracked

    def prepare_to_exit_span(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any | None = None,
        result: Any | None = None,
        **kwargs: Any,
    ) -> SimpleSpan | None:
        """A tracked chat call returned: record its message and its answer as the user's turns."""
        span = self.open_spans.get(id_)
        if span is None:
            return None
        try:
            self._record(bound_args, result)
        except Exception as err:  # LlamaIndex would swallow it silently
            self.last_error = f"{type(err).__name__}: {err}"
            logger.warning("lightmem: could not record a LlamaIndex chat turn: %s", err)
        return span

    def prepare_to_drop_span(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any | None = None,
        err: BaseException | None = None,
        **kwargs: Any,
    ) -> SimpleSpan | None:
        """A tracked chat call failed: nothing of it is recorded."""
        return self.open_spans.get(id_)  # a failed chat: nothing to record

    def _record(self, bound_args: inspect.BoundArguments, result: Any) -> None:
        said = bound_args.arguments.get("message")
        answer = getattr(result, "response", None)
        turns = [
            {"content": str(text), "role": role}
            for text, role in ((said, "user"), (answer, "assistant"))
            if isinstance(text, str) and text.strip()
        ]
        if turns:
            self.mem.add_many(self.user_id, turns, session_id=self.session_id)
            self._counter.recorded(self.mem, self.user_id, len(turns))
