"""A LlamaIndex retriever over one user's memories (``llama_index.core.retrievers``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from lightmem_core import Hit, InvalidArgument, LightMem, check_user_id
from lightmem_core.integration import hit_metadata

from ._common import register

__all__ = ["LightMemRetriever", "node_of"]

# What the model is shown of a node's metadata: when and who. Ids, scores and tiers are for
# the application (ContextChatEngine renders the rest of the metadata into the prompt).
_SHOWN_TO_MODEL = ("timestamp", "speaker", "refers_to")


def node_of(hit: Hit) -> NodeWithScore:
    """A retrieved memory as a scored LlamaIndex node (its id is the memory id)."""
    metadata = hit_metadata(hit)
    # No None values: ContextChatEngine would show the model "speaker: None".
    metadata = {key: value for key, value in metadata.items() if value is not None}
    hidden = [k for k in metadata if k not in _SHOWN_TO_MODEL]
    node = TextNode(
        id_=hit.memory_id,
        text=hit.text,
        metadata=metadata,
        excluded_llm_metadata_keys=hidden,
        excluded_embed_metadata_keys=list(metadata),
    )
    return NodeWithScore(node=node, score=hit.score)


class LightMemRetriever(BaseRetriever):
    """The user's memories most relevant to a query, ranked by LightMem's two-stage
    retrieval, as ``NodeWithScore``: for ``RetrieverQueryEngine``, ``ContextChatEngine``,
    ``CondensePlusContextChatEngine`` or any retriever slot.

    Node metadata: ``tier``, ``score``, ``timestamp``, ``source_ids`` (the turns it was
    written from), ``memory_id``, ``kind``, ``session_id``, ``speaker``, ``status`` and
    ``flags``, and ``refers_to`` when the memory's own time words say when it happened
    (``"yesterday = 2023-05-07"``). Only ``timestamp``, ``speaker`` and ``refers_to`` are shown
    to the model (``excluded_llm_metadata_keys`` holds the rest).

    Args:
        mem: the :class:`~lightmem_core.LightMem` engine (first argument, or ``mem=``).
        user_id: whose memories (required).
        similarity_top_k: how many nodes (at most).
        token_budget: the most tokens the nodes take together (default: the engine's).
        tiers: ``["mtm"]``, ``["ltm"]`` or both (default).
    """

    def __init__(
        self,
        mem: LightMem | None = None,
        /,
        *,
        user_id: str | None = None,
        similarity_top_k: int = 4,
        token_budget: int | None = None,
        tiers: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        if mem is None:
            mem = kwargs.pop("mem", None)
        self.mem = register(mem, "LightMemRetriever")
        self.user_id = check_user_id(user_id)
        if (
            not isinstance(similarity_top_k, int)
            or isinstance(similarity_top_k, bool)
            or similarity_top_k < 1
        ):
            raise InvalidArgument(
                f"similarity_top_k must be a positive integer, got {similarity_top_k!r}"
            )
        self.similarity_top_k = similarity_top_k
        self.token_budget = token_budget
        self.tiers = list(tiers) if tiers is not None else None
        super().__init__(**kwargs)

    def _arguments(self, query_bundle: QueryBundle) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "query": query_bundle.query_str,
            "k": self.similarity_top_k,
            "token_budget": self.token_budget,
            "tiers": self.tiers,
        }

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return [node_of(hit) for hit in self.mem.search(**self._arguments(query_bundle))]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = await self.mem.asearch(**self._arguments(query_bundle))
        return [node_of(hit) for hit in hits]
