"""The assets, from raw interaction sources to the report."""

from __future__ import annotations

from dagster_project.assets.graph import embeddings, training_subgraph
from dagster_project.assets.model import (
    few_shot_evaluation,
    general_evaluation,
    route_snapshot,
    router_report,
    routing_predictions,
    trained_model,
    user_evaluation,
)
from dagster_project.assets.sources import graph_ingest, interaction_sources, simulated_users

__all__ = ["ALL_ASSETS", "PIPELINE_ASSETS"]

#: Every unpartitioned asset, in data-flow order (one run materialises them all).
PIPELINE_ASSETS = [
    interaction_sources,
    graph_ingest,
    simulated_users,
    embeddings,
    training_subgraph,
    trained_model,
    routing_predictions,
    general_evaluation,
    few_shot_evaluation,
    router_report,
    route_snapshot,
]
ALL_ASSETS = [*PIPELINE_ASSETS, user_evaluation]
