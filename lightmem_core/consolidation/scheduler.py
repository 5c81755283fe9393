"""Background consolidation: every N new turns of a user, or on a timer.

The scheduler runs in its own thread. ``add`` only counts turns and, at the threshold, sets
an event: consolidation never runs inside ``add`` or ``search``.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable

from .._errors import ConsolidationInProgress

__all__ = ["ConsolidationScheduler"]

logger = logging.getLogger("lightmem")


class ConsolidationScheduler:
    """Calls ``run(user_id)`` for users with ``every_turns`` new turns, or ``run(None)``
    (every user) each ``every_seconds``."""

    def __init__(
        self,
        run: Callable[[str | None], object],
        *,
        every_turns: int | None = None,
        every_seconds: float | None = None,
    ) -> None:
        self._run = run
        self._every_turns = every_turns
        self._every_seconds = every_seconds
        self._turns: Counter[str] = Counter()
        self._due: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name="lightmem-consolidation", daemon=True
        )
        self.last_error: str | None = None

    def start(self) -> None:
        self._thread.start()

    def note_turns(self, user_id: str, count: int) -> None:
        """``count`` turns were added for the user (cheap: a counter and maybe an event)."""
        if self._every_turns is None:
            return
        with self._lock:
            self._turns[user_id] += count
            if self._turns[user_id] >= self._every_turns:
                self._turns[user_id] = 0
                self._due.add(user_id)
                self._wake.set()

    def request(self, user_id: str) -> None:
        """Consolidate the user on the next pass (``LightMem.schedule_consolidation``)."""
        with self._lock:
            self._due.add(user_id)
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            woken = self._wake.wait(timeout=self._every_seconds)
            if self._stop.is_set():
                return
            self._wake.clear()
            with self._lock:
                due, self._due = self._due, set()
            # Woken: the users that are due; the timer ran out: every user.
            targets: list[str | None] = list(due) if woken else [None]
            for user_id in targets:
                if self._stop.is_set():
                    return
                try:
                    self._run(user_id)
                    self.last_error = None
                except ConsolidationInProgress:
                    pass  # someone else is at it; the next trigger comes soon enough
                except Exception as err:  # keep the thread alive; the evidence stays queued
                    self.last_error = f"{type(err).__name__}: {err}"
                    logger.warning("lightmem: background consolidation failed: %s", err)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=60)
