"""The loopback load test, small: many users at once, no error, the index caught up."""

from __future__ import annotations

from pathlib import Path

import pytest
from _benchmarks import load_benchmark


@pytest.mark.parametrize(
    ("embedded", "processes"),
    [(True, 1), (True, 3), pytest.param(False, 1, marks=pytest.mark.slow)],
)
def test_load_run_has_no_errors(tmp_path: Path, embedded: bool, processes: int) -> None:
    load = load_benchmark("load")
    results = load.run_load(
        users=8,
        turns=15,
        search_every=3,
        embedded=embedded,
        embedder="hashing",
        processes=processes,
        show_progress=False,
        workdir=tmp_path,
    )
    assert results["errors"] == 0, results["error_samples"]
    assert results["finished"]
    assert results["index_caught_up"]
    assert results["add"]["count"] == 8 * 15
    assert results["search"]["count"] == 8 * 5
    assert results["add"]["p50_ms"] <= results["add"]["p99_ms"]
