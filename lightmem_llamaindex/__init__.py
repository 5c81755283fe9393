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

import importlib
from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        try:
            module = importlib.import_module(_LAZY[name], __name__)
        except ImportError as err:
            from lightmem_core import MissingDependency

            raise MissingDependency(
                f"lightmem_llamaindex.{name} needs LlamaIndex: "
                f"pip install 'lightmem-slm[llamaindex]' ({err})"
            ) from err
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
