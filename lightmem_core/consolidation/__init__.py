"""Offline consolidation: mid-term evidence becomes long-term knowledge.

- :mod:`.abstractor`: candidate knowledge from MTM entries (:class:`LocalAbstractor`, no model).
- :mod:`.plan`: one user's run as a generator of requests (pure decisions).
- :mod:`.runner`: the sync and async drivers, and the handler that answers against the stores.
- :mod:`.coordinator`: one run per user at a time (locks, leases across processes), and the
  report over many users.
- :mod:`.scheduler`: background runs every N turns or on a timer.

Use it through :meth:`lightmem_core.LightMem.consolidate`.
"""

from .abstractor import Abstractor, KnowledgeCandidate, LocalAbstractor
from .plan import ConsolidationSettings, Judgement, consolidate_user
from .runner import StoreHandler, adrive, drive
from .scheduler import ConsolidationScheduler

__all__ = [
    "Abstractor",
    "ConsolidationScheduler",
    "ConsolidationSettings",
    "Judgement",
    "KnowledgeCandidate",
    "LocalAbstractor",
    "StoreHandler",
    "adrive",
    "consolidate_user",
    "drive",
]
