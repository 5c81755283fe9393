"""Recognising memories that read like instructions to a model (prompt injection).

A memory is data: it is always rendered quoted, inside delimiters it cannot close (see
:mod:`lightmem_core.retrieval.render`). Some stored text still tries to talk to the model
reading it ("ignore all previous instructions", fake role tags, a closing delimiter). Such
text is kept (it may be what the user really said) but flagged: ``instruction_like`` in the
memory's metadata, in the hit's ``flags``, and on its line of the rendered context, so the
model and the application can treat it with suspicion.

The patterns aim at text addressed to a model or a prompt's structure, not at ordinary
requests between people ("remind me to call mom" is not flagged).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["INSTRUCTION_LIKE", "flag_instructions", "looks_like_instruction"]

INSTRUCTION_LIKE = "instruction_like"
"""The metadata key and hit flag of a memory that reads like an instruction to a model."""

_PATTERNS = re.compile(
    "|".join(
        [
            # "ignore all previous instructions", "disregard the above rules"
            r"\b(ignore|disregard|forget|override|bypass)\b[^.\n]{0,40}?\b(instructions?|rules|"
            r"guidelines|system prompt|prompts?|guardrails|policies)\b",
            r"\b(system prompt|developer mode|jailbreak|DAN mode|do anything now)\b",
            r"\byou are (now|no longer)\b",
            r"\bnew (instructions?|rules)\s*:",
            # chat-template and role markers
            r"<\|\s*(im_start|im_end|system|assistant|user|endoftext|eot_id|start_header_id)",
            r"\[/?INST\]|<</?SYS>>",
            r"(^|\n)\s*#{0,4}\s*(system|assistant|developer|human|user)\s*:",
            r"\"role\"\s*:\s*\"(system|assistant|developer)\"",
            # our own delimiters, or a model's, opened or closed inside the text
            r"<\s*/?\s*(system|assistant|memories|recent_conversation|data|instructions?)\s*>",
        ]
    ),
    re.IGNORECASE,
)


def looks_like_instruction(text: str) -> bool:
    """Whether ``text`` reads like an instruction to a model or a prompt's structure."""
    return _PATTERNS.search(text) is not None


def flag_instructions(metadata: Mapping[str, Any], text: str) -> dict[str, Any]:
    """``metadata`` with ``instruction_like: True`` added when ``text`` reads like one."""
    if looks_like_instruction(text):
        return {**metadata, INSTRUCTION_LIKE: True}
    return dict(metadata)
