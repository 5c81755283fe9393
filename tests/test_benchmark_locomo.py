"""The LoCoMo retrieval benchmark, end to end on a tiny LoCoMo-format file (no model)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest
from _benchmarks import load_benchmark
from _locomo_sample import SAMPLE

from lightmem_core.testing import HashingEmbedder


@pytest.fixture(scope="module")
def locomo() -> ModuleType:
    return load_benchmark("locomo")


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny_locomo.json"
    path.write_text(json.dumps([SAMPLE]))
    return path


def test_load_keeps_valid_evidence_and_asks_a_day_after_the_last_session(
    locomo: ModuleType, data_file: Path
) -> None:
    conversations, stats = locomo.load_corpus(data_file)
    [conversation] = conversations
    assert [t.turn_id for t in conversation.turns] == [
        "D1:1",
        "D1:2",
        "D1:3",
        "D1:4",
        "D2:1",
        "D2:2",
        "D2:3",
        "D2:4",
    ]
    photo = conversation.turns[3]
    assert photo.text == "Look at this! [shares a photo: a photo of a red kayak on a beach]"
    assert photo.session_id == "session_1"
    assert photo.date == "1:56 pm on 8 May, 2023"
    assert [q.evidence for q in conversation.questions][1] == frozenset({"D1:2", "D1:4"})
    assert len(conversation.questions) == 4
    assert stats.questions_skipped_no_evidence == 1
    assert stats.evidence_ids_dropped == 1
    assert stats.evidence_entries_split == 1
    assert conversation.now == datetime(2023, 5, 21, 10, 0, tzinfo=UTC)


def test_prefix_cut_and_recall(locomo: ModuleType) -> None:
    ranking = [("one two three", ("a",)), ("four five", ("b", "c")), ("six", ("d",))]
    assert locomo.prefix_within(ranking, 4) == ranking[:1]
    assert locomo.prefix_within(ranking, 5) == ranking[:2]
    assert locomo.prefix_within(ranking, 2) == []
    assert locomo.recall(ranking[:2], frozenset({"c", "d"})) == 0.5
    assert locomo.percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5


def test_benchmark_end_to_end(locomo: ModuleType, data_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    results = locomo.run_benchmark(
        data_file,
        out,
        variants=["lightmem", "stage1-only"],
        embedder=HashingEmbedder(),
        show_progress=False,
        workdir=tmp_path,
    )

    for name in ("locomo.json", "locomo.md", "recall_1000_by_category.png", "recall_by_budget.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "recall_1000_by_category.png").read_bytes().startswith(b"\x89PNG")
    saved = json.loads((out / "locomo.json").read_text())
    assert saved["systems"].keys() == {"bm25", "dense", "rrf", "lightmem", "stage1-only"}
    assert saved["data_file"] == "tiny_locomo.json"
    assert saved["counts"]["questions_scored"] == 4
    assert saved["counts"]["turns"] == 8
    assert saved["generalisation"] is None  # one conversation: nothing to hold out
    table = (out / "locomo.md").read_text()
    for name in saved["systems"]:
        assert f"| {name} |" in table

    values: list[float] = []
    for system in saved["systems"].values():
        assert system["questions"] == 4
        assert set(system["categories"]) == {"1", "2", "4", "5", "overall"}
        assert system["categories"]["overall"]["n"] == 3  # adversarial is reported apart
        for category in system["categories"].values():
            values += category["recall_within"].values()
            values += category["recall_at"].values()
        assert system["latency"]["p50_ms"] >= 0
    for question in saved["per_question"]:
        for scores in question["systems"].values():
            values += scores["recall_within"].values()
            values += scores["recall_at"].values()
    assert values
    assert all(0.0 <= v <= 1.0 for v in values)

    [purchase] = [q for q in results["per_question"] if q["evidence"] == ["D1:3"]]
    bm25 = purchase["systems"]["bm25"]
    assert bm25["recall_within"] == {"500": 1.0, "1000": 1.0, "2000": 1.0}
    assert bm25["recall_at"] == {"5": 1.0, "10": 1.0, "20": 1.0}
    assert bm25["hits"]["1000"] == 1  # no other turn shares a word with the question


def test_unknown_variant_is_refused(locomo: ModuleType, data_file: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no-such-variant"):
        locomo.run_benchmark(data_file, tmp_path / "out", variants=["no-such-variant"])


def test_benchmark_reports_model_calls_per_turn_and_per_query(
    locomo: ModuleType, data_file: Path, tmp_path: Path
) -> None:
    models = load_benchmark("_models")
    results = locomo.run_benchmark(
        data_file,
        tmp_path / "report",
        variants=["lightmem", "consolidated"],
        baselines=[],
        embedder=HashingEmbedder(),
        show_progress=False,
        workdir=tmp_path,
        slm=models.load_model("fake"),
        slm_roles=["controller", "selector", "writer", "consolidator"],
    )
    assert results["config"]["slm"] == {
        "model": "fake:empty-json",
        "roles": ["controller", "selector", "writer", "consolidator"],
    }
    for name, system in results["systems"].items():
        ingest = system["ingest"]
        assert ingest["models"]["calls_per_turn"] == 1.0, name  # one writer call per turn
        assert ingest["query_models"]["calls_per_query"] == 2.0, name  # controller + selector
        assert ingest["query_models"]["tokens_in_per_query"] > 0
        assert ingest["roles"]["writer"]["fallbacks"] == 8  # "{}" is no entry: extractive
    assert results["systems"]["consolidated"]["ingest"]["consolidation"]["model_calls"] > 0
    assert "calls/query" in (tmp_path / "report" / "locomo.md").read_text()
