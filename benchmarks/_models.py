"""Naming a model on a benchmark's command line.

``fake`` is an offline stand-in for plumbing runs: it answers ``{}`` to everything, so each
memory role runs its model path, counts a call and tokens, and falls back (or keeps the
local plan). ``module:attribute`` imports a LangChain chat model, a LlamaIndex LLM or a
:class:`~lightmem_core.slm.TextGenerator` (called first if it is a factory). Anything else
is a local transformers model folder or a hub id already in the local cache.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lightmem_core.slm.base import Generation, Prompt, as_messages, estimate_tokens

__all__ = ["EmptyJSONGenerator", "load_model", "model_totals"]


class EmptyJSONGenerator:
    """Answers ``{}`` at once: the plumbing of every role, with no model."""

    name = "fake:empty-json"

    def generate(
        self,
        prompt: Prompt,
        *,
        max_tokens: int,
        json_schema: Mapping[str, Any] | None = None,
        stop: Sequence[str] = (),
    ) -> Generation:
        return Generation("{}", estimate_tokens(as_messages(prompt)), 1)

    async def agenerate(
        self,
        prompt: Prompt,
        *,
        max_tokens: int,
        json_schema: Mapping[str, Any] | None = None,
        stop: Sequence[str] = (),
    ) -> Generation:
        await asyncio.sleep(0)
        return self.generate(prompt, max_tokens=max_tokens)


_IMPORT_SPEC = re.compile(r"([A-Za-z_][\w.]*):([A-Za-z_][\w.]*)")


def load_model(spec: str) -> Any:
    """The model object a spec names (see the module docstring)."""
    if spec == "fake":
        return EmptyJSONGenerator()
    path = Path(spec).expanduser()
    if path.exists():
        return str(path)
    match = _IMPORT_SPEC.fullmatch(spec)
    if match is None:
        return spec  # a hub id: LightMem(slm=...) loads it from the local cache
    found: Any = importlib.import_module(match.group(1))
    for part in match.group(2).split("."):
        found = getattr(found, part)
    if inspect.isclass(found) or inspect.isroutine(found):
        found = found()  # a factory
    return found


def model_totals(models: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """Calls, tokens and fallbacks over every role of ``stats()["models"]``."""
    keys = ("calls", "tokens_in", "tokens_out", "fallbacks")
    return {key: sum(int(role[key]) for role in models.values()) for key in keys}
