"""Sensors: re-train after enough new interactions or served traffic; one user partition
per graph user."""

import json
import os

import dagster as dg

from dagster_project.jobs import retrain_job, user_evaluation_job
from dagster_project.partitions import users_partitions
from dagster_project.resources import GraphStoreResource

__all__ = [
    "DEFAULT_RETRAIN_THRESHOLD",
    "DEFAULT_SERVED_THRESHOLD",
    "retrain_sensor",
    "served_traffic_sensor",
    "user_partitions_sensor",
]

DEFAULT_RETRAIN_THRESHOLD = 1000
DEFAULT_SERVED_THRESHOLD = 500


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


def served_threshold() -> int:
    """Served queries + feedback that trigger a re-train (``PROUTER_SERVED_RETRAIN_THRESHOLD``)."""
    value = os.environ.get("PROUTER_SERVED_RETRAIN_THRESHOLD", str(DEFAULT_SERVED_THRESHOLD))
    try:
        threshold = int(value)
    except ValueError:
        threshold = 0
    if threshold < 1:
        from prcore.errors import ConfigError

        raise ConfigError(
            f"PROUTER_SERVED_RETRAIN_THRESHOLD must be a positive integer, not {value[:40]!r}"
        )
    return threshold


def _cursor(text: str | None) -> dict:
    try:
        cursor = json.loads(text) if text else {}
    except ValueError:
        return {}
    return cursor if isinstance(cursor, dict) else {}


@dg.sensor(
    job=retrain_job, minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.STOPPED
)
def served_traffic_sensor(
    context: dg.SensorEvaluationContext, graph_store: GraphStoreResource
) -> dg.SensorResult | dg.SkipReason:
    """Request one retrain_job run per model version once the gateway has recorded enough
    served queries and feedback (choices, preferences, thumbs / ratings) since it.

    The cursor keeps the model version it counts for, the number of rated served
    answers when that version was first seen (ratings carry no time) and whether
    its retrain was requested (then it waits for the newer model).
    """
    from graphdb.integrity import served_traffic_since_last_model

    with graph_store.open(read_only=True) as store:
        version, traffic = served_traffic_since_last_model(store)
    threshold = served_threshold()
    cursor = _cursor(context.cursor)
    if cursor.get("version") != version or not isinstance(cursor.get("rated"), int):
        cursor = {"version": version, "rated": traffic["rated"], "requested": False}
    rated = max(0, traffic["rated"] - cursor["rated"])
    new = traffic["served"] + traffic["feedback"] + rated
    since = version or "no model"
    if cursor.get("requested"):
        context.update_cursor(json.dumps(cursor))
        return dg.SkipReason(f"a retrain of {since} was requested; waiting for its new model")
    if new < threshold:
        context.update_cursor(json.dumps(cursor))
        return dg.SkipReason(
            f"{traffic['served']} served queries, {traffic['feedback']} choices/preferences "
            f"and {rated} ratings since {since} ({new} < {threshold})"
        )
    tags = {"served": str(traffic["served"]), "feedback": str(traffic["feedback"] + rated)}
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"served:{since}", tags=tags)],
        cursor=json.dumps(cursor | {"requested": True}),
    )
