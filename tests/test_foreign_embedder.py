"""A store whose embedder is not at hand (a custom function the app used) can still be
erased, exported and counted: only the calls that need the embedder say so."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lightmem_core import ConfigurationError, LightMem


def app_embedder(texts: list[str]) -> list[list[float]]:
    """The app's own embedder: 8 dimensions (the CLI and a fresh LightMem do not have it)."""
    return [[float((hash(word) % 7) + 1) for word in (t.split() + ["pad"] * 8)[:8]] for t in texts]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    with LightMem(path, embedder=app_embedder) as mem:
        mem.add("alice", "Alice keeps bees.", turn_id="t1")
        mem.remember("alice", "Alice is allergic to peanuts.")
        mem.add("bob", "Bob keeps goats.", turn_id="t1")
        mem.flush()
    return path


def test_erasure_export_and_stats_need_no_embedder(store: Path) -> None:
    with LightMem(store) as mem:  # the default embedder: not what built this index
        assert mem.stats("alice")["turns"] == 1
        assert mem.stats()["users"] == 2
        assert [t["content"] for t in mem.export("alice")["turns"]] == ["Alice keeps bees."]
        receipt = mem.forget("alice")
        assert receipt.turns == 1
        assert receipt.vectors == 2
        assert mem.users() == ["bob"]
        for needs_embedder in (
            lambda: mem.search("bob", "goats"),
            lambda: mem.add("bob", "more"),
            lambda: mem.get_context("bob", "goats"),
            lambda: mem.consolidate("bob"),
        ):
            with pytest.raises(ConfigurationError, match="Erasure, export and stats work"):
                needs_embedder()
    with LightMem(store, embedder=app_embedder) as mem:  # the app's own embedder still works
        assert [h.text for h in mem.search("bob", "goats")] == ["Bob keeps goats."]


def test_the_cli_forgets_exports_and_counts_such_a_store(store: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "lightmem_core.cli", "--path", str(store), *args],
            capture_output=True,
            text=True,
            timeout=120,
        )

    stats = cli("stats", "--json")
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["users"] == 2
    exported = cli("export", "alice")
    assert exported.returncode == 0, exported.stderr
    assert "Alice keeps bees." in exported.stdout
    forgot = cli("forget", "alice", "--yes")
    assert forgot.returncode == 0, forgot.stderr
    after = json.loads(cli("stats", "--json").stdout)
    assert after["users"] == 1
    assert (
        after["index_embedder"] == "callable:app_embedder"
    )  # what built the vectors, for the operator
