"""Reading conversations from JSON or JSONL files, and writing them in atomic chunks.

Accepted files:

* JSON: a list of message objects, or ``{"user_id": ..., "session_id": ..., "messages": [...]}``
  (``user_id`` and ``session_id`` optional defaults for the messages);
* JSONL: one message object per line (blank lines are skipped).

A message has ``content`` and optionally ``role``, ``session_id``, ``timestamp``,
``turn_id``, ``speaker``, ``metadata`` and ``user_id``. The user of a message is its own
``user_id``, else the file's, else ``--user``; the session likewise, else ``--session``.

The whole file is read and every message checked (with the engine's own rules) before
anything is written, so a malformed file stores nothing, and the error names the message.
A message without a ``turn_id`` gets a stable one derived from the file's name, its place in
the file and its content, so running the same ingest again stores nothing twice: messages
an earlier run stored are skipped.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import _validation as check
from .._errors import LightMemError
from ..writer.turns import parse_message
from ._common import CliError

if TYPE_CHECKING:
    from .._memory import LightMem

__all__ = [
    "CHUNK_SIZE",
    "Conversation",
    "Message",
    "Written",
    "check_conversations",
    "read_conversations",
    "stable_turn_id",
    "write_conversations",
]

CHUNK_SIZE = 256
"""Messages per ``add_many`` call: each chunk is stored atomically."""

MESSAGE_FIELDS = frozenset(
    {"content", "role", "session_id", "timestamp", "turn_id", "speaker", "metadata"}
)
_FILE_FIELDS = frozenset({"user_id", "session_id", "messages"})
_JSONL_SUFFIXES = (".jsonl", ".ndjson")


@dataclass(frozen=True, slots=True)
class Message:
    where: str
    """Where the message is in the file, for error messages: ``line 3`` or ``message 3``."""
    fields: dict[str, Any]
    """What ``add_many`` gets: the message without ``user_id``."""


@dataclass(slots=True)
class Conversation:
    """The messages of one user, in file order."""

    user_id: str
    messages: list[Message] = field(default_factory=list)


def _kind(value: object) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean"}.get(
        type(value), "null" if value is None else "number"
    )


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise CliError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from err
    except OSError as err:
        raise CliError(f"cannot read {path}: {err.strerror or err}") from err


def _jsonl(path: Path, text: str) -> Iterator[tuple[str, object]]:
    # Split on newlines only: JSON strings may hold U+2028 and other characters that
    # str.splitlines() would also break at, which would shift the line numbers.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            yield f"line {number}", json.loads(line)
        except json.JSONDecodeError as err:
            raise CliError(
                f"{path}: line {number} is not valid JSON: {err.msg} (column {err.colno})"
            ) from err
        except RecursionError as err:
            raise CliError(f"{path}: line {number} is nested too deeply to read") from err


def _document(path: Path, data: object) -> tuple[list[tuple[str, object]], object, object]:
    """The messages of a parsed JSON document, and its default user and session."""
    if isinstance(data, list):
        return [(f"message {i}", item) for i, item in enumerate(data, start=1)], None, None
    if isinstance(data, dict) and "messages" in data:
        unknown = sorted(set(data) - _FILE_FIELDS)
        if unknown:
            raise CliError(
                f"{path}: unknown top-level field(s) {', '.join(unknown)}; "
                "expected user_id, session_id and messages"
            )
        messages = data["messages"]
        if not isinstance(messages, list):
            raise CliError(f"{path}: 'messages' must be an array, got {_kind(messages)}")
        items = [(f"message {i}", item) for i, item in enumerate(messages, start=1)]
        return items, data.get("user_id"), data.get("session_id")
    raise CliError(
        f"{path}: expected a JSON array of messages or an object with 'messages', got {_kind(data)}"
    )


def _load(path: Path) -> tuple[list[tuple[str, object]], object, object]:
    text = _read_text(path)
    suffix = path.suffix.lower()
    if suffix not in _JSONL_SUFFIXES:
        try:
            data = json.loads(text)
        except RecursionError as err:
            raise CliError(f"{path}: the JSON is nested too deeply to read") from err
        except json.JSONDecodeError as err:
            if suffix == ".json" or text.lstrip().startswith("["):
                raise CliError(
                    f"{path}: invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}"
                ) from err
        else:
            if (
                suffix == ".json"
                or isinstance(data, list)
                or (isinstance(data, dict) and "messages" in data)
            ):
                return _document(path, data)
    return list(_jsonl(path, text)), None, None


def _identifier(value: object, *, what: str, where: str) -> str:
    try:
        return check.user_id(value) if what == "user_id" else check.identifier(value, what=what)
    except LightMemError as err:
        raise CliError(f"{where}: {err}") from err


def read_conversations(
    path: Path, *, user_id: str | None = None, session_id: str | None = None
) -> list[Conversation]:
    """Read and check ``path``; the messages grouped by user, users in order of appearance.

    Raises:
        CliError: the file is unreadable or malformed, or a message names no user.
    """
    items, file_user, file_session = _load(path)
    default_user = file_user if file_user is not None else user_id
    default_session = file_session if file_session is not None else session_id
    by_user: dict[str, Conversation] = {}
    for where, raw in items:
        label = f"{path}: {where}"
        if not isinstance(raw, dict):
            raise CliError(f"{label}: a message must be a JSON object, got {_kind(raw)}")
        unknown = sorted(set(raw) - MESSAGE_FIELDS - {"user_id"})
        if unknown:
            raise CliError(
                f"{label}: unknown field(s) {', '.join(unknown)}; "
                f"allowed: {', '.join(sorted(MESSAGE_FIELDS | {'user_id'}))}"
            )
        if "content" not in raw:
            raise CliError(f"{label}: the message has no 'content'")
        user = raw.get("user_id", default_user)
        if user is None:
            raise CliError(f"{label}: the message names no user; give it a user_id, or pass --user")
        user = _identifier(user, what="user_id", where=label)
        fields = {key: value for key, value in raw.items() if key != "user_id"}
        if fields.get("session_id") is None and default_session is not None:
            fields["session_id"] = _identifier(default_session, what="session_id", where=label)
        by_user.setdefault(user, Conversation(user)).messages.append(Message(where, fields))
    return list(by_user.values())


def stable_turn_id(source: str, where: str, fields: dict[str, Any]) -> str:
    """The turn id of a message that has none: the same file, place and content give the
    same id, so a second ingest of the file stores nothing twice."""
    content = json.dumps(fields, sort_keys=True, ensure_ascii=False, default=str)
    digest = hashlib.sha256(f"{source}\x1f{where}\x1f{content}".encode()).hexdigest()
    return f"ingest-{digest[:32]}"


@dataclass(frozen=True, slots=True)
class Written:
    """What an ingest stored: messages per user, and those an earlier run had stored."""

    stored: dict[str, int]
    skipped: int


def check_conversations(mem: LightMem, conversations: list[Conversation], *, source: str) -> None:
    """Give every message a turn id and check it with the engine's own rules, before
    anything is written.

    Raises:
        CliError: naming the first bad message; nothing was stored.
    """
    for conversation in conversations:
        seen: dict[str, str] = {}
        for message in conversation.messages:
            if message.fields.get("turn_id") is None:
                message.fields["turn_id"] = stable_turn_id(source, message.where, message.fields)
            try:
                turn = parse_message(
                    conversation.user_id,
                    message.fields,
                    default_session=None,
                    max_content_chars=mem.config.max_content_chars,
                    max_metadata_bytes=mem.config.max_metadata_bytes,
                )
            except LightMemError as err:
                raise CliError(f"{source}: {message.where}: {err}. Nothing was stored.") from err
            if turn.turn_id in seen:
                raise CliError(
                    f"{source}: {message.where} repeats the turn_id {turn.turn_id!r} of "
                    f"{seen[turn.turn_id]}. Nothing was stored."
                )
            seen[turn.turn_id] = message.where


def write_conversations(
    mem: LightMem,
    conversations: list[Conversation],
    *,
    source: str,
    chunk_size: int = CHUNK_SIZE,
    progress: Callable[[int], None] | None = None,
) -> Written:
    """Check every message, then store them with ``add_many``, ``chunk_size`` at a time
    (each chunk atomic), skipping the messages an earlier run stored.

    Raises:
        CliError: a message is bad (nothing was stored), or the store failed mid-way (the
            chunks before are stored; running the ingest again completes it).
    """
    check_conversations(mem, conversations, source=source)
    stored: dict[str, int] = {}
    skipped = total = 0
    for conversation in conversations:
        user, messages = conversation.user_id, conversation.messages
        for start in range(0, len(messages), chunk_size):
            chunk = messages[start : start + chunk_size]
            # Turns stored by an earlier run of this ingest (the record store's own check).
            done = mem._records.existing_turn_ids(user, [m.fields["turn_id"] for m in chunk])
            fresh = [m for m in chunk if m.fields["turn_id"] not in done]
            skipped += len(chunk) - len(fresh)
            if fresh:
                try:
                    mem.add_many(user, [m.fields for m in fresh])
                except LightMemError as err:
                    raise CliError(
                        f"{source}: storing {fresh[0].where} to {fresh[-1].where} for user "
                        f"{user!r} failed: {err}. {total} message(s) were stored before; run the "
                        "same ingest again to store the rest (nothing is stored twice)"
                    ) from err
                stored[user] = stored.get(user, 0) + len(fresh)
                total += len(fresh)
            if progress is not None:
                progress(len(chunk))
    return Written(stored, skipped)
