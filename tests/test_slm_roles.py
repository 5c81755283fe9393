"""What each model-driven role changes, proven with scripted models of both frameworks.

The models are real LangChain chat models and LlamaIndex LLMs (test doubles built on the
frameworks' own base classes: ``FakeListChatModel``, a ``BaseChatModel`` and a ``MockLLM``
whose replies a script computes from the prompt). Everything else is real: SQLite, Chroma
on disk, the engine. Each role's effect is asserted against the same store without it.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from llama_index.core.base.llms.types import CompletionResponse
from llama_index.core.llms import MockLLM
from llama_index.core.llms.callbacks import llm_completion_callback
from pydantic import PrivateAttr

from lightmem_core import ConfigurationError, LightMem, Status, Tier
from lightmem_core.slm.prompts import PROMPT_VERSION
from lightmem_core.testing import HashingEmbedder

Script = Callable[[str], str]


class ScriptedChat(BaseChatModel):
    """A LangChain chat model whose reply a script computes from the prompt."""

    script: Callable[[str], str]

    @property
    def _llm_type(self) -> str:
        return "scripted-chat"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        prompt = "\n".join(str(m.content) for m in messages)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(self.script(prompt)))])


class ScriptedLLM(MockLLM):
    """LlamaIndex's ``MockLLM``, answering with a script instead of echoing."""

    _script: Script = PrivateAttr()

    def __init__(self, script: Script) -> None:
        super().__init__()
        self._script = script

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text=self._script(prompt))


def scripted(backend: str, script: Script) -> Any:
    return ScriptedChat(script=script) if backend == "langchain" else ScriptedLLM(script)


BACKENDS = ["langchain", "llamaindex"]


def _user_part(prompt: str, label: str) -> str:
    """The quoted data after ``label`` in the user message (the system prompt has none)."""
    found = re.search(rf"{label}: <data>(.*?)</data>", prompt, re.S)
    return found.group(1) if found else ""


def _numbered(prompt: str) -> dict[int, str]:
    return {int(n): text for n, text in re.findall(r"^\[(\d+)\] (.*)$", prompt, re.M)}


def _open(path: Path, slm: Any, **options: Any) -> LightMem:
    return LightMem(path, embedder=HashingEmbedder(), slm=slm, **options)


# --- controller ---------------------------------------------------------------------------


def _trips(mem: LightMem) -> None:
    mem.add("u", "We planned the hiking trip to the Alps.", timestamp="2023-05-10T10:00:00Z")
    mem.add("u", "The hiking trip to Norway was cold.", timestamp="2024-01-15T10:00:00Z")
    mem.add("u", "Another hiking trip, this time to Peru.", timestamp="2024-03-02T10:00:00Z")


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_controllers_time_window_filters_candidates(tmp_path: Path, backend: str) -> None:
    def controller(prompt: str) -> str:
        assert "hiking trip" in _user_part(prompt, "Question")
        return 'Sure! {"intent": "event_in_time", "queries": ["hiking trip"], "people": [], ' + (
            '"time": {"start": "2024-01-01", "end": "2024-01-31"}, "k": 5,}'  # trailing comma
        )

    with _open(tmp_path / "plain", None) as plain:
        _trips(plain)
        assert len(plain.search("u", "How was the hiking trip?")) == 3
    with _open(tmp_path / "slm", {"controller": scripted(backend, controller)}) as mem:
        _trips(mem)
        hits = mem.search("u", "How was the hiking trip?")
        assert [h.text for h in hits] == ["The hiking trip to Norway was cold."]
        stats = mem.stats()["models"]["controller"]
        assert stats["calls"] == 1
        assert stats["fallbacks"] == 0
        assert stats["tokens_in"] > 0
        assert stats["tokens_out"] > 0


def test_a_window_with_nothing_in_it_does_not_empty_the_search(tmp_path: Path) -> None:
    window = '{"time": {"start": "1999-01-01", "end": "1999-12-31"}}'
    with _open(tmp_path / "s", {"controller": FakeListChatModel(responses=[window])}) as mem:
        _trips(mem)
        assert len(mem.search("u", "How was the hiking trip?")) == 3


def test_a_controllers_k_caps_the_hits(tmp_path: Path) -> None:
    with _open(tmp_path / "s", {"controller": FakeListChatModel(responses=['{"k": 1}'])}) as mem:
        _trips(mem)
        assert len(mem.search("u", "How was the hiking trip?", k=10)) == 1


@pytest.mark.parametrize(
    "reply", ["I cannot help with that.", '{"k": "lots", "time": 5', "", "[1, 2]"]
)
def test_a_failing_controller_falls_back_and_is_counted(tmp_path: Path, reply: str) -> None:
    with _open(tmp_path / "s", {"controller": FakeListChatModel(responses=[reply])}) as mem:
        _trips(mem)
        assert len(mem.search("u", "How was the hiking trip?")) == 3
        stats = mem.stats()["models"]["controller"]
        assert stats["calls"] == 1
        assert stats["fallbacks"] == 1


# --- selector -----------------------------------------------------------------------------


def _pets(mem: LightMem) -> None:
    mem.add("u", "My dog Rex loves the park.", turn_id="t1")
    mem.add("u", "The zebra at the zoo looked at my dog.", turn_id="t2")
    mem.add("u", "My dog needs a new collar.", turn_id="t3")


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_selectors_drop_removes_the_item(tmp_path: Path, backend: str) -> None:
    seen: list[dict[int, str]] = []

    def selector(prompt: str) -> str:
        shown = _numbered(prompt)
        seen.append(shown)
        items = [
            {"id": n, "keep": "zebra" not in text, "score": 0.2 if "collar" in text else 0.9}
            for n, text in shown.items()
        ]
        return "```json\n" + json.dumps({"items": items}) + "\n```"

    with _open(tmp_path / "s", {"selector": scripted(backend, selector)}) as mem:
        _pets(mem)
        hits = mem.search("u", "Tell me about my dog")
        assert [h.source_ids for h in hits] == [("t1",), ("t3",)]  # scores re-ordered too
        assert len(seen[0]) == 3  # one batched call saw the whole pool
        assert mem.stats()["models"]["selector"]["calls"] == 1


def test_a_selector_that_drops_everything_is_not_trusted(tmp_path: Path) -> None:
    drop_all = json.dumps({"items": [{"id": n, "keep": False} for n in range(1, 4)]})
    with _open(tmp_path / "s", {"selector": FakeListChatModel(responses=[drop_all])}) as mem:
        _pets(mem)
        assert len(mem.search("u", "Tell me about my dog")) == 3
        assert mem.stats()["models"]["selector"]["fallback_reasons"] == {"invalid": 1}


# --- writer -------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_writers_entry_is_stored_with_provenance(tmp_path: Path, backend: str) -> None:
    def writer(prompt: str) -> str:
        turn = _user_part(prompt, "Turn")
        if "called Max" in turn:
            return (
                '{"entries": [{"text": "Alice adopted a beagle named Max.", "merge_with": null}]}'
            )
        # The second turn repeats the first: merge into existing entry [1].
        assert "[1] Alice adopted a beagle named Max." in prompt
        return json.dumps(
            {"entries": [{"text": "Alice adopted Max, a beagle, aged 3.", "merge_with": 1}]}
        )

    with _open(tmp_path / "s", {"writer": scripted(backend, writer)}) as mem:
        mem.add("u", "So, um, I adopted a beagle, he is called Max!", turn_id="t1", speaker="Alice")
        (entry,) = mem.export("u")["memories"]
        assert entry["text"] == "Alice adopted a beagle named Max."
        assert entry["source_ids"] == ["t1"]
        assert entry["kind"] == "note"
        mem.add("u", "Max the beagle adopted by me is 3 now.", turn_id="t2", speaker="Alice")
        (merged,) = mem.export("u")["memories"]
        assert merged["id"] == entry["id"]
        assert merged["text"] == "Alice adopted Max, a beagle, aged 3."
        assert merged["source_ids"] == ["t1", "t2"]
        mem.flush()
        (hit,) = mem.search("u", "beagle aged 3")
        assert hit.memory_id == entry["id"]
        assert mem._records.lexical_search("u", ["named"], limit=5) == []  # old text left FTS
        assert mem.stats("u")["mtm"] == 1
        assert mem.stats("u")["turns"] == 2


@pytest.mark.parametrize(
    "reply",
    [
        "nonsense",
        '{"entries": []}',
        '{"entries": [{"text": "Alice has kids."}]}',  # drops the turn's number
    ],
)
def test_a_failing_writer_never_loses_the_turn(tmp_path: Path, reply: str) -> None:
    with _open(tmp_path / "s", {"writer": FakeListChatModel(responses=[reply])}) as mem:
        mem.add("u", "I have 3 kids.", turn_id="t1")
        (entry,) = mem.export("u")["memories"]
        assert entry["text"] == "I have 3 kids."
        assert entry["source_ids"] == ["t1"]
        assert mem.stats()["models"]["writer"]["fallbacks"] == 1


# --- consolidator -------------------------------------------------------------------------


def _consolidator(prompt: str) -> str:
    if "You keep a person's knowledge base consistent" in prompt:
        records = _numbered(prompt)
        target = next(n for n, text in records.items() if "eats meat" in text)
        return json.dumps({"action": "supersede", "target": target, "reason": "diet changed"})
    notes = []
    for n, text in _numbered(prompt).items():
        if "meat" in text:
            knowledge = {"text": "Alice eats meat.", "kind": "fact", "subject": "Alice"}
        elif "vegetarian" in text:
            knowledge = {"text": "Alice is vegetarian.", "kind": "fact", "subject": "Alice"}
        else:
            continue
        notes.append({"id": n, "knowledge": [knowledge]})
    return json.dumps({"notes": notes})


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_consolidators_supersede_is_applied(tmp_path: Path, backend: str) -> None:
    model = scripted(backend, _consolidator)
    # Every record counts as related, so the judge is asked whatever the embedder says.
    with _open(tmp_path / "s", {"consolidator": model}, link_similarity=-1.0) as mem:
        mem.add("u", "I eat meat every day.", speaker="Alice", timestamp="2024-01-01T00:00:00Z")
        first = mem.consolidate("u")
        assert first.new == 1
        mem.add("u", "I became vegetarian.", speaker="Alice", timestamp="2024-06-01T00:00:00Z")
        report = mem.consolidate("u")
        assert report.superseded == 1
        assert report.model_calls == 2  # one abstraction, one judgement
        ltm = {m["text"]: m for m in mem.export("u")["memories"] if m["tier"] == "ltm"}
        old, new = ltm["Alice eats meat."], ltm["Alice is vegetarian."]
        assert old["status"] == Status.SUPERSEDED.value
        assert old["superseded_by"] == new["id"]
        assert new["status"] == Status.ACTIVE.value
        assert mem.stats()["models"]["consolidator"]["calls"] == 3


def test_the_consolidator_is_awaited_by_aconsolidate(tmp_path: Path) -> None:
    async def run() -> tuple[int, int]:
        async with _open(
            tmp_path / "s",
            {"consolidator": ScriptedChat(script=_consolidator)},
            link_similarity=-1.0,
        ) as mem:
            await mem.aadd("u", "I eat meat every day.", speaker="Alice", timestamp="2024-01-01")
            await mem.aconsolidate("u")
            await mem.aadd("u", "I became vegetarian.", speaker="Alice", timestamp="2024-06-01")
            report = await mem.aconsolidate("u")
            return report.superseded, report.model_calls

    assert asyncio.run(run()) == (1, 2)


def test_a_failing_consolidator_falls_back_to_the_local_abstractor(tmp_path: Path) -> None:
    with _open(tmp_path / "s", {"consolidator": FakeListChatModel(responses=["no idea"])}) as mem:
        mem.add("u", "I moved to Berlin last month.", speaker="Alice", timestamp="2024-03-10")
        report = mem.consolidate("u")
        assert report.new == 1  # the local abstractor's record
        (record,) = [m for m in mem.export("u")["memories"] if m["tier"] == Tier.LTM.value]
        assert record["text"].startswith("Alice moved to Berlin")
        assert mem.stats()["models"]["consolidator"]["fallback_reasons"] == {"unparseable": 1}


# --- budgets, failures, accounting ----------------------------------------------------------


class _Slow(BaseChatModel):
    """A model that takes longer than its time limit."""

    @property
    def _llm_type(self) -> str:
        return "slow"

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        time.sleep(1.0)
        return ChatResult(generations=[ChatGeneration(message=AIMessage("{}"))])


class _Broken(BaseChatModel):
    @property
    def _llm_type(self) -> str:
        return "broken"

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        raise ConnectionError("the model server is down")


def test_a_slow_or_broken_model_never_fails_a_query_or_loses_a_write(tmp_path: Path) -> None:
    with _open(tmp_path / "slow", _Slow(), slm_timeout_s=0.1) as mem:
        _pets(mem)
        assert len(mem.search("u", "Tell me about my dog")) == 3
        assert mem.stats("u")["mtm"] == 3
        reasons = {r: s["fallback_reasons"] for r, s in mem.stats()["models"].items()}
        assert reasons["controller"] == {"timeout": 1}
        assert reasons["selector"] == {"timeout": 1}
        assert reasons["writer"] == {"timeout": 3}
    with _open(tmp_path / "broken", _Broken()) as mem:
        _pets(mem)
        assert len(mem.search("u", "Tell me about my dog")) == 3
        assert mem.consolidate("u").entries == 3
        models = mem.stats()["models"]
        assert {r: s["fallbacks"] > 0 for r, s in models.items()} == {
            "consolidator": True,
            "controller": True,
            "selector": True,
            "writer": True,
        }


def test_stats_name_each_roles_model_and_prompt_version(tmp_path: Path) -> None:
    with _open(tmp_path / "s", FakeListChatModel(responses=["{}"])) as mem:
        stats = mem.stats()
        assert stats["prompt_version"] == PROMPT_VERSION
        assert set(stats["models"]) == {"consolidator", "controller", "selector", "writer"}
        assert stats["models"]["writer"]["model"] == "langchain:fake-list-chat-model"
        assert stats["models"]["writer"]["calls"] == 0


def test_an_unknown_role_or_model_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="unknown slm role"):
        _open(tmp_path / "a", {"planner": FakeListChatModel(responses=["{}"])})
    with pytest.raises(ConfigurationError, match="slm must be"):
        _open(tmp_path / "b", 42)
    with pytest.raises(ConfigurationError, match="slm_timeout_s"):
        _open(tmp_path / "c", None, slm_timeout_s=0)


def test_a_tiny_random_transformers_model_drives_every_role(
    tmp_path: Path, tiny_lm_path: Path
) -> None:
    """The real loading and generation code, end to end: its output is nonsense, so every
    step falls back, is counted, and nothing fails or is lost."""
    with _open(tmp_path / "s", str(tiny_lm_path)) as mem:
        _pets(mem)
        assert len(mem.search("u", "Tell me about my dog")) == 3
        assert mem.consolidate("u").entries == 3
        assert mem.stats("u")["mtm"] == 3
        models = mem.stats()["models"]
        assert set(models) == {"consolidator", "controller", "selector", "writer"}
        for role, used in models.items():
            assert used["model"] == "transformers:model", role
            assert used["calls"] >= 1, role
            assert used["tokens_in"] > 0, role
            assert used["fallbacks"] >= 1, role
