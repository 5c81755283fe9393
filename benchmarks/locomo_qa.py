"""LoCoMo question answering: F1 of one answering model given LightMem's context, a dense
retrieval baseline's, or the whole conversation.

Run::

    python benchmarks/locomo_qa.py --data ../shared/data/locomo_dev.json --answer-model fake
    python benchmarks/locomo_qa.py --data PATH --answer-model Qwen/Qwen2.5-1.5B-Instruct \\
        --slm Qwen/Qwen2.5-0.5B-Instruct --budget 1000 --limit-questions 50
    python benchmarks/locomo_qa.py --data PATH --answer-model my_models:make_chat_model \\
        --systems lightmem retrieval --embedder hashing --no-progress

Model specs (``--answer-model``, ``--slm``)
------------------------------------------
* ``fake``: offline plumbing, no model. The answerer picks the context line sharing the most
  content words with the question (its text up to the first ``?``) and answers with the
  first five content words of that line that the question does not contain; nothing
  special for adversarial questions. As ``--slm``, ``fake`` answers ``{}`` to every
  request, so every memory role falls back to its local default.
* ``module:attribute``: imported; a class or function is called with no arguments. It must
  give a LangChain chat model, a LlamaIndex LLM or a LightMem ``TextGenerator``.
* anything else: a local folder or a hub id already in the local Hugging Face cache (never
  downloaded), run with transformers.
  That backend keeps the last 4,096 prompt tokens by default, so lower
  ``--max-context-tokens`` to what the model can read, or build the generator yourself and
  pass it as ``module:attribute``.

Every spec becomes a text generator through ``lightmem_core.slm.resolve.resolve_generator``.
``--slm`` drives LightMem's memory roles (``LightMem(..., slm=model)``); without it LightMem
runs its local defaults.

What it measures
----------------
Conversations are loaded as ``benchmarks/locomo.py`` loads them (questions without a valid
evidence turn are skipped there, and so here; ``--limit-questions N`` keeps the first N of
each conversation). Every question is answered once per system by the same answering model
with the same prompt; only the context differs:

* ``lightmem``: each conversation ingested into one fresh LightMem store (user id =
  ``sample_id``, one ``add_many`` per session, as ``locomo.py`` does), context =
  ``mem.get_context(user, question, token_budget=--budget, now=one day after the last
  session)``.
* ``retrieval``: dense retrieval over single turns, cosine with the same embedder
  (``locomo.py``'s ``DenseTurnIndex``); the longest prefix of the ranking whose lines
  (``DATE: SPEAKER said, "TEXT"``, LoCoMo's RAG format) fit in ``--budget`` tokens.
* ``full-context``: LoCoMo's long-context prompt: ``Below is a conversation between ...``
  and every session as ``DATE: ...`` / ``CONVERSATION:`` / ``SPEAKER said, "TEXT"``, turns
  dropped from the oldest end until it fits in ``--max-context-tokens`` (default 16,000).

Tokens are counted with ``lightmem_core.approx_token_count`` for every system (LightMem's
own default counter).

The prompt is LoCoMo's (snap-research/locomo ``task_eval/evaluate_gpts.py``): context, a
blank line, then ``QA_PROMPT`` ("Based on the above context, write an answer in the form of a
short phrase for the following question. Answer with exact words from the context whenever
possible. Question: {} Short answer:"). Category 2 questions get " Use DATE of CONVERSATION to
answer with an approximate date."; category 5 questions get " Select the correct answer: (a)
{} (b) {}. " with "Not mentioned in the conversation" and the adversarial answer in an order
drawn per question from ``--seed``, asked with ``QA_PROMPT_CAT_5``; a reply of ``a``/``(a)``
or ``b``/``(b)`` is mapped to its option text (LoCoMo's ``get_cat_5_answer``). At most 32 new
tokens, as LoCoMo asks; the reply is stripped.

Scoring follows snap-research/locomo ``task_eval/evaluation.py`` (``eval_question_answering``)
exactly: ``normalize_answer`` (drop commas, lowercase, drop punctuation, drop the words a, an,
the, and, collapse whitespace), Porter stemming (NLTK) of every token, token F1
(``f1_score``). Category 1 (multi-hop): prediction and answer are split on ``,`` and the score
is the mean over answer parts of the best F1 against a prediction part (``f1``). Category 3
(open-domain): the answer is cut at its first ``;``. Categories 2 and 4: plain F1. Category 5
(adversarial): 1 when the prediction contains "no information available" or "not mentioned"
(case-insensitive), else 0.

Reported per system: mean F1 per category and over categories 1-4, the adversarial score,
mean context tokens per question, the answering model's calls and tokens in/out (from its
``Generation`` objects), answer latency (p50/p95 of the ``generate`` calls), context
latency, and with ``--slm`` LightMem's model ledger (``mem.stats()["models"]``).

Outputs in ``--out`` (default ``benchmarks/results/locomo_qa``): ``locomo_qa.json`` (every
figure, each question's prediction and score too), ``locomo_qa.md`` (the table printed at the
end) and ``f1_by_category.png``.
"""

from __future__ import annotations

import argparse
import logging
import random
import re
import shutil
import statistics
import string
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from _common import (  # sets the offline env first
    entry_point,
    fmt,
    load_average,
    make_progress,
    markdown_table,
    percentile,
    plot_grouped_bars,
    rich_table,
)
from _corpus import (
    CATEGORY_NAMES,
    MAIN_CATEGORIES,
    Conversation,
    LoadStats,
    Question,
    TurnRecord,
    limit_questions,
    load_corpus,
)
from _models import load_model
from locomo import (
    OVERALL,
    DenseRetriever,
    DenseTurnIndex,
    categories_and_environment,
    category_summary,
    dataset_counts,
    ingest_lightmem,
    to_json,
)
from nltk.stem import PorterStemmer  # type: ignore[import-untyped]
from rich.console import Console
from rich.progress import Progress

from lightmem_core import LightMem, approx_token_count
from lightmem_core.embedding import Embedder, default_embedder
from lightmem_core.slm.base import (
    Generation,
    Prompt,
    TextGenerator,
    as_messages,
    estimate_tokens,
)
from lightmem_core.testing import HashingEmbedder

SYSTEMS: tuple[str, ...] = ("lightmem", "retrieval", "full-context")
DEFAULT_BUDGET = 1000
DEFAULT_MAX_CONTEXT_TOKENS = 16000
MAX_ANSWER_TOKENS = 32
"""LoCoMo's ``num_tokens_request`` for one answer."""
ADVERSARIAL = 5

# --- LoCoMo's prompts (snap-research/locomo task_eval/evaluate_gpts.py), verbatim ----------

QA_PROMPT = """
Based on the above context, write an answer in the form of a short phrase for the following question. Answer with exact words from the context whenever possible.

Question: {} Short answer:
"""

QA_PROMPT_CAT_5 = """
Based on the above context, answer the following question.

Question: {} Short answer:
"""

CONV_START_PROMPT = (  # verbatim, LoCoMo's typo included
    "Below is a conversation between two people: {} and {}. The conversation takes place over "
    "multiple days and the date of each conversation is wriiten at the beginning of the "
    "conversation.\n\n"
)
TEMPORAL_SUFFIX = " Use DATE of CONVERSATION to answer with an approximate date."
CAT_5_OPTIONS = " Select the correct answer: (a) {} (b) {}. "
NOT_MENTIONED = "Not mentioned in the conversation"

logger = logging.getLogger("locomo_qa")


# --- scoring: snap-research/locomo task_eval/evaluation.py ------------------------------------

_STEMMER = PorterStemmer()
_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the|and)\b")


def normalize_answer(text: str) -> str:
    """LoCoMo's ``normalize_answer``: drop commas, lowercase, drop punctuation, drop the words
    a/an/the/and, collapse whitespace."""
    text = text.replace(",", "").lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def answer_tokens(text: str) -> list[str]:
    """Normalised, Porter-stemmed tokens (LoCoMo's ``ps.stem(w)`` over the normalised words)."""
    return [_STEMMER.stem(word) for word in normalize_answer(text).split()]


def f1_score(prediction: str, ground_truth: str) -> float:
    """LoCoMo's ``f1_score``: token F1 over stemmed, normalised tokens (0 without overlap)."""
    predicted = answer_tokens(prediction)
    truth = answer_tokens(ground_truth)
    same = sum((Counter(predicted) & Counter(truth)).values())
    if same == 0:
        return 0.0
    precision = same / len(predicted)
    recall = same / len(truth)
    return (2 * precision * recall) / (precision + recall)


def f1_multi(prediction: str, ground_truth: str) -> float:
    """LoCoMo's ``f1`` (multi-hop): both split on ``,``; the mean over answer parts of the
    best F1 against any prediction part."""
    predictions = [p.strip() for p in prediction.split(",")]
    truths = [g.strip() for g in ground_truth.split(",")]
    return statistics.fmean(max(f1_score(p, g) for p in predictions) for g in truths)


def adversarial_score(prediction: str) -> float:
    """Category 5: 1 when the model says the conversation does not tell."""
    lowered = prediction.lower()
    return 1.0 if "no information available" in lowered or "not mentioned" in lowered else 0.0


def score_answer(prediction: str, answer: str, category: int) -> float:
    """The score of one prediction, by LoCoMo's rule for the question's category."""
    if category == 3:
        return f1_score(prediction, answer.split(";")[0].strip())
    if category in (2, 4):
        return f1_score(prediction, answer)
    if category == 1:
        return f1_multi(prediction, answer)
    if category == ADVERSARIAL:
        return adversarial_score(prediction)
    raise ValueError(f"no LoCoMo scoring rule for category {category}")


def cat_5_answer(prediction: str, options: Mapping[str, str]) -> str:
    """LoCoMo's ``get_cat_5_answer``: a bare ``a``/``(a)`` (or ``b``) reply is the option
    text; any other reply is kept (lowercased and stripped, as LoCoMo keeps it)."""
    reply = prediction.strip().lower()
    if len(reply) == 1:
        return options["a"] if "a" in reply else options["b"]
    if len(reply) == 3:
        return options["a"] if "(a)" in reply else options["b"]
    return reply


# --- prompts -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AskedQuestion:
    """What the model is asked for one question (the same text for every system)."""

    text: str
    """The question with LoCoMo's category suffix (and options, for category 5)."""
    template: str
    options: dict[str, str] | None = None
    """Category 5: which option letter is which answer."""


def ask(question: Question, seed: int) -> AskedQuestion:
    """LoCoMo's question text; category 5's option order is drawn from ``seed`` and the
    question's identity, so every system sees the same order."""
    if question.category == 2:
        return AskedQuestion(question.question + TEMPORAL_SUFFIX, QA_PROMPT)
    if question.category == ADVERSARIAL:
        rng = random.Random(f"{seed}:{question.sample_id}:{question.index}")
        if rng.random() < 0.5:
            options = {"a": NOT_MENTIONED, "b": question.answer}
        else:
            options = {"a": question.answer, "b": NOT_MENTIONED}
        text = question.question + CAT_5_OPTIONS.format(options["a"], options["b"])
        return AskedQuestion(text, QA_PROMPT_CAT_5, options)
    return AskedQuestion(question.question, QA_PROMPT)


def build_prompt(context: str, asked: AskedQuestion) -> str:
    """LoCoMo's single-question prompt: the context, a blank line, the QA instruction."""
    return context + "\n\n" + asked.template.format(asked.text)


def said(turn: TurnRecord) -> str:
    """A turn as LoCoMo writes it into a prompt."""
    return f'{turn.speaker} said, "{turn.text}"'


def speakers(conversation: Conversation) -> list[str]:
    return list(dict.fromkeys(turn.speaker for turn in conversation.turns))


@dataclass(frozen=True, slots=True)
class FullContext:
    text: str
    tokens: int
    turns_dropped: int


def full_context(conversation: Conversation, max_tokens: int) -> FullContext:
    """LoCoMo's long-context prompt, turns dropped from the oldest end beyond ``max_tokens``
    (session headers count; a session keeps its header while any of its turns is kept)."""
    names = [*speakers(conversation), "someone", "someone"]
    start = CONV_START_PROMPT.format(names[0], names[1])
    used = approx_token_count(start)
    kept: list[tuple[str, list[str]]] = []  # (date, turn lines), newest session first
    dropped = 0
    full = False
    for session in reversed(conversation.sessions):
        header = f"DATE: {session.date}\nCONVERSATION:\n"
        header_cost = approx_token_count(header)
        lines: list[str] = []
        for turn in reversed(session.turns):
            line = said(turn)
            cost = approx_token_count(line) + (header_cost if not lines else 0)
            if full or used + cost > max_tokens:
                full = True
                dropped += 1
                continue
            used += cost
            lines.append(line)
        if lines:
            kept.append((session.date, lines[::-1]))
    blocks = [f"DATE: {date}\nCONVERSATION:\n" + "\n".join(lines) for date, lines in reversed(kept)]
    text = start + "\n\n".join(blocks)
    return FullContext(text, approx_token_count(text), dropped)


def pack_turns(ranking: Sequence[TurnRecord], budget: int) -> tuple[str, int]:
    """The longest prefix of ``ranking`` whose lines (LoCoMo's RAG format,
    ``DATE: SPEAKER said, "TEXT"``) fit in ``budget`` tokens, one line each, best first."""
    lines: list[str] = []
    used = 0
    for turn in ranking:
        line = f"{turn.date}: {said(turn)}"
        cost = approx_token_count(line)
        if used + cost > budget:
            break
        lines.append(line)
        used += cost
    return "\n".join(lines), used


# --- models ----------------------------------------------------------------------------------

_CONTENT_WORD = re.compile(r"\w+", re.UNICODE)
_QUOTED = re.compile(r'"(.*)"')
_STOPWORDS = frozenset(
    _CONTENT_WORD.findall(
        """a an the and or but of to in on at for with from by about as is are was were be been
    being do does did done have has had what which who whom whose when where why how that this
    these those it its i you he she we they me him her us them my your his our their there
    than then so if not no yes can could would should will shall may might must any some all
    s t said"""
    )
)


def _content_words(text: str) -> list[str]:
    return [w for w in _CONTENT_WORD.findall(text.lower()) if w not in _STOPWORDS]


def fake_answer(prompt: str, span_words: int = 5) -> str:
    """The fake answerer's reply to a LoCoMo prompt (see the module docstring)."""
    context, _, instruction = prompt.rpartition("Based on the above context")
    question = instruction.partition("Question:")[2].partition("Short answer:")[0]
    question = question.split("?")[0]
    asked = set(_content_words(question))
    best_line, best = "", 0
    for line in context.splitlines():
        overlap = len(asked & set(_content_words(line)))
        if overlap > best:
            best_line, best = line, overlap
    if not best:
        return ""
    quoted = _QUOTED.search(best_line)
    utterance = quoted.group(1) if quoted else best_line
    words: list[str] = []
    for raw in utterance.split():
        word = raw.strip(string.punctuation + "“”‘’")
        parts = _CONTENT_WORD.findall(word.lower())
        if not parts or any(p in _STOPWORDS or p in asked for p in parts):
            continue
        words.append(word)
        if len(words) == span_words:
            break
    return " ".join(words)


class FakeAnswerer:
    """An offline, deterministic answerer for plumbing runs (a :class:`TextGenerator`)."""

    name = "fake-overlap-answerer"

    def generate(
        self,
        prompt: Prompt,
        *,
        max_tokens: int,
        json_schema: Mapping[str, Any] | None = None,
        stop: Sequence[str] = (),
    ) -> Generation:
        messages = as_messages(prompt)
        reply = fake_answer("\n".join(m["content"] for m in messages))
        return Generation(reply, estimate_tokens(messages), approx_token_count(reply))

    async def agenerate(
        self,
        prompt: Prompt,
        *,
        max_tokens: int,
        json_schema: Mapping[str, Any] | None = None,
        stop: Sequence[str] = (),
    ) -> Generation:
        return self.generate(prompt, max_tokens=max_tokens, json_schema=json_schema, stop=stop)


def load_generator(spec: str, *, slm: bool = False) -> TextGenerator:
    """The generator a spec names; ``fake`` is the offline answerer (or, for ``--slm``, the
    ``{}`` generator)."""
    if spec == "fake" and not slm:
        return FakeAnswerer()
    from lightmem_core.slm.resolve import resolve_generator

    return resolve_generator(load_model(spec))


@dataclass(slots=True)
class Ledger:
    """The answering model's calls and tokens, as its ``Generation`` objects report them."""

    calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    exact: bool = True

    def add(self, generation: Generation) -> None:
        self.calls += 1
        self.tokens_in += generation.tokens_in
        self.tokens_out += generation.tokens_out
        self.exact = self.exact and generation.exact

    def to_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "exact_counts": self.exact if self.calls else None,
        }


# --- systems -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Answer:
    prediction: str
    raw: str
    score: float
    context_tokens: int
    context_ms: float
    answer_ms: float
    tokens_in: int
    tokens_out: int

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "prediction": self.prediction,
            "score": round(self.score, 4),
            "context_tokens": self.context_tokens,
            "context_ms": round(self.context_ms, 3),
            "answer_ms": round(self.answer_ms, 3),
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
        }
        if self.raw != self.prediction:
            result["raw"] = self.raw
        return result


class ContextSource:
    """One system: the context it gives the answering model for a question."""

    def context(self, conversation: Conversation, question: Question) -> str:
        raise NotImplementedError


class LightMemContext(ContextSource):
    def __init__(self, mem: LightMem, budget: int) -> None:
        self.mem = mem
        self.budget = budget

    def context(self, conversation: Conversation, question: Question) -> str:
        return self.mem.get_context(
            conversation.sample_id,
            question.question,
            token_budget=self.budget,
            now=conversation.now,
        )


class RetrievalContext(ContextSource):
    def __init__(self, index: DenseTurnIndex, budget: int) -> None:
        self.retriever = DenseRetriever(index)
        self.budget = budget
        self.turns = {
            (user, turn.turn_id): turn for user, turns in index.turns.items() for turn in turns
        }

    def context(self, conversation: Conversation, question: Question) -> str:
        user = conversation.sample_id
        ranking = self.retriever.search(user, question.question, self.budget, conversation.now)
        turns = [self.turns[(user, ids[0])] for _, ids in ranking]
        return pack_turns(turns, self.budget)[0]


class FullContextSource(ContextSource):
    def __init__(self, conversations: Sequence[Conversation], max_tokens: int) -> None:
        self.contexts = {c.sample_id: full_context(c, max_tokens) for c in conversations}

    def context(self, conversation: Conversation, question: Question) -> str:
        return self.contexts[conversation.sample_id].text


@dataclass(slots=True)
class SystemRun:
    name: str
    source: ContextSource
    setup: dict[str, Any]
    mem: LightMem | None = None
    ledger: Ledger = field(default_factory=Ledger)
    answers: list[tuple[Question, Answer]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        answers = [a for _, a in self.answers]
        models = None
        if self.mem is not None:
            models = self.mem.stats().get("models")
        return {
            "setup": self.setup,
            "questions": len(answers),
            "categories": aggregate(self.answers),
            "context_tokens": {
                "mean": _round(_mean([a.context_tokens for a in answers]), 1),
                "p50": _round(percentile([a.context_tokens for a in answers], 50), 1),
                "max": max((a.context_tokens for a in answers), default=None),
            },
            "answer_model": self.ledger.to_dict(),
            "answer_latency": latency([a.answer_ms for a in answers]),
            "context_latency": latency([a.context_ms for a in answers]),
            "lightmem_models": models,
        }


def answer_question(
    system: SystemRun,
    generator: TextGenerator,
    conversation: Conversation,
    question: Question,
    asked: AskedQuestion,
    max_answer_tokens: int,
) -> Answer:
    started = time.perf_counter()
    context = system.source.context(conversation, question)
    context_ms = (time.perf_counter() - started) * 1000
    prompt = build_prompt(context, asked)
    started = time.perf_counter()
    generation = generator.generate(prompt, max_tokens=max_answer_tokens)
    answer_ms = (time.perf_counter() - started) * 1000
    system.ledger.add(generation)
    raw = generation.text.strip()
    prediction = cat_5_answer(raw, asked.options) if asked.options is not None else raw
    return Answer(
        prediction=prediction,
        raw=raw,
        score=score_answer(prediction, question.answer, question.category),
        context_tokens=approx_token_count(context),
        context_ms=context_ms,
        answer_ms=answer_ms,
        tokens_in=generation.tokens_in,
        tokens_out=generation.tokens_out,
    )


def _mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def latency(values: Sequence[float]) -> dict[str, float | int | None]:
    return {
        "n": len(values),
        "p50_ms": _round(percentile(values, 50), 3),
        "p95_ms": _round(percentile(values, 95), 3),
        "mean_ms": _round(_mean(values), 3),
    }


def aggregate(answers: Sequence[tuple[Question, Answer]]) -> dict[str, dict[str, Any]]:
    """Mean score per category, over categories 1-4 (``overall``), and category 5 apart."""
    groups: dict[str, list[float]] = {OVERALL: []}
    for question, answer in answers:
        groups.setdefault(str(question.category), []).append(answer.score)
        if question.category in MAIN_CATEGORIES:
            groups[OVERALL].append(answer.score)
    result: dict[str, dict[str, Any]] = {}
    for key in sorted(groups, key=lambda k: (k == OVERALL, k)):
        scores = groups[key]
        adversarial = key == str(ADVERSARIAL)
        result[key] = {
            "name": "1-4" if key == OVERALL else CATEGORY_NAMES.get(int(key), f"category {key}"),
            "n": len(scores),
            "metric": "adversarial" if adversarial else "f1",
            "score": _round(_mean(scores)),
        }
    return result


# --- running ------------------------------------------------------------------------------------


@contextmanager
def lightmem_store(embedder: Embedder | None, workdir: Path, slm: Any) -> Iterator[LightMem]:
    """A fresh LightMem store in its own folder, removed afterwards. ``slm`` is passed only
    when given, as ``LightMem(..., slm=model)``."""
    path = Path(tempfile.mkdtemp(prefix="lightmem-qa-", dir=workdir))
    extra: dict[str, Any] = {"slm": slm} if slm is not None else {}
    try:
        mem = LightMem(path, embedder=embedder, **extra)
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise
    try:
        yield mem
    finally:
        mem.close()
        shutil.rmtree(path, ignore_errors=True)


def build_systems(
    names: Sequence[str],
    conversations: Sequence[Conversation],
    *,
    embedder: Embedder,
    budget: int,
    max_context_tokens: int,
    slm: Any,
    workdir: Path,
    progress: Progress,
    stack: ExitStack,
) -> list[SystemRun]:
    systems: list[SystemRun] = []
    total_turns = sum(len(c.turns) for c in conversations)
    for name in names:
        if name == "lightmem":
            mem = stack.enter_context(lightmem_store(embedder, workdir, slm))
            task = progress.add_task("lightmem: ingest", total=total_turns)
            ingest = ingest_lightmem(mem, conversations, progress, task)
            progress.console.print(
                f"lightmem: ingested {ingest.turns} turns in {ingest.total_s:.1f} s"
            )
            setup = {"ingest": ingest.to_dict(), "budget": budget}
            systems.append(SystemRun(name, LightMemContext(mem, budget), setup, mem=mem))
        elif name == "retrieval":
            embed_task = progress.add_task("retrieval: embed turns", total=total_turns)
            index = DenseTurnIndex(
                conversations,
                embedder,
                on_batch=partial(progress.advance, embed_task),
            )
            setup = {"ingest": index.stats.to_dict(), "budget": budget}
            systems.append(SystemRun(name, RetrievalContext(index, budget), setup))
        elif name == "full-context":
            source = FullContextSource(conversations, max_context_tokens)
            setup = {
                "max_context_tokens": max_context_tokens,
                "turns_dropped": {k: v.turns_dropped for k, v in source.contexts.items()},
                "tokens": {k: v.tokens for k, v in source.contexts.items()},
            }
            systems.append(SystemRun(name, source, setup))
        else:
            raise ValueError(f"unknown system {name!r}")
    return systems


def ask_all(
    systems: Sequence[SystemRun],
    conversations: Sequence[Conversation],
    generator: TextGenerator,
    *,
    seed: int,
    max_answer_tokens: int,
    progress: Progress,
) -> None:
    """Every question to every system; systems take turns in a rotating order, so a change
    of machine load weighs on all of them alike."""
    total = sum(len(c.questions) for c in conversations)
    task = progress.add_task("questions", total=total)
    asked_so_far = 0
    for conversation in conversations:
        for question in conversation.questions:
            asked = ask(question, seed)
            shift = asked_so_far % max(1, len(systems))
            for system in [*systems[shift:], *systems[:shift]]:
                answer = answer_question(
                    system, generator, conversation, question, asked, max_answer_tokens
                )
                system.answers.append((question, answer))
            asked_so_far += 1
            progress.advance(task)


def run_benchmark(
    data: Path,
    out: Path,
    *,
    answer_model: TextGenerator,
    answer_spec: str | None = None,
    systems: Sequence[str] = SYSTEMS,
    budget: int = DEFAULT_BUDGET,
    max_context_tokens: int = DEFAULT_MAX_CONTEXT_TOKENS,
    limit: int | None = None,
    embedder: Embedder | None = None,
    slm: Any = None,
    slm_spec: str | None = None,
    seed: int = 0,
    max_answer_tokens: int = MAX_ANSWER_TOKENS,
    console: Console | None = None,
    show_progress: bool = True,
    workdir: Path | None = None,
) -> dict[str, Any]:
    """Answer every question of the LoCoMo file ``data`` with each system's context; write
    the reports to ``out``. ``embedder`` replaces the default MiniLM (tests pass a fast
    fake); ``slm`` goes to ``LightMem(..., slm=slm)`` when given. Returns everything written
    to ``locomo_qa.json``."""
    unknown = [name for name in systems if name not in SYSTEMS]
    if unknown:
        raise ValueError(f"unknown system(s): {', '.join(unknown)}")
    console = console or Console()
    started = time.perf_counter()
    load_before = load_average()
    conversations, load_stats = load_corpus(data)
    conversations = limit_questions(conversations, limit)
    model = embedder if embedder is not None else default_embedder()
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="lightmem-locomo-qa-", dir=workdir))
    try:
        with ExitStack() as stack, make_progress(console, enabled=show_progress) as progress:
            runs = build_systems(
                systems,
                conversations,
                embedder=model,
                budget=budget,
                max_context_tokens=max_context_tokens,
                slm=slm,
                workdir=scratch,
                progress=progress,
                stack=stack,
            )
            ask_all(
                runs,
                conversations,
                answer_model,
                seed=seed,
                max_answer_tokens=max_answer_tokens,
                progress=progress,
            )
            results = build_results(
                data=data,
                conversations=conversations,
                load_stats=load_stats,
                runs=runs,
                config={
                    "answer_model": answer_model.name,
                    "answer_model_spec": answer_spec,
                    "slm": getattr(slm, "name", None if slm is None else str(slm)),
                    "slm_spec": slm_spec,
                    "embedder": model.name,
                    "budget": budget,
                    "max_context_tokens": max_context_tokens,
                    "max_answer_tokens": max_answer_tokens,
                    "seed": seed,
                    "limit_questions_per_conversation": limit,
                },
                wall_s=time.perf_counter() - started,
                load=(load_before, load_average()),
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    write_reports(results, out)
    return results


def build_results(
    *,
    data: Path,
    conversations: Sequence[Conversation],
    load_stats: LoadStats,
    runs: Sequence[SystemRun],
    config: Mapping[str, Any],
    wall_s: float,
    load: tuple[float | None, float | None],
) -> dict[str, Any]:
    questions = [q for c in conversations for q in c.questions]
    by_system = {r.name: {(q.sample_id, q.index): a for q, a in r.answers} for r in runs}
    per_question = [
        {
            "sample_id": q.sample_id,
            "index": q.index,
            "category": q.category,
            "question": q.question,
            "answer": q.answer,
            "systems": {
                name: answers[(q.sample_id, q.index)].to_dict()
                for name, answers in by_system.items()
                if (q.sample_id, q.index) in answers
            },
        }
        for q in questions
    ]
    return {
        "benchmark": "locomo qa",
        "created_at": datetime.now(UTC).isoformat(),
        "data_file": data.name,
        "wall_s": round(wall_s, 2),
        "config": {
            **config,
            "token_count": "lightmem_core.approx_token_count",
            "now": "one day after the conversation's last session",
            "prompts": {
                "qa": QA_PROMPT,
                "qa_category_5": QA_PROMPT_CAT_5,
                "temporal_suffix": TEMPORAL_SUFFIX,
                "category_5_options": CAT_5_OPTIONS,
                "full_context_start": CONV_START_PROMPT,
            },
            "scoring": (
                "snap-research/locomo task_eval/evaluation.py: normalize_answer + Porter "
                "stemming + token F1; category 1 split on ','; category 3 answer cut at ';'; "
                "category 5 = 'no information available' or 'not mentioned' in the prediction"
            ),
            **categories_and_environment(load),
        },
        "counts": dataset_counts(conversations, load_stats),
        "systems": {r.name: r.to_dict() for r in runs},
        "per_question": per_question,
    }


# --- reporting -----------------------------------------------------------------------------------


def _int(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) else "–"


def is_fake(results: Mapping[str, Any]) -> bool:
    return str(results["config"].get("answer_model", "")).startswith("fake")


def table_rows(results: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = [
        "system",
        *[f"{CATEGORY_NAMES[c]} F1" for c in MAIN_CATEGORIES],
        "overall F1 (1-4)",
        "adversarial",
        "ctx tokens",
        "calls",
        "tokens in",
        "tokens out",
        "answer p50 ms",
        "context p50 ms",
    ]
    rows: list[list[str]] = []
    for name, system in results["systems"].items():
        categories = system["categories"]

        def score(key: str, categories: Mapping[str, Any] = categories) -> str:
            entry = categories.get(key)
            return fmt(entry["score"]) if entry and entry["n"] else "–"

        ledger = system["answer_model"]
        rows.append(
            [
                name,
                *[score(str(c)) for c in MAIN_CATEGORIES],
                score(OVERALL),
                score(str(ADVERSARIAL)),
                fmt(system["context_tokens"]["mean"], 0),
                _int(ledger["calls"]),
                _int(ledger["tokens_in"]),
                _int(ledger["tokens_out"]),
                fmt(system["answer_latency"]["p50_ms"], 1),
                fmt(system["context_latency"]["p50_ms"], 1),
            ]
        )
    return header, rows


LEDGER_COLUMNS: tuple[tuple[str, str], ...] = (
    ("model", "model"),
    ("calls", "calls"),
    ("tokens_in", "tokens in"),
    ("tokens_out", "tokens out"),
    ("mean_ms", "mean ms"),
    ("fallbacks", "fallbacks"),
)


def ledger_rows(ledger: object) -> tuple[list[str], list[list[str]]]:
    """LightMem's model ledger (``mem.stats()["models"]``: one entry per role) as a table;
    entries that are not mappings are shown as they are."""
    header = ["role", *[title for _, title in LEDGER_COLUMNS]]
    rows: list[list[str]] = []
    for role, entry in ledger.items() if isinstance(ledger, Mapping) else []:
        if not isinstance(entry, Mapping):
            rows.append([str(role), str(entry), *[""] * (len(LEDGER_COLUMNS) - 1)])
            continue
        cells = []
        for key, _ in LEDGER_COLUMNS:
            value = entry.get(key)
            cells.append(f"{value:,}" if isinstance(value, int) else str(value or "–"))
        rows.append([str(role), *cells])
    return header, rows


def markdown(results: Mapping[str, Any]) -> str:
    header, rows = table_rows(results)
    counts = results["counts"]
    config = results["config"]
    per_category = category_summary(counts)
    lines = [f"# LoCoMo question answering: {results['data_file']}", ""]
    if is_fake(results):
        lines += [
            "**Plumbing run: these numbers come from the offline fake answerer (it copies words "
            "of the context line that shares most words with the question), not from a real "
            "model. They show that the pipeline works, not how well any system answers.**",
            "",
        ]
    if str(ADVERSARIAL) not in counts["questions_per_category"]:
        lines += ["No adversarial (category 5) question in this selection.", ""]
    slm = f"; LightMem roles driven by {config['slm']}" if config.get("slm") else ""
    lines += [
        f"{counts['conversations']} conversations, {counts['turns']} turns, "
        f"{counts['questions_scored']} questions ({per_category}); "
        f"{counts['questions_skipped_no_evidence']} skipped without valid evidence. "
        f"Answering model: {config['answer_model']}{slm}. Embedder: {config['embedder']}. "
        f"Memory context budget {config['budget']} tokens (lightmem, retrieval); full context "
        f"cut to {config['max_context_tokens']:,} tokens. Wall time {results['wall_s']:.0f} s.",
        "",
        "F1: LoCoMo's token F1 (snap-research/locomo `task_eval/evaluation.py`: normalised, "
        "Porter-stemmed tokens; multi-hop split on commas; open-domain answers cut at `;`). "
        "Adversarial: the share of category-5 questions answered 'not mentioned' / 'no "
        "information available'. ctx tokens: mean context tokens per question "
        "(`approx_token_count`). Calls and tokens: the answering model's, as it reported them.",
        "",
        *markdown_table(header, rows),
        "",
    ]
    for name, system in results["systems"].items():
        if system.get("lightmem_models"):
            ledger_header, ledger = ledger_rows(system["lightmem_models"])
            lines += [
                f"LightMem's own model calls ({name}, `mem.stats()['models']`):",
                "",
                *markdown_table(ledger_header, ledger, left=2),
                "",
            ]
    return "\n".join(lines)


def plot_by_category(results: Mapping[str, Any], path: Path) -> None:
    keys = [str(c) for c in MAIN_CATEGORIES] + [OVERALL, str(ADVERSARIAL)]
    labels = [
        "overall 1-4" if k == OVERALL else f"{CATEGORY_NAMES[int(k)]}" + (" *" if k == "5" else "")
        for k in keys
    ]

    def score(system: Mapping[str, Any], key: str) -> float | None:
        entry = system["categories"].get(key)
        return entry["score"] if entry else None

    title = f"LoCoMo QA ({results['data_file']}), answers by {results['config']['answer_model']}"
    if is_fake(results):
        title += " (plumbing, not a result)"
    plot_grouped_bars(
        path,
        [(name, [score(system, k) for k in keys]) for name, system in results["systems"].items()],
        labels,
        ylabel="LoCoMo F1 (* adversarial: share answered 'not mentioned')",
        title=title,
    )


def write_reports(results: Mapping[str, Any], out: Path) -> None:
    (out / "locomo_qa.json").write_text(to_json(results), encoding="utf-8")
    (out / "locomo_qa.md").write_text(markdown(results), encoding="utf-8")
    plot_by_category(results, out / "f1_by_category.png")


def print_table(results: Mapping[str, Any], console: Console) -> None:
    header, rows = table_rows(results)
    counts = results["counts"]
    title = (
        f"LoCoMo QA ({results['data_file']}): {counts['questions_scored']} questions, "
        f"answers by {results['config']['answer_model']}, wall {results['wall_s']:.0f} s"
    )
    if is_fake(results):
        title += " [plumbing: fake answerer]"
    console.print(rich_table(title, header, rows))
    for name, system in results["systems"].items():
        if system.get("lightmem_models"):
            ledger_header, ledger = ledger_rows(system["lightmem_models"])
            title = f"LightMem's own model calls ({name})"
            console.print(rich_table(title, ledger_header, ledger, left=2))


# --- main ----------------------------------------------------------------------------------------


def _names(values: Sequence[str] | None) -> list[str]:
    if values is None:
        return list(SYSTEMS)
    return list(dict.fromkeys(part for value in values for part in value.split(",") if part))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--data",
        type=Path,
        required=True,
        help="a LoCoMo JSON file, or a folder of chat files (format: benchmarks/_corpus.py)",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/locomo_qa"), help="report folder"
    )
    parser.add_argument(
        "--answer-model",
        required=True,
        metavar="SPEC",
        help="the answering model: 'fake', module:attribute, or a local path / cached hub id",
    )
    parser.add_argument(
        "--slm",
        metavar="SPEC",
        help="the model driving LightMem's memory roles (same specs; 'fake' answers '{}')",
    )
    parser.add_argument(
        "--systems",
        nargs="*",
        metavar="SYSTEM",
        help=f"systems to compare (default all): {', '.join(SYSTEMS)}",
    )
    parser.add_argument(
        "--budget",
        type=int,
        default=DEFAULT_BUDGET,
        help=f"memory context token budget (default {DEFAULT_BUDGET})",
    )
    parser.add_argument(
        "--max-context-tokens",
        type=int,
        default=DEFAULT_MAX_CONTEXT_TOKENS,
        help=f"full-context cut, oldest turns first (default {DEFAULT_MAX_CONTEXT_TOKENS})",
    )
    parser.add_argument(
        "--embedder",
        choices=("default", "hashing"),
        default="default",
        help="default: the MiniLM LightMem uses; hashing: the fast test embedder",
    )
    parser.add_argument(
        "--limit-questions",
        type=int,
        metavar="N",
        help="answer only the first N scorable questions of each conversation",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="order of the adversarial options (default 0)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    args.systems = _names(args.systems)
    bad = [name for name in args.systems if name not in SYSTEMS]
    if bad:
        parser.error(f"unknown system(s): {', '.join(bad)}")
    if not args.systems:
        parser.error("no system to run")
    if args.limit_questions is not None and args.limit_questions <= 0:
        parser.error("--limit-questions must be positive")
    if args.budget <= 0 or args.max_context_tokens <= 0:
        parser.error("--budget and --max-context-tokens must be positive")
    if not args.data.exists():
        parser.error(f"no such file or folder: {args.data}")
    return args


@entry_point
def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console() if sys.stdout.isatty() else Console(width=220)
    answer_model = load_generator(args.answer_model)
    slm: TextGenerator | None = None
    if args.slm is not None:
        same = args.slm == args.answer_model and args.slm != "fake"
        slm = answer_model if same else load_generator(args.slm, slm=True)
    console.print(
        f"[bold]LoCoMo QA benchmark[/bold]  data={args.data}  systems={args.systems}  "
        f"answer_model={answer_model.name}  slm={slm.name if slm else None}  "
        f"budget={args.budget}  limit_questions={args.limit_questions}"
    )
    results = run_benchmark(
        args.data,
        args.out,
        answer_model=answer_model,
        answer_spec=args.answer_model,
        systems=args.systems,
        budget=args.budget,
        max_context_tokens=args.max_context_tokens,
        limit=args.limit_questions,
        embedder=HashingEmbedder() if args.embedder == "hashing" else None,
        slm=slm,
        slm_spec=args.slm,
        seed=args.seed,
        console=console,
        show_progress=not args.no_progress,
    )
    print_table(results, console)
    console.print(
        f"reports in {args.out}: locomo_qa.json, locomo_qa.md, f1_by_category.png; "
        f"wall time {results['wall_s']:.0f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
