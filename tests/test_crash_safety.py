"""Crash safety: a writer process killed with SIGKILL at random moments loses nothing it
acknowledged, duplicates nothing, and the vector index catches up on the next open.

Each trial starts a process that writes turns (``add``, ``add_many`` and ``remember``) and
prints each id once the call has returned; the test kills it at a random moment (the seed
is printed: rerun a failure with ``LIGHTMEM_CRASH_SEED``). Consolidation killed mid-run is
covered in ``test_consolidation.py`` (kill and resume to the same result).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lightmem_core import LightMem
from lightmem_core.testing import HashingEmbedder

TRIALS = 20

WRITER = textwrap.dedent(
    """
    import sys
    from lightmem_core import LightMem
    from lightmem_core.testing import HashingEmbedder

    mem = LightMem(sys.argv[1], embedder=HashingEmbedder())
    print("open", flush=True)
    i = int(sys.argv[2])  # each trial numbers its turns apart
    while True:
        if i % 7 == 3:
            ids = [f"t{i}", f"t{i}b", f"t{i}c"]
            mem.add_many("u", [{"content": f"batch note {n}", "turn_id": n} for n in ids])
        elif i % 11 == 5:
            memory = mem.remember("u", f"pinned fact {i}")
            ids = [f"ltm:{memory.id}"]
        else:
            ids = [mem.add("u", f"note {i} about sailing", turn_id=f"t{i}").turn_id]
        print(" ".join(ids), flush=True)
        i += 1
    """
)


def _trial(path: Path, rng: random.Random, first: int) -> list[str]:
    """Run the writer, kill it at a random moment; the ids it acknowledged."""
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(first)],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "open"
    time.sleep(rng.uniform(0.0, 0.6))
    process.send_signal(signal.SIGKILL)
    acknowledged = process.stdout.read().split()
    process.wait()
    assert process.stderr is not None
    errors = process.stderr.read()
    assert process.returncode == -signal.SIGKILL, errors  # it was writing when killed
    return acknowledged


@pytest.mark.slow
def test_sigkill_never_loses_or_duplicates_an_acknowledged_write(tmp_path: Path) -> None:
    seed = int(os.environ.get("LIGHTMEM_CRASH_SEED", random.randrange(2**32)))
    print(f"crash-safety seed {seed}")
    rng = random.Random(seed)
    acknowledged: list[str] = []
    path = tmp_path / "store"
    for trial in range(TRIALS):
        # Every trial writes on after the previous crashes: a store killed many times over.
        found = _trial(path, rng, first=trial * 100_000)
        acknowledged += found
        with LightMem(path, embedder=HashingEmbedder()) as mem:
            data = mem.export("u")
            turns = [t["turn_id"] for t in data["turns"]]
            memories = data["memories"]
            assert len(turns) == len(set(turns)), f"trial {trial}: a turn stored twice"
            missing = [a for a in acknowledged if not a.startswith("ltm:") and a not in turns]
            assert missing == [], f"trial {trial} (seed {seed}): acknowledged turns lost"
            ltm = {m["id"] for m in memories if m["tier"] == "ltm"}
            pinned = [a.removeprefix("ltm:") for a in acknowledged if a.startswith("ltm:")]
            assert set(pinned) <= ltm, f"trial {trial} (seed {seed}): pinned knowledge lost"
            # One MTM entry per turn: none lost, none written twice.
            sources = sorted(s for m in memories if m["tier"] == "mtm" for s in m["source_ids"])
            assert sources == sorted(turns), f"trial {trial}: entries do not match turns"
            # The vector index catches up with the record store.
            mem.flush()
            stats = mem.stats("u")
            assert stats["pending_index"] == 0
            assert stats["vectors"] == stats["mtm"] + stats["ltm"]
    print(f"{TRIALS} kills, {len(acknowledged)} acknowledged writes, none lost or doubled")
    assert len(acknowledged) > TRIALS  # the writers got somewhere before each kill
