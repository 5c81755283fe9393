"""Opt-in shared knowledge holds only general, non-personal statements: on the labelled
sets in benchmarks/data, no statement labelled unshareable is shared by the rules they were
built on (the set written afterwards is reported, not asserted: benchmarks/sharing.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _benchmarks import load_benchmark

DATA = Path(__file__).parent.parent / "benchmarks" / "data"


@pytest.mark.parametrize("name", ["shareable_statements.json", "shareable_statements_heldout.json"])
def test_no_unshareable_statement_is_shared(name: str) -> None:
    sharing = load_benchmark("sharing")
    statements = json.loads((DATA / name).read_text(encoding="utf-8"))["statements"]
    leaked = [
        s["text"] for s in statements if not s["shareable"] and sharing.shared_form(s["text"])
    ]
    assert leaked == []


def test_the_labelled_set_covers_every_category() -> None:
    statements = json.loads((DATA / "shareable_statements.json").read_text())["statements"]
    assert len(statements) >= 100
    categories = {s.get("category") for s in statements if not s["shareable"]}
    assert {"credential", "health", "sexuality", "religion", "politics", "finances"} <= categories
    assert {"identifiable person", "self or circle"} <= categories


def test_the_report_counts_precision_and_recall() -> None:
    sharing = load_benchmark("sharing")
    report = sharing.evaluate(
        [
            {"text": "The city museum is closed on Mondays.", "shareable": True},
            {
                "text": "The password for the wifi is hunter2.",
                "shareable": False,
                "category": "credential",
            },
            {"text": "Tomatoes need sun.", "shareable": True},
        ]
    )
    assert report["precision"] == 1.0
    assert report["recall"] == 0.5
    assert report["mistakes"] == [{"text": "Tomatoes need sun.", "error": "not shared"}]
