"""How good is the long-term memory consolidation writes? (``consolidation.py --quality``)

On the labelled cases in ``benchmarks/data/consolidation_cases.json``:

* **extraction**: every single statement through the local abstractor; a candidate matches
  an expectation when the kind (if given) is the same, the single-valued attribute and value
  (if given) are the same, and the word it is "about" (if given) is in its text. Precision:
  candidates that match (chat must give none); recall: expectations matched.
* **supersede**: every sequence into its own user, then ``consolidate()``. Precision: the
  superseded records that were meant to be; recall: the expected ones found superseded.
* **merge accuracy**: repeats and paraphrases must be one record with the support expected;
  opposites and different things must stay apart.
* **current above superseded**: for every query of a sequence, the current value must rank
  above the one it replaced in ``search``.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lightmem_core import LightMem, Status
from lightmem_core._types import Memory, Tier
from lightmem_core.consolidation import KnowledgeCandidate, LocalAbstractor
from lightmem_core.store import Evidence

DEFAULT_CASES = Path(__file__).parent / "data" / "consolidation_cases.json"


def _normal(value: str) -> str:
    words = re.sub(r"[^\w\s]", " ", value.casefold()).split()
    return " ".join(w for w in words if w not in {"the", "a", "an"})


def _matches(candidate: KnowledgeCandidate, expect: dict[str, str]) -> bool:
    if "kind" in expect and candidate.kind != expect["kind"]:
        return False
    if "attribute" in expect and (
        candidate.attribute != expect["attribute"]
        or candidate.slot_value != _normal(expect.get("value", ""))
    ):
        return False
    return "about" not in expect or expect["about"].casefold() in candidate.text.casefold()


def extraction(statements: Sequence[dict[str, Any]]) -> dict[str, Any]:
    abstractor = LocalAbstractor(resolve_dates=False)
    said = datetime(2024, 6, 1, tzinfo=UTC)
    found_total = matched_found = expected_total = matched_expected = 0
    mistakes = []
    for i, item in enumerate(statements):
        memory = Memory(
            id=f"m{i}", user_id="u", tier=Tier.MTM, kind="turn", text=item["text"], timestamp=said
        )
        candidates = [
            c for c in abstractor.abstract([Evidence(memory, i, "user")])[0] if not c.general
        ]
        used: set[int] = set()
        for expect in item["expect"]:
            hit = next(
                (j for j, c in enumerate(candidates) if j not in used and _matches(c, expect)),
                None,
            )
            if hit is None:
                mistakes.append({"text": item["text"], "missed": expect})
            else:
                used.add(hit)
        extra = [c.text for j, c in enumerate(candidates) if j not in used]
        if extra:
            mistakes.append({"text": item["text"], "unexpected": extra})
        found_total += len(candidates)
        matched_found += len(used)
        expected_total += len(item["expect"])
        matched_expected += len(used)
    return {
        "statements": len(statements),
        "precision": round(matched_found / found_total, 4) if found_total else 1.0,
        "recall": round(matched_expected / expected_total, 4) if expected_total else 1.0,
        "mistakes": mistakes,
    }


def _records(mem: LightMem, user: str) -> list[Memory]:
    return [m for m in mem.memories(user, tiers=["ltm"])]


def _slot_matches(memory: Memory, expect: dict[str, Any]) -> bool:
    if "attribute" in expect:
        if memory.slot is None or not memory.slot.endswith("|" + expect["attribute"]):
            return False
        return _normal(expect["value"]) in _normal(memory.text)
    return expect["about"].casefold() in memory.text.casefold()


def sequences(cases: Sequence[dict[str, Any]], *, embedder: Any = None) -> dict[str, Any]:
    """Every sequence as its own user of one store, consolidated, then checked."""
    expected_superseded = found_superseded = right_superseded = 0
    merge_checks = merge_right = 0
    rank_checks = rank_right = 0
    current_checks = current_right = 0
    mistakes: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder, LightMem(Path(folder), embedder=embedder) as mem:
        for n, case in enumerate(cases):
            user = f"case-{n}"
            mem.add_many(
                user,
                [{"content": t["text"], "timestamp": t["at"], "turn_id": f"t{k}"}
                 for k, t in enumerate(case["turns"])],
            )  # fmt: skip
        mem.flush()
        mem.consolidate(now="2025-01-01")
        for n, case in enumerate(cases):
            user, name = f"case-{n}", case["name"]
            records = _records(mem, user)
            active = [m for m in records if m.status is Status.ACTIVE]
            superseded = [m for m in records if m.status is Status.SUPERSEDED]
            for expect in case["current"]:
                current_checks += 1
                if any(_slot_matches(m, expect) for m in active):
                    current_right += 1
                else:
                    mistakes.append({"case": name, "not current": expect})
            expected_superseded += len(case["superseded"])
            found_superseded += len(superseded)
            for expect in case["superseded"]:
                if any(_slot_matches(m, expect) for m in superseded):
                    right_superseded += 1
                else:
                    mistakes.append({"case": name, "not superseded": expect})
            for memory in superseded:
                if not any(_slot_matches(memory, e) for e in case["superseded"]):
                    mistakes.append({"case": name, "superseded by mistake": memory.text})
            for expect in case["merged"]:
                merge_checks += 1
                same = [m for m in active if _slot_matches(m, expect)]
                if len(same) == 1 and same[0].support >= expect["support"]:
                    merge_right += 1
                else:
                    mistakes.append(
                        {
                            "case": name,
                            "not merged": expect,
                            "records": [(m.text, m.support) for m in same],
                        }
                    )
            for expect in case["separate"]:
                merge_checks += 1
                same = [m for m in active if _slot_matches(m, expect)]
                if len(same) == expect["records"]:
                    merge_right += 1
                else:
                    mistakes.append(
                        {
                            "case": name,
                            "merged by mistake": expect,
                            "records": [m.text for m in same],
                        }
                    )
            for query in case["rank"]:
                rank_checks += 1
                texts = [h.text.casefold() for h in mem.search(user, query["query"], k=10)]
                where_current = next(
                    (i for i, t in enumerate(texts) if query["current"].casefold() in t), None
                )
                where_old = next(
                    (i for i, t in enumerate(texts) if query["over"].casefold() in t), None
                )
                if where_current is not None and (where_old is None or where_current < where_old):
                    rank_right += 1
                else:
                    mistakes.append(
                        {"case": name, "ranked below the old value": query, "hits": texts[:4]}
                    )
    return {
        "sequences": len(cases),
        "turns": sum(len(c["turns"]) for c in cases),
        "current": round(current_right / current_checks, 4) if current_checks else 1.0,
        "supersede_precision": round(right_superseded / found_superseded, 4)
        if found_superseded
        else 1.0,
        "supersede_recall": round(right_superseded / expected_superseded, 4)
        if expected_superseded
        else 1.0,
        "merge_accuracy": round(merge_right / merge_checks, 4) if merge_checks else 1.0,
        "current_above_superseded": f"{rank_right}/{rank_checks}",
        "rank_right": rank_right,
        "rank_checks": rank_checks,
        "mistakes": mistakes,
    }


def quality(path: Path = DEFAULT_CASES, *, embedder: Any = None) -> dict[str, Any]:
    cases = json.loads(path.read_text(encoding="utf-8"))
    return {
        "cases": str(path),
        "extraction": extraction(cases["statements"]),
        "consolidation": sequences(cases["sequences"], embedder=embedder),
    }
