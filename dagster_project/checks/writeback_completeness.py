"""Write-back completeness: one ranked prediction per evaluated (user, query) pair."""

import dagster as dg

from dagster_project.assets.model import routing_predictions
from dagster_project.resources import GraphStoreResource
from gnn.pipeline import ModelRef

__all__ = ["predictions_complete"]


@dg.asset_check(
    asset=routing_predictions, additional_ins={"trained_model": dg.AssetIn()}, blocking=True
)
def predictions_complete(
    trained_model: ModelRef, graph_store: GraphStoreResource
) -> dg.AssetCheckResult:
    """For the new model version: every evaluated (user, query) pair has exactly one rank-1
    ROUTED_TO edge and one edge per candidate LLM, and no other pair has any."""
    from gnn.pipeline import prediction_completeness

    with graph_store.open(read_only=True) as store:
        result = prediction_completeness(store, trained_model)
    examples = dg.MetadataValue.json(result.pop("examples"))
    return dg.AssetCheckResult(
        passed=result.pop("passed"),
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={**result, "examples": examples},
    )
