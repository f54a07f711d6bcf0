"""The write-back in batches with the RouterModel node written last, on both backends.

ROUTED_TO edges are committed in bounded batches, each its own transaction; the
RouterModel node (with its EVALUATED edges) comes last and marks the version as
complete. An interrupted write-back leaves edges of a version without a RouterModel:
readers must not see them, a retry of the same version must complete it exactly, and
`prouter models prune` must remove them.
"""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from click.testing import CliRunner
from writeback_support import N_LLMS, TRAIN, fill, routed, with_k

import gnn.writeback
from gnn.pipeline import (
    ModelRef,
    prediction_completeness,
    publish_predictions,
    train_and_record,
    write_general_evaluation,
    write_user_evaluation,
    write_version,
)
from gnn.retention import list_models, prune_models
from gnn.serving import resolve_version
from graphdb.store import GraphStore, open_store
from prcore.errors import ProuterError, StoreError
from prouter.cli import cli


class Injected(StoreError):
    """The failure a test injects into a write."""


def fail_on_call(monkeypatch, store: GraphStore, rel: str, call: int) -> None:
    """Make the ``call``-th ``write_edges`` of ``rel`` on ``store`` raise (earlier ones run)."""
    real, seen = store.write_edges, []

    def flaky(name, rows):
        if name == rel:
            seen.append(name)
            if len(seen) == call:
                raise Injected(f"injected failure in {rel} write {call}")
        return real(name, rows)

    monkeypatch.setattr(store, "write_edges", flaky)


def record_writes(monkeypatch, store: GraphStore) -> list[str]:
    """Log each outermost transaction ("begin") and each node / edge write, in order."""
    events: list[str] = []
    begin, write_nodes, write_edges = store._begin, store.write_nodes, store.write_edges

    @contextmanager
    def logged_begin():
        events.append("begin")
        with begin():
            yield

    monkeypatch.setattr(store, "_begin", logged_begin)
    monkeypatch.setattr(
        store, "write_nodes", lambda label, rows: events.append(label) or write_nodes(label, rows)
    )
    monkeypatch.setattr(
        store, "write_edges", lambda rel, rows: events.append(rel) or write_edges(rel, rows)
    )
    return events


def model_count(store: GraphStore, version: str) -> int:
    return int(
        store.read(
            "MATCH (m:RouterModel) WHERE m.version = $v RETURN count(m) AS n", {"v": version}
        )
        .column("n")[0]
        .as_py()
    )


def trained(store: GraphStore, tmp_path) -> ModelRef:
    """A trained model version, not written back."""
    fill(store)
    return train_and_record(store, model_dir=tmp_path / "m", config=TRAIN, write_back=False).ref


def test_an_interrupted_write_back_is_invisible_and_a_retry_completes_it(
    store, tmp_path, monkeypatch
):
    ref = trained(store, tmp_path)
    monkeypatch.setattr(gnn.writeback, "BATCH_ROWS", 1)  # one user per batch: 3 batches
    fail_on_call(monkeypatch, store, "ROUTED_TO", 2)
    with pytest.raises(Injected):
        write_version(store, with_k(ref, None))  # every candidate: leftovers a k=3 retry must drop
    left = routed(store, ref.version)
    users_left = {r["user_id"] for r in left}
    assert len(users_left) == 1 and len(left) > 0  # the first batch was committed on its own
    assert {r["rank"] for r in left} == set(range(1, N_LLMS + 1))
    assert model_count(store, ref.version) == 0

    # nothing reads the unfinished version
    with pytest.raises(ProuterError, match="no trained router model"):
        resolve_version(store)
    assert store.query("latest_router_model").num_rows == 0
    assert store.query("eval_summary_by_model").num_rows == 0
    agreement = store.query("routing_agreement_by_model").column("model_version").to_pylist()
    assert ref.version not in agreement
    assert store.query("router_most_wrong", model_version=ref.version, limit=1000).num_rows == 0
    check = prediction_completeness(store, ref)
    assert not check["passed"] and check["recorded"] is False
    (entry,) = [e for e in list_models(store, tmp_path / "m") if e.version == ref.version]
    assert entry.orphaned and not entry.in_graph and entry.routed == len(left)

    # a retry of the same version (here with the default k = 3) completes it exactly
    monkeypatch.delattr(store, "write_edges")
    written = write_version(store, ref)
    assert written["RouterModel"].created == 1
    check = prediction_completeness(store, ref)
    assert check["passed"] and check["recorded"] is True, check
    rows = routed(store, ref.version)
    assert {r["rank"] for r in rows} == {1, 2, 3}
    pairs = {(r["user_id"], r["query_id"]) for r in rows}
    assert len(rows) == 3 * len(pairs) and written["ROUTED_TO"].created == len(rows)
    assert resolve_version(store) == ref.version
    assert store.query("routing_agreement_by_model").column("model_version").to_pylist() == [
        ref.version
    ]
    evaluated = store.query("eval_summary_by_model").to_pylist()
    assert [(e["model_version"], e["users"]) for e in evaluated] == [
        (ref.version, len({u for u, _ in pairs}))
    ]
    (entry,) = list_models(store, tmp_path / "m")
    assert entry.in_graph and not entry.orphaned

    # and again: idempotent, nothing new
    again = write_version(store, ref)
    assert again["ROUTED_TO"].created == 0 and again["ROUTED_TO"].unchanged == len(rows)
    assert again["RouterModel"].created == 0 and prediction_completeness(store, ref)["passed"]


def test_the_router_model_is_written_after_every_batch(store, tmp_path, monkeypatch):
    fill(store)
    monkeypatch.setattr(gnn.writeback, "BATCH_ROWS", 1)
    events = record_writes(monkeypatch, store)
    result = train_and_record(store, model_dir=tmp_path / "m", config=TRAIN)
    writes = events[events.index("ROUTED_TO") - 1 :]  # from the write-back's first batch
    batches = [i for i, e in enumerate(writes) if e == "ROUTED_TO"]
    assert len(batches) == 3  # one per user
    assert all(writes[i - 1] == "begin" for i in batches)  # each in its own transaction
    marker = writes.index("RouterModel")
    assert marker > batches[-1]
    # the marker and its EVALUATED edges: one transaction, after every ROUTED_TO batch
    assert writes[marker - 1] == "begin" and writes[marker + 1 :] == ["EVALUATED"]
    assert prediction_completeness(store, result.ref)["passed"]


def test_a_write_back_that_fits_one_batch_is_one_transaction(store, tmp_path, monkeypatch):
    ref = trained(store, tmp_path)
    events = record_writes(monkeypatch, store)
    write_version(store, ref)
    assert events[0] == "begin" and events.count("begin") == 1
    assert events.index("RouterModel") > events.index("ROUTED_TO")
    assert events[-1] == "EVALUATED"
    assert prediction_completeness(store, ref)["passed"]


def test_evaluations_need_the_recorded_version(store, tmp_path):
    ref = trained(store, tmp_path)
    user = store.node_ids("User")[0]
    for write in (write_general_evaluation, lambda s, r: write_user_evaluation(s, r, user)):
        with pytest.raises(StoreError, match=f"{ref.version} has no RouterModel node yet"):
            write(store, ref)
    assert store.counts()["EVALUATED"] == 0
    publish_predictions(store, ref)  # the Dagster step: ROUTED_TO, then the RouterModel
    assert prediction_completeness(store, ref)["passed"]
    assert write_general_evaluation(store, ref).created > 0


def test_prune_removes_unfinished_write_backs(store, tmp_path, monkeypatch):
    fill(store)
    model_dir = tmp_path / "m"
    done = train_and_record(store, model_dir=model_dir, config=TRAIN).ref
    monkeypatch.setattr(gnn.writeback, "BATCH_ROWS", 1)
    fail_on_call(monkeypatch, store, "ROUTED_TO", 3)
    with pytest.raises(Injected):
        train_and_record(store, model_dir=model_dir, config=TRAIN)
    monkeypatch.delattr(store, "write_edges")
    (broken,) = [e for e in list_models(store, model_dir) if e.orphaned]
    assert broken.version != done.version and broken.routed > 0 and broken.checkpoint

    before = store.counts()
    dry = prune_models(store, model_dir, keep=5, dry_run=True)
    assert dry.orphaned == {broken.version: broken.routed} and dry.removed == []
    assert store.counts() == before
    report = prune_models(store, model_dir, keep=5)
    assert report.orphaned == {broken.version: broken.routed} and report.removed == []
    assert report.deleted["ROUTED_TO"] == broken.routed
    assert routed(store, broken.version) == []
    assert broken.checkpoint.exists()  # kept (among the 5 newest): its write-back can be redone
    assert prediction_completeness(store, done)["passed"]  # the finished version is untouched
    assert store.counts()["ROUTED_TO"] == before["ROUTED_TO"] - broken.routed
    assert prune_models(store, model_dir, keep=5).orphaned == {}  # converged


def test_models_prune_names_the_unfinished_write_backs(tmp_path, monkeypatch):
    url = f"ladybug:{tmp_path / 'g.lbug'}"
    model_dir = tmp_path / "models"
    with open_store(url) as store:
        fill(store)
        monkeypatch.setattr(gnn.writeback, "BATCH_ROWS", 1)
        fail_on_call(monkeypatch, store, "ROUTED_TO", 2)
        with pytest.raises(Injected):
            train_and_record(store, model_dir=model_dir, config=TRAIN)
        (broken,) = list_models(store, model_dir)
    base = ["--store", url, "models", "prune", "--keep", "1", "--model-dir", str(model_dir)]
    dry = CliRunner().invoke(cli, [*base, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    line = (
        f"would remove the {broken.routed} ROUTED_TO edges of 1 unfinished write-back "
        f"(no RouterModel node): {broken.version}"
    )
    assert line in dry.output
    done = CliRunner().invoke(cli, base)
    assert done.exit_code == 0, done.output
    assert line.replace("would remove", "removed") in done.output
    with open_store(url, read_only=True) as store:
        assert routed(store, broken.version) == []
