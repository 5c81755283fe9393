"""What the fuzz tests share: inputs a caller might pass by mistake, and the check that a
failed call is typed and changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from lightmem_core import LightMem, LightMemError

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Values of every kind a caller might pass by mistake, and strings that are nearly valid.
anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.binary(max_size=10),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3),
    st.sampled_from(["", " ", "\x00", "a\nb", "\ud800", "x" * 300, "a.b", "%", "langgraph"]),
)


def counts(mem: LightMem) -> dict[str, int]:
    """What a call may change (the indexing backlog moves on its own, in the background)."""
    found = mem._records.counts(None)
    found.pop("pending_index", None)
    return found


def typed_or_ok(
    mem: LightMem,
    call: Callable[[], Any],
    typed: tuple[type[BaseException], ...] = (LightMemError,),
) -> None:
    """Run ``call``: it succeeds, or raises one of ``typed`` and changes nothing."""
    before = counts(mem)
    try:
        call()
    except typed:
        assert counts(mem) == before
