"""The Definitions load: every job resolves, the asset graph is wired as designed."""

from __future__ import annotations

import dagster as dg
from dagster_test_support import EXPECTED_ASSETS

from dagster_project import defs
from dagster_project.resources import (
    GraphStoreResource,
    HashingEmbeddings,
    SentenceTransformerEmbeddings,
    resources_from_env,
)

DEPENDENCIES = {
    "interaction_sources": set(),
    "graph_ingest": {"interaction_sources"},
    "simulated_users": {"graph_ingest"},
    "embeddings": {"simulated_users"},
    "training_subgraph": {"embeddings"},
    "trained_model": {"training_subgraph"},
    "routing_predictions": {"trained_model"},
    "general_evaluation": {"trained_model", "routing_predictions"},
    "few_shot_evaluation": {"trained_model", "general_evaluation"},
    "user_evaluation": {"trained_model", "routing_predictions"},
    "router_report": {"trained_model", "general_evaluation", "few_shot_evaluation"},
    "route_snapshot": {"trained_model", "router_report"},
}


def test_defs_can_load_and_every_job_resolves():
    jobs = {"pipeline_job", "retrain_job", "evaluation_job", "user_evaluation_job"}
    for name in jobs:
        assert defs.resolve_job_def(name).name == name
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert keys == EXPECTED_ASSETS
    for key in graph.get_all_asset_keys():
        parents = {p.to_user_string() for p in graph.get(key).parent_keys}
        assert parents == DEPENDENCIES[key.to_user_string()], key
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert checks == {
        ("embeddings", "graph_integrity"),
        ("trained_model", "model_beats_baseline"),
        ("routing_predictions", "predictions_complete"),
    }
    assert graph.get(dg.AssetKey("user_evaluation")).partitions_def.name == "users"
    assert {s.name for s in defs.sensors} == {
        "retrain_sensor",
        "served_traffic_sensor",
        "user_partitions_sensor",
    }
    (schedule,) = defs.schedules
    assert (schedule.cron_schedule, schedule.job_name) == ("0 3 * * *", "evaluation_job")
    # The re-train job forces a new version; the pipeline job reuses a matching checkpoint.
    retrain = defs.resolve_job_def("retrain_job")
    assert retrain.run_config["ops"]["trained_model"]["config"]["retrain"] is True
    assert {k.to_user_string() for k in retrain.asset_layer.executable_asset_keys} == {
        "embeddings",
        "training_subgraph",
        "trained_model",
        "routing_predictions",
        "general_evaluation",
        "few_shot_evaluation",
        "router_report",
        "route_snapshot",  # last: the first route after a re-train is light
    }
    evaluation = defs.resolve_job_def("evaluation_job")  # it rewrites edges: a new snapshot
    assert "route_snapshot" in {
        k.to_user_string() for k in evaluation.asset_layer.executable_asset_keys
    }
    assert defs.resolve_job_def("pipeline_job").run_config is None


def test_resources_come_from_the_environment_without_exposing_secrets(monkeypatch):
    monkeypatch.delenv("PROUTER_STORE", raising=False)
    monkeypatch.delenv("NEO4J_PASSWORD", raising=False)
    monkeypatch.delenv("PROUTER_EMBEDDING_MODEL", raising=False)
    default = resources_from_env()
    assert default["graph_store"].url == "ladybug:prouter-data/graph.lbug"
    assert default["graph_store"].password is None
    assert isinstance(default["embedding_model"], SentenceTransformerEmbeddings)

    monkeypatch.setenv("PROUTER_STORE", "bolt://127.0.0.1:7687")
    monkeypatch.setenv("NEO4J_PASSWORD", "s3cret-value")
    monkeypatch.setenv("PROUTER_EMBEDDING_MODEL", "hashing:32")
    configured = resources_from_env()
    store = configured["graph_store"]
    assert isinstance(store, GraphStoreResource)
    assert isinstance(store.password, dg.EnvVar) and store.password == "NEO4J_PASSWORD"
    assert isinstance(store.url, dg.EnvVar) and store.url == "PROUTER_STORE"
    assert "s3cret-value" not in repr(store)
    assert configured["embedding_model"] == HashingEmbeddings(dim=32)
