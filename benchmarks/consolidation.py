"""Consolidation benchmark: seconds per 100 new MTM entries vs the size of long-term memory.

Run::

    python benchmarks/consolidation.py                          # LTM 1k, 10k, 100k; MiniLM
    python benchmarks/consolidation.py --quick                  # LTM 200, 2k; hashing embedder
    python benchmarks/consolidation.py --sizes 1000 10000 100000 --new 100 --repeats 3 \\
        --embedder hashing --out benchmarks/results/consolidation_hashing

What it measures
----------------
One user. Before each measurement the user's long-term memory (LTM) is topped up to exactly
N records (N = ``--sizes``, default 1k, 10k, 100k; the store grows from one size to the
next). Then, ``--repeats`` times (default 3), with fresh turns every time:

1. ``--new`` (default 100) new user turns are stored with ``LightMem.add_many`` (one MTM entry
   per turn) and ``flush()`` embeds and indexes them: the cost of writing MTM is not counted;
2. ``LightMem.consolidate(user, now=...)`` is timed (wall clock, real engine, default
   config, the ``LocalAbstractor``): it reads the new entries, abstracts candidate knowledge,
   embeds the candidates, looks up for each one its nearest LTM records (Chroma) and the
   records of its slot (SQLite), and merges, supersedes, links or adds records, committing
   every 32 entries.

The figure is seconds per 100 entries taken in (``seconds / entries * 100``; median, min and
max over the repeats). Consolidation is meant to cost the same whatever the LTM holds, so the
benchmark prints the ratio of the largest to the smallest median across sizes; the target is
within 2x. Timings are printed, never asserted.

A stage breakdown (ms per entry) comes from thin timing wrappers put around the engine's
collaborators for the timed call only (embedder, abstractor, Chroma index, SQLite record
store, the indexer's ``index_vectors``), counting outermost calls of the measuring thread;
"other" is the rest (the plan's own logic, the overlay's cosine scores...).

The new turns, per batch of 100: 65 fresh first-person statements (never seen before), 15
repetitions of facts, preferences or plans already in LTM (so they merge), 10 changes of a
single-valued attribute already in LTM ("I moved to Oslo.", "My sister got a job at Bosch.":
supersedes), 10 turns of chat with no knowledge in them (questions, "you" sentences, small
talk). The report counts (new, merged, superseded, linked) show the work that was done.

How LTM is seeded (honestly, but fast)
--------------------------------------
Building 100k records through real consolidation would take hours, so LTM is written the
way consolidation writes it, minus the decisions:

* varied first-person statements are generated from templates and small word lists with a
  seeded ``random.Random`` (events, preferences, facts, plans about many people, places,
  foods, hobbies...), said at times spread over the three years before the first run;
* each is turned into its long-term text by the real ``LocalAbstractor`` ("I went hiking
  with my sister in Lisbon last week" -> "Sam went hiking with Sam's sister in Lisbon last
  week (mentioned 3 May 2023)."); dates are not resolved (``resolve_dates=False``): dateparser
  would take ~10 ms a statement. Records get the abstractor's kind, confidence, slot and slot
  value, ``support = 1`` and a decay due date in the future (nothing decays during a run);
* the single-valued attributes (where the user and 8 relatives live and work, their jobs, 10
  favourites of the user's: 37 slots) are seeded first, one current record each;
* records are inserted with the record store's ``apply_consolidation`` (chunks of
  ``--chunk``), and their vectors, computed with the store's own embedder, are put in the
  index with the indexer's ``index_vectors``: the index holds exactly what consolidation
  would have put there.

With ``--embedder minilm`` (the default: the engine's default all-MiniLM-L6-v2, nothing
passed to ``LightMem``), seeding 100k records embeds 100k texts, several minutes on 2 cores;
``--embedder hashing`` uses ``lightmem_core.testing.HashingEmbedder`` (no model; the
similarities, and therefore merges and links, differ).

Outputs in ``--out`` (default ``benchmarks/results/consolidation``; ``..._quick`` with
``--quick``): ``consolidation.json`` (every figure, every run), ``consolidation.md`` (the
tables printed at the end) and ``consolidation.png``.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import (  # sets the offline env first
    entry_point,
    environment,
    fmt,
    load_average,
    make_progress,
    markdown_table,
    rich_table,
    write_json,
)
from rich.console import Console
from rich.progress import (
    Progress,
    TaskID,
)
from rich.table import Table

from lightmem_core import LightMem, Memory, Tier, tracing
from lightmem_core.consolidation import ConsolidationSettings, LocalAbstractor
from lightmem_core.consolidation.plan import new_record
from lightmem_core.embedding import default_embedder
from lightmem_core.store import (
    ConsolidationChanges,
    Evidence,
    NewRecord,
    RecordStore,
    SQLiteRecordStore,
)
from lightmem_core.testing import HashingEmbedder

USER = "consolidation-bench-user"
SPEAKER = "Sam"
BASE_NOW = datetime(2024, 6, 3, 9, 0, tzinfo=UTC)
"""The clock of the seeded records; the k-th measurement runs at ``BASE_NOW + k hours``."""
SEED_SPAN_DAYS = 3 * 365
TARGET_RATIO = 2.0
EMBEDDERS = ("minilm", "hashing")
MIX = {"chatter": 0.10, "repeat": 0.15, "change": 0.10}
"""Shares of each batch of new turns; the rest are fresh statements."""
STAGE_GROUPS = (
    "embed candidates",
    "abstract",
    "Chroma query",
    "SQLite reads",
    "SQLite writes",
    "index new records",
    "other",
)
COUNT_KEYS = (
    "entries",
    "new",
    "merged",
    "superseded",
    "linked",
    "reactivated",
    "archived",
    "deleted",
    "evicted",
)
"""Report counts summed per size."""
TOP_CALLS = 8
"""Calls listed in the per-call table."""
SQLITE_WRITES = frozenset(
    {"apply_consolidation", "acquire_lease", "release_lease", "mark_indexed", "add", "set_meta"}
)

# --- word lists ---------------------------------------------------------------------------------

NAMES = [
    "Maria", "Tom", "Aisha", "Kenji", "Lucia", "Omar", "Priya", "Jonas", "Chloe", "Mateo",
    "Fatima", "Liam", "Sofia", "Yusuf", "Hannah", "Diego", "Mei", "Noah", "Amara", "Felix",
    "Ingrid", "Ravi", "Elena", "Samuel", "Nadia", "Oscar", "Leila", "Hugo", "Zara", "Pavel",
    "Grace", "Tariq", "Ana", "Viktor", "Keiko", "Marcus", "Olga", "Bruno", "Selin", "David",
]  # fmt: skip
RELATIONS = [
    "sister", "brother", "cousin", "neighbour", "colleague", "boss", "friend", "aunt",
    "uncle", "flatmate", "mother", "father", "grandmother", "partner",
]  # fmt: skip
SLOT_RELATIONS = ["sister", "brother", "mother", "father", "partner", "cousin", "boss", "friend"]
CITIES = [
    "Lisbon", "Kyoto", "Berlin", "Marrakesh", "Barcelona", "Oslo", "Toronto", "Naples",
    "Buenos Aires", "Vienna", "Seoul", "Edinburgh", "Prague", "Istanbul", "Copenhagen",
    "Mexico City", "Dublin", "Helsinki", "Melbourne", "Nairobi", "Lyon", "Krakow", "Porto",
    "Zurich", "Montreal",
]  # fmt: skip
PLACES = [
    "the old harbour", "the lake", "the mountains", "the park by the river", "the beach",
    "the national park", "the botanical garden", "the old town", "the coast", "the forest",
    *CITIES[:20],
]  # fmt: skip
PAST_ACTIVITIES = [
    "went hiking", "had dinner", "visited the museum", "played tennis", "went swimming",
    "watched a film", "went cycling", "went to a concert", "cooked ramen", "played chess",
    "went camping", "went sailing", "did yoga", "went skiing", "went kayaking", "had brunch",
    "went climbing", "went to a jazz bar", "went fishing", "went ice skating", "had a picnic",
    "went to the theatre", "went birdwatching", "played football",
]  # fmt: skip
HABITS = [
    "go running", "play badminton", "bake bread", "go swimming", "do yoga", "play chess",
    "go climbing", "cook a big dinner", "practise the guitar", "go to the market",
    "visit my grandmother", "clean the flat", "go cycling", "play board games",
]  # fmt: skip
LIKED = [
    "sushi", "lentil soup", "dark chocolate", "mushrooms", "spicy curry", "fresh figs",
    "goat cheese", "olives", "pancakes", "kimchi", "strawberries", "black coffee", "falafel",
    "blue cheese", "pineapple", "tofu", "jazz", "horror films", "crossword puzzles",
    "long train rides", "gardening", "opera", "board games", "science fiction", "karaoke",
    "camping", "poetry", "modern art", "salsa dancing", "thunderstorms", "cold showers",
    "early mornings", "podcasts about history", "reality shows", "video games", "knitting",
    "red wine", "green tea", "spicy food", "roller coasters",
]  # fmt: skip
FEELING_VERBS = ["loves", "enjoys", "hates", "can't stand", "is a big fan of", "adores"]
ALLERGENS = [
    "peanuts", "shellfish", "gluten", "strawberries", "cats", "pollen", "dust", "penicillin",
    "eggs", "soy", "sesame", "kiwi", "latex", "bee stings", "milk", "walnuts",
]  # fmt: skip
TIMES = [
    "last week", "last weekend", "last month", "last summer", "last year", "yesterday",
    "two weeks ago", "three days ago", "last winter", "a few months ago",
]  # fmt: skip
FUTURE = [
    "next month", "in the spring", "next year", "in two weeks", "before the summer",
    "in October", "after the holidays", "next weekend",
]  # fmt: skip
PLANS = [
    "visit Kyoto", "run a marathon", "repaint the kitchen", "learn to sail", "adopt a dog",
    "hike the Camino", "build a treehouse", "take a pottery class", "start a vegetable garden",
    "travel around Portugal", "buy an electric bike", "renovate the bathroom",
    "learn to scuba dive", "go on a cycling trip", "climb Mount Fuji", "write a short story",
    "take a cooking course", "visit the northern lights", "move to a bigger flat",
    "redo the garden",
]  # fmt: skip
THINGS = [
    "rain jacket", "coffee grinder", "second-hand guitar", "standing desk", "pair of boots",
    "road bike", "camera lens", "tent", "rice cooker", "winter coat", "desk lamp", "kayak",
    "sewing machine", "telescope", "espresso machine", "yoga mat", "record player",
    "sleeping bag", "drone", "bookshelf",
]  # fmt: skip
SHOPS = [
    "the flea market", "a garage sale", "the outdoor shop", "the department store",
    "an online auction", "the shop around the corner", "the mall", "a vintage store",
    "the hardware store", "the airport", "a charity shop", "the farmers market",
]  # fmt: skip
BOOKS = [
    "Dune", "Sapiens", "Middlemarch", "Circe", "Educated", "The Road", "Norwegian Wood",
    "The Overstory", "Project Hail Mary", "Beloved", "Dracula", "Emma", "Stoner",
    "The Hobbit", "Solaris", "Rebecca", "Ulysses", "Persuasion", "Neuromancer", "Kindred",
]  # fmt: skip
SKILLS = [
    "Spanish", "the piano", "pottery", "Python", "salsa dancing", "woodworking",
    "photography", "Mandarin", "rock climbing", "chess openings", "the violin", "Italian",
    "calligraphy", "sign language", "watercolour painting", "jiu-jitsu",
]  # fmt: skip
PETS = ["dog", "cat", "parrot", "rabbit", "hamster", "tortoise", "goldfish", "ferret"]
PET_ADJECTIVES = ["small", "old", "lazy", "grumpy", "fluffy", "tiny", "very loud", "shy"]
PET_NAMES = [
    "Biscuit", "Pixel", "Mochi", "Pepper", "Luna", "Ziggy", "Waffles", "Nugget", "Olive",
    "Bean", "Socks", "Pickle", "Maple", "Rocket", "Juniper", "Toffee", "Noodle", "Clover",
    "Bagel", "Fig",
]  # fmt: skip
HOBBIES = [
    "old stamps", "vinyl records", "vintage cameras", "rare plants", "model trains",
    "antique maps", "comic books", "seashells", "mechanical watches", "board games",
]  # fmt: skip
HOBBY_VERBS = ["collects", "restores", "sells", "repairs", "trades"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
COMPANIES = [
    "Siemens", "Spotify", "Novartis", "Airbus", "Ikea", "Lego", "Philips", "Bosch",
    "Unilever", "Adidas", "Nokia", "Heineken", "Ericsson", "Zalando", "Maersk", "Danone",
    "Ubisoft", "Decathlon", "Volvo", "Canonical",
]  # fmt: skip
JOBS = [
    "nurse", "teacher", "architect", "plumber", "lawyer", "pharmacist", "carpenter",
    "journalist", "pilot", "chef", "dentist", "librarian", "firefighter", "translator",
    "engineer", "accountant", "photographer", "electrician", "gardener", "paramedic",
]  # fmt: skip
FAVOURITES: dict[str, list[str]] = {
    "food": ["sushi", "lasagne", "ramen", "paella", "tacos", "dumplings", "moussaka", "pho"],
    "band": ["Radiohead", "Abba", "Muse", "Queen", "Coldplay", "Portishead", "Blur", "Oasis"],
    "book": ["Dune", "Emma", "Circe", "Beloved", "Stoner", "Solaris", "Rebecca", "Kindred"],
    "film": ["Alien", "Amelie", "Vertigo", "Heat", "Casablanca", "Jaws", "Up", "Arrival"],
    "city": ["Lisbon", "Kyoto", "Vienna", "Seoul", "Porto", "Krakow", "Lyon", "Dublin"],
    "sport": ["tennis", "rugby", "cycling", "curling", "handball", "fencing", "rowing", "golf"],
    "drink": ["espresso", "green tea", "lemonade", "cider", "kombucha", "mint tea", "stout"],
    "season": ["autumn", "spring", "winter", "summer"],
    "board game": ["Catan", "Carcassonne", "Scrabble", "chess", "Azul", "Go", "Risk"],
    "colour": ["green", "blue", "orange", "purple", "yellow", "teal", "red", "grey"],
}
CHATTER = [
    "Do you think it will rain tomorrow?",
    "Thanks, that's really helpful!",
    "You should try the new ramen place.",
    "Haha, that's so funny.",
    "What time is it in Tokyo right now?",
    "I think so too.",
    "Can you remind me what we talked about last time?",
    "Okay, sounds good.",
    "Could you recommend a good podcast?",
    "Have you ever been to {place}?",
    "What do you know about {skill}?",
    "Is {book} worth reading?",
    "You always give great advice.",
    "How do I make {liked} at home?",
    "Wow, I didn't know that.",
    "Good morning!",
    "I guess we'll see.",
    "Can you help me plan a trip to {city}?",
    "Did you see the news today?",
    "Your suggestion about {liked} was great.",
]

Template = Callable[[random.Random], str]


def _companion(r: random.Random) -> str:
    return f"my {r.choice(RELATIONS)}" if r.random() < 0.4 else r.choice(NAMES)


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


TEMPLATES: list[tuple[float, Template]] = [
    (
        5.0,
        lambda r: (
            f"I {r.choice(PAST_ACTIVITIES)} with {_companion(r)} in {r.choice(PLACES)} "
            f"{r.choice(TIMES)}."
        ),
    ),
    (
        4.0,
        lambda r: (
            f"My {r.choice(RELATIONS)} {r.choice(NAMES)} {r.choice(FEELING_VERBS)} "
            f"{r.choice(LIKED)}."
        ),
    ),
    (
        2.0,
        lambda r: (
            f"I bought a {r.choice(THINGS)} at {r.choice(SHOPS)} for {r.randint(12, 950)} euros."
        ),
    ),
    (
        1.0,
        lambda r: (
            f"My {r.choice(RELATIONS)} {r.choice(NAMES)} is allergic to {r.choice(ALLERGENS)}."
        ),
    ),
    (
        1.0,
        lambda r: f"I am planning to {r.choice(PLANS)} with {_companion(r)} {r.choice(FUTURE)}.",
    ),
    (
        0.5,
        lambda r: (
            f"I usually {r.choice(HABITS)} on {r.choice(WEEKDAYS)} evenings with my "
            f"{r.choice(RELATIONS)}."
        ),
    ),
    (
        0.5,
        lambda r: (
            f"My {r.choice(RELATIONS)} {r.choice(NAMES)} {r.choice(HOBBY_VERBS)} "
            f"{r.choice(HOBBIES)} as a hobby."
        ),
    ),
    (
        0.3,
        lambda r: (
            f"I have a {r.choice(PET_ADJECTIVES)} {r.choice(PETS)} called {r.choice(PET_NAMES)}."
        ),
    ),
    (
        0.3,
        lambda r: (
            f"I started learning {r.choice(SKILLS)} because {r.choice(NAMES)} recommended it."
        ),
    ),
    (
        0.3,
        lambda r: f"I read {r.choice(BOOKS)} on the train to {r.choice(CITIES)} {r.choice(TIMES)}.",
    ),
    (
        0.3,
        lambda r: (
            f"I really enjoy {r.choice(LIKED)} on {r.choice(WEEKDAYS)} nights with my "
            f"{r.choice(RELATIONS)}."
        ),
    ),
]


def fresh_statement(rng: random.Random) -> str:
    """One first-person statement from the templates (may repeat: callers deduplicate)."""
    weights = [w for w, _ in TEMPLATES]
    template = rng.choices([t for _, t in TEMPLATES], weights=weights)[0]
    return template(rng)


# --- single-valued attributes (slots) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Slot:
    """A single-valued attribute: who (``None``: the user; else a relation) and what."""

    relation: str | None
    attribute: str
    """``residence``, ``employer``, ``occupation`` or ``favourite <thing>``."""

    def values(self) -> list[str]:
        if self.attribute == "residence":
            return CITIES
        if self.attribute == "employer":
            return COMPANIES
        if self.attribute == "occupation":
            return JOBS
        return FAVOURITES[self.attribute.removeprefix("favourite ")]

    def statement(self, value: str, *, change: bool) -> str:
        """Say the value: as a plain fact (seeding), or as news (a change)."""
        mine = "I" if self.relation is None else f"My {self.relation}"
        if self.attribute == "residence":
            if change:
                return f"{mine} moved to {value}."
            return f"{mine} {'live' if self.relation is None else 'lives'} in {value}."
        if self.attribute == "employer":
            if change:
                return (
                    f"I started a new job at {value}."
                    if self.relation is None
                    else f"{mine} got a job at {value}."
                )
            return f"{mine} {'work' if self.relation is None else 'works'} at {value}."
        if self.attribute == "occupation":
            verb = "work" if self.relation is None else "works"
            return f"{mine} {verb} as {_article(value)} {value}."
        thing = self.attribute.removeprefix("favourite ")
        return f"My favourite {thing} is {value}."


SLOTS: list[Slot] = [
    *(
        Slot(relation, attribute)
        for relation in (None, *SLOT_RELATIONS)
        for attribute in ("residence", "employer", "occupation")
    ),
    *(Slot(None, f"favourite {thing}") for thing in FAVOURITES),
]


# --- statements to seed, and new turns ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SeedStatement:
    text: str
    said_at: datetime
    slot: Slot | None = None
    value: str | None = None


def seed_statements(n: int, seed: int) -> list[SeedStatement]:
    """``n`` distinct first-person statements to seed LTM with: one per slot first, then
    template statements, said at times spread over the years before :data:`BASE_NOW`."""
    rng = random.Random(seed)

    def said() -> datetime:
        return BASE_NOW - timedelta(days=1 + rng.random() * SEED_SPAN_DAYS)

    out: list[SeedStatement] = []
    for slot in SLOTS:
        value = rng.choice(slot.values())
        out.append(SeedStatement(slot.statement(value, change=False), said(), slot, value))
    seen = {s.text for s in out}
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 50 * n + 1000:
            raise RuntimeError(f"cannot generate {n} distinct statements from the templates")
        text = fresh_statement(rng)
        if text not in seen:
            seen.add(text)
            out.append(SeedStatement(text, said()))
    return out[:n]


@dataclass(slots=True)
class TurnMaker:
    """Fresh batches of new turns: fresh statements, repeats, slot changes and chatter."""

    rng: random.Random
    exclude: set[str]
    """Every seed statement's text: fresh statements are never one of them."""
    repeatable: list[str] = field(default_factory=list)
    """Seeded statements whose long-term records are facts, preferences or plans without a
    slot: saying one again merges into its record."""
    slot_values: dict[Slot, str] = field(default_factory=dict)
    """The current value of every seeded slot."""

    def batch(
        self, n: int, clock: datetime, session: str
    ) -> tuple[list[dict[str, Any]], Counter[str]]:
        """``n`` turns said in the ``n`` minutes before ``clock``, and their intended mix."""
        want = {kind: round(n * share) for kind, share in MIX.items()}
        if not self.repeatable:
            want["repeat"] = 0
        if not self.slot_values:
            want["change"] = 0
        want["fresh"] = n - sum(want.values())
        kinds = [kind for kind, count in want.items() for _ in range(count)]
        self.rng.shuffle(kinds)
        texts = [getattr(self, f"_{kind}")() for kind in kinds]
        turns = [
            {
                "content": text,
                "speaker": SPEAKER,
                "role": "user",
                "session_id": session,
                "timestamp": clock - timedelta(minutes=n - i),
            }
            for i, text in enumerate(texts)
        ]
        return turns, Counter(kinds)

    def _fresh(self) -> str:
        for _ in range(10_000):
            text = fresh_statement(self.rng)
            if text not in self.exclude:
                self.exclude.add(text)
                return text
        raise RuntimeError("the templates ran out of fresh statements")

    def _repeat(self) -> str:
        return self.rng.choice(self.repeatable)

    def _change(self) -> str:
        slot = self.rng.choice(
            sorted(self.slot_values, key=lambda s: (s.relation or "", s.attribute))
        )
        value = self.rng.choice([v for v in slot.values() if v != self.slot_values[slot]])
        self.slot_values[slot] = value
        return slot.statement(value, change=True)

    def _chatter(self) -> str:
        return self.rng.choice(CHATTER).format(
            place=self.rng.choice(PLACES),
            skill=self.rng.choice(SKILLS),
            book=self.rng.choice(BOOKS),
            liked=self.rng.choice(LIKED),
            city=self.rng.choice(CITIES),
        )


# --- seeding LTM -----------------------------------------------------------------------------------


@dataclass(slots=True)
class SeedStats:
    records: int = 0
    skipped: int = 0
    abstract_s: float = 0.0
    insert_s: float = 0.0
    index_s: float = 0.0
    wall_s: float = 0.0
    kinds: Counter[str] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {
            "records_added": self.records,
            "statements_without_knowledge": self.skipped,
            "abstract_s": round(self.abstract_s, 2),
            "insert_s": round(self.insert_s, 2),
            "embed_and_index_s": round(self.index_s, 2),
            "wall_s": round(self.wall_s, 2),
            "kinds": dict(sorted(self.kinds.items())),
        }


class Seeder:
    """Writes seed statements into the user's LTM as consolidation would have written them:
    the engine's own abstractor and record builder, committed through the store's record
    store (the one this benchmark gave it) and indexed by ``flush``."""

    def __init__(
        self,
        mem: LightMem,
        records: RecordStore,
        statements: Sequence[SeedStatement],
        maker: TurnMaker,
    ) -> None:
        self.mem = mem
        self.store = records
        self.statements = statements
        self.maker = maker
        self.cursor = 0
        self.abstractor = LocalAbstractor(resolve_dates=False)
        self.settings = ConsolidationSettings()

    def records(self, chunk: Sequence[SeedStatement], start: int) -> tuple[list[NewRecord], int]:
        evidence = [
            Evidence(
                Memory(
                    id=f"seed-{start + i}",
                    user_id=USER,
                    tier=Tier.MTM,
                    kind="turn",
                    text=s.text,
                    timestamp=s.said_at,
                    speaker=SPEAKER,
                ),
                start + i,
                "user",
            )
            for i, s in enumerate(chunk)
        ]
        records: list[NewRecord] = []
        skipped = 0
        for statement, entry, found in zip(
            chunk, evidence, self.abstractor.abstract(evidence), strict=True
        ):
            if not found:
                skipped += 1
                continue
            candidate = found[0]
            happened = candidate.happened_at or statement.said_at
            records.append(
                new_record(
                    USER, entry, 0, candidate, happened, now=BASE_NOW, settings=self.settings
                )
            )
            if statement.slot is not None and statement.value is not None and candidate.slot:
                self.maker.slot_values[statement.slot] = statement.value
            elif candidate.slot is None and candidate.kind in ("fact", "preference", "plan"):
                self.maker.repeatable.append(statement.text)
        return records, skipped

    def grow_to(self, size: int, *, chunk: int, progress: Progress, console: Console) -> SeedStats:
        """Add seed records until the user's LTM holds ``size`` records."""
        stats = SeedStats()
        started = time.perf_counter()
        have = ltm_count(self.mem)
        task = progress.add_task(f"seed LTM to {size:,}", total=max(0, size - have))
        while have < size:
            if self.cursor >= len(self.statements):
                raise RuntimeError("ran out of seed statements")
            need = min(chunk, size - have)
            batch = self.statements[self.cursor : self.cursor + need]
            t0 = time.perf_counter()
            records, skipped = self.records(batch, self.cursor)
            self.cursor += len(batch)
            t1 = time.perf_counter()
            self.store.apply_consolidation(USER, ConsolidationChanges(inserts=records, at=BASE_NOW))
            t2 = time.perf_counter()
            self.mem.flush(progress=lambda n: progress.advance(task, n))
            t3 = time.perf_counter()
            stats.abstract_s += t1 - t0
            stats.insert_s += t2 - t1
            stats.index_s += t3 - t2
            stats.records += len(records)
            stats.skipped += skipped
            stats.kinds.update(r.memory.kind for r in records)
            have += len(records)
        stats.wall_s = time.perf_counter() - started
        progress.remove_task(task)
        if stats.records:
            console.print(
                f"seeded {stats.records:,} LTM records in {stats.wall_s:.1f} s (abstract "
                f"{stats.abstract_s:.1f} s, SQLite {stats.insert_s:.1f} s, embed and index "
                f"{stats.index_s:.1f} s)"
            )
        return stats


def ltm_count(mem: LightMem) -> int:
    return int(mem.stats(USER)["ltm"])


# --- stage timing ----------------------------------------------------------------------------------


@dataclass(slots=True)
class StageTimes:
    """Seconds and calls per engine span (``group: span``), each step in its outermost span
    and in the consolidating thread only (``lightmem_core.tracing``)."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def group(self, group: str) -> float:
        return sum(s for key, s in self.seconds.items() if key.split(": ")[0] == group)


def stage_group(span: str) -> str:
    """Which of ``STAGE_GROUPS`` an engine span belongs to."""
    owner, _, method = span.partition(".")
    if owner == "records":
        return "SQLite writes" if method in SQLITE_WRITES else "SQLite reads"
    return {
        "embedder": "embed candidates",
        "abstractor": "abstract",
        "vectors": "Chroma query",
        "indexer": "index new records",
    }.get(owner, "other")


@contextmanager
def stage_timers() -> Iterator[StageTimes]:
    """Where the block's consolidation time goes, by the engine's spans."""
    times = StageTimes()
    with tracing.trace() as spans:
        yield times
    for name, seconds in spans.seconds().items():
        times.seconds[f"{stage_group(name)}: {name}"] += seconds
    for name, calls in spans.calls().items():
        times.calls[f"{stage_group(name)}: {name}"] += calls


# --- measuring ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Options:
    sizes: list[int]
    new: int
    repeats: int
    embedder: str
    out: Path
    workdir: Path | None
    keep: bool
    seed: int
    chunk: int
    quick: bool


def measure_once(
    mem: LightMem,
    maker: TurnMaker,
    *,
    n: int,
    clock: datetime,
    session: str,
    progress: Progress,
    task: TaskID,
) -> dict[str, Any]:
    turns, mix = maker.batch(n, clock, session)
    ltm_before = ltm_count(mem)
    mem.add_many(USER, turns)
    mem.flush()  # the MTM entries' vectors: not part of consolidation
    with stage_timers() as stages:
        started = time.perf_counter()
        report = mem.consolidate(USER, now=clock, progress=lambda k: progress.advance(task, k))
        seconds = time.perf_counter() - started
    entries = report.entries
    staged = {group: stages.group(group) for group in STAGE_GROUPS if group != "other"}
    staged["other"] = max(0.0, seconds - sum(staged.values()))
    return {
        "entries": entries,
        "seconds": seconds,
        "s_per_100": seconds / entries * 100 if entries else None,
        "ms_per_entry": seconds / entries * 1000 if entries else None,
        "ltm_before": ltm_before,
        "intended": dict(sorted(mix.items())),
        "report": report.to_dict(),
        "stages_ms_per_entry": {
            group: round(value / entries * 1000, 3) if entries else None
            for group, value in staged.items()
        },
        "calls": {
            key: {
                "calls": stages.calls[key],
                "ms_per_call": round(stages.seconds[key] / stages.calls[key] * 1000, 3),
                "ms_per_entry": round(stages.seconds[key] / entries * 1000, 3) if entries else None,
            }
            for key in sorted(stages.seconds, key=lambda k: -stages.seconds[k])
        },
    }


def summarise_size(size: int, runs: list[dict[str, Any]], seed: SeedStats) -> dict[str, Any]:
    per100 = [r["s_per_100"] for r in runs if r["s_per_100"] is not None]
    counts: Counter[str] = Counter()
    intended: Counter[str] = Counter()
    for run in runs:
        counts.update({key: run["report"].get(key, 0) for key in COUNT_KEYS})
        intended.update(run["intended"])
    stages = (
        {
            group: statistics.median(
                r["stages_ms_per_entry"][group]
                for r in runs
                if r["stages_ms_per_entry"][group] is not None
            )
            for group in STAGE_GROUPS
        }
        if per100
        else {}
    )
    keys = sorted({key for run in runs for key in run["calls"]})
    calls = {
        key: {
            "ms_per_call": statistics.median(
                r["calls"][key]["ms_per_call"] for r in runs if key in r["calls"]
            ),
            "calls_per_entry": statistics.median(
                r["calls"][key]["calls"] / r["entries"]
                for r in runs
                if key in r["calls"] and r["entries"]
            )
            if any(r["entries"] for r in runs if key in r["calls"])
            else None,
        }
        for key in keys
    }
    median = statistics.median(per100) if per100 else None
    return {
        "ltm_records": size,
        "s_per_100": {
            "median": median,
            "min": min(per100) if per100 else None,
            "max": max(per100) if per100 else None,
        },
        "ms_per_entry_median": median * 10 if median is not None else None,
        "counts": dict(counts),
        "intended": dict(sorted(intended.items())),
        "stages_ms_per_entry_median": stages,
        "calls_median": calls,
        "seed": seed.to_dict(),
        "runs": runs,
    }


def flatness(sizes: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    medians = [s["s_per_100"]["median"] for s in sizes if s["s_per_100"]["median"]]
    if len(medians) < 2:
        return {
            "ratio_max_min": None,
            "ratio_largest_smallest": None,
            "target": TARGET_RATIO,
            "met": None,
        }
    ratio = max(medians) / min(medians)
    return {
        "ratio_max_min": round(ratio, 3),
        "ratio_largest_smallest": round(medians[-1] / medians[0], 3),
        "target": TARGET_RATIO,
        "met": ratio <= TARGET_RATIO,
    }


# --- environment ------------------------------------------------------------------------------------


# --- the run -----------------------------------------------------------------------------------------


def run_benchmark(
    options: Options, *, console: Console | None = None, show_progress: bool = True
) -> dict[str, Any]:
    """Seed, measure every size, write the reports to ``options.out``; returns the results."""
    console = console or Console()
    started = time.perf_counter()
    load_before = load_average()
    cpus = os.cpu_count() or 1
    if load_before is not None and load_before > 0.5 * cpus:
        console.print(
            f"[yellow]warning: load average {load_before:.1f} on {cpus} cores: other processes "
            "compete for the CPU and inflate the timings[/yellow]"
        )
    options.out.mkdir(parents=True, exist_ok=True)
    scratch = options.workdir or Path(tempfile.mkdtemp(prefix="lightmem-consolidation-"))
    store = scratch / "store"
    if store.exists():
        shutil.rmtree(store)
    statements = seed_statements(max(options.sizes), options.seed)
    maker = TurnMaker(random.Random(options.seed + 1), {s.text for s in statements})
    embedder = HashingEmbedder() if options.embedder == "hashing" else default_embedder()
    sizes_out: list[dict[str, Any]] = []
    try:
        # The default parts, made here so that the seeder can write through the record store.
        store.mkdir(mode=0o700, parents=True)
        records = SQLiteRecordStore(store / "records.sqlite3")
        with LightMem(store, embedder=embedder, records=records) as mem:
            t0 = time.perf_counter()
            embedder.embed(["warm up the embedder"])  # loads the model, untimed
            embedder_load_s = time.perf_counter() - t0
            embedder_name = embedder.name
            console.print(
                f"embedder {embedder_name} ready in {embedder_load_s:.1f} s; store {store}"
            )
            seeder = Seeder(mem, records, statements, maker)
            clock_hours = 0
            with make_progress(console, enabled=show_progress) as progress:
                for size in options.sizes:
                    progress.console.rule(f"[bold]LTM {size:,} records")
                    seed = seeder.grow_to(
                        size, chunk=options.chunk, progress=progress, console=progress.console
                    )
                    gc.collect()
                    task = progress.add_task(
                        f"consolidate at {size:,}", total=options.new * options.repeats
                    )
                    runs = []
                    for repeat in range(options.repeats):
                        clock_hours += 1
                        run = measure_once(
                            mem,
                            maker,
                            n=options.new,
                            clock=BASE_NOW + timedelta(hours=clock_hours),
                            session=f"bench-{size}-{repeat}",
                            progress=progress,
                            task=task,
                        )
                        runs.append(run)
                        report = run["report"]
                        progress.console.print(
                            f"  run {repeat + 1}: {run['entries']} entries in "
                            f"{run['seconds']:.2f} s ({run['s_per_100']:.2f} s/100); new "
                            f"{report['new']}, merged {report['merged']}, superseded "
                            f"{report['superseded']}, linked {report['linked']}"
                        )
                    progress.remove_task(task)
                    summary = summarise_size(size, runs, seed)
                    summary["ltm_after"] = ltm_count(mem)
                    summary["vectors_in_index"] = int(mem.stats(USER)["vectors"])
                    sizes_out.append(summary)
    finally:
        if not options.keep:
            shutil.rmtree(scratch if options.workdir is None else store, ignore_errors=True)
    results: dict[str, Any] = {
        "benchmark": "lightmem consolidation vs LTM size",
        "created_at": datetime.now(UTC).isoformat(),
        "wall_s": round(time.perf_counter() - started, 2),
        "config": {
            "sizes": options.sizes,
            "new_per_run": options.new,
            "repeats": options.repeats,
            "embedder": embedder_name,
            "embedder_option": options.embedder,
            "embedder_load_s": round(embedder_load_s, 2),
            "seed": options.seed,
            "chunk": options.chunk,
            "quick": options.quick,
            "mix": {**MIX, "fresh": round(1 - sum(MIX.values()), 2)},
            "engine": "LightMem(path) defaults; LocalAbstractor; consolidate(user, now=...)",
            "seeding": (
                "LocalAbstractor(resolve_dates=False) texts of template statements, built by the "
                "plan's new_record, written with apply_consolidation, indexed by flush()"
            ),
            "environment": {
                **environment(),
                "load_average_1m_start": load_before,
                "load_average_1m_end": load_average(),
            },
        },
        "flatness": flatness(sizes_out),
        "sizes": sizes_out,
    }
    write_reports(results, options.out)
    return results


# --- reporting ----------------------------------------------------------------------------------------


def verdict(flat: Mapping[str, Any]) -> str:
    if flat["met"] is None:
        return "flatness: needs two sizes or more"
    return (
        f"flatness: max/min of the medians = {flat['ratio_max_min']:.2f}x (largest/smallest "
        f"size {flat['ratio_largest_smallest']:.2f}x); target ≤ {flat['target']:g}x: "
        f"{'met' if flat['met'] else 'NOT met'}"
    )


def tables(results: Mapping[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """The report's tables: (title, header, rows)."""
    sizes = results["sizes"]
    timing = [
        [
            f"{s['ltm_records']:,}",
            fmt(s["s_per_100"]["median"], 3),
            fmt(s["s_per_100"]["min"], 3),
            fmt(s["s_per_100"]["max"], 3),
            fmt(s["ms_per_entry_median"], 1),
            str(len(s["runs"])),
        ]
        for s in sizes
    ]
    counts = [
        [
            f"{s['ltm_records']:,}",
            str(s["counts"].get("entries", 0)),
            str(s["counts"].get("new", 0)),
            str(s["counts"].get("merged", 0)),
            str(s["counts"].get("superseded", 0)),
            str(s["counts"].get("linked", 0)),
            " / ".join(
                str(s["intended"].get(k, 0)) for k in ("fresh", "repeat", "change", "chatter")
            ),
            f"{s['ltm_after']:,}",
        ]
        for s in sizes
    ]
    stages = [
        [
            f"{s['ltm_records']:,}",
            *(fmt(s["stages_ms_per_entry_median"].get(g), 2) for g in STAGE_GROUPS),
        ]
        for s in sizes
    ]
    # The calls that cost the most at the largest size, per call at every size.
    last = sizes[-1] if sizes else {"calls_median": {}}

    def weight(key: str) -> float:
        call = last["calls_median"][key]
        return float(call["ms_per_call"] * (call["calls_per_entry"] or 0.0))

    top = sorted(last["calls_median"], key=weight, reverse=True)[:TOP_CALLS]
    per_call = [
        [
            key,
            fmt(last["calls_median"][key]["calls_per_entry"], 2),
            *(
                fmt(s["calls_median"][key]["ms_per_call"], 3) if key in s["calls_median"] else "–"
                for s in sizes
            ),
        ]
        for key in top
    ]
    return [
        (
            "Seconds per 100 new MTM entries consolidated",
            ["LTM records", "s/100 median", "s/100 min", "s/100 max", "ms/entry", "runs"],
            timing,
        ),
        (
            "What consolidation did (all runs of a size)",
            [
                "LTM records",
                "entries",
                "new",
                "merged",
                "superseded",
                "linked",
                "intended fresh/repeat/change/chat",
                "LTM after",
            ],
            counts,
        ),
        (
            "Where the time went (ms per entry, median of the runs)",
            ["LTM records", *STAGE_GROUPS],
            stages,
        ),
        (
            "Costliest calls at the largest size: ms per call at each size (median)",
            ["stage: call", "calls/entry", *(f"{s['ltm_records']:,}" for s in sizes)],
            per_call,
        ),
    ]


def header_lines(results: Mapping[str, Any]) -> list[str]:
    config = results["config"]
    env = config["environment"]
    return [
        f"{env['platform']}, {env['cpu_count']} CPUs ({env['processor']}), Python "
        f"{env['python']}, SQLite {env['sqlite']}, chromadb {env['chromadb']}, torch "
        f"{env['torch']}; load average {env['load_average_1m_start']} -> "
        f"{env['load_average_1m_end']}",
        f"embedder {config['embedder']}; {config['new_per_run']} new turns per run, "
        f"{config['repeats']} run(s) per size; wall time {results['wall_s']:.0f} s",
    ]


def markdown(results: Mapping[str, Any]) -> str:
    lines = ["# LightMem consolidation vs long-term memory size", ""]
    lines += [f"{line}  " for line in header_lines(results)]
    lines += ["", f"**{verdict(results['flatness'])}**", ""]
    for title, header, rows in tables(results):
        lines += [
            f"## {title}",
            "",
            *markdown_table(header, rows),
            "",
        ]
    lines += [
        "Seconds are wall-clock seconds of `LightMem.consolidate(user)` (the MTM entries were "
        "embedded and indexed before). Intended: the mix of new turns (fresh statements, "
        "repeats of facts already in LTM, changes of a single-valued attribute, chat with no "
        "knowledge).",
        "",
    ]
    return "\n".join(lines)


def plot(results: Mapping[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = results["sizes"]
    xs = [s["ltm_records"] for s in sizes]
    med = [s["s_per_100"]["median"] or float("nan") for s in sizes]
    low = [m - (s["s_per_100"]["min"] or m) for m, s in zip(med, sizes, strict=True)]
    high = [(s["s_per_100"]["max"] or m) - m for m, s in zip(med, sizes, strict=True)]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6))
    left.errorbar(xs, med, yerr=[low, high], fmt="o-", capsize=4, label="median (min-max)")
    finite = [m for m in med if m == m]
    if finite:
        left.axhline(
            min(finite) * TARGET_RATIO,
            ls="--",
            color="C3",
            alpha=0.6,
            label=f"{TARGET_RATIO:g}x the smallest median",
        )
        left.set_ylim(0, max(max(finite) * 1.2, min(finite) * TARGET_RATIO * 1.1))
    left.set_xscale("log")
    left.set_xlabel("records in the user's LTM")
    left.set_ylabel("seconds per 100 new MTM entries")
    left.set_title("consolidate(): cost vs LTM size")
    left.grid(True, alpha=0.3)
    left.legend(fontsize="small")
    bottom = [0.0] * len(sizes)
    labels = [f"{x:,}" for x in xs]
    for group in STAGE_GROUPS:
        values = [s["stages_ms_per_entry_median"].get(group) or 0.0 for s in sizes]
        right.bar(labels, values, bottom=bottom, label=group)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    right.set_xlabel("records in the user's LTM")
    right.set_ylabel("ms per entry (median)")
    right.set_title("where the time goes")
    right.legend(fontsize="small")
    fig.suptitle(f"LightMem consolidation ({results['config']['embedder']})")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_reports(results: Mapping[str, Any], out: Path) -> None:
    write_json(out / "consolidation.json", results)
    (out / "consolidation.md").write_text(markdown(results), encoding="utf-8")
    plot(results, out / "consolidation.png")


def print_report(results: Mapping[str, Any], console: Console) -> None:
    for line in header_lines(results):
        console.print(line)
    for title, header, rows in tables(results):
        console.print(rich_table(title, header, rows))
    flat = results["flatness"]
    style = "green" if flat["met"] else "red" if flat["met"] is False else "yellow"
    console.print(f"[bold {style}]{verdict(flat)}[/bold {style}]")


# --- main ------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> tuple[Options, bool]:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        metavar="N",
        help="LTM records before each measurement, increasing (default 1000 10000 100000; "
        "--quick 200 2000)",
    )
    parser.add_argument(
        "--new", type=int, help="new turns consolidated per run (default 100; --quick 20)"
    )
    parser.add_argument("--repeats", type=int, help="runs per size (default 3; --quick 1)")
    parser.add_argument(
        "--embedder",
        choices=EMBEDDERS,
        help="minilm: the engine's default all-MiniLM-L6-v2 (default); hashing: "
        "lightmem_core.testing.HashingEmbedder, no model (--quick's default)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="report folder (default benchmarks/results/consolidation; "
        "benchmarks/results/consolidation_quick with --quick)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        help="where to build the store, kept afterwards (default: a temp folder, deleted)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the store afterwards")
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated text")
    parser.add_argument(
        "--chunk", type=int, default=2000, help="LTM records written per seeding step"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: sizes 200 2000, 20 new turns, 1 run, hashing embedder",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    a = parser.parse_args(argv)
    quick = bool(a.quick)
    sizes: list[int] = a.sizes or ([200, 2000] if quick else [1000, 10000, 100000])
    if any(s <= 0 for s in sizes) or sorted(set(sizes)) != sizes:
        parser.error("--sizes must be increasing positive integers (the store grows)")
    new = a.new if a.new is not None else (20 if quick else 100)
    repeats = a.repeats if a.repeats is not None else (1 if quick else 3)
    if new < 1 or repeats < 1 or a.chunk < 1:
        parser.error("--new, --repeats and --chunk must be positive")
    out = a.out or Path(
        "benchmarks/results/consolidation_quick" if quick else "benchmarks/results/consolidation"
    )
    options = Options(
        sizes=sizes,
        new=new,
        repeats=repeats,
        embedder=a.embedder or ("hashing" if quick else "minilm"),
        out=out,
        workdir=a.workdir,
        keep=bool(a.keep or a.workdir),
        seed=a.seed,
        chunk=a.chunk,
        quick=quick,
    )
    return options, not a.no_progress


def quality_main(argv: Sequence[str]) -> int:
    """``--quality``: what consolidation writes, on labelled cases (see
    ``benchmarks/_consolidation_quality.py``): extraction precision and recall, supersede
    precision and recall, merge accuracy, and current values ranked above superseded ones."""
    from _consolidation_quality import DEFAULT_CASES, quality

    parser = argparse.ArgumentParser(description=quality_main.__doc__)
    parser.add_argument("--quality", action="store_true")
    parser.add_argument(
        "--cases",
        type=Path,
        nargs="+",
        default=[DEFAULT_CASES, DEFAULT_CASES.with_name("consolidation_cases_fresh.json")],
    )
    parser.add_argument("--embedder", choices=EMBEDDERS, default="minilm")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/consolidation"))
    a = parser.parse_args(argv)
    embedder = None if a.embedder == "minilm" else HashingEmbedder()
    console = Console()
    table = Table(title=f"Consolidation quality ({a.embedder} embedder)")
    for column in (
        "cases", "statements", "extraction P", "extraction R", "current", "supersede P",
        "supersede R", "merge accuracy", "current above old",
    ):  # fmt: skip
        table.add_column(column, justify="left" if column == "cases" else "right")
    reports = []
    for path in a.cases:
        report = quality(path, embedder=embedder)
        reports.append(report)
        e, c = report["extraction"], report["consolidation"]
        table.add_row(
            path.name,
            str(e["statements"] + c["turns"]),
            f"{e['precision']:.3f}",
            f"{e['recall']:.3f}",
            f"{c['current']:.3f}",
            f"{c['supersede_precision']:.3f}",
            f"{c['supersede_recall']:.3f}",
            f"{c['merge_accuracy']:.3f}",
            c["current_above_superseded"],
        )
    console.print(table)
    for report in reports:
        for mistake in [*report["extraction"]["mistakes"], *report["consolidation"]["mistakes"]]:
            console.print(
                f"  {Path(report['cases']).name}: {mistake}", markup=False, highlight=False
            )
    a.out.mkdir(parents=True, exist_ok=True)
    write_json(a.out / "quality.json", reports)
    console.print(f"report: {a.out / 'quality.json'}")
    return 0


@entry_point
def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if "--quality" in arguments:
        return quality_main(arguments)
    options, show_progress = parse_args(argv)
    console = Console() if sys.stdout.isatty() else Console(width=160)
    console.print(
        f"[bold]LightMem consolidation benchmark[/bold]  sizes={options.sizes} "
        f"new={options.new} repeats={options.repeats} embedder={options.embedder}"
    )
    console.print(
        f"{platform.platform()}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
        f"load average {load_average()}"
    )
    results = run_benchmark(options, console=console, show_progress=show_progress)
    print_report(results, console)
    console.print(
        f"reports in {options.out}: consolidation.json, consolidation.md, consolidation.png; "
        f"wall time {results['wall_s']:.0f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
