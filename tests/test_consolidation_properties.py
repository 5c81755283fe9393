"""A stateful property test: any interleaving of add, remember, consolidate, search,
export and forget keeps the store's invariants, checked after every step against the
SQLite file and a model of what each user added:

- every memory is in exactly one tier and belongs to exactly one user;
- no link joins two users, and a superseded record points at a record of its own user;
- provenance always points at real turns of the record's user;
- each user's turns are exactly the ones the model holds; searches and exports return only
  their own (every turn carries a marker word unique to its user and step);
- after ``forget``, none of the user's markers is anywhere: not in SQLite (the full-text
  index and its shadow tables included, after a checkpoint), not in Chroma's files, not in
  the engine's caches.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from lightmem_core import LightMem, Memory, Tier, Turn
from lightmem_core.testing import HashingEmbedder

USERS = ("ann", "bob", "cy")
SAYINGS = (
    "I live in Paris.",
    "I moved to Berlin last month.",
    "I live in Rome.",
    "I love hiking in the mountains.",
    "I love hiking in the mountains.",
    "My favorite food is sushi.",
    "My favorite food is ramen.",
    "I adopted a beagle named Max.",
    "I work at Acme Corp.",
    "Do you like cats?",
    "The weather is nice today.",
)


class ConsolidationMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="lightmem-props-"))
        self.mem = LightMem(
            self.folder / "store", embedder=HashingEmbedder(), link_similarity=0.3, mtm_capacity=6
        )
        self.turns: dict[str, set[str]] = {u: set() for u in USERS}
        self.markers: dict[str, set[str]] = {u: set() for u in USERS}
        self.clock = datetime(2024, 1, 1, tzinfo=UTC)
        self.serial = 0

    def teardown(self) -> None:
        self.mem.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    # --- steps ------------------------------------------------------------------------------

    @rule(user=st.sampled_from(USERS), saying=st.sampled_from(SAYINGS))
    def add(self, user: str, saying: str) -> None:
        self.serial += 1
        self.clock += timedelta(days=3)
        turn_id = f"{user}-{self.serial}"
        marker = f"qz{user}{self.serial}x"  # one word, unique to this user and step
        self.mem.add(
            user,
            f"{saying} Note {marker}.",
            speaker=user.title(),
            turn_id=turn_id,
            timestamp=self.clock,
        )
        self.turns[user].add(turn_id)
        self.markers[user].add(marker)

    @precondition(lambda self: any(self.turns.values()))
    @rule(user=st.sampled_from(USERS), data=st.data())
    def remember(self, user: str, data: st.DataObject) -> None:
        own = sorted(self.turns[user])
        sources = data.draw(st.lists(st.sampled_from(own), max_size=2)) if own else []
        self.mem.remember(user, f"{user.title()} likes tea.", source_ids=sources)

    @rule(user=st.none() | st.sampled_from(USERS), days=st.integers(0, 400))
    def consolidate(self, user: str | None, days: int) -> None:
        self.mem.consolidate(user, now=self.clock + timedelta(days=days))

    @rule(user=st.sampled_from(USERS), saying=st.sampled_from(SAYINGS))
    def search(self, user: str, saying: str) -> None:
        for hit in self.mem.search(user, saying):
            assert set(hit.source_ids) <= self.turns[user]
            assert set(_MARKER.findall(hit.text)) <= self.markers[user]

    @rule(user=st.sampled_from(USERS))
    def export(self, user: str) -> None:
        data = self.mem.export(user)
        assert {t["turn_id"] for t in data["turns"]} == self.turns[user]
        assert all(m["user_id"] == user for m in data["memories"])
        said = " ".join(
            [*(t["content"] for t in data["turns"]), *(m["text"] for m in data["memories"])]
        )
        assert set(_MARKER.findall(said)) <= self.markers[user]

    @rule(user=st.sampled_from(USERS))
    def forget(self, user: str) -> None:
        self.mem.forget(user)
        gone = self.markers[user]
        self.turns[user] = set()
        self.markers[user] = set()
        if gone:
            self._found_nowhere(user, gone)

    def _found_nowhere(self, user: str, markers: set[str]) -> None:
        for anyone in USERS:  # not in any user's lexical index, nor in their records
            for marker in markers:
                assert self.mem._records.lexical_search(anyone, [marker], limit=1) == [], marker
        pattern = re.compile("|".join(sorted(markers)).encode())
        for file in (self.folder / "store").rglob("*"):
            if file.is_file():
                assert pattern.search(file.read_bytes()) is None, file
        assert user not in self.mem._searcher.cached_users()

    # --- invariants, through the record store's contract ----------------------------------------

    def _held(self) -> dict[str, tuple[list[Turn], list[Memory]]]:
        return {user: self.mem._records.export_user(user) for user in USERS}

    @invariant()
    def one_tier_one_user(self) -> None:
        ids = [m.id for _, memories in self._held().values() for m in memories]
        assert len(ids) == len(set(ids))
        assert all(
            m.user_id == user and m.tier in (Tier.MTM, Tier.LTM)
            for user, (_, memories) in self._held().items()
            for m in memories
        )

    @invariant()
    def links_stay_inside_a_user(self) -> None:
        for user, (_, memories) in self._held().items():
            own = {m.id for m in memories}
            linked = self.mem._records.links(user, sorted(own))
            assert all(target in own for targets in linked.values() for target in targets)
            successors = {m.superseded_by for m in memories if m.superseded_by}
            assert successors <= own

    @invariant()
    def provenance_points_at_real_turns(self) -> None:
        for turns, memories in self._held().values():
            said = {t.turn_id for t in turns}
            assert all(set(m.source_ids) <= said for m in memories)

    @invariant()
    def turns_match_the_model(self) -> None:
        for user, (turns, _) in self._held().items():
            assert {t.turn_id for t in turns} == self.turns[user]
        assert self.mem.consolidation_backlog() >= 0


_MARKER = re.compile(r"qz[a-z]+\d+x")

TestConsolidationProperties = ConsolidationMachine.TestCase
TestConsolidationProperties.settings = settings(
    max_examples=60,
    stateful_step_count=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
