"""Turn what a user passes as ``slm=`` into text generators, one per role."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .._errors import ConfigurationError
from .base import TextGenerator

__all__ = ["ROLES", "resolve_generator", "resolve_roles"]

ROLES = ("controller", "selector", "writer", "consolidator")
"""The four places a model can drive the memory (see :mod:`lightmem_core.slm.prompts`)."""


def _framework(obj: Any) -> str | None:
    """Which framework a model object comes from, judged by its classes' modules (so no
    framework is imported to find out)."""
    modules = {getattr(cls, "__module__", "") for cls in type(obj).__mro__}
    if any(m.startswith("langchain_core.language_models") for m in modules):
        return "langchain"
    if any(
        m.startswith("llama_index.core.base.llms") or m.startswith("llama_index.core.llms")
        for m in modules
    ):
        return "llamaindex"
    return None


def resolve_generator(model: Any) -> TextGenerator:
    """A generator from a model object or a model path/hub id.

    Accepts a :class:`TextGenerator`, a LangChain ``BaseChatModel``, a LlamaIndex ``LLM``,
    or a string/path naming a local transformers model.
    """
    kind = _framework(model)
    # The framework backends live in the framework adapter packages, so that no framework
    # code (not even a lazy import) is in lightmem_core.
    if kind == "langchain":
        from lightmem_langchain.generator import LangChainGenerator

        return LangChainGenerator(model)
    if kind == "llamaindex":
        from lightmem_llamaindex.generator import LlamaIndexGenerator

        return LlamaIndexGenerator(model)
    if isinstance(model, str | os.PathLike):
        from .backends.transformers_local import TransformersGenerator

        return TransformersGenerator(model)
    if isinstance(model, TextGenerator):
        return model
    raise ConfigurationError(
        f"slm must be a model path or hub id, a LangChain chat model, a LlamaIndex LLM or a "
        f"TextGenerator, not {type(model).__name__}"
    )


def resolve_roles(slm: Any) -> dict[str, TextGenerator]:
    """The generator of each role that has one.

    ``slm`` is one model for every role, or a mapping ``{role: model}`` (roles left out, or
    mapped to ``None``, use their local default). One object given for several roles is
    wrapped once, so they share its weights.
    """
    if slm is None:
        return {}
    chosen: Mapping[str, Any] = slm if isinstance(slm, Mapping) else dict.fromkeys(ROLES, slm)
    unknown = set(chosen) - set(ROLES)
    if unknown:
        raise ConfigurationError(
            f"unknown slm role(s) {sorted(unknown)}; the roles are {', '.join(ROLES)}"
        )
    wrapped: dict[object, TextGenerator] = {}
    roles: dict[str, TextGenerator] = {}
    for role, model in chosen.items():
        if model is None:
            continue
        key = os.fspath(model) if isinstance(model, str | os.PathLike) else id(model)
        if key not in wrapped:
            wrapped[key] = resolve_generator(model)
        roles[role] = wrapped[key]
    return roles
