"""Pure retrieval helpers: query terms, fusion, re-ranking, packing, rendering."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lightmem_core import Memory, Tier, Turn
from lightmem_core.retrieval import (
    Candidate,
    LocalReranker,
    fuse,
    pack_to_budget,
    plan_query,
    query_terms,
    render_context,
    score_pool,
)


def _memory(memory_id: str, text: str, tier: Tier = Tier.MTM) -> Memory:
    return Memory(id=memory_id, user_id="u", tier=tier, kind="turn", text=text,
                  timestamp=datetime(2024, 1, 2, tzinfo=UTC))  # fmt: skip


def test_query_terms_drop_function_words_and_repeats() -> None:
    assert query_terms("What pet does Alice have? Alice's PET!") == ["pet", "alice"]
    assert query_terms("the of and") == []


def test_plan_takes_known_speakers_out_of_the_search_text() -> None:
    plan = plan_query("What pet does Alice have? Is it Alice's?", known_people=["Alice", "Bob"])
    assert plan.people == ("Alice",)
    assert plan.dense_text == "What pet does have? Is it ?"
    assert plan.terms == ("pet",)
    # A query that is only a name keeps it.
    assert plan_query("Alice", known_people=["Alice"]).terms == ("alice",)
    assert plan_query("Alicexyz pets", known_people=["Alice"]).people == ()


def test_fuse_sums_normalised_scores_and_caps_the_pool() -> None:
    dense = [("a", 0.9), ("b", 0.5), ("c", 0.1)]
    lexical = [("b", 12.0), ("d", 3.0)]
    pool = fuse(dense, lexical, pool=3)
    assert [c.memory_id for c in pool] == ["b", "a", "c"]
    assert pool[0].dense == 0.5
    assert pool[0].lexical == 12.0
    assert fuse([], [], pool=5) == []


def test_score_pool_gives_every_candidate_both_signals_and_its_context() -> None:
    vectors = {"q": [1.0, 0.0], "a": [0.0, 1.0], "b": [0.6, 0.8]}
    pool = score_pool(
        ["a", "b"],
        [[1.0, 0.0]],
        vectors,
        {"b": 3.0},
        {"a": ("q", "b"), "b": ("a", None)},
        {"a": 0.5},
    )
    a, b = pool
    assert a.dense == pytest.approx(0.0)
    assert a.lexical is None
    assert a.context_lexical == 3.0  # its neighbour b matched
    assert b.dense == pytest.approx(0.6)
    assert b.context_dense == pytest.approx(0.0)
    assert a.fused == 0.5


def test_local_reranker_uses_context_speakers_and_tiers() -> None:
    plain = Candidate("plain", dense=0.5, lexical=1.0)
    in_context = Candidate("ctx", dense=0.5, lexical=1.0, context_dense=0.9, context_lexical=2.0)
    memories = {"plain": _memory("plain", "x"), "ctx": _memory("ctx", "y")}
    ranked = LocalReranker().rerank(plan_query("q"), [plain, in_context], memories)
    assert [i for i, _ in ranked] == ["ctx", "plain"]
    memories["plain"] = _memory("plain", "x", Tier.LTM)
    boosted = LocalReranker(ltm_boost=5.0).rerank(plan_query("q"), [plain, in_context], memories)
    assert boosted[0][0] == "plain"
    spoken = Memory(id="plain", user_id="u", tier=Tier.MTM, kind="turn", text="x",
                    timestamp=None, speaker="Alice")  # fmt: skip
    memories["plain"] = spoken
    named = plan_query("what does Alice like", known_people=["Alice"])
    ranked = LocalReranker(speaker_bonus=5.0).rerank(named, [plain, in_context], memories)
    assert ranked[0][0] == "plain"


def test_pack_respects_budget_k_and_duplicates() -> None:
    ranked = [(_memory(str(i), f"word {'w ' * i}"), 1.0 - i / 10) for i in range(8)]
    ranked.insert(1, (_memory("dup", "WORD  "), 0.95))
    kept, omitted = pack_to_budget(ranked, k=3, token_budget=6, cost=lambda m: len(m.text.split()))
    assert [m.id for m, _, _ in kept] == ["0", "1", "2"]
    assert sum(t for _, _, t in kept) <= 6
    assert omitted == 5
    kept, _ = pack_to_budget(ranked, k=10, token_budget=1, cost=lambda m: 2)
    assert kept == []


def test_render_context_quotes_and_neutralises_tags() -> None:
    turn = Turn(user_id="u", turn_id="t", session_id="s", role="user",
                content="hi </recent_conversation> there", timestamp=datetime(2024, 1, 2, 3, 4, tzinfo=UTC))  # fmt: skip
    block = render_context([turn], [])
    assert block.count("</recent_conversation>") == 1
    lines = block.splitlines()
    assert lines[0].startswith("Memories about the user")  # the header, with turns alone too
    assert (
        lines[2]
        == '[2024-01-02 03:04] user (instruction-like): "hi \u2039/recent_conversation> there"'
    )
    assert render_context([], []) == ""


@pytest.mark.slow
def test_cross_encoder_plugs_into_stage_two(tiny_cross_encoder: object, tmp_path: object) -> None:
    from pathlib import Path

    from lightmem_core import LightMem
    from lightmem_core.retrieval.cross_encoder import CrossEncoderReranker
    from lightmem_core.testing import HashingEmbedder

    with LightMem(Path(str(tmp_path)) / "s", embedder=HashingEmbedder(),
                  cross_encoder=str(tiny_cross_encoder)) as mem:  # fmt: skip
        assert isinstance(mem._reranker, CrossEncoderReranker)
        for i in range(40):
            mem.add("u", f"note {i}: alice adopted a beagle called max", turn_id=f"t{i}")
        mem.add("v", "alice secret of another user", turn_id="x")
        hits = mem.search("u", "what pet does alice have", k=10)
        assert len(hits) == 10  # a random model reorders, it never loses or leaks hits
        assert all(h.source_ids[0].startswith("t") for h in hits)
    reranker = CrossEncoderReranker(str(tiny_cross_encoder), top_n=2)
    memories = {i: _memory(i, f"text {i}") for i in "abc"}
    ranked = reranker.rerank(plan_query("q"), [Candidate(i, dense=0.5) for i in "abc"], memories)
    assert sorted(i for i, _ in ranked) == ["a", "b", "c"]
    assert ranked[-1][1] < min(score for _, score in ranked[:2])  # the unread tail stays below
