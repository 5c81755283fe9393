"""LangChain and LangGraph adapters for LightMem: thin translations onto the public
:class:`~lightmem_core.LightMem` API.

- :class:`LightMemChatMemory`: ``memory=`` of the classic ``ConversationChain``, ``LLMChain``
  and ``AgentExecutor`` (``langchain_classic``).
- :class:`LightMemRetriever`: a ``langchain_core`` retriever over a user's memories.
- :class:`LightMemStore`: a LangGraph ``BaseStore`` (``create_agent(store=...)``).
- :class:`LightMemMiddleware`: agent middleware for ``create_agent(middleware=[...])``.
- :func:`memory_tools`: ``search_memory`` and ``save_memory`` tools for an agent.
- :class:`LightMemCallbackHandler`: records the turns of any runnable.

Install with ``pip install "lightmem-slm[langchain]"``. Importing this package is cheap:
each adapter loads its part of LangChain when it is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lightmem_core.integration import lazy_exports

if TYPE_CHECKING:
    from .callbacks import LightMemCallbackHandler
    from .chat_memory import LightMemChatMemory
    from .generator import LangChainGenerator
    from .middleware import LightMemMiddleware
    from .retriever import LightMemRetriever
    from .store import InvalidNamespace, LightMemStore, user_namespace, user_of_namespace
    from .tools import memory_tools

__all__ = [
    "InvalidNamespace",
    "LangChainGenerator",
    "LightMemCallbackHandler",
    "LightMemChatMemory",
    "LightMemMiddleware",
    "LightMemRetriever",
    "LightMemStore",
    "memory_tools",
    "user_namespace",
    "user_of_namespace",
]

_LAZY = {
    "InvalidNamespace": ".store",
    "LangChainGenerator": ".generator",
    "LightMemCallbackHandler": ".callbacks",
    "LightMemChatMemory": ".chat_memory",
    "LightMemMiddleware": ".middleware",
    "LightMemRetriever": ".retriever",
    "LightMemStore": ".store",
    "memory_tools": ".tools",
    "user_namespace": ".store",
    "user_of_namespace": ".store",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, extra="langchain")
