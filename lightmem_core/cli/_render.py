"""Readable output: tables of hits and stats, receipts. Stored text is never read as markup."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from rich.table import Table
from rich.text import Text

from .._types import ConsolidationReport, ForgetReceipt, Hit, SearchResults
from ._common import terminal_safe

__all__ = [
    "date_of",
    "hits_json",
    "hits_table",
    "mapping_table",
    "omitted_line",
    "plural",
    "receipt_line",
    "short_id",
]


_GENERATED_ID = re.compile(r"[0-9a-f]{32}")


def short_id(value: str) -> str:
    """Generated ids (32 hex digits) shortened to 8 for tables; ``--json`` shows them whole."""
    return value[:8] + "…" if _GENERATED_ID.fullmatch(value) else value


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 memory``, ``2 memories``."""
    return f"{count} {noun if count == 1 else (nouns or noun + 's')}"


def date_of(ts: datetime | None) -> str:
    return ts.strftime("%Y-%m-%d") if ts is not None else "undated"


def hits_table(hits: Sequence[Hit], *, title: str | None = None) -> Table:
    """rank, tier, score, date, speaker, text, source turn ids."""
    table = Table(title=title, title_justify="left", show_lines=False, expand=False)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("tier", no_wrap=True)
    table.add_column("score", justify="right", no_wrap=True)
    table.add_column("date", no_wrap=True)
    table.add_column("speaker", overflow="fold")
    table.add_column("text", overflow="fold")
    table.add_column("sources", overflow="fold")
    for rank, hit in enumerate(hits, start=1):
        table.add_row(
            str(rank),
            Text(hit.tier.value, style="magenta" if hit.tier.value == "ltm" else "cyan"),
            f"{hit.score:.3f}",
            date_of(hit.timestamp),
            Text(terminal_safe(hit.speaker or "-")),
            Text(terminal_safe(hit.text)),
            Text(terminal_safe(", ".join(map(short_id, hit.source_ids)) or "-")),
        )
    return table


def omitted_line(results: SearchResults) -> str | None:
    """``N memories left out by the budget or k``, when any were."""
    if results.omitted <= 0:
        return None
    return (
        f"{plural(results.omitted, 'memory', 'memories')} left out by the budget or k "
        f"(used {results.tokens_used} of {results.token_budget} tokens)"
    )


def hits_json(user_id: str, query: str, results: SearchResults) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "query": query,
        "hits": [hit.to_dict() for hit in results],
        "omitted": results.omitted,
        "token_budget": results.token_budget,
        "tokens_used": results.tokens_used,
    }


def mapping_table(data: Mapping[str, Any], *, title: str | None = None) -> Table:
    """Two columns, one row per key; ``None`` shows as a dash."""
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, value in data.items():
        table.add_row(key, Text(terminal_safe("-" if value is None else str(value))))
    return table


def receipt_line(receipt: ForgetReceipt) -> str:
    per_tier = ", ".join(f"{count} {tier}" for tier, count in sorted(receipt.memories.items()))
    memories = sum(receipt.memories.values())
    return (
        f"Forgot user {receipt.user_id!r}: {plural(receipt.turns, 'turn')}, "
        f"{plural(memories, 'memory', 'memories')}"
        + (f" ({per_tier})" if per_tier else "")
        + f", {plural(receipt.vectors, 'vector')}, {plural(receipt.lexical_rows, 'full-text row')}"
        f"; completed {receipt.completed_at.isoformat(timespec='seconds')}"
    )


def consolidation_line(report: ConsolidationReport) -> str:
    """``Consolidated 120 entries of 2 users in 1.3 s: 80 new, 12 merged, ...``"""
    verb = "Would consolidate" if report.dry_run else "Consolidated"
    parts = [
        f"{report.new} new",
        f"{report.merged} merged",
        f"{report.superseded} superseded",
        f"{report.linked} linked",
        f"{report.reactivated} reactivated",
        f"{report.archived} archived",
        f"{report.deleted} deleted",
        f"{report.evicted} evicted",
    ]
    line = (
        f"{verb} {plural(report.entries, 'entry', 'entries')} of "
        f"{plural(report.users, 'user')} in {report.seconds:.1f} s: {', '.join(parts)}."
    )
    if report.skipped:
        line += f" Skipped (busy elsewhere): {', '.join(report.skipped)}."
    return line
