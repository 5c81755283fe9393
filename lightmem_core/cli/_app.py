"""The ``lightmem`` commands."""

import json
import os
import shutil
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from .._memory import DEFAULT_PATH
from ._common import (
    CliError,
    Settings,
    fail,
    handle_errors,
    open_store,
    out_console,
    parse_time,
    print_json,
    progress_bar,
    say,
    terminal_safe,
)
from ._render import (
    consolidation_line,
    hits_json,
    hits_table,
    mapping_table,
    omitted_line,
    plural,
    receipt_line,
)

__all__ = ["app"]

_EPILOG = (
    "Environment: LIGHTMEM_PATH, LIGHTMEM_RECORDS and LIGHTMEM_CHROMA_URL set --path, "
    "--records and --chroma-url. "
    "LIGHTMEM_EMBEDDER (a testing aid) chooses the embedder: 'hashing' is a fast, "
    "deterministic fake that loads no model (for tests only: its vectors are not "
    "comparable with real ones); any other value is a local sentence-transformers model "
    "path. Unset: the offline all-MiniLM-L6-v2."
)

app = typer.Typer(
    name="lightmem",
    help="LightMem: long-term memory for LLM agents, from the command line.",
    epilog=_EPILOG,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON only.")]
UserArg = Annotated[str, typer.Argument(help="The user id.", show_default=False)]
QueryArg = Annotated[str, typer.Argument(help="What to look for.", show_default=False)]
BudgetOpt = Annotated[
    int | None, typer.Option("--budget", help="Token budget (default: the store's, 1000).")
]


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"lightmem {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    path: Annotated[
        Path, typer.Option("--path", envvar="LIGHTMEM_PATH", help="Folder of the memory store.")
    ] = Path(DEFAULT_PATH),
    chroma_url: Annotated[
        str | None,
        typer.Option(
            "--chroma-url",
            envvar="LIGHTMEM_CHROMA_URL",
            help="A Chroma server for the vectors, e.g. http://127.0.0.1:8000 (default: on disk).",
        ),
    ] = None,
    records: Annotated[
        str | None,
        typer.Option(
            "--records",
            envvar="LIGHTMEM_RECORDS",
            help="A PostgreSQL database for the records, e.g. postgresql://app@db/lightmem "
            "(default: SQLite in --path, which then holds only local caches).",
        ),
    ] = None,
    embedder: Annotated[
        str | None, typer.Option("--embedder", envvar="LIGHTMEM_EMBEDDER", hidden=True)
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Every command prints machine-readable JSON only.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """LightMem: long-term memory for LLM agents, from the command line."""
    source = ctx.get_parameter_source("path")  # typer may vendor click: compare by name
    given = source is not None and source.name == "COMMANDLINE"
    ctx.obj = Settings(
        path=path,
        chroma_url=chroma_url,
        records=records,
        embedder=embedder,
        path_given=given,
        json=json_output,
    )


def _settings(ctx: typer.Context) -> Settings:
    settings = ctx.find_object(Settings)
    return settings if settings is not None else Settings(path=Path(DEFAULT_PATH))


def _json(ctx: typer.Context, flag: bool) -> bool:
    """JSON output: the command's ``--json``, or the global one."""
    return flag or _settings(ctx).json


def _stdin_is_tty() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


# --- demo -------------------------------------------------------------------------------------


@app.command()
def demo(
    ctx: typer.Context,
    path: Annotated[
        Path | None,
        typer.Option(
            "--path", help="Store folder for the demo (default: a fresh temporary folder)."
        ),
    ] = None,
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the temporary store, to explore it afterwards.")
    ] = False,
    json_output: JsonFlag = False,
) -> None:
    """Run a scripted two-user conversation offline, then ask questions about it."""
    json_output = _json(ctx, json_output)
    from ._demo import run_demo

    settings = _settings(ctx)
    target = path if path is not None else (settings.path if settings.path_given else None)
    temporary = target is None
    if target is None:
        target = Path(tempfile.mkdtemp(prefix="lightmem-demo-"))
    try:
        with open_store(settings, path=target, create=True) as mem:
            result = run_demo(
                mem, path=target, temporary=temporary and not keep, json_output=json_output
            )
    finally:
        if temporary and not keep:
            shutil.rmtree(target, ignore_errors=True)
    if json_output:
        print_json(result)
    if not result["isolation"]["ok"]:
        raise typer.Exit(1)


# --- writing and reading ------------------------------------------------------------------


@app.command()
def add(
    ctx: typer.Context,
    user: UserArg,
    text: Annotated[str, typer.Argument(help="The message content.", show_default=False)],
    role: Annotated[str, typer.Option(help="user, assistant, system or tool.")] = "user",
    session: Annotated[str | None, typer.Option(help="Session id (default: 'default').")] = None,
    timestamp: Annotated[
        str | None, typer.Option(help="When it was said: ISO 8601 or epoch seconds (default: now).")
    ] = None,
    turn_id: Annotated[str | None, typer.Option(help="Turn id (default: generated).")] = None,
    speaker: Annotated[str | None, typer.Option(help="Who spoke, by name.")] = None,
    json_output: JsonFlag = False,
) -> None:
    """Store one conversation turn."""
    json_output = _json(ctx, json_output)
    with open_store(_settings(ctx), create=True) as mem:
        turn = mem.add(
            user,
            text,
            role=role,
            session_id=session,
            timestamp=parse_time(timestamp),
            turn_id=turn_id,
            speaker=speaker,
        )
        mem.flush()  # index before exit: the next search, in any process, has its vector
    if json_output:
        print_json(turn.to_dict())
        return
    say(
        f"Stored turn {turn.turn_id} for user {turn.user_id!r} "
        f"(session {turn.session_id}, {turn.timestamp.isoformat(timespec='seconds')})"
    )


@app.command()
def search(
    ctx: typer.Context,
    user: UserArg,
    query: QueryArg,
    k: Annotated[
        int | None,
        typer.Option("--k", "-k", help="Most hits (default: the budget's, max(10, budget/20))."),
    ] = None,
    budget: BudgetOpt = None,
    now: Annotated[
        str | None, typer.Option(help="Answer as of this time (ISO 8601 or epoch seconds).")
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Search a user's memories."""
    json_output = _json(ctx, json_output)
    with open_store(_settings(ctx), create=False) as mem:
        results = mem.search(user, query, k=k, token_budget=budget, now=parse_time(now))
    if json_output:
        print_json(hits_json(user, query, results))
        return
    out = out_console()
    if results:
        out.print(hits_table(results))
    else:
        say(f"No memories found for user {user!r}.", style="yellow")
    line = omitted_line(results)
    if line:
        say(line, style="dim")


@app.command()
def context(
    ctx: typer.Context,
    user: UserArg,
    query: QueryArg,
    budget: BudgetOpt = None,
    session: Annotated[
        str | None, typer.Option(help="Session for the recent turns (default: the latest).")
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Print the prompt-ready context block for a message."""
    json_output = _json(ctx, json_output)
    with open_store(_settings(ctx), create=False) as mem:
        block = mem.get_context(user, query, token_budget=budget, session_id=session)
    if json_output:
        print_json({"user_id": user, "query": query, "session_id": session, "context": block})
    elif block:
        typer.echo(terminal_safe(block))
    else:
        say(f"No memories for user {user!r} yet.", style="yellow", stderr=True)


# --- maintenance ----------------------------------------------------------------------------


@app.command()
def stats(
    ctx: typer.Context,
    user: Annotated[
        str | None, typer.Option(help="One user's counts (default: the whole store).")
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Counts per tier, vectors and indexing backlog."""
    json_output = _json(ctx, json_output)
    with open_store(_settings(ctx), create=False) as mem:
        data = mem.stats(user)
    if json_output:
        print_json(data)
    else:
        title = f"user {user!r}" if user is not None else "store"
        out_console().print(mapping_table(data, title=title))


@app.command()
def export(
    ctx: typer.Context,
    user: UserArg,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write to this file (default: stdout).")
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Export everything held about a user, as JSON (with --out, --json reports in JSON)."""
    json_output = _json(ctx, json_output)
    with open_store(_settings(ctx), create=False) as mem:
        data = mem.export(user)
    text = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    if out is None:
        typer.echo(text, nl=False)
        return
    with handle_errors():
        try:
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
        except OSError as err:
            raise CliError(f"cannot write {out}: {err.strerror or err}") from err
    if json_output:
        print_json(
            {
                "user_id": user,
                "file": str(out),
                "turns": len(data["turns"]),
                "memories": len(data["memories"]),
            }
        )
        return
    say(
        f"Exported {plural(len(data['turns']), 'turn')} and "
        f"{plural(len(data['memories']), 'memory', 'memories')} of user {user!r} to {out}"
    )


@app.command()
def forget(
    ctx: typer.Context,
    user: UserArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    json_output: JsonFlag = False,
) -> None:
    """Erase everything about a user: turns, memories, vectors."""
    json_output = _json(ctx, json_output)
    if not yes and not _stdin_is_tty():
        fail(
            f"refusing to forget {user!r} without confirmation: stdin is not a terminal; pass --yes"
        )
    with open_store(_settings(ctx), create=False) as mem:
        if not yes:
            held = mem.stats(user)
            memories = held["mtm"] + held["ltm"]
            question = (
                f"Forget everything about {user!r} ({plural(held['turns'], 'turn')}, "
                f"{plural(memories, 'memory', 'memories')})? This cannot be undone"
            )
            if not typer.confirm(question, default=False, err=True):
                say("Nothing was forgotten.", stderr=True)
                raise typer.Exit(1)
        receipt = mem.forget(user)
    if json_output:
        print_json(receipt.to_dict())
    else:
        say(receipt_line(receipt))


@app.command()
def reindex(ctx: typer.Context, json_output: JsonFlag = False) -> None:
    """Rebuild the vector index with the current embedder."""
    json_output = _json(ctx, json_output)
    # A store whose index another embedder built opens fine: only reindex() may use it.
    with open_store(_settings(ctx), create=False) as mem:
        counts = mem.stats(None)
        total = counts["mtm"] + counts["ltm"]
        with progress_bar(disable=json_output) as bar:
            task = bar.add_task("Reindexing", total=total)
            mem.reindex(progress=lambda n: bar.advance(task, n))
            bar.update(task, completed=total)
        # The background indexer may have taken some batches: count what is indexed now.
        after = mem.stats(None)
        done = after["mtm"] + after["ltm"] - after["pending_index"]
        embedder = str(after["embedder"])
    if json_output:
        print_json({"reindexed": done, "total": total, "embedder": embedder})
    else:
        say(f"Reindexed {plural(done, 'memory', 'memories')} with {embedder}.")


@app.command()
def consolidate(
    ctx: typer.Context,
    user: Annotated[
        str | None, typer.Option("--user", "-u", help="Only this user (default: every user).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would change; write nothing.")
    ] = False,
    watch: Annotated[
        float | None,
        typer.Option(
            "--watch",
            help="Keep running: consolidate again every this many seconds (Ctrl-C stops).",
            min=0.1,
        ),
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Turn new mid-term evidence into long-term knowledge (merge, supersede, link, decay)."""
    json_output = _json(ctx, json_output)
    settings = _settings(ctx)
    with open_store(settings) as mem:
        try:
            while True:
                total = mem.consolidation_backlog(user)
                with progress_bar(disable=json_output or total == 0) as bar:
                    report = mem.consolidate(
                        user,
                        dry_run=dry_run,
                        progress=partial(bar.advance, bar.add_task("Consolidating", total=total)),
                    )
                if json_output:
                    print_json(report.to_dict())
                else:
                    say(consolidation_line(report))
                if watch is None:
                    break
                time.sleep(watch)
        except KeyboardInterrupt:
            # Ctrl-C ends --watch. A pass cut short is safe: each finished step is committed,
            # and the next run resumes from there.
            if watch is None:
                raise


@app.command()
def ingest(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(
            help="A JSON or JSONL file of messages.",
            exists=True,
            dir_okay=False,
            readable=True,
            show_default=False,
        ),
    ],
    user: Annotated[str | None, typer.Option(help="User of the messages that name none.")] = None,
    session: Annotated[
        str | None, typer.Option(help="Session of the messages that name none.")
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Store the messages of a JSON or JSONL file, in atomic chunks.

    JSON: a list of message objects, or {"user_id": ..., "messages": [...]}.

    JSONL: one message object per line.

    Fields: content (required), role, session_id, timestamp, turn_id, speaker, metadata, user_id.

    A message's user is its user_id, else the file's user_id, else --user.
    """
    json_output = _json(ctx, json_output)
    from ._ingest import CHUNK_SIZE, read_conversations, write_conversations

    with handle_errors():
        conversations = read_conversations(file, user_id=user, session_id=session)
    total = sum(len(c.messages) for c in conversations)
    chunks = sum(-(-len(c.messages) // CHUNK_SIZE) for c in conversations)
    with open_store(_settings(ctx), create=True) as mem, progress_bar(disable=json_output) as bar:
        task = bar.add_task("Ingesting", total=total)
        with handle_errors():
            written = write_conversations(
                mem, conversations, source=file.name, progress=lambda n: bar.advance(task, n)
            )
        # Index before exit: the vectors are ready for the next search, in any process.
        pending = mem.stats()["pending_index"]
        indexing = bar.add_task("Indexing", total=pending)
        mem.flush(progress=lambda n: bar.advance(indexing, n))
    stored = written.stored
    if json_output:
        print_json(
            {
                "file": str(file),
                "messages": total,
                "stored": sum(stored.values()),
                "skipped": written.skipped,
                "chunks": chunks,
                "users": stored,
            }
        )
        return
    already = f"; {written.skipped} already stored, skipped" if written.skipped else ""
    say(
        f"Stored {plural(sum(stored.values()), 'message')} for {plural(len(stored), 'user')} "
        f"from {file} ({plural(chunks, 'chunk')}{already})"
    )
    if stored:
        table = Table("user", "messages")
        for user_id, count in stored.items():
            table.add_row(Text(terminal_safe(user_id)), str(count))
        out_console().print(table)
