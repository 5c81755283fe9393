"""Fuzzing every public input with Hypothesis, through the API and the command line.

Each call either succeeds or raises a typed :class:`LightMemError`; a failed call leaves the
store exactly as it was (its counts, and the caller's earlier data, unchanged).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from lightmem_core import LightMem, LightMemError, SearchResults, Turn
from lightmem_core.cli import app
from lightmem_core.testing import HashingEmbedder

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Values of every kind a caller might pass by mistake, and strings that are nearly valid.
anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.binary(max_size=20),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3),
    st.datetimes(timezones=st.none() | st.just(UTC)),
    st.sampled_from(["", " ", "\x00", "a\nb", "\ud800", "x" * 300, "2024-13-45", "user"]),
)
texty = st.text(max_size=60) | anything


@pytest.fixture(scope="module")
def mem(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LightMem]:
    with LightMem(tmp_path_factory.mktemp("fuzz") / "s", embedder=HashingEmbedder()) as store:
        store.add("anchor", "a turn that must survive every failed call", turn_id="keep")
        yield store


def _counts(mem: LightMem) -> dict[str, int]:
    """What a call may change (the indexing backlog moves on its own, in the background)."""
    counts = mem._records.counts(None)
    counts.pop("pending_index", None)
    return counts


def _typed_or_ok(mem: LightMem, call: Callable[[], Any]) -> tuple[Any, bool]:
    """Run ``call``; a failure must be typed and change nothing."""
    before = _counts(mem)
    try:
        return call(), True
    except LightMemError:
        assert _counts(mem) == before
        assert [t.turn_id for t in mem.recent("anchor")] == ["keep"]
        return None, False


@FUZZ
@given(
    user=texty,
    content=texty,
    role=st.sampled_from(["user", "assistant", "system", "tool"]) | anything,
    session=st.none() | texty,
    timestamp=st.none() | texty,
    turn_id=st.none() | texty,
    speaker=st.none() | texty,
    metadata=st.none() | anything,
)
def test_add(mem: LightMem, **fields: Any) -> None:
    user, content = fields.pop("user"), fields.pop("content")
    args = {
        "role": fields["role"],
        "session_id": fields["session"],
        "timestamp": fields["timestamp"],
        "turn_id": fields["turn_id"],
        "speaker": fields["speaker"],
        "metadata": fields["metadata"],
    }
    turn, ok = _typed_or_ok(mem, lambda: mem.add(user, content, **args))
    if ok:
        assert isinstance(turn, Turn)
        assert turn.turn_id in {t["turn_id"] for t in mem.export(turn.user_id)["turns"]}


@FUZZ
@given(
    user=texty,
    messages=st.lists(
        st.dictionaries(st.text(max_size=10), texty, max_size=4) | anything, max_size=4
    ),
)
def test_add_many_is_all_or_nothing(mem: LightMem, user: Any, messages: Any) -> None:
    _typed_or_ok(mem, lambda: mem.add_many(user, messages))


@FUZZ
@given(
    user=texty,
    text=texty,
    kind=st.just("fact") | texty,
    timestamp=st.none() | texty,
    sources=st.just(()) | st.lists(texty, max_size=3) | anything,
    metadata=st.none() | anything,
)
def test_remember(
    mem: LightMem, user: Any, text: Any, kind: Any, timestamp: Any, sources: Any, metadata: Any
) -> None:
    _typed_or_ok(
        mem,
        lambda: mem.remember(
            user, text, kind=kind, timestamp=timestamp, source_ids=sources, metadata=metadata
        ),
    )


@FUZZ
@given(
    user=st.just("anchor") | texty,
    query=texty,
    k=st.none() | anything,
    budget=st.none() | anything,
    now=st.none() | texty,
    tiers=st.none() | st.lists(st.sampled_from(["mtm", "ltm", "stm", "x"]), max_size=3) | anything,
)
def test_search_and_context(
    mem: LightMem, user: Any, query: Any, k: Any, budget: Any, now: Any, tiers: Any
) -> None:
    found, ok = _typed_or_ok(
        mem, lambda: mem.search(user, query, k=k, token_budget=budget, now=now, tiers=tiers)
    )
    if ok:
        assert isinstance(found, SearchResults)
        assert all(h.memory_id for h in found)
    context, ok = _typed_or_ok(
        mem, lambda: mem.get_context(user, query, token_budget=budget, now=now, k=k)
    )
    if ok:
        assert isinstance(context, str)


@FUZZ
@given(user=texty, session=st.none() | texty, budget=st.none() | anything)
def test_recent_export_stats(mem: LightMem, user: Any, session: Any, budget: Any) -> None:
    _typed_or_ok(mem, lambda: mem.recent(user, session_id=session, token_budget=budget))
    _typed_or_ok(mem, lambda: mem.export(user))
    _typed_or_ok(mem, lambda: mem.stats(user))
    _typed_or_ok(mem, lambda: mem.consolidation_backlog(user))


@FUZZ
@given(user=texty, now=st.none() | texty)
def test_consolidate(mem: LightMem, user: Any, now: Any) -> None:
    _typed_or_ok(mem, lambda: mem.consolidate(user, now=now, dry_run=True))


@FUZZ
@given(user=texty.filter(lambda u: u != "anchor"))
def test_forget_only_forgets_its_user(mem: LightMem, user: Any) -> None:
    _typed_or_ok(mem, lambda: mem.forget(user))
    assert [t.turn_id for t in mem.recent("anchor")] == ["keep"]


# --- the command line -------------------------------------------------------------------------

cli_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30
)
commands = st.one_of(
    st.tuples(st.just("add"), cli_text, cli_text),
    st.tuples(st.just("search"), cli_text, cli_text),
    st.tuples(st.just("context"), cli_text, cli_text),
    st.tuples(st.just("export"), cli_text),
    st.tuples(st.just("forget"), cli_text, st.just("--yes")),
    st.tuples(st.just("stats"), st.just("--user"), cli_text),
    st.tuples(st.just("consolidate"), st.just("--user"), cli_text, st.just("--dry-run")),
    st.tuples(st.just("search"), st.just("u"), st.just("q"), st.just("--k"), cli_text),
    st.tuples(st.just("search"), st.just("u"), st.just("q"), st.just("--budget"), cli_text),
    st.tuples(st.just("add"), st.just("u"), st.just("t"), st.just("--timestamp"), cli_text),
    st.tuples(st.just("add"), st.just("u"), st.just("t"), st.just("--role"), cli_text),
)


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(args=commands)
def test_cli_never_shows_a_traceback(
    tmp_path_factory: pytest.TempPathFactory, args: tuple[str, ...]
) -> None:
    store = _cli_store(tmp_path_factory)
    result = CliRunner().invoke(
        app,
        list(args),
        env={
            "LIGHTMEM_EMBEDDER": "hashing",
            "LIGHTMEM_PATH": str(store),
            "LIGHTMEM_CHROMA_URL": None,
        },
    )
    assert result.exit_code in (0, 1, 2), (args, result.output)
    assert "Traceback" not in result.output, (args, result.output)
    if result.exit_code != 0:
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            args,
            repr(result.exception),
        )


_STORES: dict[int, Path] = {}


def _cli_store(factory: pytest.TempPathFactory) -> Path:
    """One store for every CLI example (opening one per example would dominate the run)."""
    key = id(factory)
    if key not in _STORES:
        _STORES[key] = factory.mktemp("fuzz-cli") / "s"
    return _STORES[key]
