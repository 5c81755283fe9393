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


@pytest.mark.parametrize(
    "deployment", ["embedded", pytest.param("servers", marks=pytest.mark.slow)]
)
def test_open_loop_offers_fixed_rates_and_reports_against_an_idle_search(
    tmp_path: Path, deployment: str, request: pytest.FixtureRequest
) -> None:
    load = load_benchmark("load")
    servers: dict[str, str] = {}
    if deployment == "servers":
        servers = {
            "records": request.getfixturevalue("postgres_db"),
            "chroma": request.getfixturevalue("chroma_server"),
        }
    results = load.run_open_loop(
        deployment=deployment,
        users=4,
        rates=(0.25, 0.5),
        seconds=1.5,
        embedder="hashing",
        workdir=tmp_path,
        **servers,
    )
    assert results["errors"] == 0, [r["error_samples"] for r in results["rates"]]
    assert results["index_caught_up"]
    assert results["capacity_turns_per_s"] > 0
    assert [r["fraction"] for r in results["rates"]] == [0.25, 0.5]
    for row in results["rates"]:
        assert row["add"]["count"] == pytest.approx(row["offered_turns_per_s"] * 1.5, abs=1)
        assert row["search_p95_over_idle_p95"] is not None
