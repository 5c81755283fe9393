"""The local model backend (transformers), imported only when used. The LangChain and
LlamaIndex backends live in :mod:`lightmem_langchain.generator` and
:mod:`lightmem_llamaindex.generator`."""
