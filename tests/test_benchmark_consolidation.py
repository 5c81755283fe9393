"""The consolidation benchmark, end to end in quick mode (hashing embedder, no model)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from types import ModuleType

import pytest
from _benchmarks import load_benchmark

from lightmem_core._types import Memory, Tier
from lightmem_core.consolidation import LocalAbstractor
from lightmem_core.store import Evidence


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_benchmark("consolidation")


def test_seed_statements_are_distinct_deterministic_and_start_with_every_slot(
    bench: ModuleType,
) -> None:
    statements = bench.seed_statements(600, seed=3)
    assert statements == bench.seed_statements(600, seed=3)
    assert len({s.text for s in statements}) == 600
    slots = len(bench.SLOTS)
    assert all(s.slot is not None for s in statements[:slots])
    assert all(s.slot is None for s in statements[slots:])
    assert all(s.said_at < bench.BASE_NOW for s in statements)

    # Each one is knowledge to the real abstractor; the slot statements fill their slot.
    evidence = [
        Evidence(
            Memory(
                id=str(i),
                user_id="u",
                tier=Tier.MTM,
                kind="turn",
                text=s.text,
                timestamp=s.said_at,
                speaker=bench.SPEAKER,
            ),
            i,
            "user",
        )
        for i, s in enumerate(statements)
    ]
    found = LocalAbstractor(resolve_dates=False).abstract(evidence)
    assert all(len(candidates) == 1 for candidates in found)
    assert len({c[0].slot for c in found[:slots]}) == slots
    assert not any(c[0].slot for c in found[slots:])


def test_new_turns_follow_the_mix_and_are_never_seed_statements(bench: ModuleType) -> None:
    seeds = bench.seed_statements(300, seed=5)
    slot = bench.SLOTS[0]
    maker = bench.TurnMaker(
        random.Random(1),
        {s.text for s in seeds},
        repeatable=[seeds[-1].text],
        slot_values={slot: "Lisbon"},
    )
    turns, mix = maker.batch(100, bench.BASE_NOW, "session")
    assert mix == {"fresh": 65, "repeat": 15, "change": 10, "chatter": 10}
    texts = [t["content"] for t in turns]
    assert texts.count(seeds[-1].text) == 15
    seed_texts = {s.text for s in seeds}
    assert sum(text in seed_texts for text in texts) == 15  # only the repeats
    assert maker.slot_values[slot] != "Lisbon"  # the last change moved the user
    assert all(t["timestamp"] < bench.BASE_NOW for t in turns)
    fresh = [maker._fresh() for _ in range(300)]  # never said before, nor seeded
    assert len(set(fresh)) == len(fresh)
    assert not set(fresh) & (seed_texts | set(texts))


def test_sizes_must_grow(bench: ModuleType) -> None:
    with pytest.raises(SystemExit):
        bench.parse_args(["--sizes", "2000", "200"])
    options, progress = bench.parse_args(["--quick"])
    assert options.sizes == [200, 2000]
    assert (options.new, options.repeats, options.embedder) == (20, 1, "hashing")
    assert options.out == Path("benchmarks/results/consolidation_quick")
    assert progress


def test_quick_run_end_to_end(
    bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    code = bench.main(
        [
            "--quick",
            "--embedder",
            "hashing",
            "--out",
            str(out),
            "--workdir",
            str(tmp_path / "work"),
            "--no-progress",
        ]
    )
    assert code == 0
    for name in ("consolidation.json", "consolidation.md", "consolidation.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "consolidation.png").read_bytes().startswith(b"\x89PNG")

    saved = json.loads((out / "consolidation.json").read_text())
    assert saved["config"]["embedder"] == "hashing-256"
    assert [row["ltm_records"] for row in saved["sizes"]] == [200, 2000]
    for row in saved["sizes"]:
        [run] = row["runs"]
        assert run["ltm_before"] == row["ltm_records"]
        assert run["entries"] == 20
        assert run["seconds"] > 0
        assert 0 < row["s_per_100"]["min"] <= row["s_per_100"]["median"] <= row["s_per_100"]["max"]
        assert row["ms_per_entry_median"] > 0
        # Real work: fresh statements became records, repeats merged, changes superseded.
        assert row["counts"]["entries"] == 20
        assert row["counts"]["new"] > 0
        assert row["counts"]["merged"] > 0
        assert row["counts"]["superseded"] > 0
        assert row["ltm_after"] == row["ltm_records"] + row["counts"]["new"]
        assert row["vectors_in_index"] >= row["ltm_after"]
        assert set(row["stages_ms_per_entry_median"]) == set(bench.STAGE_GROUPS)
        # Small stores are looked up exactly in memory, large ones through Chroma.
        lookups = [k for k in row["calls_median"] if "chroma.query" in k or "ltm_vectors" in k]
        assert lookups
    flat = saved["flatness"]
    assert flat["ratio_max_min"] >= 1.0
    assert flat["met"] == (flat["ratio_max_min"] <= 2.0)

    table = (out / "consolidation.md").read_text()
    assert "| 2,000 |" in table
    assert "target ≤ 2x" in table
    printed = capsys.readouterr().out
    assert "Seconds per 100 new MTM entries consolidated" in printed
    assert "target ≤ 2x" in printed
