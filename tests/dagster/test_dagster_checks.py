"""The asset checks fail on graphs and models that are broken for real."""

from __future__ import annotations

import json

import pytest
from dagster_test_support import WORKLOAD, check_metadata, checks, materialize, materialized

from gnn.evaluate import evaluate
from gnn.export import load_training_subgraph
from gnn.pipeline import compare_with_baseline, read_checkpoint
from gnn.routers.baselines import BestLLMPerUserTaskRouter
from workloads.sources import read_synthetic

UP_TO_EMBEDDINGS = ["interaction_sources", "graph_ingest", "simulated_users", "embeddings"]


def _canonical_file(tmp_path, drop_outcome: bool) -> str:
    """The small workload as a canonical JSONL file, optionally missing one outcome."""
    records = [r.values for r in read_synthetic(**_synthetic_args()).records]
    if drop_outcome:  # the second record is an outcome of the first query, not its first row
        assert "query_text" not in records[1] and "decision" not in records[1]
        del records[1]
    path = tmp_path / "interactions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return str(path)


def _synthetic_args() -> dict:
    return {
        "n_queries": WORKLOAD["synthetic_queries"],
        "n_users": WORKLOAD["synthetic_users"],
        "n_llms": WORKLOAD["synthetic_llms"],
        "users_per_query": WORKLOAD["synthetic_users_per_query"],
    }


def test_graph_integrity_fails_on_missing_outcomes_and_orphans(backend, instance, tmp_path):
    sources = {"canonical_files": [_canonical_file(tmp_path, True)], "synthetic_queries": 0}
    # 1. One query lacks an outcome for one LLM: counted, a warning.
    result = materialize(backend, instance, sources=sources, selection=UP_TO_EMBEDDINGS)
    integrity = checks(result)["graph_integrity"]
    assert not integrity.passed
    assert integrity.severity.value == "WARN"
    meta = check_metadata(integrity)
    assert meta["missing_outcomes"] == 1
    assert sum(meta["missing_outcomes_by_task"].values()) == 1
    assert meta["orphans"] == 0 and meta["duplicate_ids"] == 0

    # 2. Plus a user with no interaction at all: an error that blocks training.
    with backend.store() as store:
        store.write_nodes("User", [{"id": "ghost", "alpha": 0.5}])
    result = materialize(backend, instance, sources=sources, raise_on_error=False)
    integrity = checks(result)["graph_integrity"]
    assert not integrity.passed
    assert integrity.severity.value == "ERROR"
    meta = check_metadata(integrity)
    assert meta["orphans"] == 1
    assert meta["orphan_examples"] == {"User": ["ghost"]}
    assert meta["missing_outcomes"] == 1
    done = materialized(result)
    assert "embeddings" in done
    assert "training_subgraph" not in done and "trained_model" not in done


def test_model_quality_fails_for_a_model_worse_than_the_baseline(ladybug, instance):
    # lr=0: one epoch that changes nothing, an untrained network.
    untrained = {"epochs": 1, "patience": 1, "hidden": 32, "lr": 0.0}
    result = materialize(ladybug, instance, training=untrained)
    quality = checks(result)["model_beats_baseline"]
    assert not quality.passed
    assert quality.severity.value == "ERROR"
    meta = check_metadata(quality)
    ref = result.output_for_node("trained_model")
    sub = load_training_subgraph(ref.export)
    baseline = evaluate(
        BestLLMPerUserTaskRouter(seed=0).fit(sub.data, sub.split), sub.data, sub.split, "val"
    )
    ckpt = read_checkpoint(ref)
    assert meta["metric"] == "reward"
    assert meta["baseline"] == "best_llm_per_user_task"
    assert meta["baseline_value"] == pytest.approx(baseline.reward)
    assert meta["model"] == pytest.approx(ckpt["metrics"]["val"]["reward"])
    # Untrained, the GNN's outcome heads are their per-(task, LLM) prior, so it routes like the
    # lookup baseline at best: a tie is not "better than the baseline" and fails the check.
    assert meta["model"] <= meta["baseline_value"] + 1e-12
    assert meta["margin"] == pytest.approx(meta["model"] - meta["baseline_value"])
    # The passing side of the same comparison: a model fitted for real beats random routing.
    trained = materialize(
        ladybug, instance, training={"epochs": 20, "patience": 20, "retrain": True}
    )
    vs_random = compare_with_baseline(trained.output_for_node("trained_model"), "random")
    assert vs_random["passed"] and vs_random["model"] > vs_random["baseline_value"]
