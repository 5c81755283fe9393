"""The multi-machine simulation (``benchmarks/scale_out.py``), small: three app servers with
empty folders of their own, one PostgreSQL, one Chroma server, a consolidation worker in a
fourth process, and one app server SIGKILLed mid-write and started again on a new folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from _benchmarks import load_benchmark

pytestmark = pytest.mark.slow


def test_nothing_acknowledged_is_lost_and_no_user_sees_another(
    postgres_db: str, chroma_server: str, tmp_path: Path
) -> None:
    scale_out = load_benchmark("scale_out")
    results = scale_out.run_scale_out(
        apps=3,
        users=6,
        turns=16,
        kill_after=10,
        records=postgres_db,
        chroma=chroma_server,
        workdir=tmp_path,
        timeout_s=300,
    )
    assert results["killed_after_acks"] is not None  # the kill happened mid-run
    assert results["acknowledged"] == results["expected_turns"] == 6 * 16
    failed = [name for name, held in results["checks"].items() if not held]
    assert not failed, {k: results[k] for k in ("lost", "duplicate_entries", "search_leaks")}
    assert results["consolidation"]["runs"] >= 1
