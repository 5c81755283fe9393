"""A LangChain retriever over one user's memories (``langchain_core.retrievers``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from lightmem_core import Hit, InvalidUserId, LightMem, check_user_id
from lightmem_core.integration import hit_metadata

from ._common import engine

__all__ = ["LightMemRetriever", "document_of"]


def document_of(hit: Hit) -> Document:
    """A retrieved memory as a LangChain document (its id is the memory id)."""
    return Document(
        id=hit.memory_id,
        page_content=hit.text,
        metadata=hit_metadata(hit),
    )


class LightMemRetriever(BaseRetriever):
    """The user's memories most relevant to a query, ranked by LightMem's two-stage
    retrieval, as :class:`~langchain_core.documents.Document` objects.

    Metadata of each document: ``tier``, ``score``, ``timestamp`` (ISO 8601),
    ``source_ids`` (the turns it was written from), ``memory_id``, ``kind``,
    ``session_id``, ``speaker``, ``status``, ``flags`` (``instruction_like`` marks text
    that reads like an instruction: treat it as data) and ``refers_to`` (``"yesterday =
    2023-05-07"`` when the memory's own time words say when it happened, else ``None``).

    ``k`` and ``user_id`` may also be given per call: ``retriever.invoke(q, k=3,
    user_id="bob")``. One retriever can serve many users: it keeps no per-user state, and a
    call with no user id (none given here, none per call) raises ``InvalidUserId``.

    Args:
        mem: the :class:`~lightmem_core.LightMem` engine (first argument, or ``mem=``).
        user_id: the default user of each call.
        k: how many documents (at most).
        token_budget: the most tokens the documents take together (default: the engine's).
        tiers: ``["mtm"]``, ``["ltm"]`` or both (default).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    mem: LightMem
    user_id: str | None = None
    k: int = 4
    token_budget: int | None = None
    tiers: list[str] | None = None

    def __init__(self, mem: LightMem | None = None, /, **data: Any) -> None:
        if mem is not None:
            data["mem"] = mem
        # Checked here, not in pydantic validators: those would wrap the typed errors.
        data["mem"] = engine(data.get("mem"), "LightMemRetriever")
        if data.get("user_id") is not None:
            data["user_id"] = check_user_id(data["user_id"])
        super().__init__(**data)

    def _arguments(
        self, k: int | None, user_id: str | None, tiers: Sequence[str] | None
    ) -> dict[str, Any]:
        user = user_id if user_id is not None else self.user_id
        if user is None:
            raise InvalidUserId(
                "LightMemRetriever has no user id: pass user_id= when creating it, or per "
                "call (retriever.invoke(query, user_id=...))"
            )
        return {
            "user_id": user,
            "k": k if k is not None else self.k,
            "token_budget": self.token_budget,
            "tiers": tiers if tiers is not None else self.tiers,
        }

    # ``k``, ``user_id`` and ``tiers`` in the signature is what lets ``invoke(q, k=3)`` reach
    # them: BaseRetriever passes call keywords only to methods that declare extra parameters.

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        k: int | None = None,
        user_id: str | None = None,
        tiers: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        args = self._arguments(k, user_id, tiers)
        return [document_of(hit) for hit in self.mem.search(query=query, **args)]

    async def _aget_relevant_documents(
        self,
        query: str,
        *,
        run_manager: AsyncCallbackManagerForRetrieverRun,
        k: int | None = None,
        user_id: str | None = None,
        tiers: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        args = self._arguments(k, user_id, tiers)
        return [document_of(hit) for hit in await self.mem.asearch(query=query, **args)]
