"""``lightmem demo``: a scripted, invented conversation for two users, then questions.

Everything here is made up for the demo. Retrieval runs on the real embedder (offline
MiniLM unless ``LIGHTMEM_EMBEDDER`` says otherwise); there is no LLM, so the "answer" to a
question is simply the best memory found.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.panel import Panel
from rich.rule import Rule
from rich.text import Text

from ._common import CliError, err_console, out_console, progress_bar
from ._render import date_of, hits_table, plural

if TYPE_CHECKING:
    from rich.console import Console

    from .._memory import LightMem
    from .._types import Hit

__all__ = ["PERSONAS", "run_demo"]

_ASSISTANT = "assistant"


@dataclass(frozen=True, slots=True)
class Session:
    session_id: str
    date: str
    """ISO date; turns are a few minutes apart from 09:00 that day."""
    turns: tuple[tuple[str, str], ...]
    """``(role, content)`` pairs."""


@dataclass(frozen=True, slots=True)
class Persona:
    user_id: str
    name: str
    sessions: tuple[Session, ...]
    pinned: str
    """A fact pinned straight into long-term memory with ``remember()``."""
    questions: tuple[str, ...]


PERSONAS = (
    Persona(
        user_id="alice",
        name="Alice",
        sessions=(
            Session("s1", "2024-03-02", (
                ("user", "Hi! I just moved to Lisbon for a new job at the city aquarium."),
                (_ASSISTANT, "Congratulations on the move! What will you be doing there?"),
                ("user", "I'm a marine biologist; I mostly look after the jellyfish exhibit."),
                (_ASSISTANT, "That sounds fascinating. How do you like the city so far?"),
                ("user", "I love it, although my flat in the old town is tiny and has no oven."),
            )),
            Session("s2", "2024-04-14", (
                ("user", "Big news: I adopted a rescue greyhound last weekend. Her name is Pepper."),
                (_ASSISTANT, "How lovely! How is Pepper settling in?"),
                ("user", "She is shy with strangers but loves long evening walks by the river."),
                ("user", "I also signed up for Portuguese lessons on Tuesday nights."),
            )),
            Session("s3", "2024-05-20", (
                ("user", "I started training for the autumn half marathon; I run three mornings a week."),
                (_ASSISTANT, "Great goal! Do you have a target time?"),
                ("user", "I'd like to finish in under two hours."),
                ("user", "My sister Rosa visits in June, so I need ideas for a dinner at home."),
            )),
        ),
        pinned="Vegetarian, and allergic to peanuts.",
        questions=(
            "What do I do for a living?",
            "What is my dog called?",
            "What race am I training for?",
            "Which foods am I allergic to?",
        ),
    ),
    Persona(
        user_id="bob",
        name="Bob",
        sessions=(
            Session("s1", "2024-02-10", (
                ("user", "I teach chemistry at a secondary school in Leeds."),
                (_ASSISTANT, "What do you enjoy most about teaching?"),
                ("user", "The lab sessions: the kids love the flame tests."),
                ("user", "On weekends I play bass guitar in a small jazz band."),
            )),
            Session("s2", "2024-04-01", (
                ("user", "My daughter Mia just turned seven, and now she wants a telescope."),
                (_ASSISTANT, "A telescope is a great gift. Is she into astronomy?"),
                ("user", "Yes, she keeps asking about the rings of Saturn."),
                ("user", "We're planning a camping trip to the Lake District in August."),
            )),
        ),
        pinned="Drinks tea, never coffee; lactose intolerant.",
        questions=(
            "Which school subject do I teach?",
            "Which instrument do I play?",
            "What gift does my daughter want?",
            "Where are we going camping?",
            "What do I drink?",
        ),
    ),
)  # fmt: skip

PROBES = ("What is my dog called?", "Which foods am I allergic to?", "Who is visiting me in June?")
"""Questions about Alice's life, asked as Bob: none of Alice's memories may come back."""

CONTEXT = ("alice", "What should I cook for dinner with my sister?", "s3")
"""The ``get_context`` example: user, query, session."""

DEMO_K = 3


def _turn_id(persona: Persona, session: Session, index: int) -> str:
    return f"{persona.user_id}-{session.session_id}-{index}"


def _write(mem: LightMem, *, quiet: bool) -> None:
    total = sum(len(s.turns) for p in PERSONAS for s in p.sessions) + len(PERSONAS)
    with progress_bar(disable=quiet) as bar:
        task = bar.add_task("Writing conversations", total=total)
        for persona in PERSONAS:
            for session in persona.sessions:
                for index, (role, content) in enumerate(session.turns, start=1):
                    mem.add(
                        persona.user_id,
                        content,
                        role=role,
                        session_id=session.session_id,
                        timestamp=f"{session.date}T09:{index * 3:02d}:00",
                        turn_id=_turn_id(persona, session, index),
                        speaker=persona.name if role == "user" else "Assistant",
                    )
                    bar.advance(task)
            first = persona.sessions[0]
            mem.remember(
                persona.user_id,
                persona.pinned,
                kind="preference",
                timestamp=f"{first.date}T09:00:00",
            )
            bar.advance(task)
    if quiet:
        mem.flush()
    else:
        with err_console().status("Embedding the memories (first use loads the model)..."):
            mem.flush()


def _ask(mem: LightMem, user_id: str, question: str, out: Console | None) -> dict[str, Any]:
    hits = mem.search(user_id, question, k=DEMO_K)
    best = hits[0] if hits else None
    if out is not None:
        out.print(Text.assemble(("Q ", "bold"), (f"({user_id}): ", "dim"), (question, "bold")))
        out.print(_answer_line(best))
        if hits:
            out.print(hits_table(hits))
        out.print()
    return {
        "user_id": user_id,
        "question": question,
        "answer": best.text if best else None,
        "hits": [hit.to_dict() for hit in hits],
    }


def _answer_line(best: Hit | None) -> Text:
    if best is None:
        return Text("Best memory: (nothing found)", style="yellow")
    where = f"{best.tier.value}, {date_of(best.timestamp)}"
    if best.source_ids:
        where += f", from turn {', '.join(best.source_ids)}"
    return Text.assemble(("Best memory: ", "bold green"), best.text, (f"  ({where})", "dim"))


def run_demo(mem: LightMem, *, path: Path, temporary: bool, json_output: bool) -> dict[str, Any]:
    """Write the scripted conversations into ``mem``, ask the questions, show the answers.

    Prints as it goes unless ``json_output``; returns the whole run as JSON-ready data.

    Raises:
        CliError: the store already holds one of the demo users.
    """
    taken = sorted({p.user_id for p in PERSONAS} & set(mem.users()))
    if taken:
        raise CliError(
            f"the store at {path} already holds the demo user(s) {', '.join(taken)}; "
            "run the demo in an empty folder (or without --path for a temporary one)"
        )
    out = None if json_output else out_console()
    if out is not None:
        out.print(Rule("LightMem demo"))
        note = "a temporary folder, removed at the end (--keep keeps it)" if temporary else "kept"
        out.print(Text.assemble(("Store: ", "bold"), str(path), (f"  ({note})", "dim")))
        out.print(Text.assemble(("Embedder: ", "bold"), str(mem.stats(None)["embedder"])))
        out.print()
    _write(mem, quiet=json_output)

    users = {p.user_id: mem.stats(p.user_id) for p in PERSONAS}
    if out is not None:
        for persona in PERSONAS:
            s = users[persona.user_id]
            out.print(
                Text(
                    f"{persona.user_id}: {plural(len(persona.sessions), 'session')}, "
                    f"{plural(s['turns'], 'turn')}, {s['mtm']} mid-term and "
                    f"{s['ltm']} long-term (pinned) memories"
                )
            )
        out.print()

    answers: list[dict[str, Any]] = []
    for persona in PERSONAS:
        if out is not None:
            out.print(Rule(f"Questions from {persona.user_id}"))
        answers += [_ask(mem, persona.user_id, q, out) for q in persona.questions]

    if out is not None:
        out.print(Rule("Isolation: bob asks about alice's life"))
    probes = [_ask(mem, "bob", q, out) for q in PROBES]
    alice_ids = {m["id"] for m in mem.export("alice")["memories"]}
    bob_hits = [h for a in answers + probes if a["user_id"] == "bob" for h in a["hits"]]
    leaked = [h for h in bob_hits if h["memory_id"] in alice_ids]
    isolation = {"ok": not leaked, "bob_hits_checked": len(bob_hits), "alice_hits": len(leaked)}
    if out is not None:
        if leaked:
            out.print(
                Text(f"✗ {len(leaked)} of bob's hits are alice's memories!", style="bold red")
            )
        else:
            out.print(
                Text(f"✓ none of bob's {len(bob_hits)} hits is one of alice's memories", "green")
            )
        out.print()

    user, query, session = CONTEXT
    block = mem.get_context(user, query, session_id=session)  # the default budget and k
    if out is not None:
        out.print(Rule(f"get_context({user!r}, {query!r}, session_id={session!r})"))
        out.print(Panel(Text(block), title="prompt-ready context", title_align="left"))
        if temporary:
            out.print(Text("Run `lightmem demo --keep` to explore the store afterwards.", "dim"))
        else:
            out.print(Text("Explore the store yourself, for example:", style="bold"))
            where = shlex.quote(str(path))
            for example in (
                f"lightmem --path {where} search bob {shlex.quote('Do I like coffee?')}",
                f"lightmem --path {where} context alice {shlex.quote(query)} --session {session}",
            ):
                out.print(Text(f"  {example}"), soft_wrap=True)

    return {
        "path": str(path),
        "temporary": temporary,
        "embedder": mem.stats(None)["embedder"],
        "users": users,
        "questions": answers,
        "isolation_probes": probes,
        "isolation": isolation,
        "context": {"user_id": user, "query": query, "session_id": session, "text": block},
    }
