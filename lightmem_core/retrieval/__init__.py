"""Retrieval: the two-stage pipeline (coarse candidates, fine re-ranking, packing) and the
rendering of what it finds into a prompt."""

from .pipeline import (
    Candidate,
    LocalReranker,
    QueryPlan,
    Reranker,
    fuse,
    pack_to_budget,
    plan_query,
    query_terms,
    score_pool,
)
from .render import render_context

__all__ = [
    "Candidate",
    "LocalReranker",
    "QueryPlan",
    "Reranker",
    "fuse",
    "pack_to_budget",
    "plan_query",
    "query_terms",
    "render_context",
    "score_pool",
]
