"""Small language models driving the memory (opt-in: ``LightMem(..., slm=model)``).

- :mod:`.base`: the :class:`TextGenerator` contract (chat messages in, text out).
- :mod:`.backends`: a local transformers model; any LangChain chat model
  (:mod:`lightmem_langchain.generator`) and any LlamaIndex LLM
  (:mod:`lightmem_llamaindex.generator`) live with their framework's adapters.
- :mod:`.prompts`: every prompt, versioned, with each role's token budgets and time limit.
- :mod:`.parsing`: tolerant JSON parsing; :mod:`.calls`: one guarded, accounted call.
- The roles, each falling back to its local default step by step:
  :class:`SLMController` (SLM-1, query plans), :class:`SLMSelector` (SLM-2, stage-2
  semantic check), :class:`SLMWriter` (SLM-3, MTM entries), :class:`SLMConsolidator`
  (MTM to LTM abstraction and merge/supersede judgements).

Importing this package is cheap; pydantic, json_repair and each backend's framework load
when a role or backend is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .accounting import ModelLedger, RoleStats
from .base import ChatMessage, Generation, TextGenerator
from .resolve import ROLES, resolve_generator, resolve_roles

if TYPE_CHECKING:
    from lightmem_langchain.generator import LangChainGenerator
    from lightmem_llamaindex.generator import LlamaIndexGenerator

    from .backends.transformers_local import TransformersGenerator
    from .consolidator import SLMConsolidator
    from .controller import SLMController
    from .selector import SLMSelector
    from .writer import SLMWriter

__all__ = [
    "ROLES",
    "ChatMessage",
    "Generation",
    "LangChainGenerator",
    "LlamaIndexGenerator",
    "ModelLedger",
    "RoleStats",
    "SLMConsolidator",
    "SLMController",
    "SLMSelector",
    "SLMWriter",
    "TextGenerator",
    "TransformersGenerator",
    "resolve_generator",
    "resolve_roles",
]

_LAZY = {
    "LangChainGenerator": "lightmem_langchain.generator",
    "LlamaIndexGenerator": "lightmem_llamaindex.generator",
    "TransformersGenerator": ".backends.transformers_local",
    "SLMConsolidator": ".consolidator",
    "SLMController": ".controller",
    "SLMSelector": ".selector",
    "SLMWriter": ".writer",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
