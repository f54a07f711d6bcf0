"""Helpers of the Dagster tests: resources for a store, the small run config, reading results."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from dagster_project.assets import PIPELINE_ASSETS
from dagster_project.checks import ALL_CHECKS
from dagster_project.resources import (
    DeviceResource,
    GraphStoreResource,
    HashingEmbeddings,
    ModelStoreResource,
)
from graphdb.store import GraphStore, open_store

#: A small synthetic workload (3 users ask every one of 150 queries, 4 LLMs) and a short fit.
WORKLOAD = {
    "synthetic_queries": 150,
    "synthetic_users": 3,
    "synthetic_llms": 4,
    "synthetic_users_per_query": 3,
}
TRAINING = {"epochs": 20, "patience": 20, "hidden": 32}
FEW_SHOT = {"settings": ["new_user", "new_llm"], "shots": [0, 3]}
EXPECTED_ASSETS = {
    "interaction_sources",
    "graph_ingest",
    "simulated_users",
    "embeddings",
    "training_subgraph",
    "trained_model",
    "routing_predictions",
    "general_evaluation",
    "few_shot_evaluation",
    "user_evaluation",
    "router_report",
    "route_snapshot",
}


@dataclass(frozen=True)
class Backend:
    """Where a test's graph lives."""

    name: str
    url: str
    username: str | None
    password: str | None
    model_dir: Path

    def resources(self) -> dict[str, Any]:
        return {
            "graph_store": GraphStoreResource(
                url=self.url, username=self.username, password=self.password
            ),
            "model_store": ModelStoreResource(directory=str(self.model_dir)),
            "embedding_model": HashingEmbeddings(dim=64),
            "device": DeviceResource(device="cpu"),
        }

    @contextmanager
    def store(self) -> Iterator[GraphStore]:
        with open_store(self.url, username=self.username, password=self.password) as store:
            yield store


def run_config(sources: dict | None = None, training: dict | None = None) -> dict:
    return {
        "ops": {
            "interaction_sources": {"config": sources or WORKLOAD},
            "trained_model": {"config": training or TRAINING},
            "few_shot_evaluation": {"config": FEW_SHOT},
        }
    }


def materialize(
    backend: Backend,
    instance: dg.DagsterInstance,
    *,
    sources: dict | None = None,
    training: dict | None = None,
    selection: Sequence[str] | None = None,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    """Materialise the pipeline (or ``selection`` of it) with its checks, in process."""
    config = run_config(sources, training)
    if selection is not None:
        config["ops"] = {k: v for k, v in config["ops"].items() if k in selection}
    return dg.materialize(
        [*PIPELINE_ASSETS, *ALL_CHECKS],
        run_config=config,
        resources=backend.resources(),
        instance=instance,
        selection=selection,
        raise_on_error=raise_on_error,
    )


def materialized(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, Any]]:
    """Metadata values of each materialised asset, by asset name."""
    out = {}
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        out[mat.asset_key.to_user_string()] = {k: v.value for k, v in mat.metadata.items()}
    return out


def checks(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    """Each executed asset check's evaluation (passed, severity, metadata), by check name."""
    return {c.check_name: c for c in result.get_asset_check_evaluations()}


def check_metadata(evaluation: Any) -> dict[str, Any]:
    return {k: v.value for k, v in evaluation.metadata.items()}
