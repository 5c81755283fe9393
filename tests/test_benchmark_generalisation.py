"""The leave-one-conversation-out protocol of ``benchmarks/_generalisation.py``: a choice is
made without the held-out conversation, and an ablation keeps only what helps on most folds."""

from __future__ import annotations

from types import ModuleType

import pytest
from _benchmarks import load_benchmark


@pytest.fixture(scope="module")
def g() -> ModuleType:
    return load_benchmark("_generalisation")


def _scores(g: ModuleType, by_conversation: dict[str, float]) -> list[object]:
    return [
        g.Scored(conversation, category, value)
        for conversation, value in by_conversation.items()
        for category in ("temporal", "multi-hop")
    ]


def test_a_candidate_fitted_to_one_conversation_wins_all_in_but_not_out_of_sample(
    g: ModuleType,
) -> None:
    candidates = {
        "steady": _scores(g, {"a": 0.80, "b": 0.80, "c": 0.80, "d": 0.80}),
        "fitted": _scores(g, {"a": 1.00, "b": 1.00, "c": 0.70, "d": 0.70}),  # mean 0.85
    }
    report = g.leave_one_out(candidates)
    assert report["all_in_choice"] == "fitted"
    assert report["all_in_score"] == pytest.approx(0.85)
    chosen = {f["held_out"]: f["chosen"] for f in report["folds"]}
    # Holding out a or b leaves fitted at 0.80 on the rest, a tie the reference (first) wins;
    # holding out c or d leaves it at 0.90, chosen, and then scored 0.70 where it fails.
    assert chosen == {"a": "steady", "b": "steady", "c": "fitted", "d": "fitted"}
    assert report["held_out_mean"] == pytest.approx((0.80 + 0.80 + 0.70 + 0.70) / 4)
    assert report["held_out_min"] == pytest.approx(0.70)
    assert report["folds"][0]["held_out_by_category"] == {"multi-hop": 0.8, "temporal": 0.8}


def test_ablation_keeps_a_signal_only_when_it_helps_on_most_folds(g: ModuleType) -> None:
    candidates = {
        "all": _scores(g, {"a": 0.80, "b": 0.80, "c": 0.80, "d": 0.80}),
        "without-x": _scores(g, {"a": 0.70, "b": 0.75, "c": 0.79, "d": 0.85}),  # x helps 3/4
        "without-y": _scores(g, {"a": 0.50, "b": 0.81, "c": 0.82, "d": 0.85}),  # y helps 1/4
    }
    report = g.ablation(candidates, "all")
    assert report["needed"] == 3
    assert report["rows"]["without-x"]["keep"] is True
    assert report["rows"]["without-x"]["folds_where_reference_is_better"] == 3
    # y wins the total by a lot on one conversation and loses on the other three.
    assert report["rows"]["without-y"]["keep"] is False
    assert report["rows"]["without-y"]["reference_minus_this"]["a"] == pytest.approx(0.30)


def test_bad_input_is_refused(g: ModuleType) -> None:
    with pytest.raises(ValueError, match="two conversations"):
        g.leave_one_out({"x": _scores(g, {"a": 1.0})})
    with pytest.raises(ValueError, match="no candidate"):
        g.leave_one_out({})
    with pytest.raises(ValueError, match="reference"):
        g.ablation({"x": _scores(g, {"a": 1.0, "b": 1.0})}, "missing")
