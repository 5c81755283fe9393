"""The one contract every model backend meets: chat messages in, text out.

A :class:`TextGenerator` takes a prompt (a string, or chat messages as ``{"role",
"content"}`` mappings), a cap on new tokens, an optional JSON schema (a hint: backends that
can constrain their output may use it; the roles also describe the shape in the prompt and
parse tolerantly) and stop sequences. It returns a :class:`Generation`: the text and the
tokens it cost, exact where the backend reports them, estimated otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from .._tokens import approx_token_count

__all__ = ["ChatMessage", "Generation", "Prompt", "TextGenerator", "as_messages", "estimate_tokens"]

ChatMessage = Mapping[str, str]
"""``{"role": "system" | "user" | "assistant", "content": "..."}``."""

Prompt = str | Sequence[ChatMessage]


@dataclass(frozen=True, slots=True)
class Generation:
    """What one model call produced."""

    text: str
    tokens_in: int
    tokens_out: int
    exact: bool = False
    """Token counts came from the model's tokenizer or provider (not the estimator)."""


@runtime_checkable
class TextGenerator(Protocol):
    """A text generator LightMem can drive. ``name`` identifies it in stats and logs."""

    name: str

    def generate(
        self,
        prompt: Prompt,
        *,
        max_tokens: int,
        json_schema: Mapping[str, Any] | None = None,
        stop: Sequence[str] = (),
    ) -> Generation: ...

    async def agenerate(
        self,
        prompt: Prompt,
        *,
        max_tokens: int,
        json_schema: Mapping[str, Any] | None = None,
        stop: Sequence[str] = (),
    ) -> Generation: ...


def as_messages(prompt: Prompt) -> list[dict[str, str]]:
    """A prompt as chat messages: a bare string is one user message."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [{"role": str(m["role"]), "content": str(m["content"])} for m in prompt]


def estimate_tokens(messages: Sequence[ChatMessage]) -> int:
    """The estimator's count for a chat (content plus a few tokens of framing per message)."""
    return sum(approx_token_count(m["content"]) + 4 for m in messages)


def flatten(messages: Sequence[ChatMessage]) -> str:
    """Chat messages as one plain prompt, for models without a chat template."""
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n\n".join([*lines, "Assistant:"])
