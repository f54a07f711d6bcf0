"""The project's Definitions: assets, checks, resources, jobs, sensors and the schedule."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg

from dagster_project.assets import ALL_ASSETS
from dagster_project.checks import ALL_CHECKS
from dagster_project.executors import executor_from_env
from dagster_project.jobs import evaluation_job, pipeline_job, retrain_job, user_evaluation_job
from dagster_project.resources import resources_from_env
from dagster_project.schedules import nightly_evaluation_schedule
from dagster_project.sensors import (
    retrain_sensor,
    served_traffic_sensor,
    user_partitions_sensor,
)

__all__ = ["build_definitions", "defs"]


def build_definitions(
    resources: Mapping[str, Any] | None = None, executor: dg.ExecutorDefinition | None = None
) -> dg.Definitions:
    """The Definitions with ``resources`` and ``executor`` (default: configured from the
    environment; :mod:`dagster_project.executors`)."""
    return dg.Definitions(
        assets=ALL_ASSETS,
        asset_checks=ALL_CHECKS,
        resources=dict(resources) if resources is not None else resources_from_env(),
        jobs=[pipeline_job, retrain_job, evaluation_job, user_evaluation_job],
        sensors=[retrain_sensor, served_traffic_sensor, user_partitions_sensor],
        schedules=[nightly_evaluation_schedule],
        # One process per run by default (PROUTER_DAGSTER_EXECUTOR=multiprocess: per step).
        executor=executor or executor_from_env(),
    )


defs = build_definitions()
