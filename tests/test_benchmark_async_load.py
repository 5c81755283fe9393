"""The async load benchmark, small: both modes run at each concurrency on a real server."""

from __future__ import annotations

from pathlib import Path

import pytest
from _benchmarks import load_benchmark

pytestmark = pytest.mark.slow


def test_async_load_measures_both_modes(tmp_path: Path, postgres_db: str) -> None:
    bench = load_benchmark("async_load")
    results = bench.run_async_load(
        concurrency=(1, 8), seconds=0.5, search_every=2, records=postgres_db, workdir=tmp_path
    )
    levels = results["levels"]
    assert [(lv["mode"], lv["concurrency"]) for lv in levels] == [
        ("threaded", 1),
        ("native", 1),
        ("threaded", 8),
        ("native", 8),
    ]
    for level in levels:
        assert level["rounds"] > 0
        assert level["aadd"]["count"] == level["rounds"]
        assert level["asearch"]["count"] > 0
        assert level["executor_wait_ms"]["p50"] is not None
    bench.plot(results, tmp_path / "async_load.png")
    assert (tmp_path / "async_load.png").stat().st_size > 0
