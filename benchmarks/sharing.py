"""Opt-in shared knowledge: does it share only what is safe to share?

Run::

    python benchmarks/sharing.py                       # the labelled set in benchmarks/data
    python benchmarks/sharing.py --data my_set.json    # any set of the same format

Each statement of the set is labelled shareable (general, non-personal, safe for every user
of a store to read) or not, with a category saying why not (credentials and codes, health,
sexuality, religion, politics, finances, identifiable people, the author and their circle,
contacts of a person, chat). A statement is *shared* when consolidation's rules accept it as
general and de-identification keeps it (``lightmem_core.consolidation.shared``). The report
gives the precision of sharing (the goal: 1.0, no unshareable statement shared) and its
recall (how much general knowledge still gets through), overall and per category, and lists
every mistake.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (first: the offline environment)
from _common import entry_point, write_json
from rich.console import Console
from rich.table import Table

from lightmem_core.consolidation.shared import deidentify, is_general

DEFAULT_DATA = Path(__file__).parent / "data" / "shareable_statements.json"


def shared_form(text: str) -> str | None:
    """What shared knowledge would hold for ``text``: its de-identified form, or ``None``."""
    if not is_general(text):
        return None
    return deidentify(text, names=())


def evaluate(statements: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Precision and recall of sharing over labelled statements, and every mistake."""
    shared_right = shared_wrong = missed = 0
    by_category: Counter[str] = Counter()
    leaked: Counter[str] = Counter()
    mistakes = []
    for item in statements:
        form = shared_form(item["text"])
        category = item.get("category", "shareable")
        by_category[category] += 1
        if item["shareable"]:
            if form is None:
                missed += 1
                mistakes.append({"text": item["text"], "error": "not shared"})
            else:
                shared_right += 1
        elif form is not None:
            shared_wrong += 1
            leaked[category] += 1
            mistakes.append({"text": item["text"], "error": f"shared ({category})", "as": form})
    shared = shared_right + shared_wrong
    shareable = shared_right + missed
    return {
        "statements": len(statements),
        "shareable": shareable,
        "shared": shared,
        "precision": round(shared_right / shared, 4) if shared else 1.0,
        "recall": round(shared_right / shareable, 4) if shareable else 0.0,
        "categories": dict(by_category),
        "leaked": dict(leaked),
        "mistakes": mistakes,
    }


def render(report: dict[str, Any], console: Console) -> None:
    table = Table(title=f"Shared knowledge on {report['statements']} labelled statements")
    for column in ("category", "statements", "shared by mistake"):
        table.add_column(column, justify="left" if column == "category" else "right")
    for category, count in sorted(report["categories"].items()):
        table.add_row(category, str(count), str(report["leaked"].get(category, 0)))
    console.print(table)
    console.print(
        f"precision of sharing {report['precision']:.3f} (target 1.000: nothing unshareable "
        f"shared), recall {report['recall']:.3f} ({report['shared']} shared of "
        f"{report['shareable']} shareable)"
    )
    for mistake in report["mistakes"]:
        console.print(f"  {mistake['error']}: {mistake['text']}", markup=False, highlight=False)


@entry_point
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="a labelled set (JSON)")
    parser.add_argument("--out", type=Path, help="write the JSON report here")
    args = parser.parse_args(argv)
    statements = json.loads(args.data.read_text(encoding="utf-8"))["statements"]
    report = evaluate(statements)
    render(report, Console())
    if args.out:
        write_json(args.out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
