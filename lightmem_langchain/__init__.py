"""LangChain and LangGraph adapters for LightMem (arrive with their own issue).

Install with ``pip install "lightmem-slm[langchain]"``.
"""

__all__: list[str] = []
