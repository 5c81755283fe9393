"""Leave-one-conversation-out: does a choice made on some conversations hold on another?

A score fitted to the file it was tuned on says little about conversations nobody has seen.
Given per-question scores of several candidate configurations, for each fold (one
conversation held out) this picks the configuration that is best on the other conversations
and scores it on the held-out one. The held-out scores, their mean and spread, are the
figure to trust; the all-in score (best configuration chosen on everything) is printed beside
them, so the gap is visible.

The ablation view compares every candidate with a reference, fold by fold: a rule, signal or
weight stays only when removing it hurts on most folds (``keep_at`` of them; three of four by
default), not when it helps the total.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Scored", "ablation", "leave_one_out"]


@dataclass(frozen=True, slots=True)
class Scored:
    """One question's score under one configuration."""

    conversation: str
    category: str
    score: float


def _mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _score(scored: Sequence[Scored], *, keep: set[str] | None = None) -> float | None:
    return _mean([s.score for s in scored if keep is None or s.conversation in keep])


def _by_category(scored: Sequence[Scored], conversation: str) -> dict[str, float | None]:
    categories = sorted({s.category for s in scored})
    return {
        c: _mean([s.score for s in scored if s.conversation == conversation and s.category == c])
        for c in categories
    }


def leave_one_out(candidates: Mapping[str, Sequence[Scored]]) -> dict[str, Any]:
    """Per fold: the candidate chosen on the other conversations, its held-out score (overall
    and per category); then the mean and spread of the held-out scores, and the all-in
    choice for comparison. Needs two conversations or more."""
    if not candidates:
        raise ValueError("no candidate configuration to choose from")
    conversations = sorted({s.conversation for scored in candidates.values() for s in scored})
    if len(conversations) < 2:
        raise ValueError("leave-one-out needs two conversations or more")
    folds: list[dict[str, Any]] = []
    held: list[float] = []
    for held_out in conversations:
        train = set(conversations) - {held_out}
        trained = {name: _score(scored, keep=train) for name, scored in candidates.items()}
        # Ties go to the first candidate given (the reference), never to the held-out score.
        chosen = max(candidates, key=lambda name: trained[name] or 0.0)
        scored = candidates[chosen]
        score = _score(scored, keep={held_out})
        if score is not None:
            held.append(score)
        folds.append(
            {
                "held_out": held_out,
                "chosen": chosen,
                "train_score": trained[chosen],
                "held_out_score": score,
                "held_out_by_category": _by_category(scored, held_out),
            }
        )
    all_in = {name: _score(scored) for name, scored in candidates.items()}
    best = max(candidates, key=lambda name: all_in[name] or 0.0)
    return {
        "folds": folds,
        "held_out_mean": _mean(held),
        "held_out_min": min(held) if held else None,
        "held_out_max": max(held) if held else None,
        "held_out_stdev": statistics.stdev(held) if len(held) > 1 else None,
        "all_in_choice": best,
        "all_in_score": all_in[best],
    }


def ablation(
    candidates: Mapping[str, Sequence[Scored]], reference: str, *, keep_at: int | None = None
) -> dict[str, Any]:
    """Each candidate against ``reference``, per conversation: the reference's score minus the
    candidate's (positive: what the candidate lacks helps there), on how many folds that is
    positive, and whether it reaches ``keep_at`` (default: all folds but one)."""
    if reference not in candidates:
        raise ValueError(f"the reference {reference!r} is not among the candidates")
    conversations = sorted({s.conversation for s in candidates[reference]})
    needed = keep_at if keep_at is not None else max(1, len(conversations) - 1)
    base = {c: _score(candidates[reference], keep={c}) for c in conversations}
    rows = {}
    for name, scored in candidates.items():
        if name == reference:
            continue
        deltas: dict[str, float | None] = {}
        for c in conversations:
            other = _score(scored, keep={c})
            ref = base[c]
            deltas[c] = ref - other if ref is not None and other is not None else None
        helps = sum(1 for d in deltas.values() if d is not None and d > 0)
        rows[name] = {
            "reference_minus_this": deltas,
            "folds_where_reference_is_better": helps,
            "keep": helps >= needed,
        }
    return {"reference": reference, "folds": conversations, "needed": needed, "rows": rows}
