"""Dagster orchestration of PersonalizedRouter: raw interactions to written-back evaluations.

``dagster dev -m dagster_project`` / ``dagster asset materialize -m dagster_project``;
see the README section "Orchestration with Dagster".
"""

from __future__ import annotations

from dagster_project.definitions import build_definitions, defs

__all__ = ["build_definitions", "defs"]
