"""Jobs: the whole pipeline, an explicit re-train, a re-evaluation, per-user evaluation."""

from __future__ import annotations

import dagster as dg

from dagster_project.assets import PIPELINE_ASSETS
from dagster_project.assets.model import (
    few_shot_evaluation,
    general_evaluation,
    route_snapshot,
    router_report,
    routing_predictions,
    trained_model,
    user_evaluation,
)
from dagster_project.config import TrainingConfig

__all__ = ["evaluation_job", "pipeline_job", "retrain_job", "user_evaluation_job"]

pipeline_job = dg.define_asset_job(
    "pipeline_job",
    selection=PIPELINE_ASSETS,
    description="Sources to report. Idempotent: a second run writes nothing new and reuses "
    "the trained checkpoint (set trained_model's retrain to force a new version).",
)

retrain_job = dg.define_asset_job(
    "retrain_job",
    selection=dg.AssetSelection.assets(trained_model).upstream(depth=2)
    | dg.AssetSelection.assets(trained_model).downstream()
    - dg.AssetSelection.assets(user_evaluation),
    config=dg.RunConfig(ops={"trained_model": TrainingConfig(retrain=True)}),
    description="Embed what is new, export the training subgraph and train a NEW model "
    "version, then predict, evaluate and report (what the retrain sensor launches).",
)

evaluation_job = dg.define_asset_job(
    "evaluation_job",
    selection=[
        routing_predictions,
        general_evaluation,
        few_shot_evaluation,
        router_report,
        route_snapshot,
    ],
    description="Re-write the latest model's predictions and evaluations, general and "
    "few-shot (idempotent), refresh its report and its route snapshot.",
)

user_evaluation_job = dg.define_asset_job(
    "user_evaluation_job",
    selection=[user_evaluation],
    description="Evaluate one user (one partition per user) for onboarding.",
)
