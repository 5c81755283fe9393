"""Consolidation: scenarios on real stores (SQLite files, embedded Chroma).

Merge, supersede with history, link, decay and archive, eviction, dry runs, idempotence,
re-activation, the scheduler, one run per user at a time, kill-and-resume, and LTM in
retrieval.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lightmem_core import ConsolidationInProgress, LightMem, Status, Tier
from lightmem_core.consolidation import (
    ConsolidationSettings,
    KnowledgeCandidate,
    LocalAbstractor,
    consolidate_user,
    drive,
)
from lightmem_core.consolidation.plan import Abstract, Apply, Commit, Embed, NewEvidence
from lightmem_core.consolidation.shared import SHARED_USER
from lightmem_core.store import ConsolidationChanges, Evidence
from lightmem_core.testing import HashingEmbedder
from lightmem_core.tracing import untraced

NOW = datetime(2024, 4, 1, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.slow)])
def mem(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """The scenarios that take ``mem`` run on both record stores: SQLite, and PostgreSQL on
    the suite's server (a fresh database each)."""
    records = request.getfixturevalue("postgres_db") if request.param == "postgres" else None
    with LightMem(tmp_path / "store", embedder=HashingEmbedder(), records=records) as store:
        store.records_url = records  # type: ignore[attr-defined]  # for a test that reopens
        yield store


def _ltm(mem: LightMem, user: str) -> list[dict[str, Any]]:
    return [m for m in mem.export(user)["memories"] if m["tier"] == "ltm"]


def _by_text(mem: LightMem, user: str) -> dict[str, dict[str, Any]]:
    return {m["text"]: m for m in _ltm(mem, user)}


def _alice_moves(mem: LightMem) -> None:
    mem.add("alice", "I live in Paris.", speaker="Alice", turn_id="t1",
            session_id="s1", timestamp="2023-01-02T10:00:00Z")  # fmt: skip
    mem.add("alice", "I love hiking in the mountains.", speaker="Alice", turn_id="t2",
            session_id="s1", timestamp="2023-01-03T10:00:00Z")  # fmt: skip
    mem.add("alice", "Actually I moved to Berlin last month.", speaker="Alice", turn_id="t3",
            session_id="s2", timestamp="2024-03-15T10:00:00Z")  # fmt: skip


# --- the abstractor -----------------------------------------------------------------------------


def _evidence(text: str, *, role: str | None = "user", speaker: str | None = "Alice") -> Evidence:
    from lightmem_core import Memory

    memory = Memory(
        id="m1",
        user_id="u",
        tier=Tier.MTM,
        kind="turn",
        text=text,
        timestamp=datetime(2023, 5, 8, 13, 56, tzinfo=UTC),
        speaker=speaker,
        source_ids=("t1",),
    )
    return Evidence(memory, 1, role)


@pytest.mark.parametrize(
    ("said", "text", "kind", "slot", "value"),
    [
        ("I live in Paris.", "Alice lives in Paris.", "fact", "alice|residence", "paris"),
        ("I moved to Berlin last month!", "Alice moved to Berlin (April 2023).", "event",
         "alice|residence", "berlin"),
        ("My favorite food is sushi.", "Alice's favorite food is sushi.", "preference",
         "alice|favourite food", "sushi"),
        ("My sister lives in Rome.", "Alice's sister lives in Rome.", "fact",
         "alice's sister|residence", "rome"),
        ("I love hiking with my dog.", "Alice loves hiking with Alice's dog.", "preference",
         None, None),
        ("We're going to Hawaii next summer.", "Alice and others are going to Hawaii next summer.",
         "plan", None, None),
        ("I went to a support group yesterday.", "Alice went to a support group (7 May 2023).",
         "event", None, None),
        ("I'm 32 years old.", "Alice is 32 years old.", "fact", "alice|age", "32"),
    ],
)  # fmt: skip
def test_local_abstractor_rewrites_first_person_statements(
    said: str, text: str, kind: str, slot: str | None, value: str | None
) -> None:
    [[candidate]] = LocalAbstractor().abstract([_evidence(said)])
    assert (candidate.text, candidate.kind, candidate.slot, candidate.slot_value) == (
        text,
        kind,
        slot,
        value,
    )


@pytest.mark.parametrize(
    "said",
    ["Do you like cats?", "I think that's great!", "Thanks, you too!", "ok", "Wow, what a day."],
)
def test_local_abstractor_leaves_questions_and_small_talk(said: str) -> None:
    assert LocalAbstractor().abstract([_evidence(said)]) == [[]]


def test_local_abstractor_ignores_the_assistant() -> None:
    said = "I live in Paris."
    assert LocalAbstractor().abstract([_evidence(said, role="assistant")]) == [[]]
    [[about_user]] = LocalAbstractor().abstract([_evidence(said, speaker=None)])
    assert about_user.text == "The user lives in Paris."


# --- the plan, driven with plain data (no store, no model) --------------------------------------


def test_plan_is_a_generator_of_requests_testable_without_stores() -> None:
    entry = _evidence("I live in Paris.")
    plan = consolidate_user(
        "u", watermark=0, since_last_run=False, now=NOW, settings=ConsolidationSettings()
    )
    applied: list[ConsolidationChanges] = []

    def answer(request: Any) -> Any:
        if isinstance(request, NewEvidence):
            return [entry] if request.after_seq == 0 else []
        if isinstance(request, Abstract):
            return [[KnowledgeCandidate("Alice lives in Paris.", "fact", "Alice", "residence",
                                        "Paris")]]  # fmt: skip
        if isinstance(request, Embed):
            return [[1.0, 0.0]]
        if isinstance(request, Apply):
            applied.append(request.changes)
            return None
        return [] if not isinstance(request, Commit) else None

    counts = drive(plan, answer)
    assert counts == Counter({"new": 1, "entries": 1})
    [insert] = [i for c in applied for i in c.inserts]
    assert insert.memory.text == "Alice lives in Paris."
    assert insert.memory.slot == "alice|residence"
    assert insert.slot_value == "paris"
    assert insert.memory.source_ids == ("t1",)
    assert [c.watermark for c in applied if c.watermark] == [1]


# --- scenarios on real stores ---------------------------------------------------------------------


def test_the_same_knowledge_again_merges(mem: LightMem) -> None:
    mem.add("u", "I love hiking in the mountains.", speaker="Alice", turn_id="t1")
    mem.add("u", "I love hiking in the mountains.", speaker="Alice", turn_id="t2")
    mem.add("u", "I live in Paris.", speaker="Alice", turn_id="t3")
    mem.add("u", "I live in Paris.", speaker="Alice", turn_id="t4")
    report = mem.consolidate("u", now=NOW)
    assert (report.entries, report.new, report.merged) == (4, 2, 2)
    records = _by_text(mem, "u")
    assert set(records) == {"Alice loves hiking in the mountains.", "Alice lives in Paris."}
    hiking = records["Alice loves hiking in the mountains."]
    assert hiking["support"] == 2
    assert hiking["source_ids"] == ["t1", "t2"]
    assert hiking["confidence"] == pytest.approx(0.75)  # 0.5 twice, combined


def test_a_contradiction_supersedes_and_keeps_history(mem: LightMem) -> None:
    _alice_moves(mem)
    report = mem.consolidate("alice", now=NOW)
    assert (report.new, report.superseded) == (3, 1)
    records = _by_text(mem, "alice")
    paris = records["Alice lives in Paris."]
    berlin = records["Alice moved to Berlin (February 2024)."]
    assert paris["status"] == "superseded"
    assert berlin["status"] == "active"
    assert paris["superseded_by"] == berlin["id"]
    assert paris["valid_to"] == berlin["valid_from"] == "2024-02-01T00:00:00+00:00"
    # Retrieval prefers the current fact; the history stays queryable.
    current = mem.search("alice", "Where does Alice live?", tiers=["ltm"])
    texts = [h.text for h in current]
    assert texts.index(berlin["text"]) < texts.index(paris["text"])
    [old] = [h for h in current if h.text == paris["text"]]
    assert old.status is Status.SUPERSEDED
    assert old.valid_to is not None
    before = mem.search("alice", "Where did Alice live before?", tiers=["ltm"])
    assert paris["text"] in [h.text for h in before[:2]]
    # The old turn itself is in the context, marked: the long-term record drawn from it
    # would repeat it, so it is not packed again.
    context = mem.get_context("alice", "Where did Alice live before Berlin?")
    assert '[2023-01-02, Alice, mtm, superseded] "I live in Paris."' in context
    assert '"Alice lives in Paris."' not in context


def test_older_evidence_of_a_changed_fact_is_filed_as_history(mem: LightMem) -> None:
    mem.add("u", "I moved to Berlin.", speaker="Alice", turn_id="t2", timestamp="2024-02-01")
    mem.consolidate("u", now=NOW)
    mem.add("u", "I live in Paris.", speaker="Alice", turn_id="t1", timestamp="2023-01-01")
    report = mem.consolidate("u", now=NOW)
    assert (report.new, report.superseded) == (1, 1)
    records = _by_text(mem, "u")
    assert records["Alice lives in Paris."]["status"] == "superseded"
    assert records["Alice moved to Berlin (mentioned 1 February 2024)."]["status"] == "active"


def test_related_knowledge_is_linked_and_links_are_followed(tmp_path: Path) -> None:
    with LightMem(tmp_path / "s", embedder=HashingEmbedder(), link_similarity=0.3) as mem:
        mem.add("u", "I adopted a beagle puppy named Max.", speaker="Ann", turn_id="t1")
        mem.add("u", "I walk my beagle puppy every morning.", speaker="Ann", turn_id="t2")
        report = mem.consolidate("u", now=NOW)
        assert report.linked >= 1
        records = _by_text(mem, "u")
        ids = [m["id"] for m in records.values()]
        links = mem._records.links("u", ids)
        assert links
        assert all(other in ids for linked in links.values() for other in linked)


def test_unsupported_knowledge_decays_to_archive_and_a_ttl_deletes_it(tmp_path: Path) -> None:
    with LightMem(tmp_path / "s", embedder=HashingEmbedder(), archive_ttl_days=30) as mem:
        mem.add("u", "I collect vintage stamps.", speaker="Ann", turn_id="t1")
        mem.add("u", "I collect vintage stamps.", speaker="Ann", turn_id="t2")
        mem.add("u", "I play the cello on weekends.", speaker="Ann", turn_id="t3")
        mem.consolidate("u", now=NOW)
        # confidence 0.5 reaches 0.2 after 1.32 half-lives (119 days); 0.75 after 1.91 (172).
        report = mem.consolidate("u", now=NOW + timedelta(days=130))
        assert report.archived == 1
        records = _by_text(mem, "u")
        assert records["Ann plays the cello on weekends."]["status"] == "archived"
        assert records["Ann collects vintage stamps."]["status"] == "active"
        # Archived: kept and exported, no longer retrieved.
        found = mem.search("u", "cello on weekends", tiers=["ltm"])
        assert "Ann plays the cello on weekends." not in [h.text for h in found]
        assert mem.stats("u")["ltm_archived"] == 1
        report = mem.consolidate("u", now=NOW + timedelta(days=175))
        assert (report.archived, report.deleted) == (1, 1)  # stamps fade; cello's TTL ends
        assert "Ann plays the cello on weekends." not in _by_text(mem, "u")


def test_knowledge_in_use_does_not_fade(mem: LightMem) -> None:
    mem.add("u", "I play the cello on weekends.", speaker="Ann", turn_id="t1")
    mem.consolidate("u", now=NOW)
    hits = mem.search("u", "cello weekends", tiers=["ltm"])
    assert hits
    mem.close()  # saves the access statistics
    records = mem.records_url  # type: ignore[attr-defined]
    with LightMem(mem.path, embedder=HashingEmbedder(), records=records) as reopened:
        # Retrieved after NOW (the wall clock is later): its decay starts over from then.
        later = datetime.now(UTC) + timedelta(days=100)
        assert reopened.consolidate("u", now=later).archived == 0
        assert reopened.consolidate("u", now=later + timedelta(days=200)).archived == 1


def test_reused_evidence_reactivates_its_knowledge(mem: LightMem) -> None:
    mem.add("u", "I play the cello on weekends.", speaker="Ann", turn_id="t1")
    mem.consolidate("u", now=NOW)
    assert mem.consolidate("u", now=NOW + timedelta(days=400)).archived == 1
    assert mem.search("u", "cello weekends", tiers=["mtm"])  # the turn is used again
    mem._indexer._apply_access()  # what the background thread does after a search
    report = mem.consolidate("u", now=NOW + timedelta(days=401))
    assert report.reactivated == 1
    assert _by_text(mem, "u")["Ann plays the cello on weekends."]["status"] == "active"


def test_mtm_eviction_respects_the_capacity(tmp_path: Path) -> None:
    with LightMem(tmp_path / "s", embedder=HashingEmbedder(), mtm_capacity=5) as mem:
        plants = ["roses", "tulips", "ferns", "cacti", "orchids", "lilies", "daisies", "mint"]
        for i, plant in enumerate(plants):
            mem.add("u", f"note about the {plant} in the garden", turn_id=f"t{i}")
        assert mem.search("u", "roses", k=1)[0].source_ids == ("t0",)  # used: evicted last
        mem._indexer._apply_access()
        report = mem.consolidate("u", now=NOW)
        assert report.evicted == 3
        left = {m["source_ids"][0] for m in mem.export("u")["memories"] if m["tier"] == "mtm"}
        assert len(left) == 5
        assert "t0" in left
        assert mem.stats("u")["turns"] == 8  # the turns themselves stay (provenance)
        assert mem.stats("u")["vectors"] == 5
        # Entries not consolidated yet are never evicted.
        for i in range(8, 12):
            mem.add("u", f"another note about the garden ({i})", turn_id=f"t{i}")
        assert mem.stats("u")["mtm"] == 9


def test_dry_run_writes_nothing_and_counts_what_a_run_does(mem: LightMem) -> None:
    _alice_moves(mem)
    mem.add("alice", "I live in Paris.", speaker="Alice", turn_id="t4", timestamp="2023-01-05")
    mem.flush()
    before = mem.export("alice") | {"exported_at": None}
    dry = mem.consolidate(dry_run=True, now=NOW)
    assert mem.export("alice") | {"exported_at": None} == before
    assert mem._records.consolidation_state("alice") == (0, None)
    real = mem.consolidate(now=NOW)
    assert dry.dry_run
    assert not real.dry_run
    fields = ("entries", "new", "merged", "superseded", "linked", "archived", "evicted")
    assert [getattr(dry, f) for f in fields] == [getattr(real, f) for f in fields]
    assert (real.merged, real.superseded) == (1, 1)


def test_a_second_run_with_nothing_new_changes_nothing(mem: LightMem) -> None:
    _alice_moves(mem)
    assert mem.consolidate(now=NOW).changed
    before = mem.export("alice") | {"exported_at": None}
    again = mem.consolidate(now=NOW)
    assert not again.changed
    assert mem.export("alice") | {"exported_at": None} == before


def test_only_new_entries_are_taken_in(mem: LightMem) -> None:
    _alice_moves(mem)
    assert mem.consolidation_backlog("alice") == 3
    assert mem.consolidate("alice", now=NOW).entries == 3
    mem.add("alice", "I adopted a cat.", speaker="Alice")
    assert mem.consolidation_backlog("alice") == 1
    assert mem.consolidate("alice", now=NOW).entries == 1


def test_async_consolidation_matches_sync(tmp_path: Path) -> None:
    results = []
    for name, run_async in (("sync", False), ("async", True)):
        with LightMem(tmp_path / name, embedder=HashingEmbedder()) as mem:
            _alice_moves(mem)
            report = (
                asyncio.run(mem.aconsolidate(now=NOW)) if run_async else mem.consolidate(now=NOW)
            )
            results.append((report.new, report.superseded, sorted(_by_text(mem, "alice"))))
    assert results[0] == results[1]


class _CountingAbstractor:
    """Stands in for a model-driven abstractor: the local one, plus a call counter, and an
    async face for ``aconsolidate``."""

    def __init__(self) -> None:
        self.model_calls = 0
        self._local = LocalAbstractor()

    def abstract(self, evidence: Any) -> Any:
        self.model_calls += 1
        return self._local.abstract(evidence)

    async def aabstract(self, evidence: Any) -> Any:
        self.model_calls += 1
        return self._local.abstract(evidence)


def test_the_report_counts_the_abstractors_model_calls(tmp_path: Path) -> None:
    abstractor = _CountingAbstractor()
    with LightMem(tmp_path / "s", embedder=HashingEmbedder(), abstractor=abstractor) as mem:
        _alice_moves(mem)
        assert mem.consolidate(now=NOW).model_calls == 1  # one batch
        assert mem.consolidate(now=NOW).model_calls == 0  # nothing new: no call
        mem.add("alice", "I adopted a cat.", speaker="Alice")
        assert asyncio.run(mem.aconsolidate(now=NOW)).model_calls == 1
    with LightMem(tmp_path / "local", embedder=HashingEmbedder()) as local:
        _alice_moves(local)
        assert local.consolidate(now=NOW).model_calls == 0  # the default calls no model


def test_two_runs_of_one_user_never_overlap(mem: LightMem) -> None:
    _alice_moves(mem)
    mem.add("bob", "I live in Rome.", speaker="Bob")
    lock = mem._consolidator.lock_of("alice")
    with lock:  # a run of alice in another thread
        with pytest.raises(ConsolidationInProgress):
            mem.consolidate("alice")
        report = mem.consolidate(now=NOW)  # every user: alice is skipped, bob is done
        assert report.skipped == ("alice",)
        assert report.users == 1
    assert mem.consolidate("alice", now=NOW).entries == 3


def test_a_live_process_lease_blocks_and_a_dead_one_does_not(mem: LightMem) -> None:
    import socket

    if type(untraced(mem._records)).__name__ == "PostgresRecordStore":
        pytest.skip("leases on a server run out instead (test_postgres_store.py)")

    _alice_moves(mem)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        host = socket.gethostname()
        until = datetime.now(UTC) + timedelta(minutes=5)
        alive = f"{host}:{sleeper.pid}:other"
        assert (
            mem._records.acquire_lease("alice", alive, until=until, holder_alive=lambda h: True)
            is None
        )
        with pytest.raises(ConsolidationInProgress, match="another process"):
            mem.consolidate("alice", now=NOW)
    finally:
        sleeper.kill()
        sleeper.wait()
    # The holder is gone (killed mid-run): its lease holds nothing.
    assert mem.consolidate("alice", now=NOW).entries == 3


def test_scheduler_consolidates_every_n_turns_in_the_background(tmp_path: Path) -> None:
    with LightMem(tmp_path / "s", embedder=HashingEmbedder(), consolidate_every=3) as mem:
        _alice_moves(mem)
        deadline = time.monotonic() + 30
        while mem.stats("alice")["ltm"] < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert mem.stats("alice")["ltm"] == 3
        assert mem.consolidation_backlog() == 0


def test_scheduler_consolidates_on_a_timer(tmp_path: Path) -> None:
    with LightMem(tmp_path / "s", embedder=HashingEmbedder(), consolidate_every="0.2s") as mem:
        _alice_moves(mem)
        mem.add("bob", "I live in Rome.", speaker="Bob")
        deadline = time.monotonic() + 30
        while mem.consolidation_backlog() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert mem.consolidation_backlog() == 0
        assert mem.stats("bob")["ltm"] == 1


def test_forget_erases_knowledge_links_and_progress(mem: LightMem) -> None:
    _alice_moves(mem)
    mem.consolidate(now=NOW)
    ids = [m["id"] for m in _ltm(mem, "alice")]
    assert mem._records.links("alice", ids)
    receipt = mem.forget("alice")
    assert receipt.memories["ltm"] == 3
    records = mem._records  # through the contract: every backend must forget the same
    assert records.links("alice", ids) == {}
    assert records.consolidation_state("alice") == (0, None)
    assert records.export_user("alice") == ([], [])
    assert records.get_memories("alice", ids) == {}


_WORKLOAD = textwrap.dedent(
    """
    import json, os, signal, sys
    from lightmem_core import LightMem
    from lightmem_core.testing import HashingEmbedder

    import threading, time

    path, kill_after, kill_at = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    mem = LightMem(path, embedder=HashingEmbedder(), link_similarity=0.4)
    if kill_at:  # a random moment: inside a commit, between the commit and the index...
        threading.Timer(kill_at, os.kill, (os.getpid(), signal.SIGKILL)).start()
    done = 0
    def progress(n):
        global done
        done += n
        if kill_after and done >= kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
    started = time.perf_counter()
    report = mem.consolidate("u", now="2024-06-01", progress=progress)
    print(json.dumps(report.to_dict() | {"wall": time.perf_counter() - started}))
    mem.close()
    os._exit(0)  # a pending timer must not fire after a finished run
    """
)
_TEMPLATES = [
    "I live in {city}.",
    "I love {hobby} on {day}s.",
    "I work at {company}.",
    "I moved to {city} last month.",
    "My favorite food is {food}.",
    "I adopted a {animal} named {pet}.",
    "I play the {instrument} with my neighbour.",
]
_WORDS = {
    "city": ["Paris", "Berlin", "Lisbon", "Kyoto", "Toronto", "Nairobi", "Oslo", "Lima"],
    "hobby": ["hiking", "painting", "chess", "swimming", "baking bread", "birdwatching"],
    "day": ["Monday", "Saturday", "Sunday", "Friday"],
    "company": ["Acme Corp", "Globex", "Initech", "Umbrella Health", "Stark Logistics"],
    "food": ["sushi", "ramen", "lasagne", "falafel", "pad thai", "pierogi", "tacos"],
    "animal": ["beagle", "tabby cat", "parrot", "rabbit", "greyhound"],
    "pet": ["Max", "Luna", "Biscuit", "Pepper", "Ziggy", "Olive"],
    "instrument": ["cello", "piano", "ukulele", "trumpet", "violin", "drums"],
}


def _saying(i: int) -> str:
    """Varied first-person statements, with repeats and changes of single-valued facts."""
    template = _TEMPLATES[i % len(_TEMPLATES)]
    return template.format(**{k: v[(i * 3 + len(k)) % len(v)] for k, v in _WORDS.items()})


def _final_ltm(path: Path) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], int]:
    """The user's long-term records, their links and the watermark, as the store has them."""
    with LightMem(path, embedder=HashingEmbedder()) as mem:
        records = mem._records
        _, memories = records.export_user("u")
        ltm = sorted((m for m in memories if m.tier is Tier.LTM), key=lambda m: m.id)
        rows = [
            (m.id, m.text, m.status.value, round(m.confidence, 9), m.support, m.valid_from,
             m.valid_to, m.superseded_by, m.last_supported, tuple(sorted(m.source_ids)))
            for m in ltm
        ]  # fmt: skip
        linked = records.links("u", [m.id for m in ltm])
        links = sorted({tuple(sorted((a, b))) for a, targets in linked.items() for b in targets})
        watermark = records.consolidation_state("u")[0]
    return rows, links, watermark


def _assert_same_ltm(got: Any, expected: Any, how: str) -> None:
    for part, name in ((0, "records"), (1, "links"), (2, "watermark")):
        if got[part] != expected[part]:
            extra = sorted(set(got[part]) - set(expected[part])) if part < 2 else got[part]
            missing = sorted(set(expected[part]) - set(got[part])) if part < 2 else expected[part]
            pytest.fail(f"{how}: {name} differ; extra {extra[:5]}; missing {missing[:5]}")


def _run_workload(
    path: Path, kill_after: int = 0, kill_at: float = 0.0
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _WORKLOAD, str(path), str(kill_after), str(kill_at)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )


def test_a_run_killed_at_any_point_resumes_to_the_same_ltm(tmp_path: Path) -> None:
    base = tmp_path / "base"
    with LightMem(base, embedder=HashingEmbedder()) as mem:
        mem.add_many(
            "u",
            [
                {"content": _saying(i), "speaker": "Ann", "turn_id": f"t{i}",
                 "timestamp": 1_700_000_000 + 86_400 * i}
                for i in range(70)
            ],
        )  # fmt: skip
        mem.flush()
    reference = tmp_path / "reference"
    shutil.copytree(base, reference)
    finished = _run_workload(reference)
    assert finished.returncode == 0, finished.stderr
    assert json.loads(finished.stdout)["entries"] == 70
    expected = _final_ltm(reference)
    assert expected[0]
    assert expected[1]
    # Killed inside the first batch (32 entries), on a batch edge, inside later batches.
    for kill_after in (1, 17, 32, 33, 50, 69):
        path = tmp_path / f"killed-{kill_after}"
        shutil.copytree(base, path)
        killed = _run_workload(path, kill_after)
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        resumed = _run_workload(path)
        assert resumed.returncode == 0, resumed.stderr
        _assert_same_ltm(_final_ltm(path), expected, f"killed after {kill_after} entries")
    # Killed at random moments of the run (seeded; the seed and moments are printed).
    seed = random.randrange(1_000_000)
    rng = random.Random(seed)
    wall = json.loads(finished.stdout)["wall"]
    for trial in range(4):
        kill_at = rng.uniform(0.05, 1.0) * wall
        print(f"random kill: seed {seed}, trial {trial}, at {kill_at:.3f} s of {wall:.3f} s")
        path = tmp_path / f"random-{trial}"
        shutil.copytree(base, path)
        _run_workload(path, kill_at=kill_at)  # killed, or done before the moment came
        resumed = _run_workload(path)
        assert resumed.returncode == 0, resumed.stderr
        _assert_same_ltm(_final_ltm(path), expected, f"seed {seed}, killed at {kill_at:.3f} s")


# --- opt-in shared knowledge ------------------------------------------------------------------------

_GENERAL = (
    "The city museum is closed on Mondays. The museum hotline is +1 555 123 4567 and the "
    "email is info@museum.org. Alice is the best painter in town. The best painter in town "
    "is Bob. My museum card number is 12345678."
)


def _shared_rows(mem: LightMem) -> list[tuple[Any, ...]]:
    """The shared knowledge (owned by no user): text, kind, metadata, how many sources."""
    _, memories = mem._records.export_user(SHARED_USER)
    return sorted(
        (m.text, m.kind, json.dumps(m.metadata, sort_keys=True, separators=(",", ":")),
         len(m.source_ids))
        for m in memories
    )  # fmt: skip


def test_nothing_is_shared_by_default(mem: LightMem) -> None:
    mem.add("ann", _GENERAL, speaker="Ann")
    report = mem.consolidate(now=NOW)
    assert report.shared == 0
    assert _shared_rows(mem) == []
    # General statements do not go into a user's LTM either; personal ones do.
    assert [m["text"] for m in _ltm(mem, "ann")] == ["Ann's museum card number is 12345678."]


def test_shared_knowledge_is_opt_in_and_de_identified(tmp_path: Path) -> None:
    with LightMem(tmp_path / "s", embedder=HashingEmbedder(), share_knowledge=True) as mem:
        mem.add("ann", _GENERAL, speaker="Ann", turn_id="t1")
        mem.add("bob", "I like museums.", speaker="Bob")
        report = mem.consolidate(now=NOW)
        assert report.shared == 2
        # Contact details scrubbed; anything naming someone, or personal, stays home; no
        # provenance, no metadata: nothing points back to ann.
        assert _shared_rows(mem) == [
            ("The city museum is closed on Mondays.", "shared", "{}", 0),
            ("The museum hotline is [phone] and the email is [email].", "shared", "{}", 0),
        ]

        def shared_hits(user: str) -> list[Any]:
            return [h for h in mem.search(user, "When is the museum closed?") if h.kind == "shared"]

        # What one user alone said reaches nobody else.
        assert shared_hits("bob") == []
        # The same statement from a second user: one record, now readable by everyone.
        mem.add("cy", "The city museum is closed on Mondays.", speaker="Cy")
        assert mem.consolidate("cy", now=NOW).shared == 1
        assert len(_shared_rows(mem)) == 2
        hits = shared_hits("bob")
        assert [h.text for h in hits] == ["The city museum is closed on Mondays."]
        assert all(h.source_ids == () for h in hits)
        assert SHARED_USER not in mem.users()
        # Forgetting a contributor withdraws their part: the record cy also stated stays
        # (and is again below the bar), the one only ann stated goes.
        receipt = mem.forget("ann")
        assert receipt.shared == 1
        assert [row[0] for row in _shared_rows(mem)] == ["The city museum is closed on Mondays."]
        assert shared_hits("bob") == []
        assert mem.forget("cy").shared == 1
        assert _shared_rows(mem) == []
        mem.add("dee", _GENERAL, speaker="Dee")
        mem.consolidate("dee", now=NOW)
        assert mem.clear_shared_knowledge().memories["ltm"] == 2
        assert _shared_rows(mem) == []
    with LightMem(tmp_path / "s", embedder=HashingEmbedder()) as private:
        mem_hits = private.search("bob", "When is the museum closed?")
        assert all(h.kind != "shared" for h in mem_hits)


def test_one_user_is_enough_when_so_configured(tmp_path: Path) -> None:
    with LightMem(
        tmp_path / "s", embedder=HashingEmbedder(), share_knowledge=True, share_min_contributors=1
    ) as mem:
        mem.add("ann", "The city museum is closed on Mondays.", speaker="Ann")
        mem.consolidate(now=NOW)
        hits = mem.search("bob", "When is the museum closed?")
        assert [h.text for h in hits if h.kind == "shared"] == [
            "The city museum is closed on Mondays."
        ]


@pytest.mark.parametrize(
    ("sentence", "shared"),
    [
        ("The bakery opens at seven on Sundays.", "The bakery opens at seven on Sundays."),
        ("The support line is 020 7946 0958.", "The support line is [phone]."),
        (
            "A ticket costs 12 euros at www.example.com/tickets.",
            "A ticket costs 12 euros at [link].",
        ),
        ("The Louvre is closed on Tuesdays.", None),  # could be a name: not shared
        ("The doctor said he is fine.", None),
        ("Its entrance is on the left.", None),
    ],
)
def test_only_general_statements_without_names_are_shared(
    sentence: str, shared: str | None
) -> None:
    from lightmem_core.consolidation.shared import deidentify, is_general

    result = deidentify(sentence, names=["Ann"]) if is_general(sentence) else None
    assert result == shared
