"""LightMem as a LangGraph store (``langgraph.store.base.BaseStore``).

``create_agent(store=...)``, LangMem-style memory tools and any code written for
``InMemoryStore`` or ``PostgresStore`` work unchanged: the store answers ``batch`` /
``abatch`` over ``GetOp``, ``PutOp``, ``SearchOp`` and ``ListNamespacesOp``.

How namespaces map onto LightMem:

- The **first label is the user id**. Every item is a long-term memory of that user, so
  the retriever, the chat memory, the middleware and ``mem.search`` find it too, and
  ``mem.forget(user)`` erases it. A namespace can never reach another user's memories.
- A user id LangGraph rejects as a label (one with a ``.``, such as an e-mail address)
  travels escaped: ``%`` becomes ``%25`` and ``.`` becomes ``%2E`` in the first label.
  :func:`user_namespace` builds the namespace; :func:`user_of_namespace` reads it back. A
  first label with any other ``%`` is refused (:class:`InvalidNamespace`).
- The rest of the namespace and the item key are kept on the memory (its ``key``, which
  starts with ``langgraph:``); the value is kept exactly, as JSON, in its metadata.
"""

from __future__ import annotations

import asyncio
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from langgraph.store.base import (
    BaseStore,
    GetOp,
    InvalidNamespaceError,
    Item,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    validate_op_namespace,
)
from langgraph.store.base.embed import get_text_at_path

from lightmem_core import (
    ContentTooLarge,
    InvalidArgument,
    LightMem,
    Memory,
    Tier,
    check_user_id,
)

from ._common import engine

__all__ = [
    "KEY_PREFIX",
    "InvalidNamespace",
    "LightMemStore",
    "user_namespace",
    "user_of_namespace",
]

KEY_PREFIX = "langgraph:"
"""Every store item's memory key starts with this (``mem.memories(u, key_prefix=...)``)."""

_MAX_KEY_CHARS = 256  # the engine's limit on ids and keys
_ESCAPE = re.compile(r"%(25|2E)")
_UNESCAPED = {"25": "%", "2E": "."}


class InvalidNamespace(InvalidArgument, InvalidNamespaceError):
    """A namespace or key LightMem cannot map onto a user's memory. Both a LightMem
    ``ValidationError`` and LangGraph's ``InvalidNamespaceError``: catch either."""


def _label_of_user(user_id: str) -> str:
    return user_id.replace("%", "%25").replace(".", "%2E")


def user_namespace(user_id: str, *labels: str) -> tuple[str, ...]:
    """The namespace of ``user_id`` (escaped if LangGraph would reject it), then ``labels``:
    ``user_namespace("ann@example.com", "memories") == ("ann@example%2Ecom", "memories")``.
    """
    return (_label_of_user(check_user_id(user_id)), *labels)


def user_of_namespace(namespace: Sequence[str]) -> str:
    """The LightMem user id a namespace belongs to (its first label, unescaped)."""
    if not namespace:
        raise InvalidNamespace("an empty namespace names no user")
    label = namespace[0]
    if not isinstance(label, str) or "%" in _ESCAPE.sub("", label):
        raise InvalidNamespace(
            f"the first namespace label is the user id, with % written %25 and . written %2E "
            f"(user_namespace() does it); {label!r} is not such a label"
        )
    return check_user_id(_ESCAPE.sub(lambda m: _UNESCAPED[m.group(1)], label))


def _escape_key(key: str) -> str:
    return key.replace("%", "%25").replace(".", "%2E")


def _memory_key(rest: Sequence[str], key: str) -> str:
    """``langgraph:<label>.<label>..<key>``: labels never hold a ``.``, the key is escaped,
    so the stored key is unambiguous and a namespace prefix is a key prefix."""
    return KEY_PREFIX + "".join(f"{label}." for label in rest) + "." + _escape_key(key)


def _prefix_key(rest: Sequence[str]) -> str:
    return KEY_PREFIX + "".join(f"{label}." for label in rest)


def _split_key(stored: str) -> tuple[tuple[str, ...], str]:
    labels, _, key = stored[len(KEY_PREFIX) :].rpartition(".")
    rest = tuple(labels.split(".")[:-1]) if labels else ()
    return rest, _ESCAPE.sub(lambda m: _UNESCAPED[m.group(1)], key)


def _check_text(value: str, what: str) -> None:
    if not value:
        raise InvalidNamespace(f"{what} must not be empty")
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value):
        raise InvalidNamespace(f"{what} must not contain control characters: {value!r}")


def _natural(value: object, *, minimum: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _check_page(limit: object, offset: object, what: str) -> None:
    if not _natural(limit) or not _natural(offset):
        raise InvalidArgument(
            f"{what} limit and offset must be non-negative integers, got {limit!r}, {offset!r}"
        )


def _strings(value: Any) -> list[str]:
    """Every string in a JSON value, in order: what the item says, for search."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


def _matches(value: Any, wanted: Any) -> bool:
    """LangGraph's filter semantics (as ``InMemoryStore`` and ``PostgresStore``): equality,
    nested objects field by field, lists element by element, and ``$eq``, ``$ne``, ``$gt``,
    ``$gte``, ``$lt``, ``$lte``."""
    if isinstance(wanted, Mapping):
        if any(str(k).startswith("$") for k in wanted):
            return all(_compare(value, op, operand) for op, operand in wanted.items())
        return isinstance(value, Mapping) and all(
            _matches(value.get(k), v) for k, v in wanted.items()
        )
    if isinstance(wanted, list | tuple):
        return (
            isinstance(value, list | tuple)
            and len(value) == len(wanted)
            and all(_matches(a, b) for a, b in zip(value, wanted, strict=True))
        )
    return bool(value == wanted)


def _compare(value: Any, operator: str, operand: Any) -> bool:
    if operator == "$eq":
        return bool(value == operand)
    if operator == "$ne":
        return bool(value != operand)
    comparisons = {
        "$gt": float.__gt__,
        "$gte": float.__ge__,
        "$lt": float.__lt__,
        "$lte": float.__le__,
    }
    if operator not in comparisons:
        raise InvalidArgument(f"unsupported filter operator {operator!r}")
    try:
        return bool(comparisons[operator](float(value), float(operand)))
    except (TypeError, ValueError):
        return False  # a missing or non-numeric field is simply not a match


def _condition_holds(condition: MatchCondition, namespace: tuple[str, ...]) -> bool:
    path = tuple(condition.path)
    if len(namespace) < len(path):
        return False
    if condition.match_type == "prefix":
        pairs = zip(namespace, path, strict=False)
    elif condition.match_type == "suffix":
        pairs = zip(reversed(namespace), reversed(path), strict=False)
    else:
        raise InvalidArgument(f"unsupported namespace match type {condition.match_type!r}")
    return all(want == "*" or have == want for have, want in pairs)


@dataclass(frozen=True, slots=True)
class _Put:
    """A checked ``PutOp``: everything the write needs, worked out before any write."""

    user: str
    key: str
    text: str | None  # None: delete
    metadata: dict[str, Any]


class LightMemStore(BaseStore):
    """A LangGraph ``BaseStore`` whose items are LightMem long-term memories.

    - ``put`` is durable when it returns; a ``PutOp`` with ``value=None`` deletes.
    - ``get`` returns the exact value put (a JSON round trip: tuples come back as lists).
    - ``search(namespace_prefix, query=..., filter=..., limit, offset)``: with a query,
      the items LightMem's two-stage retrieval ranks come first (with their score), then
      the other matching items (score ``None``), so every matching item is reachable by
      paging, as in a vector store; without one, items in the order they were first put.
      ``filter`` matches value fields (``{"kind": "pref"}``, ``{"n": {"$gte": 2}}``).
    - ``list_namespaces(prefix, suffix, max_depth, limit, offset)`` as LangGraph documents
      it, over the namespaces that hold items.

    An item's searchable text is the strings of its value (or of the fields named by
    ``index``, as ``IndexConfig.fields`` and ``put(..., index=[...])`` name them). An item
    put with ``index=False`` is left out of query ranking but still listed, fetched and
    filtered (LightMem indexes every memory for its own retrieval). TTLs are not supported
    (``put(..., ttl=...)`` raises ``NotImplementedError``, as LangGraph's base store does).

    Within one ``batch``, reads see the store as it was before the batch and the puts are
    applied after them, the last put of a key winning (as ``InMemoryStore`` does). Every op
    is checked before anything is written, so a batch with a bad op writes nothing.

    Args:
        mem: the :class:`~lightmem_core.LightMem` engine (first argument, or ``mem=``).
        kind: the ``kind`` of the memories the items become (default ``"note"``).
        fields: the value fields to index by default (JSON paths; default: every string).
    """

    supports_ttl = False

    def __init__(
        self,
        mem: LightMem | None = None,
        /,
        *,
        kind: str = "note",
        fields: Sequence[str] | None = None,
        **options: Any,
    ) -> None:
        if mem is None:
            mem = options.pop("mem", None)
        if options:
            raise InvalidArgument(f"unknown LightMemStore option(s): {', '.join(sorted(options))}")
        self.mem = engine(mem, "LightMemStore")
        self.kind = kind
        self.fields = list(fields) if fields is not None else None

    # --- batch ----------------------------------------------------------------------------

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run the ops; results in op order (see the class docstring for the semantics)."""
        ops = list(ops)
        puts = self._check(ops)
        results: list[Result] = []
        for op in ops:
            if isinstance(op, GetOp):
                results.append(self._get(op))
            elif isinstance(op, SearchOp):
                results.append(self._search(op))
            elif isinstance(op, ListNamespacesOp):
                results.append(self._list_namespaces(op))
            else:
                results.append(None)
        for put in puts.values():
            if put.text is None:
                self.mem.delete(put.user, keys=[put.key])
            else:
                self.mem.remember(
                    put.user, put.text, kind=self.kind, metadata=put.metadata, key=put.key
                )
        return results

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Async :meth:`batch`: the engine's work runs in a worker thread, never on the
        event loop."""
        return await asyncio.to_thread(self.batch, list(ops))

    # --- checks (before anything is written) ------------------------------------------------

    def _check(self, ops: Sequence[Op]) -> dict[tuple[str, str], _Put]:
        puts: dict[tuple[str, str], _Put] = {}
        for op in ops:
            if not isinstance(op, GetOp | SearchOp | ListNamespacesOp | PutOp):
                raise InvalidArgument(f"unknown store operation {type(op).__name__}")
            validate_op_namespace(op)  # batch() may be called directly, past the helpers
            if isinstance(op, PutOp):
                put = self._checked_put(op)
                puts[(put.user, put.key)] = put  # the last put of a key wins
            elif isinstance(op, GetOp):
                self._item_key(op.namespace, op.key)
            elif isinstance(op, SearchOp):
                if op.namespace_prefix:
                    user_of_namespace(op.namespace_prefix)
                _check_page(op.limit, op.offset, "search")
                if op.filter is not None and not isinstance(op.filter, Mapping):
                    raise InvalidArgument(
                        f"a search filter must be a dict, got {type(op.filter).__name__}"
                    )
                if op.query is not None and not isinstance(op.query, str):
                    raise InvalidArgument(f"a query must be text, got {type(op.query).__name__}")
            else:
                _check_page(op.limit, op.offset, "list_namespaces")
                if op.max_depth is not None and not _natural(op.max_depth, minimum=1):
                    raise InvalidArgument(
                        f"max_depth must be a positive integer, got {op.max_depth!r}"
                    )
        return puts

    def _item_key(self, namespace: tuple[str, ...], key: str) -> tuple[str, str]:
        user = user_of_namespace(namespace)
        for label in namespace[1:]:
            _check_text(label, "a namespace label")
        if not isinstance(key, str):
            raise InvalidNamespace(f"an item key must be a string, got {type(key).__name__}")
        _check_text(key, "an item key")
        stored = _memory_key(namespace[1:], key)
        if len(stored) > _MAX_KEY_CHARS:
            raise InvalidNamespace(
                f"namespace and key are {len(stored)} characters together; LightMem keeps "
                f"at most {_MAX_KEY_CHARS} (shorten the labels or the key)"
            )
        return user, stored

    def _checked_put(self, op: PutOp) -> _Put:
        if op.ttl is not None:
            raise NotImplementedError("LightMemStore does not support TTLs (supports_ttl=False)")
        if op.namespace and op.namespace[0] == "langgraph":
            raise InvalidNamespace('the root label "langgraph" is reserved by LangGraph')
        user, key = self._item_key(op.namespace, op.key)
        if op.value is None:
            return _Put(user, key, None, {})
        if not isinstance(op.value, Mapping):
            raise InvalidArgument(f"a store value must be a dict, got {type(op.value).__name__}")
        value = dict(op.value)
        try:
            encoded = json.dumps(value, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as err:
            raise InvalidArgument(f"a store value must be JSON-serialisable: {err}") from err
        config = self.mem.config
        if len(encoded.encode("utf-8")) + 64 > config.max_metadata_bytes:
            raise InvalidArgument(
                f"the value is larger than the store allows ({config.max_metadata_bytes:,} "
                "bytes as JSON; raise max_metadata_bytes on LightMem)"
            )
        text = self._text(value, op.index)
        if len(text) > config.max_content_chars:
            raise ContentTooLarge(
                f"the value's text is {len(text):,} characters; the limit is "
                f"{config.max_content_chars:,} (raise max_content_chars)"
            )
        metadata: dict[str, Any] = {"value": json.loads(encoded)}
        if op.index is False:
            metadata["store_index"] = False
        return _Put(user, key, text, metadata)

    def _text(self, value: dict[str, Any], index: Any) -> str:
        paths = self.fields if index is None or index is False else list(index)
        if paths and paths != ["$"]:
            found = [t for path in paths for t in get_text_at_path(value, path)]
        else:
            found = _strings(value)
        text = " ".join(t for t in found if t.strip())
        return text or json.dumps(value, sort_keys=True, ensure_ascii=False)

    # --- reads ------------------------------------------------------------------------------

    @staticmethod
    def _fields(memory: Memory) -> tuple[tuple[str, ...], str, dict[str, Any], datetime, datetime]:
        """Namespace, key, value, created and updated time of the item a memory holds."""
        assert memory.key is not None
        rest, key = _split_key(memory.key)
        created = memory.created_at or datetime.now(UTC)
        updated = memory.timestamp or created
        value = memory.metadata.get("value", {})
        return (_label_of_user(memory.user_id), *rest), key, value, created, updated

    def _item(self, memory: Memory) -> Item:
        namespace, key, value, created, updated = self._fields(memory)
        return Item(
            value=value, key=key, namespace=namespace, created_at=created, updated_at=updated
        )

    def _search_item(self, memory: Memory, score: float | None) -> SearchItem:
        return SearchItem(*self._fields(memory), score)

    def _get(self, op: GetOp) -> Item | None:
        user, key = self._item_key(op.namespace, op.key)
        found = self.mem.memories(user, keys=[key])
        return self._item(found[0]) if found else None

    def _listed(
        self, user: str, rest: Sequence[str], wanted: Mapping[str, Any] | None
    ) -> list[Memory]:
        memories = self.mem.memories(user, key_prefix=_prefix_key(rest), tiers=[Tier.LTM])
        return [m for m in memories if self._wanted(m, rest, wanted)]

    @staticmethod
    def _wanted(memory: Memory, rest: Sequence[str], wanted: Mapping[str, Any] | None) -> bool:
        """An item of the namespace prefix whose value passes the filter."""
        if memory.key is None or not memory.key.startswith(_prefix_key(rest)):
            return False
        value = memory.metadata.get("value", {})
        return not wanted or all(_matches(value.get(k), v) for k, v in wanted.items())

    @staticmethod
    def _depth(offset: int, limit: int) -> int:
        """How many ranked memories to ask for: a power of two from 16, so that the first
        pages of one query share one ranking (a search's pool grows with its ``k``)."""
        return min(1000, max(16, 1 << max(0, offset + limit - 1).bit_length()))

    def _search(self, op: SearchOp) -> list[SearchItem]:
        prefix = tuple(op.namespace_prefix)
        rest = prefix[1:]
        users = [user_of_namespace(prefix)] if prefix else self.mem.users()
        wanted = op.offset + op.limit
        ranked: list[tuple[float, Memory]] = []
        unranked: list[Memory] = []
        for user in users:
            if not op.query:
                unranked += self._listed(user, rest, op.filter)
                continue
            hits = self.mem.search(
                user,
                op.query,
                k=self._depth(op.offset, op.limit),
                token_budget=1_000_000,
                tiers=[Tier.LTM],
            )
            found = {m.id: m for m in self.mem.memories(user, ids=[h.memory_id for h in hits])}
            scored = [
                (h.score, found[h.memory_id])
                for h in hits
                if h.memory_id in found
                and self._wanted(found[h.memory_id], rest, op.filter)
                and found[h.memory_id].metadata.get("store_index") is not False
            ]
            ranked += scored
            if len(users) == 1 and len(scored) >= wanted:
                continue  # the page is all ranked: the other items are not needed
            seen = {m.id for _, m in scored}
            unranked += [m for m in self._listed(user, rest, op.filter) if m.id not in seen]
        # Scores of different users' searches are not comparable; one user's is the usual case.
        ranked.sort(key=lambda pair: -pair[0])
        ordered: list[tuple[float | None, Memory]] = [*ranked, *((None, m) for m in unranked)]
        page = ordered[op.offset : op.offset + op.limit]
        return [self._search_item(m, score) for score, m in page]

    def _list_namespaces(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        conditions = list(op.match_conditions or ())
        users: list[str] | None = None
        for condition in conditions:
            if condition.match_type == "prefix" and condition.path and condition.path[0] != "*":
                try:
                    users = [user_of_namespace(condition.path)]
                except InvalidArgument:  # a label no user can have: nothing matches
                    return []
        namespaces: set[tuple[str, ...]] = set()
        for user in users if users is not None else self.mem.users():
            for memory in self.mem.memories(user, key_prefix=KEY_PREFIX, tiers=[Tier.LTM]):
                assert memory.key is not None
                rest, _ = _split_key(memory.key)
                namespaces.add((_label_of_user(user), *rest))
        kept = [ns for ns in namespaces if all(_condition_holds(c, ns) for c in conditions)]
        if op.max_depth is not None:
            kept = list({ns[: op.max_depth] for ns in kept})
        return sorted(kept)[op.offset : op.offset + op.limit]
