"""The conversations the benchmarks score on, and how they are read.

A corpus is a list of :class:`Conversation`: sessions of turns with their dates, and questions
with the ids of the turns that hold their evidence. :func:`load_locomo` reads the LoCoMo
benchmark's JSON (snap-research, CC BY-NC 4.0; the file is never copied into the project,
benchmarks take its path); :func:`load_chats` reads a folder of chat files in the simple format
below, so users can score their own conversations; :func:`load_corpus` picks by the path.
Every benchmark that scores retrieval or answers reads its data
through here, so they all count the same turns and questions.

The chat-file format
--------------------
One JSON file per chat (``*.json`` in the folder, read in name order; each chat is one user)::

    {
      "chat_id": "dani-sam",                      # optional; default: the file's stem
      "messages": [
        {"id": "m1", "speaker": "dk_92", "time": "2026-03-02T19:04:00",
         "text": "hey sam, you around?"},
        {"id": "m2", "speaker": "samuel.o", "time": "2026-03-02T19:06:00",
         "text": "look what I found", "caption": "a red bicycle by a wall",
         "reply_to": "m1", "session": "week-1"}
      ],
      "questions": [
        {"question": "What colour is the bike Sam found?", "evidence": ["m2"],
         "category": "single-hop", "answer": "red"}
      ]
    }

* ``id``, ``speaker``, ``time`` and ``text`` are required; ``id`` is unique within the chat.
  ``time`` is anything ``dateutil`` reads (ISO 8601 is safest); naive times are UTC.
* ``caption`` (a shared image, as text) is stored as `` [shares a photo: CAPTION]`` after the
  text; a message with neither text nor caption is skipped.
* ``reply_to`` names the message answered, when the chat app records it.
* ``session`` groups messages (the chat app's threads or sittings); without it, a session is a
  calendar day (UTC). Messages are ordered by time, ties kept in file order.
* ``category`` is a name (``multi-hop``, ``temporal``, ``open-domain``, ``single-hop``,
  ``adversarial``) or LoCoMo's number 1-5; default ``single-hop``. ``answer`` is optional.
  Evidence ids that name no message are dropped; a question left with none is skipped.
* Questions are asked one day after the chat's last message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dateutil import parser as date_parser

__all__ = [
    "CATEGORY_NAMES",
    "MAIN_CATEGORIES",
    "Conversation",
    "LoadStats",
    "Question",
    "Session",
    "TurnRecord",
    "limit_questions",
    "load_chats",
    "load_corpus",
    "load_locomo",
    "parse_date",
    "turn_content",
]

CATEGORY_NAMES: dict[int, str] = {
    1: "multi-hop",
    2: "temporal",
    3: "open-domain",
    4: "single-hop",
    5: "adversarial",
}
MAIN_CATEGORIES: tuple[int, ...] = (1, 2, 3, 4)
"""The categories scored overall (5, adversarial, has no evidence to find)."""

_SESSION_KEY = re.compile(r"^session_(\d+)$")
_EVIDENCE_SPLIT = re.compile(r"[;,\s]+")


@dataclass(frozen=True, slots=True)
class TurnRecord:
    """One turn as added to LightMem (and ranked by the baselines)."""

    turn_id: str
    session_id: str
    speaker: str
    text: str
    date: str
    """When the turn was said, as in the data (LoCoMo: its session's date string)."""
    reply_to: str | None = None
    """The id of the turn this one answers, when the data says (chat files only)."""


@dataclass(frozen=True, slots=True)
class Session:
    session_id: str
    date: str
    turns: tuple[TurnRecord, ...]


@dataclass(frozen=True, slots=True)
class Question:
    sample_id: str
    index: int
    """Position in the sample's ``qa`` list."""
    question: str
    category: int
    evidence: frozenset[str]
    """Valid evidence turn ids (never empty)."""
    answer: str


@dataclass(frozen=True, slots=True)
class Conversation:
    sample_id: str
    sessions: tuple[Session, ...]
    questions: tuple[Question, ...]
    now: datetime
    """One day after the last session: the moment every question is asked."""

    @property
    def turns(self) -> list[TurnRecord]:
        return [turn for session in self.sessions for turn in session.turns]


@dataclass(slots=True)
class LoadStats:
    """What loading kept and dropped."""

    turns_skipped_empty: int = 0
    turns_skipped_duplicate_id: int = 0
    questions_total: int = 0
    questions_skipped_no_evidence: int = 0
    evidence_ids_dropped: int = 0
    evidence_entries_split: int = 0

    def to_dict(self) -> dict[str, int]:
        return {
            "turns_skipped_empty": self.turns_skipped_empty,
            "turns_skipped_duplicate_id": self.turns_skipped_duplicate_id,
            "questions_total": self.questions_total,
            "questions_skipped_no_evidence": self.questions_skipped_no_evidence,
            "evidence_ids_dropped": self.evidence_ids_dropped,
            "evidence_entries_split": self.evidence_entries_split,
        }


def parse_date(text: str) -> datetime:
    """A LoCoMo date string ("1:56 pm on 8 May, 2023") as an aware UTC datetime, read the
    way LightMem reads timestamps (naive = UTC)."""
    parsed = date_parser.parse(text.strip().replace(" on ", " "))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def turn_content(turn: Mapping[str, Any]) -> str:
    """The text LightMem stores for a turn: its text, plus the caption of a shared photo."""
    text = str(turn.get("text") or "").strip()
    caption = str(turn.get("blip_caption") or "").strip()
    if caption:
        text = f"{text} [shares a photo: {caption}]".strip()
    return text


def _keep(turn_id: str, content: str, seen: set[str], stats: LoadStats) -> bool:
    """Whether a turn is scored: it has content and an id not seen before (counted if not)."""
    if not content:
        stats.turns_skipped_empty += 1
        return False
    if turn_id in seen:
        stats.turns_skipped_duplicate_id += 1
        return False
    seen.add(turn_id)
    return True


def _sessions(sample_id: str, conversation: Mapping[str, Any], stats: LoadStats) -> list[Session]:
    numbered = sorted(
        (int(match.group(1)), key)
        for key in conversation
        if (match := _SESSION_KEY.match(key)) is not None
    )
    sessions: list[Session] = []
    seen: set[str] = set()
    for _, key in numbered:
        raw_turns = conversation[key]
        if not isinstance(raw_turns, list) or not raw_turns:
            continue
        date = conversation.get(f"{key}_date_time")
        if not isinstance(date, str) or not date.strip():
            raise ValueError(f"{sample_id}: {key} has turns but no {key}_date_time")
        turns: list[TurnRecord] = []
        for raw in raw_turns:
            turn_id = str(raw["dia_id"]).strip()
            content = turn_content(raw)
            if not _keep(turn_id, content, seen, stats):
                continue
            speaker = str(raw.get("speaker") or "").strip() or "unknown"
            turns.append(TurnRecord(turn_id, key, speaker, content, date.strip()))
        if turns:
            sessions.append(Session(key, date.strip(), tuple(turns)))
    return sessions


def _evidence(raw: object, valid: set[str], stats: LoadStats) -> frozenset[str]:
    ids: list[str] = []
    for entry in raw if isinstance(raw, list) else []:
        parts = [p for p in _EVIDENCE_SPLIT.split(str(entry)) if p]
        if len(parts) > 1:
            stats.evidence_entries_split += 1
        ids.extend(parts)
    kept = frozenset(i for i in ids if i in valid)
    stats.evidence_ids_dropped += len(set(ids) - kept)
    return kept


def load_locomo(path: Path) -> tuple[list[Conversation], LoadStats]:
    """Read a LoCoMo JSON file into conversations with their scorable questions."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of samples")
    stats = LoadStats()
    conversations: list[Conversation] = []
    for sample in data:
        sample_id = str(sample["sample_id"])
        sessions = _sessions(sample_id, sample["conversation"], stats)
        if not sessions:
            continue
        valid = {turn.turn_id for session in sessions for turn in session.turns}
        questions: list[Question] = []
        for index, qa in enumerate(sample.get("qa", [])):
            stats.questions_total += 1
            evidence = _evidence(qa.get("evidence"), valid, stats)
            if not evidence:
                stats.questions_skipped_no_evidence += 1
                continue
            answer = qa.get("answer", qa.get("adversarial_answer", ""))
            questions.append(
                Question(
                    sample_id=sample_id,
                    index=index,
                    question=str(qa["question"]),
                    category=int(qa["category"]),
                    evidence=evidence,
                    answer=str(answer),
                )
            )
        last = max(parse_date(session.date) for session in sessions)
        conversations.append(
            Conversation(sample_id, tuple(sessions), tuple(questions), last + timedelta(days=1))
        )
    return conversations, stats


_CATEGORY_IDS = {name: number for number, name in CATEGORY_NAMES.items()}
_CHAT_REQUIRED = ("id", "speaker", "time", "text")


def _category(raw: object, where: str) -> int:
    if raw is None:
        return 4
    if isinstance(raw, int) and not isinstance(raw, bool) and raw in CATEGORY_NAMES:
        return raw
    if isinstance(raw, str) and raw.strip().lower() in _CATEGORY_IDS:
        return _CATEGORY_IDS[raw.strip().lower()]
    raise ValueError(
        f"{where}: category must be one of {sorted(_CATEGORY_IDS)} or 1-5, not {raw!r}"
    )


def _chat_turns(path: Path, raw_messages: object, stats: LoadStats) -> list[Session]:
    if not isinstance(raw_messages, list) or not raw_messages:
        raise ValueError(f"{path}: 'messages' must be a non-empty list")
    timed: list[tuple[datetime, int, Mapping[str, Any]]] = []
    for number, message in enumerate(raw_messages):
        where = f"{path}: messages[{number}]"
        if not isinstance(message, Mapping):
            raise ValueError(f"{where}: expected an object")
        missing = [key for key in _CHAT_REQUIRED if key not in message]
        if missing:
            raise ValueError(f"{where}: missing {', '.join(missing)}")
        try:
            when = parse_date(str(message["time"]))
        except (ValueError, OverflowError) as exc:
            raise ValueError(f"{where}: unreadable time {message['time']!r}") from exc
        timed.append((when, number, message))
    timed.sort(key=lambda item: (item[0], item[1]))
    grouped: dict[str, list[TurnRecord]] = {}
    seen: set[str] = set()
    for when, _, message in timed:
        turn_id = str(message["id"]).strip()
        content = turn_content({"text": message["text"], "blip_caption": message.get("caption")})
        if not _keep(turn_id, content, seen, stats):
            continue
        session = message.get("session")
        session_id = str(session) if session is not None else when.date().isoformat()
        reply = message.get("reply_to")
        grouped.setdefault(session_id, []).append(
            TurnRecord(
                turn_id,
                session_id,
                str(message["speaker"]).strip() or "unknown",
                content,
                when.isoformat(),
                str(reply) if reply is not None else None,
            )
        )
    return [Session(sid, turns[0].date, tuple(turns)) for sid, turns in grouped.items()]


def load_chats(folder: Path) -> tuple[list[Conversation], LoadStats]:
    """Read every ``*.json`` chat file of ``folder`` (the format in this module's docstring)."""
    files = sorted(folder.glob("*.json"))
    if not files:
        raise ValueError(f"{folder}: no *.json chat files")
    stats = LoadStats()
    conversations: list[Conversation] = []
    names: set[str] = set()
    for path in files:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, Mapping):
            raise ValueError(f"{path}: expected a JSON object with 'messages' and 'questions'")
        chat_id = str(data.get("chat_id") or path.stem)
        if chat_id in names:
            raise ValueError(f"{path}: chat_id {chat_id!r} is used by another file")
        names.add(chat_id)
        sessions = _chat_turns(path, data.get("messages"), stats)
        valid = {turn.turn_id for session in sessions for turn in session.turns}
        questions: list[Question] = []
        for index, qa in enumerate(data.get("questions") or []):
            where = f"{path}: questions[{index}]"
            if not isinstance(qa, Mapping) or not isinstance(qa.get("question"), str):
                raise ValueError(f"{where}: expected an object with a 'question' string")
            stats.questions_total += 1
            category = _category(qa.get("category"), where)
            evidence = _evidence(qa.get("evidence"), valid, stats)
            if not evidence:
                stats.questions_skipped_no_evidence += 1
                continue
            questions.append(
                Question(
                    chat_id, index, qa["question"], category, evidence, str(qa.get("answer", ""))
                )
            )
        last = max(parse_date(turn.date) for session in sessions for turn in session.turns)
        conversations.append(
            Conversation(chat_id, tuple(sessions), tuple(questions), last + timedelta(days=1))
        )
    return conversations, stats


def load_corpus(path: Path) -> tuple[list[Conversation], LoadStats]:
    """A folder is read as chat files (:func:`load_chats`), a file as LoCoMo JSON."""
    return load_chats(path) if path.is_dir() else load_locomo(path)


def limit_questions(conversations: list[Conversation], limit: int | None) -> list[Conversation]:
    """Keep the first ``limit`` scorable questions of each conversation."""
    if limit is None:
        return conversations
    return [
        Conversation(c.sample_id, c.sessions, c.questions[:limit], c.now) for c in conversations
    ]
