"""Bad input: each case raises a typed LightMemError with a clear message and stores nothing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from lightmem_core import (
    ConfigurationError,
    ContentTooLarge,
    InvalidArgument,
    InvalidContent,
    InvalidTimestamp,
    InvalidUserId,
    LightMem,
    LightMemError,
    StoreNotWritable,
    ValidationError,
)
from lightmem_core.testing import HashingEmbedder

BAD_USER_IDS = [
    None,
    "",
    "   ",
    "a\x00b",
    "tab\there",
    "line\nbreak",
    " padded",
    "x" * 257,
    42,
    "\ud800",
]
BAD_CONTENT: list[tuple[Any, type[Exception], str]] = [
    ("", InvalidContent, "empty"),
    ("  \n\t ", InvalidContent, "empty"),
    ("lone \ud83d surrogate", InvalidContent, "surrogate"),
    (b"\xff\xfe not utf-8", InvalidContent, "UTF-8"),
    ("nul \x00 inside", InvalidContent, "NUL"),
    (None, InvalidContent, "string"),
    (123, InvalidContent, "string"),
    ("x" * 20_001, ContentTooLarge, "limit is 20,000"),
]


def _nothing_stored(mem: LightMem) -> None:
    assert mem.stats()["turns"] == 0
    assert mem.stats()["mtm"] == 0
    assert mem.stats()["ltm"] == 0


@pytest.mark.parametrize("user_id", BAD_USER_IDS)
def test_bad_user_ids_are_refused_everywhere(mem: LightMem, user_id: Any) -> None:
    calls = [
        lambda: mem.add(user_id, "hello"),
        lambda: mem.add_many(user_id, [{"content": "hello"}]),
        lambda: mem.remember(user_id, "a fact"),
        lambda: mem.search(user_id, "hello"),
        lambda: mem.get_context(user_id, "hello"),
        lambda: mem.recent(user_id),
        lambda: mem.export(user_id),
        lambda: mem.forget(user_id),
        lambda: mem.stats(user_id) if user_id is not None else mem.stats(""),
    ]
    for call in calls:
        with pytest.raises(InvalidUserId, match="user_id"):
            call()
    _nothing_stored(mem)


@pytest.mark.parametrize(("content", "error", "message"), BAD_CONTENT)
def test_bad_content_is_refused(
    mem: LightMem, content: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        mem.add("u", content)
    with pytest.raises(error):
        mem.remember("u", content)
    _nothing_stored(mem)


def test_content_limit_is_configurable(tmp_path: Path) -> None:
    with LightMem(tmp_path / "s", embedder=HashingEmbedder(), max_content_chars=10) as mem:
        with pytest.raises(ContentTooLarge):
            mem.add("u", "eleven chars")
        mem.add("u", "ten chars!")
        assert mem.stats()["turns"] == 1


def test_valid_utf8_bytes_are_accepted(mem: LightMem) -> None:
    turn = mem.add("u", "caf\u00e9 au lait".encode())
    assert turn.content == "caf\u00e9 au lait"


@pytest.mark.parametrize(
    "timestamp", ["not a date", "2024-13-45", "", "yesterday-ish?", float("nan"), object(), 10**20]
)
def test_unparseable_timestamps(mem: LightMem, timestamp: Any) -> None:
    with pytest.raises(InvalidTimestamp):
        mem.add("u", "hello", timestamp=timestamp)
    with pytest.raises(InvalidTimestamp):
        mem.search("u", "hello", now=timestamp)
    _nothing_stored(mem)


@pytest.mark.parametrize(
    "timestamp",
    [
        "2024-05-08T13:56:00",
        "2024-05-08T13:56:00+02:00",
        "1:56 pm on 8 May, 2023",
        "May 8 2023",
        1715176560,
    ],
)
def test_parseable_timestamps(mem: LightMem, timestamp: Any) -> None:
    turn = mem.add("u", "hello", timestamp=timestamp)
    assert turn.timestamp.tzinfo is not None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"role": "wizard"},
        {"session_id": ""},
        {"session_id": "bad\nsession"},
        {"turn_id": " t1"},
        {"turn_id": "x" * 300},
        {"speaker": "\x07bell"},
        {"metadata": "not a mapping"},
        {"metadata": {1: "int key"}},
        {"metadata": {"obj": object()}},
        {"metadata": {"nan": float("nan")}},
        {"metadata": {"big": "x" * 20_000}},
    ],
)
def test_bad_arguments_to_add(mem: LightMem, kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument):
        mem.add("u", "hello", **kwargs)
    _nothing_stored(mem)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"token_budget": 0},
        {"token_budget": -5},
        {"k": 0},
        {"k": True},
        {"token_budget": "10"},
        {"tiers": ["stm"]},
        {"tiers": ["gold"]},
        {"tiers": False},
        {"tiers": 3},
        {"tiers": [None]},
    ],
)
def test_bad_search_arguments(mem: LightMem, kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument):
        mem.search("u", "hello", **kwargs)


def test_bad_messages_in_a_batch(mem: LightMem) -> None:
    with pytest.raises(InvalidArgument, match="mapping"):
        mem.add_many("u", ["just a string"])  # type: ignore[list-item]
    with pytest.raises(InvalidArgument, match="unknown message field"):
        mem.add_many("u", [{"content": "hi", "colour": "blue"}])
    with pytest.raises(InvalidContent):
        mem.add_many("u", [{"content": "fine"}, {"role": "user"}])
    _nothing_stored(mem)


def test_every_validation_error_is_a_lightmem_error_and_value_error() -> None:
    for error in (
        InvalidUserId,
        InvalidContent,
        ContentTooLarge,
        InvalidTimestamp,
        InvalidArgument,
    ):
        assert issubclass(error, ValidationError)
        assert issubclass(error, LightMemError)
        assert issubclass(error, ValueError)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_store_path(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(StoreNotWritable):
        LightMem(locked / "store", embedder=HashingEmbedder())


def test_store_path_that_is_a_file(tmp_path: Path) -> None:
    file = tmp_path / "a-file"
    file.write_text("not a folder")
    with pytest.raises(StoreNotWritable):
        LightMem(file, embedder=HashingEmbedder())
    with pytest.raises(StoreNotWritable):
        LightMem(file / "below", embedder=HashingEmbedder())


@pytest.mark.parametrize(
    "options",
    [
        {"top_k": 0},
        {"token_budget": -1},
        {"top_k": 10, "candidate_pool": 3},
        {"top_k": True},
        {"sqlite_synchronous": "OFF"},
        {"chroma_url": "ftp://nowhere"},
        {"chroma_url": "http://h:1", "chroma_host": "h"},
        {"collection_prefix": "bad/prefix"},
        {"no_such_option": 1},
    ],
)
def test_bad_configuration(tmp_path: Path, options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        LightMem(tmp_path / "s", embedder=HashingEmbedder(), **options)


def test_metadata_nested_too_deeply_is_a_typed_error(mem: LightMem) -> None:
    deep: dict[str, object] = {}
    node = deep
    for _ in range(5000):
        node["a"] = {}
        node = node["a"]  # type: ignore[assignment]
    with pytest.raises(InvalidArgument, match="nested too deeply"):
        mem.add("alice", "hello", metadata=deep)
    assert mem.stats("alice")["turns"] == 0


def test_a_store_folder_removed_while_open_refuses_writes_and_exits_quietly() -> None:
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        """
        import tempfile
        from lightmem_core import LightMem, StorageError
        from lightmem_core.testing import HashingEmbedder
        with tempfile.TemporaryDirectory() as folder:
            mem = LightMem(folder, embedder=HashingEmbedder())
            mem.add("u", "first")
            mem.flush()
        try:
            mem.add("u", "second")
        except StorageError as err:
            print("refused:", "removed or replaced" in str(err))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0
    assert result.stdout.strip() == "refused: True"  # not a success that was lost
    assert result.stderr == ""  # no traceback from a finalizer at exit


def test_an_ambiguous_numeric_date_is_refused_not_guessed(mem: LightMem) -> None:
    with pytest.raises(InvalidTimestamp, match="ambiguous"):
        mem.add("alice", "hello", timestamp="01/02/2023")
    assert mem.stats("alice")["turns"] == 0
    assert mem.add("alice", "hi", timestamp="13/02/2023").timestamp.month == 2
    assert mem.add("alice", "hey", timestamp="03/03/2023").timestamp.day == 3
