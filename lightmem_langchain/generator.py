"""Any LangChain chat model (``BaseChatModel``) as a text generator."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lightmem_core._tokens import approx_token_count
from lightmem_core.slm.base import Generation, Prompt, as_messages, estimate_tokens

__all__ = ["LangChainGenerator"]


class LangChainGenerator:
    """Wraps a ``langchain_core`` chat model. Its own settings (temperature, ``max_tokens``,
    timeouts, retries) apply; LightMem passes the messages and stop sequences. Token counts
    come from the reply's ``usage_metadata`` when the provider sends it."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.name = f"langchain:{getattr(model, '_llm_type', type(model).__name__)}"

    @staticmethod
    def _messages(prompt: Prompt) -> list[Any]:
        from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

        kinds = {"system": SystemMessage, "assistant": AIMessage}
        return [
            kinds.get(m["role"], HumanMessage)(content=m["content"]) for m in as_messages(prompt)
        ]

    @staticmethod
    def _generation(prompt: Prompt, reply: Any) -> Generation:
        content = reply.content if hasattr(reply, "content") else reply
        if isinstance(content, list):  # content blocks: keep the text ones
            content = "".join(
                block.get("text", "") if isinstance(block, dict) else str(block)
                for block in content
            )
        text = str(content)
        usage = getattr(reply, "usage_metadata", None)
        if usage and usage.get("input_tokens") is not None:
            return Generation(
                text, int(usage["input_tokens"]), int(usage.get("output_tokens", 0)), exact=True
            )
        return Generation(text, estimate_tokens(as_messages(prompt)), approx_token_count(text))

    def generate(
        self,
        prompt: Prompt,
        *,
        max_tokens: int,
        json_schema: Mapping[str, Any] | None = None,
        stop: Sequence[str] = (),
    ) -> Generation:
        """One completion of ``prompt`` by the chat model, at most ``max_tokens`` long (in
        the shape of ``json_schema`` where given): its text and token counts."""
        reply = self.model.invoke(self._messages(prompt), stop=list(stop) or None)
        return self._generation(prompt, reply)

    async def agenerate(
        self,
        prompt: Prompt,
        *,
        max_tokens: int,
        json_schema: Mapping[str, Any] | None = None,
        stop: Sequence[str] = (),
    ) -> Generation:
        """Async :meth:`generate`."""
        reply = await self.model.ainvoke(self._messages(prompt), stop=list(stop) or None)
        return self._generation(prompt, reply)
