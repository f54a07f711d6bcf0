"""Run configuration of the assets (editable in the UI launchpad or with ``--config-json``)."""

from __future__ import annotations

from typing import Any

import dagster as dg
from pydantic import Field

__all__ = [
    "FewShotConfig",
    "IngestConfig",
    "SimulationConfig",
    "SourcesConfig",
    "SubgraphConfig",
    "TrainingConfig",
]


class SourcesConfig(dg.Config):
    """Which raw interaction sources to read. By default: the synthetic demo workload."""

    canonical_files: list[str] | None = None
    routerbench_dir: str | None = None
    routerbench_tasks: list[str] | None = None
    personalizedrouter_dir: str | None = None
    llm_pool: str = "v1"
    preferences_file: str | None = None
    preferences_questions: str | None = None
    synthetic_queries: int = 500  # 0: no synthetic workload
    synthetic_users: int = 9
    synthetic_llms: int = 10
    synthetic_users_per_query: int = 1
    synthetic_seed: int = 0


class IngestConfig(dg.Config):
    """``skip_invalid``: load the valid records and report the rejected ones (else reject all)."""

    skip_invalid: bool = False


class SimulationConfig(dg.Config):
    """Cost-efficiency users simulated on the graph's outcomes (0 users: none)."""

    users: int = 0
    alphas: str = "grid"
    noise: float = 0.0
    queries_per_user: int | None = None
    seed: int = 0


class SubgraphConfig(dg.Config):
    """The training subgraph: tasks, users, time window [start, end) (ISO-8601), split seed."""

    tasks: list[str] | None = None
    users: list[str] | None = None
    start: str | None = None
    end: str | None = None
    seed: int = 0
    neighbours: int = 10


class TrainingConfig(dg.Config):
    """GNN hyper-parameters (unset: the router's defaults) and whether to force a new version.

    ``retrain: false`` reuses the checkpoint trained on the same export with the same
    settings, if there is one; ``retrain: true`` always trains and records a new version.
    """

    seed: int = 0
    epochs: int | None = None
    patience: int | None = None
    hidden: int | None = None
    lr: float | None = None
    retrain: bool = False
    routed_top: int | None = 3  # ROUTED_TO edges per test (user, query); null: every candidate

    def router_config(self) -> dict[str, Any]:
        values = {"epochs": self.epochs, "patience": self.patience, "hidden": self.hidden}
        values["lr"] = self.lr
        return {k: v for k, v in values.items() if v is not None}


class FewShotConfig(dg.Config):
    """The few-shot settings evaluated against the trained model, and the k values."""

    settings: list[str] = Field(default_factory=lambda: ["new_user", "new_llm"])
    shots: list[int] = Field(default_factory=lambda: [0, 1, 3, 5, 10])
