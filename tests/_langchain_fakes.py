"""Scripted LangChain chat models for the adapter tests: the only fakes (they stand in for
a large language model); everything around them is real LangChain and LangGraph."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field


def text_of(messages: Sequence[BaseMessage]) -> str:
    """Everything a model was sent, as one string (content blocks flattened)."""
    parts = []
    for message in messages:
        content = message.content
        if isinstance(content, list):
            content = " ".join(
                b.get("text", "") if isinstance(b, dict) else str(b) for b in content
            )
        parts.append(f"{message.type}: {content}")
    return "\n".join(parts)


class ScriptedChat(BaseChatModel):
    """Answers with the scripted messages in turn (then repeats the last one), and keeps
    every list of messages it was sent. ``bind_tools`` returns the model itself, so it can
    drive an agent whose tool calls are scripted as ``AIMessage(tool_calls=[...])``."""

    script: list[Any] = Field(default_factory=lambda: ["ok"])
    """Each answer: an AIMessage (tool calls included) or a string."""
    calls: list[list[BaseMessage]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted-chat"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.calls.append(list(messages))
        step = self.script[min(len(self.calls) - 1, len(self.script) - 1)]
        message = step if isinstance(step, AIMessage) else AIMessage(content=step)
        return ChatResult(generations=[ChatGeneration(message=message.model_copy())])

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedChat:  # type: ignore[override]
        return self

    @property
    def last_prompt(self) -> str:
        return text_of(self.calls[-1]) if self.calls else ""
