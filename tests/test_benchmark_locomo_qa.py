"""The LoCoMo QA benchmark: LoCoMo's scoring rules, the prompts, and a run end to end on a
tiny LoCoMo-format file with the offline fake answerer (no model)."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from _benchmarks import load_benchmark
from _locomo_sample import SAMPLE as BASE_SAMPLE

from lightmem_core import LightMem
from lightmem_core.slm.base import TextGenerator
from lightmem_core.testing import HashingEmbedder


@pytest.fixture(scope="module")
def qa() -> ModuleType:
    return load_benchmark("locomo_qa")


# The retrieval tests' sample, with an open-domain question (its answer cut at ";").
SAMPLE: dict[str, Any] = {
    **BASE_SAMPLE,
    "qa": [
        *BASE_SAMPLE["qa"][:3],
        {
            "question": "What instrument is Ben learning?",
            "answer": "violin; maybe the guitar later",
            "evidence": ["D2:2"],
            "category": 3,
        },
        *BASE_SAMPLE["qa"][3:],
    ],
}

# What the fake answerer replies with the whole conversation in view (the line sharing most
# content words with the question; its content words the question lacks, at most five),
# and LoCoMo's score of that reply, worked out by hand.
EXPECTED_FULL_CONTEXT: dict[str, tuple[str, float]] = {
    # "finally bought zyntrax studio" vs "zyntrax": P 1/4, R 1.
    "Which xylophone brand got purchased?": ("finally bought Zyntrax studio", 0.4),
    # multi-hop, one answer part: "great went river cousin" vs "on river": P 1/4, R 1/2.
    "Where did Ben go kayaking?": ("Great went river cousin", 1 / 3),
    # stems move/new/apart/last/week vs week/befor/20/may/2023: one in common of five each.
    "When did Ann's sister move?": ("moved new apartment last week", 0.2),
    # open-domain: the answer is cut at ";" -> "violin": P 1/3, R 1.
    "What instrument is Ben learning?": ("Nice started violin", 0.5),
    # adversarial: no "not mentioned" in the reply (LoCoMo lowercases a reply it keeps).
    "Who teaches Ann the violin?": ("lessons going", 0.0),
}


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny_locomo.json"
    path.write_text(json.dumps([SAMPLE]))
    return path


# --- LoCoMo's scoring (task_eval/evaluation.py) ------------------------------------------------


def test_normalize_answer_follows_locomo(qa: ModuleType) -> None:
    assert qa.normalize_answer("The cat, and a Dog!") == "cat dog"
    assert qa.normalize_answer("  An apple-pie;  THE end. ") == "applepie end"
    assert qa.normalize_answer("7 May, 2023") == "7 may 2023"
    assert qa.normalize_answer("andrew theatre") == "andrew theatre"  # whole words only
    assert qa.answer_tokens("running dogs, the studies") == ["run", "dog", "studi"]


def test_f1_score_by_hand(qa: ModuleType) -> None:
    assert qa.f1_score("running dogs", "the dog runs") == 1.0  # stems match
    assert qa.f1_score("a red kayak", "red boat") == 0.5
    assert qa.f1_score("finally bought Zyntrax studio", "Zyntrax") == pytest.approx(0.4)
    assert qa.f1_score("dog dog cat", "dog") == pytest.approx(0.5)  # P 1/3, R 1
    assert qa.f1_score("", "anything") == 0.0
    assert qa.f1_score("the", "a") == 0.0  # nothing left after normalisation


def test_multi_hop_f1_splits_on_commas(qa: ModuleType) -> None:
    # Answer parts: London (best 1.0 against "London"), Rome (0): mean 0.5.
    assert qa.f1_multi("Paris, London", "London, Rome") == 0.5
    assert qa.score_answer("Paris, London", "London, Rome", 1) == 0.5
    # Plain F1 on the same strings (commas dropped): 1 token in common of 2 and 2.
    assert qa.score_answer("Paris, London", "London, Rome", 4) == 0.5
    assert qa.score_answer("pottery, painting", "painting, pottery", 1) == 1.0


def test_category_rules(qa: ModuleType) -> None:
    # Open-domain: the answer up to its first ";".
    assert qa.score_answer("psychology", "Psychology; counseling certification", 3) == 1.0
    assert qa.score_answer("counseling", "Psychology; counseling certification", 3) == 0.0
    assert qa.score_answer("2022", "2022", 2) == 1.0
    # Adversarial: 1 for "not mentioned" / "no information available", case-insensitive.
    assert qa.score_answer("Not mentioned in the conversation", "a teacher", 5) == 1.0
    assert qa.score_answer("No information available.", "a teacher", 5) == 1.0
    assert qa.score_answer("a patient teacher", "a patient teacher", 5) == 0.0
    with pytest.raises(ValueError, match="category 7"):
        qa.score_answer("x", "x", 7)


def test_category_5_options_and_replies(qa: ModuleType, data_file: Path) -> None:
    [conversation], _ = qa.load_corpus(data_file)
    by_category = {q.category: q for q in conversation.questions}
    adversarial = by_category[5]
    assert adversarial.answer == "a patient teacher"  # from "adversarial_answer"
    asked = qa.ask(adversarial, seed=0)
    assert asked.template == qa.QA_PROMPT_CAT_5
    assert sorted(asked.options.values()) == sorted([qa.NOT_MENTIONED, "a patient teacher"])
    assert asked.text == (
        f"Who teaches Ann the violin? Select the correct answer: (a) {asked.options['a']} "
        f"(b) {asked.options['b']}. "
    )
    assert qa.ask(adversarial, seed=0) == asked  # the same order for every system
    orders = {qa.ask(adversarial, seed=s).options["a"] for s in range(20)}
    assert orders == {qa.NOT_MENTIONED, "a patient teacher"}
    options = {"a": qa.NOT_MENTIONED, "b": "a patient teacher"}
    assert qa.cat_5_answer("a", options) == qa.NOT_MENTIONED
    assert qa.cat_5_answer(" (b) ", options) == "a patient teacher"
    assert qa.cat_5_answer("B", options) == "a patient teacher"
    assert qa.cat_5_answer("Not Mentioned.", options) == "not mentioned."

    temporal = qa.ask(by_category[2], seed=0)
    assert temporal.text == "When did Ann's sister move? " + qa.TEMPORAL_SUFFIX.strip()
    assert temporal.options is None
    prompt = qa.build_prompt("CONTEXT", qa.ask(by_category[4], seed=0))
    assert prompt == (
        "CONTEXT\n\n\nBased on the above context, write an answer in the form of a short "
        "phrase for the following question. Answer with exact words from the context whenever "
        "possible.\n\nQuestion: Which xylophone brand got purchased? Short answer:\n"
    )


# --- contexts ------------------------------------------------------------------------------------


def test_full_context_is_locomos_and_drops_the_oldest_turns(
    qa: ModuleType, data_file: Path
) -> None:
    [conversation], _ = qa.load_corpus(data_file)
    whole = qa.full_context(conversation, 16000)
    assert whole.turns_dropped == 0
    assert whole.text.startswith("Below is a conversation between two people: Ann and Ben.")
    assert "DATE: 1:56 pm on 8 May, 2023\nCONVERSATION:\nAnn said, " in whole.text
    assert 'Ben said, "Slowly, but my teacher is patient."' in whole.text
    assert whole.text.index("DATE: 1:56 pm") < whole.text.index("DATE: 10:00 am")
    assert whole.tokens == qa.approx_token_count(whole.text)

    start = qa.approx_token_count(qa.CONV_START_PROMPT.format("Ann", "Ben"))
    header = qa.approx_token_count("DATE: 10:00 am on 20 May, 2023\nCONVERSATION:\n")
    last_two = [t for t in conversation.turns if t.turn_id in ("D2:3", "D2:4")]
    room = start + header + sum(qa.approx_token_count(qa.said(t)) for t in last_two)
    cut = qa.full_context(conversation, room)
    assert cut.turns_dropped == 6
    assert cut.tokens == room
    assert "8 May" not in cut.text
    assert cut.text.endswith(
        'Ann said, "How are the violin lessons going?"\n'
        'Ben said, "Slowly, but my teacher is patient."'
    )


def test_pack_turns_keeps_the_longest_prefix_within_budget(qa: ModuleType, data_file: Path) -> None:
    [conversation], _ = qa.load_corpus(data_file)
    turns = conversation.turns
    first = f"{turns[0].date}: {qa.said(turns[0])}"
    assert qa.pack_turns(turns, qa.approx_token_count(first)) == (
        first,
        qa.approx_token_count(first),
    )
    assert qa.pack_turns(turns, qa.approx_token_count(first) - 1) == ("", 0)
    text, used = qa.pack_turns(turns, 10_000)
    assert len(text.splitlines()) == len(turns)
    assert used == qa.approx_token_count(text)


# --- models -------------------------------------------------------------------------------------


def test_model_specs(qa: ModuleType, tmp_path: Path) -> None:
    fake = qa.load_generator("fake")
    assert isinstance(fake, TextGenerator)
    reply = fake.generate("no context at all", max_tokens=32)
    assert reply.text == ""
    assert reply.tokens_in > 0
    empty = qa.load_generator("fake", slm=True)
    assert isinstance(empty, TextGenerator)
    assert empty.generate("anything", max_tokens=8).text == "{}"
    # module:attribute, a class called with no arguments (the loaded benchmark module).
    imported = qa.load_generator("locomo_qa_benchmark:FakeAnswerer")
    assert isinstance(imported, qa.FakeAnswerer)
    assert qa.load_model(str(tmp_path)) == str(tmp_path)
    assert qa.load_model("Qwen/Qwen2.5-0.5B-Instruct") == "Qwen/Qwen2.5-0.5B-Instruct"


# --- end to end ----------------------------------------------------------------------------------


def test_benchmark_end_to_end(qa: ModuleType, data_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    results = qa.run_benchmark(
        data_file,
        out,
        answer_model=qa.FakeAnswerer(),
        answer_spec="fake",
        embedder=HashingEmbedder(),
        show_progress=False,
        workdir=tmp_path,
    )

    for name in ("locomo_qa.json", "locomo_qa.md", "f1_by_category.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "f1_by_category.png").read_bytes().startswith(b"\x89PNG")
    saved = json.loads((out / "locomo_qa.json").read_text())
    assert saved["systems"].keys() == {"lightmem", "retrieval", "full-context"}
    assert saved["data_file"] == "tiny_locomo.json"
    assert saved["config"]["answer_model"] == "fake-overlap-answerer"
    assert saved["config"]["embedder"] == "hashing-256"
    assert saved["counts"]["questions_scored"] == 5
    assert saved["counts"]["questions_skipped_no_evidence"] == 1
    table = (out / "locomo_qa.md").read_text()
    assert "Plumbing run" in table
    for name in saved["systems"]:
        assert f"| {name} |" in table

    for system in saved["systems"].values():
        assert system["questions"] == 5
        assert set(system["categories"]) == {"1", "2", "3", "4", "5", "overall"}
        assert system["categories"]["overall"]["n"] == 4  # adversarial is reported apart
        assert system["categories"]["5"]["metric"] == "adversarial"
        assert all(0.0 <= c["score"] <= 1.0 for c in system["categories"].values())
        assert system["answer_model"]["calls"] == 5
        assert system["answer_model"]["tokens_in"] > system["context_tokens"]["mean"]
        assert system["answer_model"]["exact_counts"] is False
        assert system["answer_latency"]["p50_ms"] >= 0
        assert system["lightmem_models"] is None or isinstance(system["lightmem_models"], dict)
    assert saved["systems"]["lightmem"]["context_tokens"]["max"] <= 1000
    assert saved["systems"]["retrieval"]["context_tokens"]["max"] <= 1000

    full = saved["systems"]["full-context"]
    assert full["setup"]["turns_dropped"] == {"tiny-1": 0}
    for question in results["per_question"]:
        prediction, score = EXPECTED_FULL_CONTEXT[question["question"]]
        answered = question["systems"]["full-context"]
        assert answered["prediction"] == prediction
        assert answered["score"] == pytest.approx(score, abs=1e-4)
        # The whole tiny conversation fits the retrieval budget and the fake's best line is
        # unique for each question: retrieval gets the same answers.
        assert question["systems"]["retrieval"]["prediction"] == answered["prediction"]
    categories = full["categories"]
    assert categories["4"]["score"] == pytest.approx(0.4)
    assert categories["1"]["score"] == pytest.approx(0.3333, abs=1e-4)
    assert categories["2"]["score"] == pytest.approx(0.2)
    assert categories["3"]["score"] == pytest.approx(0.5)
    assert categories["overall"]["score"] == pytest.approx((0.4 + 1 / 3 + 0.2 + 0.5) / 4, abs=1e-4)
    assert categories["5"]["score"] == 0.0


def test_cli_runs_offline(qa: ModuleType, data_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli"
    code = qa.main(
        [
            "--data",
            str(data_file),
            "--out",
            str(out),
            "--answer-model",
            "fake",
            "--systems",
            "full-context,retrieval",
            "--embedder",
            "hashing",
            "--limit-questions",
            "2",
            "--no-progress",
        ]
    )
    assert code == 0
    saved = json.loads((out / "locomo_qa.json").read_text())
    assert list(saved["systems"]) == ["full-context", "retrieval"]
    assert saved["counts"]["questions_scored"] == 2


def test_unknown_system_is_refused(qa: ModuleType, data_file: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no-such-system"):
        qa.run_benchmark(
            data_file, tmp_path / "out", answer_model=qa.FakeAnswerer(), systems=["no-such-system"]
        )
    with pytest.raises(SystemExit):
        qa.parse_args(["--data", str(data_file), "--answer-model", "fake", "--systems", "bogus"])


@pytest.mark.skipif(
    "slm" not in inspect.signature(LightMem.__init__).parameters,
    reason="LightMem(..., slm=) is not there yet",
)
def test_slm_drives_lightmem_and_its_ledger_is_reported(
    qa: ModuleType, data_file: Path, tmp_path: Path
) -> None:
    results = qa.run_benchmark(
        data_file,
        tmp_path / "out",
        answer_model=qa.FakeAnswerer(),
        systems=["lightmem"],
        embedder=HashingEmbedder(),
        slm=qa.load_model("fake"),
        slm_spec="fake",
        limit=2,
        show_progress=False,
        workdir=tmp_path,
    )
    assert results["config"]["slm"] == "fake:empty-json"
    system = results["systems"]["lightmem"]
    assert system["questions"] == 2
    models = system["lightmem_models"]
    assert isinstance(models, dict)
    assert any(entry.get("model") == "fake:empty-json" for entry in models.values())
    _, rows = qa.ledger_rows(models)
    assert {row[0] for row in rows} == set(models)
