"""LlamaIndex adapters for LightMem (arrive with their own issue).

Install with ``pip install "lightmem-slm[llamaindex]"``.
"""

__all__: list[str] = []
