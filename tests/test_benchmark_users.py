"""The users benchmark, small: every layout runs, and no query reaches another user."""

from __future__ import annotations

from pathlib import Path

from _benchmarks import load_benchmark
from rich.console import Console


def test_users_benchmark_end_to_end(tmp_path: Path) -> None:
    users = load_benchmark("users")
    report = users.run(
        [20], per_user=3, searches=5, partitions=4, workdir=tmp_path, show_progress=False
    )
    assert [row["layout"] for row in report["rows"]] == [
        "per-user",
        "shared",
        "partitions",
        "lightmem",
    ]
    assert all(row["other_users_hits"] == 0 for row in report["rows"])
    by_layout = {row["layout"]: row for row in report["rows"]}
    assert by_layout["per-user"]["folders"] >= by_layout["partitions"]["folders"]
    assert by_layout["lightmem"]["folders"] < by_layout["per-user"]["folders"]
    console = Console(record=True, width=140)
    users.render(report, console)
    assert "must be 0" in console.export_text()
