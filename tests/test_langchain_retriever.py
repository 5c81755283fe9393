"""LightMemRetriever: LangChain's standard retriever suite, then what it adds: metadata,
per-call k and user, async, and no user reaching another's memories."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_tests.integration_tests import RetrieversIntegrationTests

from lightmem_core import InvalidArgument, InvalidUserId, LightMem
from lightmem_core.testing import HashingEmbedder
from lightmem_langchain import LightMemRetriever

FACTS = [
    "Alice adopted a beagle called Max.",
    "Alice walks Max by the river every morning.",
    "Max the beagle loves chasing ducks.",
    "Alice's beagle Max turned three in May.",
    "Alice bought Max a red collar.",
]


@pytest.fixture(scope="module")
def shared_mem(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LightMem]:
    with LightMem(tmp_path_factory.mktemp("retriever"), embedder=HashingEmbedder()) as mem:
        for i, fact in enumerate(FACTS):
            mem.add("alice", fact, session_id="s1", turn_id=f"t{i}")
        mem.add("bob", "Bob's beagle is called Rocky.", turn_id="b1")
        mem.flush()
        yield mem


class TestLightMemRetrieverStandard(RetrieversIntegrationTests):
    @pytest.fixture(autouse=True)
    def _engine(self, shared_mem: LightMem) -> None:
        self._mem = shared_mem

    @property
    def retriever_constructor(self) -> type[BaseRetriever]:
        return LightMemRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"mem": self._mem, "user_id": "alice"}

    @property
    def retriever_query_example(self) -> str:
        return "What do we know about Max the beagle?"


def test_documents_carry_provenance(shared_mem: LightMem) -> None:
    retriever = LightMemRetriever(shared_mem, user_id="alice", k=2)
    docs = retriever.invoke("beagle collar")
    assert len(docs) == 2
    assert all(isinstance(d, Document) for d in docs)
    first = docs[0]
    assert first.id == first.metadata["memory_id"]
    assert first.metadata["tier"] == "mtm"
    assert first.metadata["source_ids"][0].startswith("t")
    assert isinstance(first.metadata["score"], float)
    assert first.metadata["timestamp"].endswith("+00:00")
    assert docs[0].metadata["score"] >= docs[1].metadata["score"]
    assert first.metadata["refers_to"] is None  # its words say no other time


def test_one_retriever_serves_many_users_without_leaking(shared_mem: LightMem) -> None:
    retriever = LightMemRetriever(mem=shared_mem, k=10)
    with pytest.raises(InvalidUserId):
        retriever.invoke("beagle")
    bobs = retriever.invoke("beagle", user_id="bob")
    assert [d.page_content for d in bobs] == ["Bob's beagle is called Rocky."]
    alices = retriever.invoke("beagle", user_id="alice")
    assert alices
    assert all("Rocky" not in d.page_content for d in alices)
    assert all("Max" not in d.page_content for d in retriever.invoke("Max", user_id="bob"))


async def test_async_and_tiers(shared_mem: LightMem) -> None:
    retriever = LightMemRetriever(shared_mem, user_id="alice", tiers=["ltm"])
    assert await retriever.ainvoke("beagle") == []  # nothing consolidated into LTM yet
    docs = await retriever.ainvoke("beagle", tiers=["mtm"], k=1)
    assert len(docs) == 1


def test_bad_arguments_are_typed_errors(shared_mem: LightMem, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument):
        LightMemRetriever("not an engine", user_id="alice")  # type: ignore[arg-type]
    with pytest.raises(InvalidUserId):
        LightMemRetriever(shared_mem, user_id=" padded ")
    retriever = LightMemRetriever(shared_mem, user_id="alice")
    with pytest.raises(InvalidArgument):
        retriever.invoke("beagle", k=0)
    with pytest.raises(InvalidArgument):
        retriever.invoke("beagle", tiers=["stm"])
