"""Consolidation's labelled cases (benchmarks/data/consolidation_cases*.json): enough of
them, and in every case the current value of a changed fact ranks above the one it
superseded. Precision, recall and merge accuracy are reported by
``python benchmarks/consolidation.py --quality``, not asserted."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from lightmem_core.testing import HashingEmbedder

DATA = Path(__file__).parent.parent / "benchmarks" / "data"


def _quality() -> object:
    sys.path.insert(0, str(DATA.parent))
    import _consolidation_quality

    return _consolidation_quality


def test_the_labelled_set_is_large_and_varied() -> None:
    cases = json.loads((DATA / "consolidation_cases.json").read_text(encoding="utf-8"))
    statements = len(cases["statements"]) + sum(len(s["turns"]) for s in cases["sequences"])
    assert statements >= 150
    kinds = {e.get("kind") for s in cases["statements"] for e in s["expect"]}
    assert {"preference", "plan", "event"} <= kinds
    assert any(not s["expect"] for s in cases["statements"])  # chat that holds no fact
    assert any(s["superseded"] for s in cases["sequences"])  # changes
    assert any(s["separate"] for s in cases["sequences"])  # things that must stay apart


@pytest.mark.parametrize("name", ["consolidation_cases.json", "consolidation_cases_fresh.json"])
def test_a_current_fact_ranks_above_the_one_it_superseded(name: str) -> None:
    quality = _quality()
    cases = json.loads((DATA / name).read_text(encoding="utf-8"))
    report = quality.sequences(cases["sequences"], embedder=HashingEmbedder())  # type: ignore[attr-defined]
    assert report["rank_checks"] > 0
    assert report["rank_right"] == report["rank_checks"], report["mistakes"]
    assert report["supersede_precision"] == 1.0  # nothing superseded that should not be
