"""Token counting for budgets.

Budgets are counted with a fast estimator (words and punctuation marks, which tracks the
BPE tokenizers of chat models closely for English prose). Pass ``token_counter=`` to
``LightMem`` to count with your model's own tokenizer instead, for instance
``lambda s: len(tiktoken.get_encoding("o200k_base").encode(s))``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

TokenCounter = Callable[[str], int]
"""Counts the tokens a text costs in a prompt."""

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def approx_token_count(text: str) -> int:
    """Words plus punctuation marks: a close, dependency-free estimate of BPE tokens."""
    return len(_TOKEN.findall(text))
