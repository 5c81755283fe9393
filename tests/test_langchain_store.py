"""LightMemStore, LangGraph's BaseStore over LightMem: the namespace mapping, batch
semantics, ranking, and a differential test against LangGraph's own InMemoryStore."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langgraph.store.base import GetOp, InvalidNamespaceError, PutOp, SearchOp
from langgraph.store.memory import InMemoryStore

from lightmem_core import ContentTooLarge, InvalidArgument, InvalidUserId, LightMem
from lightmem_core.testing import HashingEmbedder
from lightmem_langchain import (
    InvalidNamespace,
    LightMemRetriever,
    LightMemStore,
    user_namespace,
    user_of_namespace,
)


@pytest.fixture
def store(mem: LightMem) -> LightMemStore:
    return LightMemStore(mem)


def test_user_ids_langgraph_rejects_travel_escaped() -> None:
    for user in ["alice", "ann.lee@example.com", "100%", "a%2Eb", "Ünïcode user"]:
        namespace = user_namespace(user, "memories")
        assert "." not in namespace[0]
        assert user_of_namespace(namespace) == user
    assert user_namespace("ann@example.com") == ("ann@example%2Ecom",)
    with pytest.raises(InvalidNamespace):
        user_of_namespace(("100%",))  # a bare % is no escape
    with pytest.raises(InvalidNamespaceError):  # catchable as LangGraph's error too
        user_of_namespace(())
    with pytest.raises(InvalidUserId):
        user_namespace(" padded")


def test_put_get_delete_round_trip(store: LightMemStore, mem: LightMem) -> None:
    namespace = user_namespace("ann@example.com", "memories")
    value = {"content": "Ann prefers window seats.", "tags": ["travel"], "n": 2, "x": {"y": None}}
    store.put(namespace, "seat.pref", value)
    item = store.get(namespace, "seat.pref")
    assert item is not None
    assert item.value == value
    assert item.namespace == namespace
    assert item.key == "seat.pref"
    assert item.created_at <= item.updated_at
    # The item is a long-term memory of the user: the other adapters find it too.
    [hit] = mem.search("ann@example.com", "window seats")
    assert hit.text == "Ann prefers window seats. travel"
    docs = LightMemRetriever(mem, user_id="ann@example.com").invoke("window seats")
    assert docs[0].page_content == hit.text
    store.put(namespace, "seat.pref", {"content": "Ann now prefers aisle seats."})
    updated = store.get(namespace, "seat.pref")
    assert updated is not None
    assert updated.value == {"content": "Ann now prefers aisle seats."}
    assert updated.created_at == item.created_at
    assert mem.stats("ann@example.com")["ltm"] == 1
    store.delete(namespace, "seat.pref")
    assert store.get(namespace, "seat.pref") is None
    assert mem.stats("ann@example.com")["ltm"] == 0


def test_a_namespace_never_reaches_another_user(store: LightMemStore) -> None:
    store.put(("alice", "memories"), "k", {"content": "Alice's locker code is 1234."})
    store.put(("bob", "memories"), "k", {"content": "Bob's locker code is 9876."})
    assert store.get(("bob", "memories"), "k").value["content"].startswith("Bob")  # type: ignore[union-attr]
    for query in (None, "locker code", "Alice 1234"):
        found = store.search(("bob",), query=query)
        assert [i.value["content"] for i in found] == ["Bob's locker code is 9876."]
    assert store.list_namespaces(prefix=("bob",)) == [("bob", "memories")]


def test_search_ranks_with_a_query_and_pages_every_match(store: LightMemStore) -> None:
    namespace = ("alice", "notes")
    texts = ["Alice plays the cello.", "Alice grows tomatoes.", "The cello was her gran's."]
    for i, text in enumerate(texts):
        store.put(namespace, f"n{i}", {"content": text, "n": i})
    ranked = store.search(("alice",), query="cello", limit=10)
    assert {i.key for i in ranked[:2]} == {"n0", "n2"}
    assert all(i.score is not None for i in ranked[:2])
    assert {i.key for i in ranked} == {"n0", "n1", "n2"}  # non-matching items come last
    pages = [store.search(("alice",), query="cello", limit=1, offset=o) for o in range(4)]
    assert [len(p) for p in pages] == [1, 1, 1, 0]
    assert [i.key for i in store.search(namespace)] == ["n0", "n1", "n2"]  # put order
    assert [i.key for i in store.search(namespace, filter={"n": {"$gte": 1}})] == ["n1", "n2"]
    assert store.search(("alice", "other")) == []


def test_index_false_and_fields_decide_what_is_searchable(mem: LightMem) -> None:
    store = LightMemStore(mem, fields=["summary"])
    store.put(("alice",), "a", {"summary": "budget spreadsheet", "body": "zebra crossing"})
    store.put(("alice",), "b", {"summary": "zebra facts"}, index=False)
    [hit] = mem.search("alice", "budget", tiers=["ltm"], k=1)
    assert hit.text == "budget spreadsheet"
    ranked = store.search(("alice",), query="zebra")
    assert [(i.key, i.score is None) for i in ranked] == [("a", True), ("b", True)] or ranked[
        -1
    ].key == "b"
    assert ranked[-1].score is None  # index=False: never ranked, still found
    store.put(("alice",), "c", {"summary": "x"}, index=["missing.path"])
    assert store.get(("alice",), "c") is not None


def test_batch_reads_first_then_puts_last_one_winning(store: LightMemStore) -> None:
    namespace = ("alice", "b")
    results = store.batch(
        [
            PutOp(namespace, "k", {"v": 1}),
            GetOp(namespace, "k"),
            PutOp(namespace, "k", {"v": 2}),
            SearchOp(namespace),
        ]
    )
    assert results == [None, None, None, []]
    assert store.get(namespace, "k").value == {"v": 2}  # type: ignore[union-attr]


def test_a_batch_with_a_bad_op_writes_nothing(store: LightMemStore, mem: LightMem) -> None:
    bad_ops: list[Any] = [
        PutOp(("alice",), "k", {"v": object()}),  # not JSON
        PutOp(("alice", "a.b"), "k", {"v": 1}),  # a dotted label
        PutOp(("100%",), "k", {"v": 1}),  # not an escaped user id
        PutOp(("alice",), "k\n", {"v": 1}),  # control character in the key
        PutOp(("alice",), "k" * 300, {"v": 1}),  # too long for a key
        PutOp(("alice",), "k", {"v": 1}, ttl=5.0),  # TTLs are not supported
        PutOp(("langgraph",), "k", {"v": 1}),  # reserved root
        SearchOp(("alice",), limit=-1),
    ]
    for bad in bad_ops:
        with pytest.raises((InvalidArgument, InvalidNamespaceError, NotImplementedError)):
            store.batch([PutOp(("alice",), "good", {"v": 1}), bad])
    with pytest.raises(InvalidArgument, match="max_metadata_bytes"):
        store.put(("alice",), "huge", {"text": "x" * 20_000})
    assert mem.stats("alice")["ltm"] == 0


def test_a_value_whose_text_is_too_long(tmp_path: Path) -> None:
    with LightMem(tmp_path / "s", embedder=HashingEmbedder(), max_metadata_bytes=100_000) as mem:
        with pytest.raises(ContentTooLarge):
            LightMemStore(mem).put(("alice",), "big", {"text": "x" * 25_000})
        assert mem.stats("alice")["ltm"] == 0


async def test_async_helpers(store: LightMemStore) -> None:
    namespace = user_namespace("zoë@example.org", "prefs")
    await store.aput(namespace, "tea", {"content": "Zoë drinks rooibos."})
    item = await store.aget(namespace, "tea")
    assert item is not None
    assert item.value["content"] == "Zoë drinks rooibos."
    assert [i.key for i in await store.asearch(namespace[:1], query="rooibos")] == ["tea"]
    assert await store.alist_namespaces(prefix=namespace[:1]) == [namespace]
    await store.adelete(namespace, "tea")
    assert await store.aget(namespace, "tea") is None


def test_forget_erases_the_users_store_items(store: LightMemStore, mem: LightMem) -> None:
    store.put(("alice", "m"), "k", {"content": "secret plans"})
    store.put(("bob", "m"), "k", {"content": "bob's plans"})
    mem.forget("alice")
    assert store.get(("alice", "m"), "k") is None
    assert store.list_namespaces() == [("bob", "m")]


def test_list_namespaces_conditions_and_paging(store: LightMemStore) -> None:
    for namespace in [("a", "x", "1"), ("a", "y"), ("b", "x", "1"), ("b", "x", "2")]:
        store.put(namespace, "k", {"v": 1})
    assert store.list_namespaces(prefix=("b",)) == [("b", "x", "1"), ("b", "x", "2")]
    assert store.list_namespaces(suffix=("1",)) == [("a", "x", "1"), ("b", "x", "1")]
    assert store.list_namespaces(prefix=("*", "x")) == [
        ("a", "x", "1"),
        ("b", "x", "1"),
        ("b", "x", "2"),
    ]
    assert store.list_namespaces(max_depth=2) == [("a", "x"), ("a", "y"), ("b", "x")]
    assert store.list_namespaces(limit=2, offset=1) == [("a", "y"), ("b", "x", "1")]
    assert store.list_namespaces(prefix=("nobody%",)) == []


# --- differential: the same random operations against InMemoryStore ---------------------------

USERS = ["alice", "ann.lee@example.com", "bob"]
SUBSPACES: list[tuple[str, ...]] = [(), ("memories",), ("memories", "work"), ("prefs",)]
KEYS = ["k1", "k.2", "note", "50%"]
WORDS = ["tea", "coffee", "cello", "garden", "Paris", "beagle"]

values = st.fixed_dictionaries(
    {
        "content": st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join),
        "n": st.integers(0, 4),
        "tag": st.sampled_from(["a", "b"]),
    },
    optional={"meta": st.fixed_dictionaries({"lang": st.sampled_from(["en", "fr"])})},
)
filters = st.sampled_from(
    [
        None,
        {"tag": "a"},
        {"n": {"$gte": 2}},
        {"n": {"$ne": 1}, "tag": "b"},
        {"meta": {"lang": "fr"}},
        {"n": {"$lt": 3, "$gt": 0}},
    ]
)
operations = st.one_of(
    st.tuples(st.just("put"), st.integers(0, 2), st.integers(0, 3), st.sampled_from(KEYS), values),
    st.tuples(st.just("delete"), st.integers(0, 2), st.integers(0, 3), st.sampled_from(KEYS)),
    st.tuples(st.just("get"), st.integers(0, 2), st.integers(0, 3), st.sampled_from(KEYS)),
    st.tuples(
        st.just("search"),
        st.integers(0, 2),
        st.integers(0, 2),
        filters,
        st.sampled_from([None, "tea", "beagle Paris"]),
    ),
    st.tuples(
        st.just("list"),
        st.sampled_from([None, 0, 1, 2]),
        st.sampled_from([None, ("memories",), ("work",)]),
        st.sampled_from([None, 1, 2]),
    ),
)

_runs = itertools.count()


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LightMemStore]:
    with LightMem(tmp_path_factory.mktemp("diff"), embedder=HashingEmbedder()) as mem:
        yield LightMemStore(mem)


def _nonempty(
    oracle: InMemoryStore,
    listed: list[tuple[str, ...]],
    prefix: tuple[str, ...] | None,
    suffix: tuple[str, ...] | None,
    depth: int | None,
) -> list[Any]:
    """InMemoryStore also lists namespaces it holds no item in (read once, or emptied by
    deletes); LightMem has no such namespaces. Keep those some item's namespace gives."""
    held = {
        item.namespace
        for item in oracle.search((), limit=100_000)
        if (not prefix or item.namespace[: len(prefix)] == prefix)
        and (not suffix or item.namespace[-len(suffix) :] == suffix)
    }
    return [ns for ns in listed if any((n[:depth] if depth else n) == ns for n in held)]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(operations, min_size=1, max_size=25))
def test_differential_against_langgraphs_in_memory_store(
    shared_store: LightMemStore, steps: list[tuple[Any, ...]]
) -> None:
    run = next(_runs)
    users = [f"r{run}-{u}" for u in USERS]  # fresh users: each example starts empty
    labels = [user_namespace(u)[0] for u in users]
    oracle = InMemoryStore()
    ours = shared_store

    def namespace(user: int, sub: int) -> tuple[str, ...]:
        return (labels[user], *SUBSPACES[sub])

    def mine(namespaces: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
        return [ns for ns in namespaces if ns[0] in labels]

    for step in steps:
        kind = step[0]
        if kind == "put":
            _, u, s, key, value = step
            oracle.put(namespace(u, s), key, value)
            ours.put(namespace(u, s), key, value)
        elif kind == "delete":
            _, u, s, key = step
            oracle.delete(namespace(u, s), key)
            ours.delete(namespace(u, s), key)
        elif kind == "get":
            _, u, s, key = step
            expected, got = oracle.get(namespace(u, s), key), ours.get(namespace(u, s), key)
            assert (got is None) == (expected is None), step
            if got is not None and expected is not None:
                assert (got.namespace, got.key, got.value) == (
                    expected.namespace,
                    expected.key,
                    expected.value,
                )
        elif kind == "search":
            _, u, s, wanted, query = step
            prefix = namespace(u, s)
            expected_items = oracle.search(prefix, filter=wanted, query=query, limit=1000)
            got_items = ours.search(prefix, filter=wanted, query=query, limit=1000)
            assert {(i.namespace, i.key): i.value for i in got_items} == {
                (i.namespace, i.key): i.value for i in expected_items
            }, step
        else:
            _, u, suffix, depth = step
            prefix = (labels[u],) if u is not None else None
            expected_ns = oracle.list_namespaces(prefix=prefix, suffix=suffix, max_depth=depth)
            got_ns = ours.list_namespaces(
                prefix=prefix, suffix=suffix, max_depth=depth, limit=10_000
            )
            assert mine(got_ns) == mine(_nonempty(oracle, expected_ns, prefix, suffix, depth)), step
