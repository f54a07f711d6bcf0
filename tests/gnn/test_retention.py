"""Top-k ROUTED_TO write-back and `prouter models list/prune`, on both backends."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from writeback_support import N_LLMS, TRAIN, fill, routed, with_k

from gnn.checkpoint import checkpoint_path, save_file
from gnn.pipeline import (
    ModelRef,
    few_shot_cache_path,
    prediction_completeness,
    train_and_record,
    write_routing_predictions,
)
from gnn.retention import list_models, prune_models
from gnn.writeback import write_predictions
from graphdb.store import GraphStore, open_store
from prcore.errors import ConfigError
from prouter.cli import cli


def test_top_k_write_back_and_the_completeness_check_agree(store, tmp_path):
    fill(store)
    result = train_and_record(store, model_dir=tmp_path / "m", config=TRAIN, routed_top=2)
    ref = ModelRef(
        result.version,
        str(result.checkpoint),
        str(next((tmp_path / "m" / "exports").glob("*"))),
        routed_top=2,
    )
    rows = routed(store, result.version)
    pairs = {(r["user_id"], r["query_id"]) for r in rows}
    assert len(pairs) > 0 and len(rows) == 2 * len(pairs)
    assert sorted({r["rank"] for r in rows}) == [1, 2]
    assert sum(r["rank"] == 1 for r in rows) == len(pairs)
    (model,) = store.read(
        "MATCH (m:RouterModel) WHERE m.version = $v RETURN m.config AS c", {"v": result.version}
    ).to_pylist()
    assert json.loads(model["c"])["routed_top"] == 2
    assert prediction_completeness(store, ref)["passed"]

    # every candidate on request; then the k=2 check sees pairs with too many edges
    write_routing_predictions(store, with_k(ref, None))
    assert len(routed(store, result.version)) == N_LLMS * len(pairs)
    assert prediction_completeness(store, with_k(ref, None))["passed"]
    too_many = prediction_completeness(store, ref)
    assert not too_many["passed"] and too_many["pairs_without_one_top_pick"] == len(pairs)

    # a smaller k removes the lower-ranked edges of this version
    write_routing_predictions(store, with_k(ref, 1))
    assert {r["rank"] for r in routed(store, result.version)} == {1}
    assert len(routed(store, result.version)) == len(pairs)
    assert prediction_completeness(store, with_k(ref, 1))["passed"]
    # k larger than the candidates: every candidate, still complete
    write_routing_predictions(store, with_k(ref, 50))
    assert prediction_completeness(store, with_k(ref, 50))["passed"]
    assert len(routed(store, result.version)) == N_LLMS * len(pairs)


@pytest.mark.parametrize("k", [0, -1, True, 2.5])
def test_a_bad_top_k_is_refused(k):
    with pytest.raises(ConfigError, match="positive integer or 'all'"):
        ModelRef("v", "c", "e", routed_top=k)


def test_batched_prediction_writes_match_one_write(tmp_path):
    from gnn.export import load_training_subgraph
    from gnn.writeback import prediction_table

    url = f"ladybug:{tmp_path / 'g.lbug'}"
    with open_store(url) as store:
        fill(store)
        result = train_and_record(store, model_dir=tmp_path / "m", config=TRAIN, write_back=False)
        sub = load_training_subgraph(next((tmp_path / "m" / "exports").glob("*")))
        data = sub.data
        idx = np.arange(len(data.dec_user))
        scores = np.random.default_rng(0).normal(size=(len(idx), data.num_llms))
        table = prediction_table(data, "v-batched", data.dec_user[idx], data.dec_query[idx], scores)
        assert result.version
        stats = write_predictions(store, table, batch_rows=7)
        assert stats.created == table.num_rows
        again = write_predictions(store, table, batch_rows=10_000)
        assert again.created == 0 and again.unchanged == table.num_rows
        assert len(routed(store, "v-batched")) == table.num_rows


def train_versions(store: GraphStore, model_dir, n: int) -> list[str]:
    return [
        train_and_record(store, model_dir=model_dir, config=TRAIN, routed_top=2).version
        for _ in range(n)
    ]


def test_prune_keeps_the_newest_versions_and_removes_the_rest(store, tmp_path):
    fill(store)
    model_dir = tmp_path / "models"
    versions = train_versions(store, model_dir, 3)
    oldest = ModelRef(versions[0], str(checkpoint_path(model_dir, versions[0])), "")
    cache = few_shot_cache_path(oldest, ["new_user"], shots=[0])
    save_file(cache, [])
    unrelated = model_dir / "notes.pt"
    unrelated.write_bytes(b"keep me")
    listed = list_models(store, model_dir)
    assert [e.version for e in listed] == versions[::-1]
    assert listed[-1].caches == [cache] and all(e.routed > 0 for e in listed)

    before = store.counts()
    dry = prune_models(store, model_dir, keep=1, dry_run=True)
    assert dry.removed == versions[1::-1] and dry.kept == [versions[2]]
    assert store.counts() == before and cache.exists()
    assert dry.deleted["files"] == 3 and dry.deleted["RouterModel"] == 2

    report = prune_models(store, model_dir, keep=1)
    assert report.deleted == dry.deleted
    assert [e.version for e in list_models(store, model_dir)] == [versions[2]]
    after = store.counts()
    assert after["RouterModel"] == 1
    assert after["ROUTED_TO"] == len(routed(store, versions[2])) > 0
    assert after["EVALUATED"] > 0 and after["CHOSE"] == before["CHOSE"]
    assert not cache.exists() and unrelated.exists()
    assert sorted(p.name for p in model_dir.glob("*.pt")) == sorted(
        [f"{versions[2]}.pt", "notes.pt"]
    )
    assert prune_models(store, model_dir, keep=1).removed == []  # converged


def test_prune_never_removes_the_latest_model_in_the_graph(store, tmp_path):
    fill(store)
    model_dir = tmp_path / "models"
    (old, latest) = train_versions(store, model_dir, 2)
    # a newer-named checkpoint that the graph does not know (copied in by hand)
    stray = re.sub(r"^gnn-\d{8}", "gnn-29991231", latest)
    shutil.copyfile(checkpoint_path(model_dir, latest), checkpoint_path(model_dir, stray))
    report = prune_models(store, model_dir, keep=1)
    assert report.kept == [stray, latest] and report.removed == [old]
    assert store.query("latest_router_model").column("version").to_pylist() == [latest]
    with pytest.raises(ConfigError, match="at least 1"):
        prune_models(store, model_dir, keep=0)


def test_models_list_and_prune_commands(tmp_path):
    url = f"ladybug:{tmp_path / 'g.lbug'}"
    with open_store(url) as store:
        fill(store)
    model_dir = str(tmp_path / "models")
    base = ["--store", url]
    for _ in range(2):
        out = CliRunner().invoke(
            cli,
            [
                *base,
                "train",
                "--epochs",
                "2",
                "--hidden",
                "8",
                "--model-dir",
                model_dir,
                "--routed-top",
                "all",
            ],
        )
        assert out.exit_code == 0, out.output
    listed = CliRunner().invoke(cli, [*base, "models", "list", "--model-dir", model_dir, "--json"])
    assert listed.exit_code == 0, listed.output
    entries = json.loads(listed.stdout)
    assert len(entries) == 2 and all(e["ROUTED_TO"] > 0 for e in entries)
    assert all(e["ROUTED_TO"] % N_LLMS == 0 for e in entries)  # --routed-top all
    dry = CliRunner().invoke(
        cli, [*base, "models", "prune", "--keep", "1", "--dry-run", "--model-dir", model_dir]
    )
    assert (
        dry.exit_code == 0
        and "would remove 1" in dry.output
        and entries[1]["version"] in dry.output
    )
    done = CliRunner().invoke(
        cli, [*base, "models", "prune", "--keep", "1", "--model-dir", model_dir]
    )
    assert done.exit_code == 0 and "removed 1" in done.output
    bad = CliRunner().invoke(
        cli, [*base, "models", "prune", "--keep", "0", "--model-dir", model_dir]
    )
    assert bad.exit_code == 2
    bad_k = CliRunner().invoke(cli, [*base, "train", "--routed-top", "none"])
    assert bad_k.exit_code == 2 and "positive integer or 'all'" in bad_k.output


def test_the_evaluated_scores_and_export_load_once_per_process(tmp_path, monkeypatch):
    import gnn.export
    from gnn.pipeline import user_metrics

    calls = []
    real = gnn.export.load_training_subgraph
    monkeypatch.setattr(
        gnn.export, "load_training_subgraph", lambda path: calls.append(path) or real(path)
    )
    with open_store(f"ladybug:{tmp_path / 'g.lbug'}") as store:
        fill(store)
        result = train_and_record(store, model_dir=tmp_path / "m", config=TRAIN, write_back=False)
        export = str(next((tmp_path / "m" / "exports").glob("*")))
        ref = ModelRef(result.version, str(result.checkpoint), export)
        calls.clear()
        users = store.node_ids("User")
        first = [user_metrics(ref, u) for u in users]  # one Dagster partition per user
        write_routing_predictions(store, ref)
        assert len(calls) == 1
        # a replaced export (another file at the same path) is loaded again
        copy = tmp_path / "copy"
        shutil.copyfile(export, copy)
        copy.replace(export)
        again = [user_metrics(ref, u) for u in users]
        assert len(calls) == 2
        assert [m and m.as_dict() for m in again] == [m and m.as_dict() for m in first]
