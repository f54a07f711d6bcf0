"""Graph integrity: outcome gaps per task (warning), orphan nodes and duplicate ids (error)."""

import dagster as dg

from dagster_project.assets.graph import embeddings
from dagster_project.resources import GraphStoreResource

__all__ = ["graph_integrity"]


@dg.asset_check(asset=embeddings, blocking=True)
def graph_integrity(graph_store: GraphStoreResource) -> dg.AssetCheckResult:
    """Every query of a task has an outcome for every candidate LLM of the task (gaps are
    counted: a warning); no node without relationships and no duplicate id (errors, which
    stop training on this graph)."""
    from graphdb.integrity import integrity_report

    with graph_store.open(read_only=True) as store:
        report = integrity_report(store)
    summary = report.summary()
    severe = report.orphan_count or report.duplicate_count
    return dg.AssetCheckResult(
        passed=report.ok,
        severity=dg.AssetCheckSeverity.ERROR if severe else dg.AssetCheckSeverity.WARN,
        metadata={
            k: v if isinstance(v, int) else dg.MetadataValue.json(v) for k, v in summary.items()
        },
    )
