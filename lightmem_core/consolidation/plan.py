"""One user's consolidation, as a generator of requests: no I/O, no model, no clock.

:func:`consolidate_user` yields small request objects (read new evidence, abstract it,
embed it, look up nearby knowledge, apply a step) and is sent each result back. A sync
driver and an async driver (:mod:`.runner`) answer the requests against the stores, so both
share every decision, and tests can drive the plan with plain data.

The decisions, per candidate piece of knowledge:

- **merge** into a record that says the same thing (the same value of the same slot, or a
  near-identical sentence): support + 1, confidence combined, evidence appended;
- **supersede** a current record of the same slot with a different value, when the new
  evidence is newer: the old record keeps its text, gets ``valid_to`` and ``superseded_by``,
  and stays retrievable as history (older evidence for a changed slot is filed as history);
- **link** a new record to related ones (similar, not the same);
- otherwise **add** a new record.

Where a candidate has related records and no slot decides for it, the plan asks for a
:class:`Judge`: a model consolidator may answer merge, supersede or new (contradictions
rules cannot see: "Alice is vegetarian now" / "Alice eats meat"); no answer keeps the rules.

Records never supported again decay (confidence halves every ``half_life``); once below
``archive_below`` they are archived, and archived ones are deleted after ``archive_ttl``
when one is set. When a user's MTM outgrows ``mtm_capacity``, the stalest, least-used
consolidated entries are evicted.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from .._types import Memory, Status, Tier
from ..retrieval.terms import query_terms
from ..safety import flag_instructions
from ..store import ConsolidationChanges, Evidence, NewRecord, RecordChange
from .abstractor import KnowledgeCandidate
from .shared import SHARED_USER, deidentify

__all__ = [
    "Abstract",
    "Apply",
    "Citing",
    "Commit",
    "ConsolidationSettings",
    "Due",
    "Embed",
    "Evictable",
    "Judge",
    "Judgement",
    "NewEvidence",
    "Reactivated",
    "SameSlot",
    "Similar",
    "consolidate_user",
    "shared_record_id",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsolidationSettings:
    """The knobs of one run (built from :class:`~lightmem_core.LightMemConfig`)."""

    merge_similarity: float = 0.9
    """Cosine at or above which two sentences are the same knowledge."""
    link_similarity: float = 0.7
    """Cosine at or above which two records are related (linked)."""
    neighbours: int = 5
    """Nearest long-term records compared with each candidate."""
    half_life: timedelta = timedelta(days=90)
    archive_below: float = 0.2
    archive_ttl: timedelta | None = None
    mtm_capacity: int = 10_000
    batch_size: int = 32
    """MTM entries per step (one transaction)."""
    max_maintenance: int = 10_000
    """Most re-activated or decayed records handled per run (the rest wait for the next)."""


# --- requests ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewEvidence:
    """-> ``list[Evidence]``: MTM entries after ``after_seq``, oldest first."""

    after_seq: int
    limit: int


@dataclass(frozen=True, slots=True)
class Reactivated:
    """-> ``list[Evidence]``: consolidated entries a search used since the last run."""

    limit: int


@dataclass(frozen=True, slots=True)
class Abstract:
    """-> ``list[list[KnowledgeCandidate]]``: candidates per entry."""

    evidence: list[Evidence]


@dataclass(frozen=True, slots=True)
class Embed:
    """-> ``list[list[float]]``."""

    texts: list[str]


@dataclass(frozen=True, slots=True)
class Similar:
    """-> ``list[tuple[Memory, float]]``: nearest non-archived long-term records, best first."""

    vector: Sequence[float]
    k: int
    owner: str | None = None
    """Whose records: the user's (``None``) or the shared knowledge's."""


@dataclass(frozen=True, slots=True)
class Judge:
    """-> ``Judgement | None``: a model's decision for a candidate among related records
    (``None``, or anything falsy: no judge, the rules decide)."""

    candidate: KnowledgeCandidate
    records: list[Memory]


@dataclass(frozen=True, slots=True)
class Judgement:
    """What to do with a candidate: ``merge`` into or ``supersede`` ``target`` (one of the
    records shown), or add it as ``new``."""

    action: Literal["merge", "supersede", "new"]
    target: str | None = None


@dataclass(frozen=True, slots=True)
class SameSlot:
    """-> ``list[tuple[Memory, str | None]]``: non-archived records of a slot, with values."""

    slot: str


@dataclass(frozen=True, slots=True)
class Citing:
    """-> ``list[Memory]``: active or archived records citing one of these turns."""

    turn_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Due:
    """-> ``list[Memory]``: records whose ``due_at`` has passed."""

    limit: int


@dataclass(frozen=True, slots=True)
class Evictable:
    """-> ``list[str]``: MTM ids over the capacity, to evict."""

    capacity: int


@dataclass(frozen=True, slots=True)
class Apply:
    """-> ``None``: stage a step's changes (visible to later look-ups of the run)."""

    changes: ConsolidationChanges
    vectors: dict[str, Sequence[float]] = field(default_factory=dict)
    """Vectors of the records inserted by this step."""
    owner: str | None = None
    """Whose records the changes are: the user's (``None``) or the shared knowledge's."""


@dataclass(frozen=True, slots=True)
class Commit:
    """-> ``None``: make the staged steps durable (one transaction); a dry run discards them."""

    finished: bool = False
    """The run's last commit: re-activation is counted from now on."""


#: Every request a plan yields; the handler answers each (a ``match`` checked complete).
Request = (
    NewEvidence
    | Reactivated
    | Abstract
    | Embed
    | Similar
    | Judge
    | SameSlot
    | Citing
    | Due
    | Evictable
    | Apply
    | Commit
)


# --- arithmetic of belief ---------------------------------------------------------------------


def combine(confidence: float, more: float) -> float:
    """Confidence after independent support (noisy-or)."""
    return 1.0 - (1.0 - confidence) * (1.0 - more)


def effective_confidence(
    confidence: float, last_supported: datetime | None, now: datetime, half_life: timedelta
) -> float:
    """Confidence after decay since the last support."""
    if last_supported is None:
        return confidence
    elapsed = max(0.0, (now - last_supported).total_seconds())
    return float(confidence * 0.5 ** (elapsed / half_life.total_seconds()))


def due_at(confidence: float, supported: datetime, settings: ConsolidationSettings) -> datetime:
    """When a record supported at ``supported`` decays below the archive threshold."""
    if confidence <= settings.archive_below:
        return supported
    return supported + settings.half_life * math.log2(confidence / settings.archive_below)


def record_id(user_id: str, evidence_id: str, index: int) -> str:
    """A new record's id, derived from its evidence: a resumed run writes the same ids."""
    digest = hashlib.sha256(f"{user_id}\x1f{evidence_id}\x1f{index}".encode()).hexdigest()
    return "ltm-" + digest[:28]


# --- the plan ---------------------------------------------------------------------------------


def consolidate_user(
    user_id: str,
    *,
    watermark: int,
    since_last_run: bool,
    now: datetime,
    settings: ConsolidationSettings,
    share_names: Sequence[str] | None = None,
) -> Generator[Any, Any, Counter[str]]:
    """Consolidate one user's new evidence; returns the counts of what was done.

    ``since_last_run``: the user was consolidated before, so re-activated entries count.
    ``share_names``: share general knowledge, de-identified, never mentioning these names
    (``None``: share nothing).
    """
    counts: Counter[str] = Counter()
    after = watermark
    while True:  # new evidence, a batch per step
        batch: list[Evidence] = yield NewEvidence(after, settings.batch_size)
        if not batch:
            break
        found_per_entry: list[list[KnowledgeCandidate]] = yield Abstract(batch)
        per_entry = [_shareable_or_personal(f, share_names) for f in found_per_entry]
        flat = [c for found in per_entry for c in found]
        vectors: list[list[float]] = (yield Embed([c.text for c in flat])) if flat else []
        position = 0
        for entry, found in zip(batch, per_entry, strict=True):
            for index, candidate in enumerate(found):
                vector = vectors[position]
                position += 1
                if candidate.general:
                    similar = yield Similar(vector, settings.neighbours, owner=SHARED_USER)
                    shared = _integrate_shared(candidate, similar, now=now, settings=settings)
                    counts.update(shared.counts)
                    yield Apply(
                        ConsolidationChanges(
                            inserts=shared.inserts, changes=shared.changes, at=now
                        ),
                        {new.memory.id: vector for new in shared.inserts},
                        owner=SHARED_USER,
                    )
                    continue
                same_slot = (yield SameSlot(candidate.slot)) if candidate.slot else []
                similar = yield Similar(vector, settings.neighbours)
                related = [
                    m
                    for m, similarity in similar
                    if similarity >= settings.link_similarity and m.status is Status.ACTIVE
                ]
                judgement = (yield Judge(candidate, related)) if related and not same_slot else None
                outcome = _integrate(
                    user_id,
                    entry,
                    index,
                    candidate,
                    same_slot,
                    similar,
                    now=now,
                    settings=settings,
                    judgement=judgement or None,
                )
                counts.update(outcome.counts)
                # Staged at once: the next candidate's look-ups must see this one's effect.
                yield Apply(
                    ConsolidationChanges(
                        inserts=outcome.inserts,
                        changes=outcome.changes,
                        links=outcome.links,
                        at=now,
                    ),
                    {new.memory.id: vector for new in outcome.inserts},
                )
            yield Apply(
                ConsolidationChanges(consolidated=[entry.memory.id], watermark=entry.seq, at=now)
            )
            counts["entries"] += 1
        after = batch[-1].seq
        yield Commit()
    if since_last_run:
        yield from _reactivate(counts, now=now, settings=settings)
    yield from _decay(counts, now=now, settings=settings)
    evict: list[str] = yield Evictable(settings.mtm_capacity)
    if evict:
        counts["evicted"] += len(evict)
        yield Apply(ConsolidationChanges(deletes=evict, at=now))
    yield Commit(finished=True)
    return counts


@dataclass(slots=True)
class _Outcome:
    inserts: list[NewRecord] = field(default_factory=list)
    changes: list[RecordChange] = field(default_factory=list)
    links: list[tuple[str, str, str]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


def _integrate(
    user_id: str,
    entry: Evidence,
    index: int,
    candidate: KnowledgeCandidate,
    same_slot: list[tuple[Memory, str | None]],
    similar: list[tuple[Memory, float]],
    *,
    now: datetime,
    settings: ConsolidationSettings,
    judgement: Judgement | None = None,
) -> _Outcome:
    """Merge, supersede, link or add one candidate (pure)."""
    outcome = _Outcome()
    happened = candidate.happened_at or entry.memory.timestamp or now
    # 1. A single-valued fact: the same value again, or a change.
    if candidate.slot is not None and same_slot:
        value = candidate.slot_value
        same = [m for m, v in same_slot if v == value and _holds_at(m, happened)]
        if same:
            return _merge(outcome, same[0], entry, candidate, now=now, settings=settings)
        current = [m for m, v in same_slot if m.status is Status.ACTIVE and v != value]
        new = new_record(user_id, entry, index, candidate, happened, now=now, settings=settings)
        return _replace(outcome, new, current, happened)
    # 2. A model's judgement, where one was given and names a record it was shown.
    target = next(
        (m for m, _ in similar if judgement is not None and m.id == judgement.target), None
    )
    if judgement is not None and judgement.action == "merge" and target is not None:
        return _merge(outcome, target, entry, candidate, now=now, settings=settings)
    if judgement is not None and judgement.action == "supersede" and target is not None:
        new = new_record(user_id, entry, index, candidate, happened, now=now, settings=settings)
        return _replace(outcome, new, [target], happened)
    # 3. Anything else: the same sentence again, something related, or something new.
    for memory, similarity in similar:
        if judgement is not None and judgement.action == "new":
            break  # the judge saw them and said: not the same
        if similarity < settings.merge_similarity or memory.status is not Status.ACTIVE:
            continue
        if memory.slot is not None and memory.slot != candidate.slot:
            continue  # a single-valued fact only merges through its slot
        if candidate.kind == "event" and not _same_day(memory.timestamp, happened):
            continue  # the same kind of thing, on another day, is another event
        if not _same_words(memory.text, candidate.text):
            continue  # "loves sushi" / "hates sushi" embed close; they are not one fact
        return _merge(outcome, memory, entry, candidate, now=now, settings=settings)
    # 4. A preference said again in other words ("loves hiking" / "hiking is her favourite
    # way to spend a weekend"): the same liking (not its opposite) of the same thing.
    for memory, similarity in similar:
        if judgement is not None and judgement.action == "new":
            break
        if (
            memory.kind == "preference" == candidate.kind
            and memory.status is Status.ACTIVE
            and memory.slot is None
            and similarity >= settings.link_similarity * _PARAPHRASE_SHARE
            and _same_liking(memory.text, candidate.text, candidate.subject)
        ):
            return _merge(outcome, memory, entry, candidate, now=now, settings=settings)
    new = new_record(user_id, entry, index, candidate, happened, now=now, settings=settings)
    outcome.inserts.append(new)
    outcome.counts["new"] += 1
    for memory, similarity in similar:
        if similarity >= settings.link_similarity and memory.id != new.memory.id:
            outcome.links.append((new.memory.id, memory.id, "related"))
            outcome.counts["linked"] += 1
    return outcome


def _replace(
    outcome: _Outcome, new: NewRecord, current: list[Memory], happened: datetime
) -> _Outcome:
    """Add ``new`` as a change of ``current`` (the records it contradicts): newer evidence
    supersedes them; older evidence is filed as their history."""
    if current and happened >= (current[-1].valid_from or happened):
        for old in current:  # the newer value supersedes the current one(s)
            outcome.changes.append(
                _state(
                    old,
                    status=Status.SUPERSEDED,
                    due=None,
                    valid_to=happened,
                    superseded_by=new.memory.id,
                )
            )
            outcome.links.append((new.memory.id, old.id, "supersedes"))
            outcome.counts["superseded"] += 1
    elif current:  # older evidence of a value that has since changed: history
        successor = current[-1]
        new = replace(
            new,
            memory=replace(
                new.memory,
                status=Status.SUPERSEDED,
                valid_to=successor.valid_from,
                superseded_by=successor.id,
            ),
            due_at=None,
        )
        outcome.links.append((successor.id, new.memory.id, "supersedes"))
        outcome.counts["superseded"] += 1
    outcome.inserts.append(new)
    outcome.counts["new"] += 1
    return outcome


def _shareable_or_personal(
    found: list[KnowledgeCandidate], share_names: Sequence[str] | None
) -> list[KnowledgeCandidate]:
    """Personal candidates as they are; general ones de-identified when sharing is on (and
    dropped otherwise, or when they cannot be shared safely)."""
    kept = []
    for candidate in found:
        if not candidate.general:
            kept.append(candidate)
        elif share_names is not None:
            text = deidentify(candidate.text, names=share_names)
            if text is not None:
                kept.append(replace(candidate, text=text))
    return kept


def shared_record_id(text: str) -> str:
    """The same statement from any user is one shared record."""
    normal = " ".join(text.casefold().split())
    return "shared-" + hashlib.sha256(normal.encode()).hexdigest()[:28]


def _integrate_shared(
    candidate: KnowledgeCandidate,
    similar: list[tuple[Memory, float]],
    *,
    now: datetime,
    settings: ConsolidationSettings,
) -> _Outcome:
    """Merge a de-identified statement into shared knowledge, or add it. Shared records
    keep no provenance and do not decay."""
    outcome = _Outcome()
    for memory, similarity in similar:
        if (
            similarity >= settings.merge_similarity
            and memory.status is Status.ACTIVE
            and _same_words(memory.text, candidate.text)
        ):
            outcome.changes.append(
                _state(
                    memory,
                    confidence=combine(memory.confidence, candidate.confidence),
                    support=memory.support + 1,
                    last_supported=now,
                    due=None,
                )
            )
            outcome.counts["shared"] += 1
            return outcome
    memory = Memory(
        id=shared_record_id(candidate.text),
        user_id=SHARED_USER,
        tier=Tier.LTM,
        kind="shared",
        text=candidate.text,
        timestamp=None,
        created_at=now,
        confidence=candidate.confidence,
        last_supported=now,
    )
    outcome.inserts.append(NewRecord(memory, None, None))
    outcome.counts["shared"] += 1
    return outcome


def _holds_at(memory: Memory, moment: datetime) -> bool:
    """Whether the record was the slot's value at ``moment`` (current ones always match)."""
    if memory.status is Status.ACTIVE:
        return True
    start = memory.valid_from or moment
    end = memory.valid_to or moment
    return start <= moment <= end


_PARAPHRASE_SHARE = 0.8  # of link_similarity: a paraphrase embeds further than a repeat
_LIKES = re.compile(
    r"\b(likes?|loves?|enjoys?|prefers?|adores?|favou?rite|fan of|into|passionate|obsessed)\b",
    re.I,
)
_DISLIKES = re.compile(
    r"\b(hates?|dislikes?|can't stand|cannot stand|not a fan|doesn't like|does not like|"
    r"no longer|not into|never)\b",
    re.I,
)
_LIKING_WORDS = frozenset(
    [
        "like",
        "likes",
        "love",
        "loves",
        "enjoy",
        "enjoys",
        "prefer",
        "prefers",
        "adore",
        "adores",
        "favourite",
        "favorite",
        "fan",
        "passionate",
        "obsessed",
        "way",
        "ways",
        "spend",
        "thing",
        "things",
        "really",
        "very",
        "much",
        "lot",
    ]
)


def _same_liking(a: str, b: str, subject: str | None) -> bool:
    """Whether two preferences like (or both dislike) the same thing: the same polarity and
    a content word in common besides the words of liking and the person's name."""
    names = {w.casefold().removesuffix("'s") for w in (subject or "").split()}

    def polarity(text: str) -> int:
        return -1 if _DISLIKES.search(text) else (1 if _LIKES.search(text) else 0)

    def topic(text: str) -> set[str]:
        return {
            w.removesuffix("s")
            for w in query_terms(text)
            if w not in _LIKING_WORDS and w not in names and len(w) > 3
        }

    return polarity(a) == polarity(b) != 0 and bool(topic(a) & topic(b))


def _same_words(a: str, b: str) -> bool:
    """Whether two sentences say it with the same content words (plurals aside). A small
    embedding model puts opposites and near-misses above any useful merge threshold, so a
    merge needs the words to agree too; a paraphrase is linked instead."""

    def words(text: str) -> set[str]:
        return {w.removesuffix("s") for w in query_terms(text)}

    return words(a) == words(b)


def _same_day(a: datetime | None, b: datetime | None) -> bool:
    return a is not None and b is not None and a.date() == b.date()


def _merge(
    outcome: _Outcome,
    memory: Memory,
    entry: Evidence,
    candidate: KnowledgeCandidate,
    *,
    now: datetime,
    settings: ConsolidationSettings,
) -> _Outcome:
    sources = tuple(s for s in entry.memory.source_ids if s not in memory.source_ids)
    if not sources and memory.last_supported == now:
        return outcome  # this evidence was already counted (a replayed step)
    confidence = combine(memory.confidence, candidate.confidence)
    active = memory.status is Status.ACTIVE
    outcome.changes.append(
        _state(
            memory,
            confidence=confidence,
            support=memory.support + 1,
            last_supported=now,
            due=due_at(confidence, now, settings) if active else None,
            add_sources=sources,
        )
    )
    outcome.counts["merged"] += 1
    return outcome


def new_record(
    user_id: str,
    entry: Evidence,
    index: int,
    candidate: KnowledgeCandidate,
    happened: datetime,
    *,
    now: datetime,
    settings: ConsolidationSettings,
) -> NewRecord:
    """The long-term record a candidate found in ``entry`` becomes (its ``index``-th), as
    consolidation writes it: confident as the candidate, supported once, due for review."""
    metadata: dict[str, Any] = {"evidence": entry.memory.id}
    if candidate.subject:
        metadata["subject"] = candidate.subject
    metadata = flag_instructions(metadata, candidate.text)
    memory = Memory(
        id=record_id(user_id, entry.memory.id, index),
        user_id=user_id,
        tier=Tier.LTM,
        kind=candidate.kind,
        text=candidate.text,
        timestamp=happened,
        speaker=entry.memory.speaker,
        source_ids=entry.memory.source_ids,
        created_at=now,
        metadata=metadata,
        confidence=candidate.confidence,
        support=1,
        slot=candidate.slot,
        valid_from=happened,
        last_supported=now,
    )
    return NewRecord(memory, candidate.slot_value, due_at(candidate.confidence, now, settings))


def _state(
    memory: Memory,
    *,
    status: Status | None = None,
    confidence: float | None = None,
    support: int | None = None,
    last_supported: datetime | None = None,
    due: datetime | None,
    valid_to: datetime | None = None,
    superseded_by: str | None = None,
    add_sources: tuple[str, ...] = (),
) -> RecordChange:
    """A record's new state: what is given, the rest as it was."""
    return RecordChange(
        memory.id,
        status=status or memory.status,
        confidence=memory.confidence if confidence is None else confidence,
        support=support or memory.support,
        last_supported=last_supported or memory.last_supported,
        due_at=due,
        valid_to=valid_to or memory.valid_to,
        superseded_by=superseded_by or memory.superseded_by,
        add_sources=add_sources,
    )


def _reactivate(
    counts: Counter[str], *, now: datetime, settings: ConsolidationSettings
) -> Generator[Any, Any, None]:
    """Evidence used again (a search retrieved it) renews the knowledge drawn from it, and
    brings archived knowledge back."""
    used: list[Evidence] = yield Reactivated(settings.max_maintenance)
    if not used:
        return
    turns = tuple(dict.fromkeys(t for e in used for t in e.memory.source_ids))
    changes = ConsolidationChanges(at=now)
    for memory in (yield Citing(turns)):
        if memory.last_supported is not None and memory.last_supported >= now:
            continue
        changes.changes.append(
            _state(
                memory,
                status=Status.ACTIVE,
                last_supported=now,
                due=due_at(memory.confidence, now, settings),
            )
        )
        counts["reactivated"] += 1
    if changes.changes:
        yield Apply(changes)
        yield Commit()


def _decay(
    counts: Counter[str], *, now: datetime, settings: ConsolidationSettings
) -> Generator[Any, Any, None]:
    """Archive what decayed without support; delete what outlived its archive TTL."""
    due: list[Memory] = yield Due(settings.max_maintenance)
    if not due:
        return
    changes = ConsolidationChanges(at=now)
    for memory in due:
        if memory.status is Status.ARCHIVED:
            changes.deletes.append(memory.id)
            counts["deleted"] += 1
            continue
        # Being retrieved counts as support: knowledge in use does not fade.
        supported = max(
            (t for t in (memory.last_supported, memory.last_accessed) if t is not None),
            default=now,
        )
        renewed = due_at(memory.confidence, supported, settings)
        if renewed > now:
            changes.changes.append(_state(memory, last_supported=supported, due=renewed))
            continue
        ttl = now + settings.archive_ttl if settings.archive_ttl is not None else None
        changes.changes.append(_state(memory, status=Status.ARCHIVED, due=ttl))
        counts["archived"] += 1
    yield Apply(changes)
