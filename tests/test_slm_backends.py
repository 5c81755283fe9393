"""The small-language-model layer: the three backends (a local transformers model built here,
LangChain and LlamaIndex fakes), resolving ``slm=``, tolerant JSON parsing, and the guarded
call every role makes (time limit, fallbacks, accounting). Nothing touches the network."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import (
    FakeListChatModel,
    GenericFakeChatModel,
)
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    CompletionResponse,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.llms import CustomLLM, MockLLM
from pydantic import BaseModel, Field

from lightmem_core import ConfigurationError
from lightmem_core.slm.accounting import ModelLedger
from lightmem_core.slm.backends.transformers_local import TransformersGenerator
from lightmem_core.slm.base import Generation, TextGenerator
from lightmem_core.slm.calls import RoleModel
from lightmem_core.slm.parsing import extract_json, parse_as
from lightmem_core.slm.prompts import PROMPTS, RolePrompt
from lightmem_core.slm.resolve import ROLES, resolve_generator, resolve_roles
from lightmem_langchain.generator import LangChainGenerator
from lightmem_llamaindex.generator import LlamaIndexGenerator

CHAT = [
    {"role": "system", "content": "You answer briefly."},
    {"role": "user", "content": "What pet does Alice have?"},
    {"role": "assistant", "content": "A beagle."},
    {"role": "user", "content": "What is its name?"},
]


# --------------------------------------------------------------------------- transformers


@pytest.fixture(scope="module")
def tiny_lm(tiny_lm_path: Path) -> TransformersGenerator:
    return TransformersGenerator(tiny_lm_path)


@pytest.fixture(scope="module")
def tiny_lm_plain(tiny_lm_no_template_path: Path) -> TransformersGenerator:
    return TransformersGenerator(tiny_lm_no_template_path)


def test_transformers_loading_is_lazy(tiny_lm_path: Path) -> None:
    generator = TransformersGenerator(tiny_lm_path)
    assert generator._model is None
    assert generator._tokenizer is None
    assert generator.name == "transformers:model"
    assert isinstance(generator, TextGenerator)


@pytest.mark.parametrize("missing", ["/no/such/model/dir", "nobody/no-such-model"])
def test_transformers_missing_model_is_a_configuration_error(tmp_path: Path, missing: str) -> None:
    generator = TransformersGenerator(missing)  # constructing never loads, so never fails
    with pytest.raises(ConfigurationError, match="cannot load the language model"):
        generator.generate("hi", max_tokens=4)


def test_transformers_folder_without_a_model_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        TransformersGenerator(tmp_path).generate("hi", max_tokens=4)


@pytest.mark.parametrize("prompt", ["What pet does Alice have?", CHAT], ids=["string", "chat"])
@pytest.mark.parametrize("template", [True, False], ids=["template", "no-template"])
def test_transformers_generates_with_exact_counts(
    tiny_lm: TransformersGenerator,
    tiny_lm_plain: TransformersGenerator,
    prompt: str | list[dict[str, str]],
    template: bool,
) -> None:
    generator = tiny_lm if template else tiny_lm_plain
    result = generator.generate(prompt, max_tokens=12)
    assert isinstance(result, Generation)
    assert isinstance(result.text, str)
    assert result.exact
    assert 0 < result.tokens_out <= 12
    tokenizer = generator._tokenizer
    text = generator._prompt_text(tokenizer, prompt)
    expected_in = len(tokenizer(text, add_special_tokens=False)["input_ids"])
    assert result.tokens_in == expected_in
    if template:
        assert text.startswith("<|im_start|>")
        assert text.endswith("<|im_start|>assistant\n")
    else:
        assert "<|im_start|>" not in text
        assert text.endswith("Assistant:")
    if not isinstance(prompt, str):
        assert all(m["content"] in text for m in prompt)


NO_SYSTEM_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}"
    "{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def test_transformers_folds_system_into_user_for_strict_templates(tiny_lm_path: Path) -> None:
    """Templates that refuse a system role (Gemma, early Mistral) still get the instructions."""
    generator = TransformersGenerator(tiny_lm_path)
    tokenizer, _ = generator._load()
    tokenizer.chat_template = NO_SYSTEM_TEMPLATE
    text = generator._prompt_text(tokenizer, CHAT)
    assert "<|im_start|>system" not in text
    assert text.startswith("<|im_start|>user\nYou answer briefly.\n\nWhat pet does Alice have?")
    assert text.endswith("<|im_start|>assistant\n")
    assert generator.generate(CHAT, max_tokens=3).tokens_out <= 3
    only_system = generator._prompt_text(tokenizer, [{"role": "system", "content": "Rules."}])
    assert only_system.startswith("<|im_start|>user\nRules.<|im_end|>")


def test_transformers_is_deterministic_and_cuts_input(tiny_lm_path: Path) -> None:
    short = TransformersGenerator(tiny_lm_path, max_input_tokens=8)
    first = short.generate(CHAT, max_tokens=5)
    assert first.tokens_in == 8  # cut from the left to the input budget
    assert short.generate(CHAT, max_tokens=5) == first  # greedy: repeatable


def test_transformers_honours_stop_sequences(tiny_lm: TransformersGenerator) -> None:
    prompt = "Reply with one JSON object only:"
    full = tiny_lm.generate(prompt, max_tokens=40)
    # A stretch of letters from inside the (random) output serves as the stop sequence.
    word = re.search(r"[A-Za-z]{2,}", full.text[2:])
    assert word is not None, full.text
    stop = word.group()
    cut = tiny_lm.generate(prompt, max_tokens=40, stop=[stop])
    assert stop not in cut.text
    assert cut.text == full.text.split(stop, 1)[0]
    assert cut.tokens_out < full.tokens_out
    assert cut.tokens_in == full.tokens_in


def test_transformers_agenerate(tiny_lm: TransformersGenerator) -> None:
    sync = tiny_lm.generate(CHAT, max_tokens=6)
    result = asyncio.run(tiny_lm.agenerate(CHAT, max_tokens=6))
    assert result == sync


def test_tiny_model_through_a_role_falls_back_and_never_raises(
    tiny_lm: TransformersGenerator,
) -> None:
    """Nonsense from a real (random) model: every call falls back, counted, nothing raised."""
    ledger = ModelLedger()
    prompt = PROMPTS["controller"]
    model = RoleModel(tiny_lm, prompt, ledger, timeout_s=60)
    values = {
        "today": "2024-05-01",
        "people": "Alice, Bob",
        "question": "What pet does Alice have?",
    }
    assert model.call(Plan, **values) is None
    assert asyncio.run(model.acall(Plan, **values)) is None
    stats = ledger.role("controller")
    assert stats.model == "transformers:model"
    assert stats.calls == 2
    assert 0 < stats.tokens_out <= 2 * prompt.max_output_tokens
    assert stats.tokens_in > 100  # exact counts from the tokenizer (a long system prompt)
    assert sum(stats.fallbacks.values()) == 2
    assert set(stats.fallbacks) <= {"unparseable", "invalid"}


# --------------------------------------------------------------------------- LangChain


class RecordingChat(BaseChatModel):
    """A LangChain chat model that records what it is sent and may report usage."""

    reply: str = "ok"
    usage: dict[str, int] | None = None
    seen: list[list[BaseMessage]] = Field(default_factory=list)
    stops: list[list[str] | None] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "recording"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.seen.append(list(messages))
        self.stops.append(stop)
        message = AIMessage(content=self.reply)
        if self.usage is not None:
            message = AIMessage(content=self.reply, usage_metadata=self.usage)
        return ChatResult(generations=[ChatGeneration(message=message)])


def test_langchain_scripted_replies_sync_and_async() -> None:
    fake = FakeListChatModel(responses=['{"intent": "general"}', "second"])
    generator = LangChainGenerator(fake)
    assert generator.name == "langchain:fake-list-chat-model"
    assert isinstance(generator, TextGenerator)
    first = generator.generate("plan it", max_tokens=50)
    second = asyncio.run(generator.agenerate(CHAT, max_tokens=50))
    assert (first.text, second.text) == ('{"intent": "general"}', "second")


def test_langchain_generic_fake_estimates_tokens_without_usage() -> None:
    fake = GenericFakeChatModel(messages=iter(["Alice has a beagle named Max."]))
    result = LangChainGenerator(fake).generate(CHAT, max_tokens=50)
    assert result.text == "Alice has a beagle named Max."
    assert not result.exact
    assert result.tokens_out == 7  # six words and a full stop
    assert result.tokens_in > sum(len(m["content"].split()) for m in CHAT)


def test_langchain_exact_tokens_from_usage_metadata() -> None:
    usage = {"input_tokens": 321, "output_tokens": 9, "total_tokens": 330}
    fake = GenericFakeChatModel(messages=iter([AIMessage(content="Max.", usage_metadata=usage)]))
    result = LangChainGenerator(fake).generate("name?", max_tokens=50)
    assert result == Generation("Max.", 321, 9, exact=True)
    recording = RecordingChat(reply="async", usage=usage)
    result = asyncio.run(LangChainGenerator(recording).agenerate("name?", max_tokens=5))
    assert result == Generation("async", 321, 9, exact=True)


def test_langchain_roles_and_stop_are_passed() -> None:
    recording = RecordingChat(reply="fine")
    generator = LangChainGenerator(recording)
    generator.generate(CHAT, max_tokens=10, stop=["\n\n"])
    generator.generate("just a string", max_tokens=10)
    chat, plain = recording.seen
    assert [type(m) for m in chat] == [SystemMessage, HumanMessage, AIMessage, HumanMessage]
    assert [m.content for m in chat] == [m["content"] for m in CHAT]
    assert [type(m) for m in plain] == [HumanMessage]
    assert recording.stops == [["\n\n"], None]


def test_langchain_content_blocks_keep_text() -> None:
    blocks = [{"type": "text", "text": '{"a": '}, {"type": "text", "text": "1}"}]
    fake = GenericFakeChatModel(messages=iter([AIMessage(content=blocks)]))  # type: ignore[arg-type]
    assert LangChainGenerator(fake).generate("x", max_tokens=5).text == '{"a": 1}'


# --------------------------------------------------------------------------- LlamaIndex


class ScriptedLLM(CustomLLM):
    """A LlamaIndex LLM with scripted replies that records the chat it is sent."""

    replies: list[str] = Field(default_factory=list)
    usage: dict[str, int] | None = None
    seen: list[list[ChatMessage]] = Field(default_factory=list)

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name="scripted", is_chat_model=True)

    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        self.seen.append(list(messages))
        raw = {"usage": self.usage} if self.usage is not None else None
        reply = ChatMessage(role=MessageRole.ASSISTANT, content=self.replies.pop(0))
        return ChatResponse(message=reply, raw=raw)

    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        raise NotImplementedError

    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
        raise NotImplementedError


class ScriptedMock(MockLLM):
    """MockLLM answering from a script instead of echoing (its chat goes through complete)."""

    replies: list[str] = Field(default_factory=list)

    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text=self.replies.pop(0))


def test_llamaindex_mock_llm_echoes_with_estimated_tokens() -> None:
    generator = LlamaIndexGenerator(MockLLM())
    assert isinstance(generator, TextGenerator)
    result = generator.generate(CHAT, max_tokens=20)
    assert "What is its name?" in result.text  # MockLLM echoes its prompt
    assert not result.exact
    assert result.tokens_in > 0
    assert result.tokens_out > 0


def test_llamaindex_scripted_sync_and_async() -> None:
    llm = ScriptedMock(max_tokens=None)  # MockLLM's own __init__ takes only its own arguments
    llm.replies = ['{"intent": "general"}', "async reply"]
    generator = LlamaIndexGenerator(llm)
    assert generator.generate("plan", max_tokens=20).text == '{"intent": "general"}'
    assert asyncio.run(generator.agenerate(CHAT, max_tokens=20)).text == "async reply"


def test_llamaindex_roles_and_exact_usage() -> None:
    llm = ScriptedLLM(replies=["one", "two"], usage={"prompt_tokens": 44, "completion_tokens": 3})
    generator = LlamaIndexGenerator(llm)
    assert generator.name == "llamaindex:scripted"
    assert generator.generate(CHAT, max_tokens=20) == Generation("one", 44, 3, exact=True)
    result = asyncio.run(generator.agenerate("plain", max_tokens=20))
    assert result == Generation("two", 44, 3, exact=True)
    chat, plain = llm.seen
    assert [m.role for m in chat] == [
        MessageRole.SYSTEM,
        MessageRole.USER,
        MessageRole.ASSISTANT,
        MessageRole.USER,
    ]
    assert [m.content for m in chat] == [m["content"] for m in CHAT]
    assert [m.role for m in plain] == [MessageRole.USER]


# --------------------------------------------------------------------------- resolving slm=


class CustomGenerator:
    """A user's own generator: anything with ``name``, ``generate`` and ``agenerate``."""

    name = "custom"

    def __init__(self, text: str = "", *, error: Exception | None = None) -> None:
        self.text = text
        self.error = error
        self.release = threading.Event()
        self.delay = 0.0
        self.calls: list[dict[str, Any]] = []

    def _answer(self, prompt: Any, max_tokens: int, json_schema: Any) -> Generation:
        self.calls.append({"prompt": prompt, "max_tokens": max_tokens, "schema": json_schema})
        if self.error is not None:
            raise self.error
        return Generation(self.text, 11, 7, exact=True)

    def generate(
        self,
        prompt: Any,
        *,
        max_tokens: int,
        json_schema: Mapping[str, Any] | None = None,
        stop: Sequence[str] = (),
    ) -> Generation:
        if self.delay:
            self.release.wait(self.delay)  # released by the test: no thread outlives it long
        return self._answer(prompt, max_tokens, json_schema)

    async def agenerate(
        self,
        prompt: Any,
        *,
        max_tokens: int,
        json_schema: Mapping[str, Any] | None = None,
        stop: Sequence[str] = (),
    ) -> Generation:
        if self.delay:
            await asyncio.sleep(self.delay)
        return self._answer(prompt, max_tokens, json_schema)


def test_resolve_generator_by_kind(tiny_lm_path: Path) -> None:
    assert isinstance(resolve_generator(FakeListChatModel(responses=["x"])), LangChainGenerator)
    assert isinstance(resolve_generator(RecordingChat()), LangChainGenerator)
    assert isinstance(resolve_generator(MockLLM()), LlamaIndexGenerator)
    assert isinstance(resolve_generator(ScriptedLLM()), LlamaIndexGenerator)
    by_str = resolve_generator(str(tiny_lm_path))
    by_path = resolve_generator(tiny_lm_path)
    assert isinstance(by_str, TransformersGenerator)
    assert isinstance(by_path, TransformersGenerator)
    assert by_path._model is None  # resolving does not load
    custom = CustomGenerator()
    assert resolve_generator(custom) is custom


@pytest.mark.parametrize("bad", [42, object(), ["a", "model"], b"bytes", {"not": "a model"}])
def test_resolve_generator_rejects_other_things(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="slm must be"):
        resolve_generator(bad)


def test_resolve_roles_shares_one_wrapper() -> None:
    assert resolve_roles(None) == {}
    fake = FakeListChatModel(responses=["x"])
    everywhere = resolve_roles(fake)
    assert set(everywhere) == set(ROLES)
    assert len({id(g) for g in everywhere.values()}) == 1
    assert isinstance(everywhere["writer"], LangChainGenerator)

    other = MockLLM()
    mixed = resolve_roles(
        {"controller": fake, "selector": fake, "writer": None, "consolidator": other}
    )
    assert set(mixed) == {"controller", "selector", "consolidator"}
    assert mixed["controller"] is mixed["selector"]
    assert isinstance(mixed["consolidator"], LlamaIndexGenerator)


def test_resolve_roles_shares_one_local_model(tiny_lm_path: Path) -> None:
    roles = resolve_roles({"controller": str(tiny_lm_path), "writer": tiny_lm_path})
    assert roles["controller"] is roles["writer"]


def test_resolve_roles_rejects_unknown_roles_and_bad_models() -> None:
    with pytest.raises(ConfigurationError, match="unknown slm role"):
        resolve_roles({"controller": CustomGenerator(), "summariser": CustomGenerator()})
    with pytest.raises(ConfigurationError):
        resolve_roles({"controller": 3.5})
    with pytest.raises(ConfigurationError):
        resolve_roles(12)


# --------------------------------------------------------------------------- parsing


class Plan(BaseModel):
    intent: str
    queries: list[str] = Field(default_factory=list)
    k: int | None = None


class Items(BaseModel):
    items: list[int]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            'Sure! The plan: {"intent": "general", "k": 5} Hope it helps.',
            {"intent": "general", "k": 5},
        ),
        (
            'Here:\n```json\n{"intent": "x", "queries": ["a", "b"],}\n```\nDone.',
            {"intent": "x", "queries": ["a", "b"]},
        ),
        (
            "{'intent': 'x', 'people': ['Alice'], 'time': None, 'ok': True}",
            {"intent": "x", "people": ["Alice"], "time": None, "ok": True},
        ),
        (
            '{"intent": "x", "queries": ["pets", "Alice\'s do',
            {"intent": "x", "queries": ["pets", "Alice's do"]},
        ),
        ('["a", "b"]', ["a", "b"]),
        ('```\n[{"id": 1, "keep": true,}]\n```', [{"id": 1, "keep": True}]),
        ('{"a": 1} and also {"b": 2}', {"a": 1}),
        ('Memory [2] and [3] help: {"items": [2, 3]}', {"items": [2, 3]}),
        (
            '{"text": "a } inside \\" quote {", "n": [1, 2]} tail',
            {"text": 'a } inside " quote {', "n": [1, 2]},
        ),
        ("I cannot answer that question.", None),
        ("", None),
    ],
)
def test_extract_json(text: str, expected: Any) -> None:
    assert extract_json(text) == expected


def test_parse_as() -> None:
    assert parse_as(Plan, 'ok {"intent": "general", "k": 3,}') == Plan(intent="general", k=3)
    assert parse_as(Plan, '```json\n{"intent": "x", "queries": ["a"]}\n```') == Plan(
        intent="x", queries=["a"]
    )
    assert parse_as(Plan, "{'intent': 'x', 'k': None}") == Plan(intent="x")
    assert parse_as(Plan, '{"intent": "x", "queries": ["pe') == Plan(intent="x", queries=["pe"])
    assert parse_as(Items, "[1, 2, 3]") == Items(items=[1, 2, 3])  # bare list, one-field model
    assert parse_as(Items, "The memories that help are 1 and 3.") is None
    assert parse_as(Plan, '{"queries": ["a"]}') is None  # required field missing
    assert parse_as(Plan, '{"intent": ["not", "a", "string"]}') is None
    assert parse_as(Plan, '["a", "b"]') is None  # a bare list only fits a one-field model
    assert parse_as(Items, '{"items": "many"}') is None


# --------------------------------------------------------------------------- guarded calls


TEST_PROMPT = RolePrompt(
    role="controller",
    version="test",
    system="Reply with JSON.",
    user="Question: {question}",
    max_input_tokens=100,
    max_output_tokens=32,
    timeout_s=5.0,
)


def _call(model: RoleModel, use_async: bool) -> Plan | None:
    if use_async:
        return asyncio.run(model.acall(Plan, question="What pet?"))
    return model.call(Plan, question="What pet?")


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_role_model_valid_answer_is_parsed_and_counted(use_async: bool) -> None:
    ledger = ModelLedger()
    generator = CustomGenerator('{"intent": "stable_fact", "queries": ["Alice pet"], "k": 4}')
    model = RoleModel(generator, TEST_PROMPT, ledger)
    assert _call(model, use_async) == Plan(intent="stable_fact", queries=["Alice pet"], k=4)
    (sent,) = generator.calls
    assert sent["max_tokens"] == 32
    assert sent["schema"] == Plan.model_json_schema()
    assert sent["prompt"][1] == {"role": "user", "content": "Question: What pet?"}
    stats = ledger.role("controller")
    assert (stats.model, stats.calls, stats.tokens_in, stats.tokens_out) == ("custom", 1, 11, 7)
    assert not stats.fallbacks
    assert ledger.totals() == {"calls": 1, "tokens_in": 11, "tokens_out": 7, "fallbacks": 0}


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("I think Alice has a dog.", "unparseable"),
        ("   ", "unparseable"),
        ('{"k": "many"}', "invalid"),
        ('["a", "b"]', "invalid"),
    ],
)
def test_role_model_unusable_answers_fall_back(text: str, reason: str, use_async: bool) -> None:
    ledger = ModelLedger()
    model = RoleModel(CustomGenerator(text), TEST_PROMPT, ledger, account_as="selector")
    assert _call(model, use_async) is None
    stats = ledger.role("selector")
    assert stats.calls == 1
    assert (stats.tokens_in, stats.tokens_out) == (11, 7)
    assert dict(stats.fallbacks) == {reason: 1}


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_role_model_error_falls_back(use_async: bool, caplog: pytest.LogCaptureFixture) -> None:
    ledger = ModelLedger()
    model = RoleModel(CustomGenerator(error=RuntimeError("provider down")), TEST_PROMPT, ledger)
    assert _call(model, use_async) is None
    stats = ledger.role("controller")
    assert dict(stats.fallbacks) == {"error": 1}
    assert stats.calls == 1
    assert stats.tokens_in > 0  # what was sent is still counted
    assert stats.tokens_out == 0
    assert "provider down" in caplog.text
    assert ledger.snapshot()["controller"]["fallback_reasons"] == {"error": 1}


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_role_model_timeout_falls_back(use_async: bool) -> None:
    ledger = ModelLedger()
    generator = CustomGenerator('{"intent": "late"}')
    generator.delay = 5.0
    model = RoleModel(generator, TEST_PROMPT, ledger, timeout_s=0.2)
    started = time.perf_counter()
    try:
        assert _call(model, use_async) is None
    finally:
        generator.release.set()
    assert time.perf_counter() - started < 2.0
    stats = ledger.role("controller")
    assert dict(stats.fallbacks) == {"timeout": 1}
    assert stats.calls == 1
    assert stats.tokens_out == 0
