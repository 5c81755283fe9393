"""Tolerant parsing of a model's structured output.

Small models wrap JSON in prose and code fences, leave trailing commas, use single quotes
or Python literals, or stop mid-object at the token cap. ``json_repair`` (a well-kept
library for exactly this) finds and repairs the JSON; a pydantic model then checks its
shape. Anything that still does not fit is ``None``: the caller falls back.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

__all__ = ["extract_json", "parse_as"]

T = TypeVar("T", bound=BaseModel)

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.S)
_OPENING = re.compile(r"[\[{]")
_MAX_CANDIDATES = 16


def _value_end(text: str, start: int) -> int:
    """The index just past the bracket that closes the one at ``start`` (strings skipped),
    or the end of ``text`` when it never closes (output cut at the token cap)."""
    depth, quote, escaped = 0, "", False
    for i in range(start, len(text)):
        char = text[i]
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = ""
        elif char == '"' or (char == "'" and text[:i].rstrip()[-1:] in ("{", "[", ",", ":")):
            quote = char  # a single quote opens a string only where a value or key starts
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if depth == 0:
                return i + 1
    return len(text)


def extract_json(text: str) -> Any:
    """The JSON object in ``text`` (the first one), else its first JSON array, repaired;
    ``None`` if there is neither.

    Each bracketed value is repaired on its own, so prose around it (``"memory [2] helps:
    {...}"``) neither merges into it nor hides it.
    """
    from json_repair import repair_json

    fenced = _FENCE.search(text)
    body = fenced.group(1) if fenced else text
    first_list: list[Any] | None = None
    position = 0
    for _ in range(_MAX_CANDIDATES):
        opening = _OPENING.search(body, position)
        if opening is None:
            break
        position = _value_end(body, opening.start())
        found = repair_json(body[opening.start() : position], return_objects=True)
        if isinstance(found, list) and found and opening.group() == "{":
            found = found[0]  # json_repair lists every value it saw after the first object
        if isinstance(found, dict):
            return found
        if isinstance(found, list) and first_list is None and opening.group() == "[":
            first_list = found
    return first_list


def _names(model: type[BaseModel]) -> set[str]:
    """The keys an object of ``model`` may carry: field names and their aliases."""
    names = set(model.model_fields)
    names.update(f.alias for f in model.model_fields.values() if f.alias)
    return names


def parse_as(model: type[T], text: str) -> T | None:
    """``text``'s JSON validated as ``model``; ``None`` when it has none or does not fit."""
    data = extract_json(text)
    if data is None:
        return None
    if isinstance(data, list) and len(model.model_fields) == 1:
        # A bare list where an object with one list field was asked for.
        data = {next(iter(model.model_fields)): data}
    if isinstance(data, dict) and data and not _names(model) & set(data):
        # Keys, but none the schema knows: json_repair made an object out of noise (a
        # broken model's output). ``{}`` stays a valid "nothing to add".
        return None
    try:
        return model.model_validate(data)
    except ValidationError:
        return None
