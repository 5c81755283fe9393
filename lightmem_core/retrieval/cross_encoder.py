"""A sentence-transformers ``CrossEncoder`` as stage 2 (opt-in: ``cross_encoder=PATH``).

The cross-encoder reads the query and each candidate together, which judges semantic
consistency better than comparing two vectors, at a price: one forward pass per candidate.
So it scores only the best ``top_n`` candidates of the local re-ranker and is blended with
it, keeping the local evidence (context, speakers, time) it cannot see.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

from .._errors import ConfigurationError
from .._types import Memory
from .controller import QueryPlan
from .pipeline import Candidate, LocalReranker, Reranker, Scale

__all__ = ["CrossEncoderReranker"]


class CrossEncoderReranker:
    """Blend of a base re-ranker and a cross-encoder's scores on the top candidates."""

    def __init__(
        self,
        model: str | os.PathLike[str],
        *,
        base: Reranker | None = None,
        weight: float = 1.0,
        top_n: int = 30,
        device: str = "cpu",
    ) -> None:
        self.source = str(model)
        self.base: Reranker = base or LocalReranker()
        self.weight = weight
        self.top_n = top_n
        self._device = device
        self._model: Any = None
        self._lock = threading.Lock()

    def _loaded(self) -> Any:
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                from sentence_transformers import CrossEncoder

                try:
                    self._model = CrossEncoder(
                        self.source, device=self._device, local_files_only=True
                    )
                except Exception as err:
                    raise ConfigurationError(
                        f"cannot load the cross-encoder {self.source!r} offline: {err}"
                    ) from err
            return self._model

    def rerank(
        self, plan: QueryPlan, candidates: Sequence[Candidate], memories: dict[str, Memory]
    ) -> list[tuple[str, float]]:
        ranked = self.base.rerank(plan, candidates, memories)
        head, tail = ranked[: self.top_n], ranked[self.top_n :]
        if not head:
            return ranked
        model = self._loaded()
        with self._lock:  # one forward pass at a time (fast tokenizers are not re-entrant)
            raw = model.predict(
                [(plan.text, memories[i].text) for i, _ in head], show_progress_bar=False
            )
        cross = Scale(float(x) for x in raw)
        base = Scale(score for _, score in head)
        blended = [
            (memory_id, base(score) + self.weight * cross(float(x)))
            for (memory_id, score), x in zip(head, raw, strict=True)
        ]
        blended.sort(key=lambda item: item[1], reverse=True)
        # The tail stays below the head: it was not read by the cross-encoder.
        floor = min(score for _, score in blended)
        return blended + [(i, floor - 1.0 - rank) for rank, (i, _) in enumerate(tail)]
