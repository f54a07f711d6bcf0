"""The asset job on a preference-only graph (PREFERRED votes, no ANSWERED_BY outcomes)."""

from __future__ import annotations

import sys
from pathlib import Path

from dagster_test_support import EXPECTED_ASSETS, checks, materialize, materialized

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gnn"))
from preference_support import write_mtbench


def test_pipeline_materialises_on_a_preference_only_graph(ladybug, instance, tmp_path):
    questions, votes = write_mtbench(tmp_path, n_questions=60, judges=4)
    sources = {
        "synthetic_queries": 0,
        "preferences_file": str(votes),
        "preferences_questions": str(questions),
    }
    result = materialize(ladybug, instance, sources=sources, raise_on_error=False)
    failed = [e.message for e in result.all_events if e.is_failure]
    assert result.success, failed
    meta = materialized(result)
    assert set(meta) == EXPECTED_ASSETS - {"user_evaluation"}
    assert meta["graph_ingest"]["PREFERRED created"] == 60 * 4
    assert "ANSWERED_BY created" not in meta["graph_ingest"]
    assert meta["embeddings"]["Query"] == 60
    assert meta["routing_predictions"]["RouterModel created"] == 1
    few = meta["few_shot_evaluation"]
    assert "pairwise new-user curve" in few["new_user skipped"]
    assert "ANSWERED_BY" in few["new_llm skipped"]
    with ladybug.store() as store:
        assert store.read("MATCH ()-[a:ANSWERED_BY]->() RETURN count(a) AS n").to_pylist() == [
            {"n": 0}
        ]
        models = store.read("MATCH (m:RouterModel) RETURN m.metrics AS metrics").to_pylist()
    assert len(models) == 1 and "NaN" not in models[0]["metrics"]
    evaluations = checks(result)
    assert evaluations["graph_integrity"].passed
