"""Checks on every public input, run before anything is stored.

Each function returns the cleaned value or raises a typed :class:`ValidationError`.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ._errors import (
    ContentTooLarge,
    InvalidArgument,
    InvalidContent,
    InvalidTimestamp,
    InvalidUserId,
)

MAX_ID_CHARS = 256
ROLES = {"user": "user", "human": "user", "assistant": "assistant", "ai": "assistant",
         "system": "system", "tool": "tool"}  # fmt: skip


def _has_control_chars(text: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cs") for ch in text)


def _decode(value: object, *, what: str, error: type[Exception]) -> str:
    """Accept str, or bytes that are valid UTF-8; reject lone surrogates."""
    if isinstance(value, bytes | bytearray):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError as err:
            raise error(f"{what} is not valid UTF-8: {err.reason} at byte {err.start}") from err
    if not isinstance(value, str):
        raise error(f"{what} must be a string, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise error(
            f"{what} contains a lone surrogate at position {err.start}; it is not valid Unicode text"
        ) from err
    return value


def user_id(value: object) -> str:
    """A user id: 1-256 characters, no control characters, no surrounding whitespace."""
    return identifier(value, what="user_id", error=InvalidUserId)


def identifier(value: object, *, what: str, error: type[Exception] = InvalidArgument) -> str:
    """Any id (user, session, turn): same rules as :func:`user_id`."""
    if value is None:
        raise error(f"{what} is required")
    text = _decode(value, what=what, error=error)
    if not text or not text.strip():
        raise error(f"{what} must not be empty")
    if text != text.strip():
        raise error(f"{what} must not start or end with whitespace: {text!r}")
    if len(text) > MAX_ID_CHARS:
        raise error(f"{what} is {len(text)} characters long; the limit is {MAX_ID_CHARS}")
    if _has_control_chars(text):
        raise error(f"{what} must not contain control characters: {text!r}")
    return text


def content(value: object, *, max_chars: int, what: str = "content") -> str:
    """Message text: non-blank, valid Unicode, no NUL, at most ``max_chars`` characters."""
    text = _decode(value, what=what, error=InvalidContent)
    if not text.strip():
        raise InvalidContent(f"{what} must not be empty or whitespace only")
    if "\x00" in text:
        raise InvalidContent(f"{what} must not contain NUL characters")
    if len(text) > max_chars:
        raise ContentTooLarge(
            f"{what} is {len(text):,} characters; the limit is {max_chars:,} "
            "(raise max_content_chars, or split the text)"
        )
    return text


def identifiers(value: object, *, what: str) -> tuple[str, ...]:
    """A list of ids (``None``: none), each checked, repeats dropped, order kept."""
    if value is None:
        return ()
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple | set | frozenset):
        raise InvalidArgument(f"{what} must be a list of ids, got {type(value).__name__}")
    return tuple(dict.fromkeys(identifier(item, what=f"{what} item") for item in value))


def optional_text(value: object, *, what: str) -> str | None:
    """A short optional label such as a speaker name."""
    if value is None:
        return None
    return identifier(value, what=what)


def role(value: object) -> str:
    if not isinstance(value, str) or value.lower() not in ROLES:
        raise InvalidArgument(f"role must be one of {sorted(set(ROLES.values()))}, got {value!r}")
    return ROLES[value.lower()]


def timestamp(value: object, *, what: str = "timestamp") -> datetime:
    """A point in time: a datetime, epoch seconds, or a date string (ISO 8601 or free form,
    e.g. ``"1:56 pm on 8 May, 2023"``). Naive times are taken as UTC; the result is UTC."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise InvalidTimestamp(f"{what} must be finite, got {value!r}")
        try:
            parsed = datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError) as err:
            raise InvalidTimestamp(f"{what} {value!r} is out of range") from err
    elif isinstance(value, str):
        parsed = _parse_date_string(value, what=what)
    else:
        raise InvalidTimestamp(
            f"{what} must be a datetime, epoch seconds or a date string, got {type(value).__name__}"
        )
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError) as err:
        raise InvalidTimestamp(f"{what} {value!r} is out of range") from err


# 01/02/2023: 1 February in most of the world, 2 January in the US. A numeric date whose
# day and month could swap is refused rather than guessed; one that cannot (13/02/2023,
# 02/13/2023, 03/03/2023) is read the only way it can be.
_NUMERIC_DATE = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{2,4})\b")


def _parse_date_string(value: str, *, what: str) -> datetime:
    text = value.strip()
    if not text or "\x00" in text or len(text) > 200:
        raise InvalidTimestamp(f"{what} {value!r} is not a date")
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    numeric = _NUMERIC_DATE.match(text)
    if numeric is not None:
        first, second = int(numeric.group(1)), int(numeric.group(2))
        if first != second and first <= 12 and second <= 12:
            raise InvalidTimestamp(
                f"{what} {value!r} is ambiguous: day/month or month/day? Write it as ISO 8601 "
                f"(for example {numeric.group(3)}-{first:02d}-{second:02d} or "
                f"{numeric.group(3)}-{second:02d}-{first:02d})"
            )
    from dateutil import parser  # free-form dates are rare; keep the import off the hot path

    try:
        # LoCoMo-style "1:56 pm on 8 May, 2023": drop the connective dateutil trips on.
        return parser.parse(text.replace(" on ", " "), fuzzy=False)
    except (ValueError, OverflowError, parser.ParserError) as err:
        raise InvalidTimestamp(
            f"{what} {value!r} could not be parsed; use ISO 8601 such as 2024-05-08T13:56:00"
        ) from err


def positive_int(value: object, *, what: str, maximum: int = 1_000_000) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= maximum:
        raise InvalidArgument(f"{what} must be an integer between 1 and {maximum:,}, got {value!r}")
    return value


def metadata(value: object, *, max_bytes: int) -> dict[str, Any]:
    """A JSON-serialisable mapping with string keys, at most ``max_bytes`` as JSON."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidArgument(f"metadata must be a mapping, got {type(value).__name__}")
    if not all(isinstance(key, str) for key in value):
        raise InvalidArgument("metadata keys must be strings")
    try:
        encoded = json.dumps(value, ensure_ascii=False, allow_nan=False)
        encoded.encode("utf-8")
    except (TypeError, ValueError, UnicodeEncodeError) as err:
        raise InvalidArgument(
            f"metadata must be JSON-serialisable text and numbers: {err}"
        ) from err
    except RecursionError as err:
        raise InvalidArgument("metadata is nested too deeply") from err
    if len(encoded.encode("utf-8")) > max_bytes:
        raise InvalidArgument(f"metadata is larger than {max_bytes:,} bytes as JSON")
    result: dict[str, Any] = json.loads(encoded)  # a deep copy the caller cannot mutate later
    return result
