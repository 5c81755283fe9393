"""The adapter-overhead benchmark, small: every pair runs, and no adapter adds a model call."""

from __future__ import annotations

from pathlib import Path

from _benchmarks import load_benchmark
from rich.console import Console


def test_adapters_benchmark_end_to_end(tmp_path: Path) -> None:
    adapters = load_benchmark("adapters")
    report = adapters.run(
        turns=40, calls=4, embedder_name="hashing", workdir=tmp_path, show_progress=False
    )
    pairs = {row["pair"] for row in report["timings"]}
    assert pairs == {
        "chat memory load",
        "chat memory save",
        "retriever",
        "store search",
        "store get",
        "middleware",
        "memory tool",
        "llamaindex memory get",
        "llamaindex memory put",
        "llamaindex retriever",
        "llamaindex block",
    }
    assert all(row["ratio_p50"] is not None for row in report["timings"])
    assert report["model_calls"]
    searches = [row for row in report["model_calls"] if row["pair"] != "store get"]
    assert all(row["engine_model_calls"] == 1 for row in searches)  # the model controller
    assert all(row["added"] == 0 for row in report["model_calls"])
    console = Console(record=True, width=120)
    adapters.render(report, console)
    assert "Model calls added by the adapters: 0" in console.export_text()
