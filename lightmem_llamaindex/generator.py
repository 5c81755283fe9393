"""Any LlamaIndex LLM (``llama_index.core.llms.LLM``) as a text generator."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lightmem_core._tokens import approx_token_count
from lightmem_core.slm.base import Generation, Prompt, as_messages, estimate_tokens

__all__ = ["LlamaIndexGenerator"]


class LlamaIndexGenerator:
    """Wraps a LlamaIndex LLM through its chat interface (``chat`` / ``achat``). The LLM's
    own settings apply. Token counts come from the raw response's ``usage`` when present."""

    def __init__(self, llm: Any) -> None:
        self.llm = llm
        metadata = getattr(llm, "metadata", None)
        model_name = getattr(metadata, "model_name", None) or type(llm).__name__
        self.name = f"llamaindex:{model_name}"

    @staticmethod
    def _messages(prompt: Prompt) -> list[Any]:
        from llama_index.core.llms import ChatMessage, MessageRole

        roles = {"system": MessageRole.SYSTEM, "assistant": MessageRole.ASSISTANT}
        return [
            ChatMessage(role=roles.get(m["role"], MessageRole.USER), content=m["content"])
            for m in as_messages(prompt)
        ]

    @staticmethod
    def _generation(prompt: Prompt, response: Any) -> Generation:
        text = str(response.message.content or "")
        raw = getattr(response, "raw", None)
        usage = raw.get("usage") if isinstance(raw, dict) else getattr(raw, "usage", None)
        prompt_tokens = getattr(usage, "prompt_tokens", None)
        if isinstance(usage, dict):
            prompt_tokens = usage.get("prompt_tokens")
        if prompt_tokens is not None:
            completion = (
                usage.get("completion_tokens")
                if isinstance(usage, dict)
                else getattr(usage, "completion_tokens", None)
            )
            return Generation(text, int(prompt_tokens), int(completion or 0), exact=True)
        return Generation(text, estimate_tokens(as_messages(prompt)), approx_token_count(text))

    def generate(
        self,
        prompt: Prompt,
        *,
        max_tokens: int,
        json_schema: Mapping[str, Any] | None = None,
        stop: Sequence[str] = (),
    ) -> Generation:
        """One completion of ``prompt`` by the LLM, at most ``max_tokens`` long (in the shape
        of ``json_schema`` where given): its text and token counts."""
        response = self.llm.chat(self._messages(prompt))
        return self._generation(prompt, response)

    async def agenerate(
        self,
        prompt: Prompt,
        *,
        max_tokens: int,
        json_schema: Mapping[str, Any] | None = None,
        stop: Sequence[str] = (),
    ) -> Generation:
        """Async :meth:`generate`."""
        response = await self.llm.achat(self._messages(prompt))
        return self._generation(prompt, response)
