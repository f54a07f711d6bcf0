"""Asset checks, one per module."""

from dagster_project.checks.graph_integrity import graph_integrity
from dagster_project.checks.model_quality import model_beats_baseline
from dagster_project.checks.writeback_completeness import predictions_complete

__all__ = ["ALL_CHECKS", "graph_integrity", "model_beats_baseline", "predictions_complete"]

ALL_CHECKS = [graph_integrity, model_beats_baseline, predictions_complete]
