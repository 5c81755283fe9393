"""Retrieval: the controller (query plans), the two-stage pipeline (coarse candidates, fine
re-ranking, packing), and the rendering of what it finds into a prompt."""

from .controller import EventAnchor, Intent, QueryPlan, TimeWindow, plan_query
from .pipeline import (
    Candidate,
    LocalReranker,
    Reranker,
    adjacency,
    cosine_scores,
    fuse,
    pack_to_budget,
    score_pool,
)
from .render import render_context
from .terms import query_terms

__all__ = [
    "Candidate",
    "EventAnchor",
    "Intent",
    "LocalReranker",
    "QueryPlan",
    "Reranker",
    "TimeWindow",
    "adjacency",
    "cosine_scores",
    "fuse",
    "pack_to_budget",
    "plan_query",
    "query_terms",
    "render_context",
    "score_pool",
]
