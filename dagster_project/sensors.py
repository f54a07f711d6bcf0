"""Sensors: re-train after enough new interactions; one user partition per graph user."""

import os

import dagster as dg

from dagster_project.jobs import retrain_job, user_evaluation_job
from dagster_project.partitions import users_partitions
from dagster_project.resources import GraphStoreResource

__all__ = ["DEFAULT_RETRAIN_THRESHOLD", "retrain_sensor", "user_partitions_sensor"]

DEFAULT_RETRAIN_THRESHOLD = 1000


def retrain_threshold() -> int:
    """New CHOSE + ASKED interactions that trigger a re-train (``PROUTER_RETRAIN_THRESHOLD``)."""
    return int(os.environ.get("PROUTER_RETRAIN_THRESHOLD", DEFAULT_RETRAIN_THRESHOLD))


@dg.sensor(
    job=retrain_job, minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.STOPPED
)
def retrain_sensor(
    context: dg.SensorEvaluationContext, graph_store: GraphStoreResource
) -> dg.SensorResult | dg.SkipReason:
    """Launch retrain_job once the interactions added since the latest RouterModel reach
    the threshold (one run per model version and interaction count)."""
    from graphdb.integrity import interaction_counts, interactions_since_last_model

    with graph_store.open(read_only=True) as store:
        version, new = interactions_since_last_model(store)
        total = sum(interaction_counts(store).values())
    threshold = retrain_threshold()
    if new < threshold:
        return dg.SkipReason(
            f"{new} new interactions since {version or 'no model'} (< {threshold})"
        )
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(run_key=f"{version}:{total}", tags={"new_interactions": str(new)})
        ],
        cursor=str(total),
    )


@dg.sensor(
    job=user_evaluation_job,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.STOPPED,
)
def user_partitions_sensor(
    context: dg.SensorEvaluationContext, graph_store: GraphStoreResource
) -> dg.SensorResult | dg.SkipReason:
    """Add a ``users`` partition for every new User node and request its evaluation."""
    with graph_store.open(read_only=True) as store:
        users = store.node_ids("User")
    known = set(context.instance.get_dynamic_partitions(users_partitions.name))
    new = sorted(set(users) - known)
    if not new:
        return dg.SkipReason(f"no new user ({len(known)} partitions)")
    return dg.SensorResult(
        dynamic_partitions_requests=[users_partitions.build_add_request(new)],
        run_requests=[dg.RunRequest(partition_key=u, run_key=f"user:{u}") for u in new],
    )
