"""A local Hugging Face causal language model through transformers.

Loads from a local folder or a hub id already in the local cache (never downloads unless
``local_files_only=False``), on first use. Uses the tokenizer's chat template when it has
one. Greedy decoding: the roles want the model's best guess, and a step is repeatable.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..._errors import ConfigurationError, MissingDependency
from ..base import Generation, Prompt, as_messages, flatten

__all__ = ["TransformersGenerator"]


class TransformersGenerator:
    """A transformers causal LM as a :class:`~lightmem_core.slm.TextGenerator`.

    Args:
        model: a local folder or a hub id (e.g. ``Qwen/Qwen2.5-0.5B-Instruct``) found in the
            local Hugging Face cache.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``...
        dtype: ``"auto"`` (the checkpoint's own), ``"float32"``, ``"bfloat16"``, ``"float16"``.
        threads: torch CPU threads (process-wide); ``None`` leaves torch's default.
        max_input_tokens: prompts are cut from the left beyond this (keeps the latest text).
        local_files_only: never reach the network (the default).
    """

    def __init__(
        self,
        model: str | os.PathLike[str],
        *,
        device: str = "cpu",
        dtype: str = "auto",
        threads: int | None = None,
        max_input_tokens: int = 4096,
        local_files_only: bool = True,
    ) -> None:
        self.source = str(model)
        self.name = f"transformers:{Path(self.source).name or self.source}"
        self.device = device
        self.dtype = dtype
        self.threads = threads
        self.max_input_tokens = max_input_tokens
        self.local_files_only = local_files_only
        self._model: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()  # one generation at a time; loads once

    def _load(self) -> tuple[Any, Any]:
        if self._model is None:
            if self.local_files_only:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
            try:
                import torch
                from transformers import AutoModelForCausalLM, AutoTokenizer
            except ImportError as err:  # pragma: no cover - torch is a core dependency
                raise MissingDependency(
                    "the local model backend needs transformers and torch"
                ) from err
            if self.threads is not None:
                torch.set_num_threads(self.threads)
            tokenizer: Any
            model: Any
            try:
                tokenizer = AutoTokenizer.from_pretrained(
                    self.source, local_files_only=self.local_files_only
                )
                model = AutoModelForCausalLM.from_pretrained(
                    self.source,
                    local_files_only=self.local_files_only,
                    dtype=self.dtype if self.dtype == "auto" else getattr(torch, self.dtype),
                )
            except (OSError, ValueError) as err:
                raise ConfigurationError(
                    f"cannot load the language model {self.source!r} offline: {err}"
                ) from err
            model.to(self.device)
            model.eval()
            self._tokenizer, self._model = tokenizer, model
        return self._tokenizer, self._model

    def _prompt_text(self, tokenizer: Any, prompt: Prompt) -> str:
        messages = as_messages(prompt)
        if getattr(tokenizer, "chat_template", None):
            from jinja2 import TemplateError

            try:
                text = tokenizer.apply_chat_template(
                    messages, tokenize=False, add_generation_prompt=True
                )
            except TemplateError:
                # Some templates refuse a system role (Gemma, early Mistral): fold it into
                # the first user message instead.
                if not any(m["role"] == "system" for m in messages):
                    raise
                text = tokenizer.apply_chat_template(
                    _fold_system(messages), tokenize=False, add_generation_prompt=True
                )
            return str(text)
        return flatten(messages)

    def generate(
        self,
        prompt: Prompt,
        *,
        max_tokens: int,
        json_schema: Mapping[str, Any] | None = None,
        stop: Sequence[str] = (),
    ) -> Generation:
        import torch

        with self._lock:
            tokenizer, model = self._load()
            text = self._prompt_text(tokenizer, prompt)
            encoded = tokenizer(text, return_tensors="pt", add_special_tokens=False)
            ids = encoded["input_ids"][:, -self.max_input_tokens :].to(self.device)
            mask = encoded["attention_mask"][:, -self.max_input_tokens :].to(self.device)
            options: dict[str, Any] = {
                "max_new_tokens": max_tokens,
                "do_sample": False,
                "pad_token_id": tokenizer.pad_token_id
                if tokenizer.pad_token_id is not None
                else tokenizer.eos_token_id,
            }
            if stop:
                options.update(stop_strings=list(stop), tokenizer=tokenizer)
            with torch.inference_mode():
                output = model.generate(input_ids=ids, attention_mask=mask, **options)
            new = output[0, ids.shape[1] :]
            answer = tokenizer.decode(new, skip_special_tokens=True)
        for marker in stop:  # stop strings are kept by generate; cut them
            answer = answer.split(marker, 1)[0]
        return Generation(answer, int(ids.shape[1]), int(new.shape[0]), exact=True)

    async def agenerate(
        self,
        prompt: Prompt,
        *,
        max_tokens: int,
        json_schema: Mapping[str, Any] | None = None,
        stop: Sequence[str] = (),
    ) -> Generation:
        """Generation is compute-bound: it runs in a worker thread, off the event loop."""
        return await asyncio.to_thread(
            self.generate, prompt, max_tokens=max_tokens, json_schema=json_schema, stop=stop
        )

    def __repr__(self) -> str:
        return f"TransformersGenerator({self.source!r}, device={self.device!r})"


def _fold_system(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """The chat without system messages, their text put before the first user message's."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    rest = [dict(m) for m in messages if m["role"] != "system"]
    for message in rest:
        if message["role"] == "user":
            message["content"] = f"{system}\n\n{message['content']}"
            return rest
    return [{"role": "user", "content": system}, *rest]
