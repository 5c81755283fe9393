"""Every model call, accounted per role: calls, tokens in and out, time, fallbacks.

One :class:`ModelLedger` per ``LightMem``; ``mem.stats()["models"]`` shows it. A fallback
is a step that used the local default instead of the model's answer; its reason says why:
``timeout``, ``error`` (the backend raised), ``unparseable`` (no JSON found) or ``invalid``
(JSON of the wrong shape, or an answer the role refused, such as dropping every candidate).
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FallbackReason", "ModelLedger", "RoleStats"]

FallbackReason = str


@dataclass(slots=True)
class RoleStats:
    """The running totals of one role."""

    model: str | None = None
    calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    seconds: float = 0.0
    fallbacks: Counter[str] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "calls": self.calls,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "seconds": round(self.seconds, 4),
            "mean_ms": round(1000 * self.seconds / self.calls, 1) if self.calls else None,
            "fallbacks": sum(self.fallbacks.values()),
            "fallback_reasons": dict(self.fallbacks),
        }


class ModelLedger:
    """Thread-safe per-role totals."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._roles: dict[str, RoleStats] = {}

    def register(self, role: str, model: str) -> None:
        with self._lock:
            self._roles.setdefault(role, RoleStats()).model = model

    def record_call(self, role: str, *, tokens_in: int, tokens_out: int, seconds: float) -> None:
        with self._lock:
            stats = self._roles.setdefault(role, RoleStats())
            stats.calls += 1
            stats.tokens_in += tokens_in
            stats.tokens_out += tokens_out
            stats.seconds += seconds

    def record_fallback(self, role: str, reason: FallbackReason) -> None:
        with self._lock:
            self._roles.setdefault(role, RoleStats()).fallbacks[reason] += 1

    def role(self, role: str) -> RoleStats:
        """A copy of one role's totals."""
        with self._lock:
            stats = self._roles.get(role, RoleStats())
            return RoleStats(
                stats.model,
                stats.calls,
                stats.tokens_in,
                stats.tokens_out,
                stats.seconds,
                Counter(stats.fallbacks),
            )

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {role: stats.to_dict() for role, stats in sorted(self._roles.items())}

    def totals(self) -> dict[str, int]:
        """Calls and tokens over every role (a benchmark's per-turn and per-query figures)."""
        with self._lock:
            return {
                "calls": sum(s.calls for s in self._roles.values()),
                "tokens_in": sum(s.tokens_in for s in self._roles.values()),
                "tokens_out": sum(s.tokens_out for s in self._roles.values()),
                "fallbacks": sum(sum(s.fallbacks.values()) for s in self._roles.values()),
            }
