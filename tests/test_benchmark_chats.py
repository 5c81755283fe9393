"""The chat-file format of the retrieval benchmark (``benchmarks/_corpus.py``), on the
realistic conversations in ``tests/data/chats``: handles for speaker labels, nicknames, short
messages, app sessions that span days, captions and replies."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest
from _benchmarks import load_benchmark

from lightmem_core.testing import HashingEmbedder

CHATS = Path(__file__).parent / "data" / "chats"


@pytest.fixture(scope="module")
def locomo() -> ModuleType:
    return load_benchmark("locomo")


def test_a_folder_of_chat_files_loads_as_one_user_per_chat(locomo: ModuleType) -> None:
    conversations, stats = locomo.load_corpus(CHATS)
    assert [c.sample_id for c in conversations] == ["dani-sam", "team_standup"]  # id, or stem
    chat = conversations[0]
    by_id = {t.turn_id: t for t in chat.turns}
    # A photo arrives as its caption, with or without words of its own.
    assert by_id["m25"].text == "[shares a photo: a green road bike leaning against a brick wall]"
    assert by_id["m05"].text.startswith("meet Biscuit [shares a photo: a small brown beagle")
    assert by_id["m02"].reply_to == "m01"
    assert by_id["m16"].date == "2026-03-09T18:20:00+00:00"  # each message keeps its own time
    # The app's session groups three days; without one, a calendar day is the session.
    assert [s.session_id for s in chat.sessions][:3] == ["week-1", "2026-03-09", "2026-03-11"]
    assert len(chat.sessions[0].turns) == 15
    assert chat.now == datetime(2026, 3, 23, 11, 3, tzinfo=UTC)
    categories = {q.question: q.category for q in chat.questions}
    assert categories["When did Sam start the new job?"] == 2
    assert categories["Why did Sam buy a bike?"] == 1
    assert stats.questions_skipped_no_evidence == 1  # the adversarial one has nothing to find
    assert conversations[1].questions[0].category == 4  # a LoCoMo number works too


@pytest.mark.parametrize(
    ("chat", "error"),
    [
        ({"messages": []}, "non-empty list"),
        ({"messages": [{"id": "a", "speaker": "x", "text": "hi"}]}, "missing time"),
        (
            {"messages": [{"id": "a", "speaker": "x", "time": "soonish", "text": "hi"}]},
            "unreadable time",
        ),
        (
            {
                "messages": [{"id": "a", "speaker": "x", "time": "2026-01-01", "text": "hi"}],
                "questions": [{"question": "q?", "evidence": ["a"], "category": "tricky"}],
            },
            "category must be",
        ),
    ],
)
def test_a_bad_chat_file_is_refused_with_where(
    locomo: ModuleType, tmp_path: Path, chat: dict[str, object], error: str
) -> None:
    (tmp_path / "broken.json").write_text(json.dumps(chat))
    with pytest.raises(ValueError, match=error) as caught:
        locomo.load_corpus(tmp_path)
    assert "broken.json" in str(caught.value)


def test_an_empty_folder_is_refused(locomo: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no \*\.json chat files"):
        locomo.load_corpus(tmp_path)


def test_the_benchmark_scores_a_folder_of_chats(locomo: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "report"
    saved = locomo.run_benchmark(
        CHATS,
        out,
        variants=["lightmem"],
        baselines=["bm25"],
        embedder=HashingEmbedder(),
        show_progress=False,
        workdir=tmp_path,
    )
    assert saved["counts"]["questions_scored"] == 17
    assert saved["counts"]["turns"] == 56
    folds = saved["generalisation"]["leave_one_out"]["folds"]
    assert {f["held_out"] for f in folds} == {"dani-sam", "team_standup"}
    assert (out / "locomo.md").read_text().count("| lightmem |") >= 1
