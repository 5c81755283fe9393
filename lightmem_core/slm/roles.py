"""Building the roles a ``LightMem`` uses from its ``slm=`` argument."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..consolidation.abstractor import Abstractor
from ..retrieval.pipeline import Reranker
from ..writer import Writer
from .accounting import ModelLedger
from .calls import RoleModel
from .consolidator import SLMConsolidator
from .controller import SLMController
from .prompts import PROMPTS
from .resolve import resolve_roles
from .selector import SLMSelector
from .writer import SLMWriter

__all__ = ["ModelRoles", "build_roles"]


@dataclass(slots=True)
class ModelRoles:
    """What the engine uses: each role's model-driven step, or its local default."""

    controller: SLMController | None
    reranker: Reranker
    writer: Writer
    abstractor: Abstractor


def build_roles(
    slm: Any,
    ledger: ModelLedger,
    *,
    reranker: Reranker,
    writer: Writer,
    abstractor: Abstractor,
    timeout_s: float | None = None,
) -> ModelRoles:
    """Wrap the local steps with the roles ``slm`` names; each keeps its local step as the
    fallback."""
    generators = resolve_roles(slm)

    def model(role: str, prompt: str | None = None) -> RoleModel:
        return RoleModel(
            generators[role], PROMPTS[prompt or role], ledger, timeout_s=timeout_s, account_as=role
        )

    return ModelRoles(
        controller=SLMController(model("controller")) if "controller" in generators else None,
        reranker=SLMSelector(reranker, model("selector")) if "selector" in generators else reranker,
        writer=SLMWriter(model("writer"), fallback=writer) if "writer" in generators else writer,
        abstractor=SLMConsolidator(
            model("consolidator"), model("consolidator", "judge"), fallback=abstractor
        )
        if "consolidator" in generators
        else abstractor,
    )
