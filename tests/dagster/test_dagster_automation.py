"""Sensors, user partitions and the write-back check, on one materialised embedded graph.

The tests share one pipeline run and run in file order: the later ones change
the graph (an extra prediction, new interactions).
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from dagster_test_support import Backend, check_metadata, checks, materialize, materialized

from dagster_project.assets import PIPELINE_ASSETS, user_evaluation
from dagster_project.checks import ALL_CHECKS
from dagster_project.partitions import users_partitions
from dagster_project.sensors import retrain_sensor, user_partitions_sensor
from gnn.export import load_training_subgraph
from gnn.pipeline import read_checkpoint, user_metrics


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """(backend, instance, first run's result) of one full materialisation."""
    tmp: Path = tmp_path_factory.mktemp("automation")
    backend = Backend("ladybug", f"ladybug:{tmp / 'graph.lbug'}", None, None, tmp / "models")
    (tmp / "home").mkdir()
    with dg.DagsterInstance.local_temp(str(tmp / "home")) as instance:
        yield backend, instance, materialize(backend, instance)


def _sensor_context(backend: Backend, instance: dg.DagsterInstance):
    return dg.build_sensor_context(instance=instance, resources=backend.resources())


def test_user_partitions_sensor_and_the_partitioned_evaluation(pipeline):
    backend, instance, first = pipeline
    result = user_partitions_sensor(_sensor_context(backend, instance))
    users = ["user-0000", "user-0001", "user-0002"]
    assert isinstance(result, dg.SensorResult)
    (request,) = result.dynamic_partitions_requests
    assert request.partitions_def_name == "users" and list(request.partition_keys) == users
    assert [r.partition_key for r in result.run_requests] == users
    assert [r.run_key for r in result.run_requests] == [f"user:{u}" for u in users]
    instance.add_dynamic_partitions(users_partitions.name, list(request.partition_keys))
    again = user_partitions_sensor(_sensor_context(backend, instance))
    assert isinstance(again, dg.SkipReason)

    run = dg.materialize(
        [*PIPELINE_ASSETS, user_evaluation, *ALL_CHECKS],
        resources=backend.resources(),
        instance=instance,
        partition_key="user-0001",
        selection=[user_evaluation],
        run_config={"ops": {"user_evaluation": {"config": {"shots": [0, 2]}}}},
    )
    meta = materialized(run)["user_evaluation"]
    ref = first.output_for_node("trained_model")
    expected = user_metrics(ref, "user-0001")
    assert meta["user"] == "user-0001" and meta["version"] == ref.version
    assert meta["n"] == expected.n > 0
    assert meta["reward"] == pytest.approx(expected.reward)
    assert meta["accuracy"] == pytest.approx(expected.accuracy)
    with backend.store() as store:
        edges = store.read(
            "MATCH (m:RouterModel)-[e:EVALUATED]->(u:User) "
            "WHERE m.version = $v AND u.id = $u "
            "RETURN e.setting AS setting, e.shots AS shots, e.reward AS reward, e.n AS n "
            "ORDER BY setting, shots",
            {"v": ref.version, "u": "user-0001"},
        ).to_pylist()
    general = [e for e in edges if e["setting"] == "general"]
    # general_evaluation wrote the same general edge already: the upsert left it as it was.
    assert general == [
        {
            "setting": "general",
            "shots": 0,
            "reward": pytest.approx(expected.reward),
            "n": expected.n,
        }
    ]
    # The user held out and onboarded with k = 0 and 2 of their decisions: one edge per k,
    # on the same test decisions, with the reward behind the reported fraction.
    onboarding = {e["shots"]: e for e in edges if e["setting"] == "new_user"}
    assert set(onboarding) == {0, 2} and all(e["n"] == expected.n for e in onboarding.values())
    assert meta["EVALUATED created"] in (0, 2)  # 0 if the pipeline held out the same user
    assert meta["new_user k=2 of trained"] == pytest.approx(
        onboarding[2]["reward"] / expected.reward
    )


def test_predictions_complete_fails_on_a_prediction_for_a_pair_not_evaluated(pipeline):
    backend, instance, first = pipeline
    ref = first.output_for_node("trained_model")
    sub = load_training_subgraph(ref.export)
    data = sub.data
    train = sub.split.train[data.dec_query].nonzero()[0][0]  # a training decision
    user, query = data.user_ids[data.dec_user[train]], data.query_ids[data.dec_query[train]]
    with backend.store() as store:
        store.write_edges(
            "ROUTED_TO",
            [
                {
                    "src": user,
                    "dst": data.llm_ids[0],
                    "query_id": query,
                    "model_version": ref.version,
                    "score": 0.0,
                    "rank": 1,
                }
            ],
        )
    result = materialize(backend, instance, selection=["routing_predictions"], raise_on_error=False)
    assert not result.success  # the check is blocking: the run fails, nothing runs after it
    complete = checks(result)["predictions_complete"]
    assert not complete.passed
    meta = check_metadata(complete)
    evaluated = len(read_checkpoint(ref)["evaluated"]["idx"])
    assert meta["evaluated_pairs"] == evaluated
    assert meta["predicted_pairs"] == evaluated + 1
    assert (meta["unexpected_pairs"], meta["missing_pairs"]) == (1, 0)
    assert meta["examples"] == [[user, query]]


def test_retrain_sensor_fires_after_enough_new_interactions(pipeline, monkeypatch):
    backend, instance, first = pipeline
    monkeypatch.setenv("PROUTER_RETRAIN_THRESHOLD", "6")
    skipped = retrain_sensor(_sensor_context(backend, instance))
    assert isinstance(skipped, dg.SkipReason)
    assert skipped.skip_message.startswith("0 new interactions since gnn-")

    # A new user asks three known queries and chooses an LLM each time: 6 interactions.
    sub = load_training_subgraph(first.output_for_node("trained_model").export)
    queries, llm = sub.data.query_ids[:3], sub.data.llm_ids[0]
    with backend.store() as store:
        store.write_nodes("User", [{"id": "newcomer", "alpha": 0.5}])
        store.write_edges("ASKED", [{"src": "newcomer", "dst": q} for q in queries])
        store.write_edges(
            "CHOSE", [{"src": "newcomer", "dst": llm, "query_id": q} for q in queries]
        )
        total = sum(store.counts()[k] for k in ("ASKED", "CHOSE"))
    fired = retrain_sensor(_sensor_context(backend, instance))
    assert isinstance(fired, dg.SensorResult)
    (request,) = fired.run_requests
    version = first.output_for_node("trained_model").version
    assert request.run_key == f"{version}:{total}"
    assert request.tags["new_interactions"] == "6"
    # The job it launches re-trains explicitly: a new version by design.
    assert retrain_sensor.job_name == "retrain_job"
