"""Schedules: a nightly re-evaluation of the latest model."""

from __future__ import annotations

import dagster as dg

from dagster_project.jobs import evaluation_job

__all__ = ["nightly_evaluation_schedule"]

nightly_evaluation_schedule = dg.ScheduleDefinition(
    name="nightly_evaluation_schedule",
    job=evaluation_job,
    cron_schedule="0 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="03:00 UTC: re-write the latest model's predictions and evaluations (idempotent) "
    "and refresh its report.",
)
