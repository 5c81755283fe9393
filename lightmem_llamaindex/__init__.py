"""LlamaIndex adapters for LightMem: thin translations onto the public
:class:`~lightmem_core.LightMem` API.

- :class:`LightMemMemory`: ``memory=`` of chat engines and workflow agents (a ``BaseMemory``).
- :class:`LightMemBlock`: a block of the newer ``Memory`` class (a ``BaseMemoryBlock``).
- :class:`LightMemRetriever`: a ``BaseRetriever`` returning ``NodeWithScore``.
- :class:`LightMemEventHandler`: records the turns of any chat engine (instrumentation).

Install with ``pip install "lightmem-slm[llamaindex]"``. Importing this package is cheap:
each adapter loads LlamaIndex when it is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lightmem_core.integration import lazy_exports

if TYPE_CHECKING:
    from .block import LightMemBlock
    from .events import LightMemEventHandler
    from .generator import LlamaIndexGenerator
    from .memory import LightMemMemory
    from .retriever import LightMemRetriever

__all__ = [
    "LightMemBlock",
    "LightMemEventHandler",
    "LightMemMemory",
    "LightMemRetriever",
    "LlamaIndexGenerator",
]

_LAZY = {
    "LightMemBlock": ".block",
    "LightMemEventHandler": ".events",
    "LightMemMemory": ".memory",
    "LightMemRetriever": ".retriever",
    "LlamaIndexGenerator": ".generator",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, extra="llamaindex")
