"""One guarded model call: budgets, a time limit, tolerant parsing, accounting.

:class:`RoleModel` is what every role uses. It never raises because of the model: a
timeout, an exception, text without JSON or JSON of the wrong shape all come back as
``None``, with the reason counted as a fallback in the :class:`ModelLedger`, and the role
then does what the local default does. Sync and async share everything but the wait.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Sequence
from functools import cache, partial
from typing import Any, TypeVar

from pydantic import BaseModel

from .._tokens import approx_token_count
from .accounting import ModelLedger
from .base import Generation, TextGenerator, estimate_tokens
from .parsing import extract_json, parse_as
from .prompts import RolePrompt

__all__ = ["RoleModel", "fit_lines"]

logger = logging.getLogger("lightmem.slm")

T = TypeVar("T", bound=BaseModel)


def _within(timeout_s: float, work: Callable[[], Generation]) -> Generation:
    """``work()`` in a thread of its own, given up on after ``timeout_s`` (TimeoutError).

    Its own thread, not a pool's: a hung model is abandoned with its thread and never holds
    back later calls."""
    outcome: concurrent.futures.Future[Generation] = concurrent.futures.Future()

    def run() -> None:
        try:
            outcome.set_result(work())
        except BaseException as err:
            outcome.set_exception(err)

    threading.Thread(target=run, name="lightmem-slm", daemon=True).start()
    return outcome.result(timeout=timeout_s)


@cache
def _schema(model: type[BaseModel]) -> dict[str, Any]:
    """A role's output schema (built once: pydantic takes about a millisecond)."""
    return model.model_json_schema()


def fit_lines(lines: Sequence[str], budget: int) -> list[str]:
    """The leading lines that fit ``budget`` estimated tokens (at least nothing)."""
    kept, used = [], 0
    for line in lines:
        cost = approx_token_count(line) + 1
        if used + cost > budget:
            break
        kept.append(line)
        used += cost
    return kept


def clip(text: str, tokens: int) -> str:
    """``text`` cut to about ``tokens`` estimated tokens (whole words)."""
    words = text.split()
    if approx_token_count(text) <= tokens:
        return text
    out: list[str] = []
    used = 0
    for word in words:
        used += approx_token_count(word)
        if used > tokens:
            break
        out.append(word)
    return " ".join(out) + " ..."


class RoleModel:
    """A role's generator, prompt and accounting."""

    def __init__(
        self,
        generator: TextGenerator,
        prompt: RolePrompt,
        ledger: ModelLedger,
        *,
        timeout_s: float | None = None,
        account_as: str | None = None,
    ) -> None:
        self.generator = generator
        self.prompt = prompt
        self.ledger = ledger
        self.role = account_as or prompt.role
        self.timeout_s = prompt.timeout_s if timeout_s is None else timeout_s
        ledger.register(self.role, generator.name)

    def fallback(self, reason: str) -> None:
        """Count a step that used the local default (a role may refuse a parsed answer)."""
        self.ledger.record_fallback(self.role, reason)

    def call(self, schema: type[T], **values: str) -> T | None:
        messages = self.prompt.messages(**values)
        started = time.perf_counter()
        try:
            generation = _within(
                self.timeout_s,
                partial(
                    self.generator.generate,
                    messages,
                    max_tokens=self.prompt.max_output_tokens,
                    json_schema=_schema(schema),
                ),
            )
        except concurrent.futures.TimeoutError:
            self._failed("timeout", started, messages)
            return None
        except Exception as err:  # a model failure never fails the caller
            logger.warning("%s model call failed: %s", self.role, err)
            self._failed("error", started, messages)
            return None
        return self._parsed(schema, generation, started)

    async def acall(self, schema: type[T], **values: str) -> T | None:
        messages = self.prompt.messages(**values)
        started = time.perf_counter()
        try:
            generation = await asyncio.wait_for(
                self.generator.agenerate(
                    messages,
                    max_tokens=self.prompt.max_output_tokens,
                    json_schema=_schema(schema),
                ),
                timeout=self.timeout_s,
            )
        except TimeoutError:
            self._failed("timeout", started, messages)
            return None
        except Exception as err:
            logger.warning("%s model call failed: %s", self.role, err)
            self._failed("error", started, messages)
            return None
        return self._parsed(schema, generation, started)

    def _failed(self, reason: str, started: float, messages: list[dict[str, str]]) -> None:
        tokens_in = estimate_tokens(messages)  # what was sent; nothing came back
        self.ledger.record_call(
            self.role, tokens_in=tokens_in, tokens_out=0, seconds=time.perf_counter() - started
        )
        self.fallback(reason)
        return None

    def _parsed(self, schema: type[T], generation: Generation, started: float) -> T | None:
        self.ledger.record_call(
            self.role,
            tokens_in=generation.tokens_in,
            tokens_out=generation.tokens_out,
            seconds=time.perf_counter() - started,
        )
        if not generation.text.strip():
            self.fallback("unparseable")
            return None
        parsed = parse_as(schema, generation.text)
        if parsed is None:
            logger.debug("%s: unusable output %r", self.role, generation.text[:200])
            # JSON of the wrong shape (an object or a list) is invalid; no JSON, unparseable.
            found = extract_json(generation.text)
            self.fallback("unparseable" if found is None else "invalid")
        return parsed
