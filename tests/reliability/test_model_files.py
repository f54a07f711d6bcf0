"""Model files and what is served from them (issue #14, items 3, 5, 7, 8 and the
checkpoint part of 10), on real LadybugDB stores and real checkpoints.

* 3: two trainings in the same instant into one model folder keep two checkpoints
  and two RouterModels (the clock is frozen, so only the version scheme separates them);
* 7: a RouterModel version that is a path, or names a pickle that would run code,
  is refused by ``prouter route`` and the code never runs (nor from a few-shot cache);
* 10: a truncated, random or empty checkpoint is a one-line error (exit 1);
* 8: a checkpoint trained on another graph is refused; LLMs added or removed since
  training are served with a warning (stderr, ``service.warnings``, ``/health``);
* 5: training on an absurd outcome stops with a clear error and saves nothing; a model
  with non-finite weights is refused; routing output never holds NaN.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pickle
import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import gnn.checkpoint as checkpoint_module
import workloads.embeddings
from gnn.checkpoint import CheckpointError, load_checkpoint, new_version, save_checkpoint
from gnn.compat import ModelMismatchError
from gnn.pipeline import ModelRef, few_shot_cache_path, few_shot_results, train_and_record
from gnn.serving import RoutingService
from graphdb.ingest import write_tables
from graphdb.store import GraphStore, open_store
from graphdb.tables import embedding_array
from prcore.errors import ProuterError
from prouter.cli import cli
from workloads.synthetic import SyntheticWorkload, generate

TRAIN = {"epochs": 2, "hidden": 8}
DIM = 16
USER = "user-0001"


# -- helpers ------------------------------------------------------------------------------
def workload(seed: int = 1, **kwargs: object) -> SyntheticWorkload:
    return generate(n_queries=120, n_users=4, n_llms=4, users_per_query=2, seed=seed, **kwargs)


def write_graph(url: str, wl: SyntheticWorkload, seed: int = 1) -> None:
    """The workload with stand-in query and LLM embeddings (``DIM``-d)."""
    tables = wl.tables(embedding_dim=DIM)
    rng = np.random.default_rng(seed)
    tables["LLM"] = tables["LLM"].append_column(
        "embedding", embedding_array(rng.normal(size=(len(wl.llm_ids), DIM)))
    )
    with open_store(url) as store:
        write_tables(store, tables)


class StandInEmbedder:
    """Graph query texts get their graph embedding; other texts a seeded unit vector."""

    def __init__(self, store: GraphStore) -> None:
        table = store.export_nodes("Query", ["text", "embedding"])
        texts, embs = table.column("text").to_pylist(), table.column("embedding").to_pylist()
        self.known = {t: np.asarray(e, dtype=np.float32) for t, e in zip(texts, embs, strict=True)}

    def embed(self, texts, progress=True):  # type: ignore[no-untyped-def]
        out = []
        for text in texts:
            if text in self.known:
                out.append(self.known[text])
                continue
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
            v = np.random.default_rng(seed).normal(size=DIM)
            out.append(v / np.linalg.norm(v))
        return np.asarray(out, dtype=np.float32)


def service(url: str, model_dir: Path, version: str | None = None) -> RoutingService:
    with open_store(url, read_only=True) as store:
        return RoutingService(store, StandInEmbedder(store), model_dir=model_dir, version=version)


def record_version(url: str, version: str, created_at: str = "2999-01-01T00:00:00.000000Z") -> None:
    """A RouterModel node naming ``version``, newer than any real one (what an attacker
    who can write the graph would add)."""
    with open_store(url) as store:
        store.write_nodes(
            "RouterModel",
            [{"version": version, "created_at": created_at, "config": "{}", "metrics": "{}"}],
        )


def route_cli(url: str, model_dir: Path, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(
        cli,
        ["--store", url, "route", "--model-dir", str(model_dir), "--user", USER, *args],
    )


def assert_one_line_error(result, *fragments: str) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output and "Aborted" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


class _RunsCode:
    """Unpickling this calls ``open(marker, 'w')``: code execution, creating the marker."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (open, (str(self.marker), "w"))


def plant_pickle(path: Path, marker: Path) -> None:
    """A checkpoint-looking pickle that runs code when it is unpickled (a load that is not
    weights-only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {}, "evil": _RunsCode(marker)}, path, pickle_module=pickle)


@pytest.fixture(autouse=True)
def _stand_in_embedder(monkeypatch: pytest.MonkeyPatch) -> None:
    """`prouter route` embeds with the stand-in (the graphs carry stand-in embeddings)."""

    def embedder(model: str, cache_path: Path | None = None, **options):  # type: ignore[no-untyped-def]
        url = os.environ["TEST_ROUTE_STORE"]
        with open_store(url, read_only=True) as store:
            return StandInEmbedder(store)

    monkeypatch.setattr(workloads.embeddings, "Embedder", embedder)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, str]:
    """(store url, model folder, version): a small workload with one trained model."""
    tmp = tmp_path_factory.mktemp("model-files")
    url = f"ladybug:{tmp / 'a.lbug'}"
    write_graph(url, workload())
    with open_store(url) as store:
        result = train_and_record(store, seed=0, model_dir=tmp / "models", config=TRAIN)
    return url, tmp / "models", result.version


@pytest.fixture
def graph(trained, monkeypatch):  # type: ignore[no-untyped-def]
    """A copy of the trained store (tests may add RouterModels to it), same model folder."""
    url, model_dir, version = trained
    src = Path(url.removeprefix("ladybug:"))
    dst = src.with_name(f"copy-{os.urandom(4).hex()}.lbug")
    shutil.copyfile(src, dst)
    copy = f"ladybug:{dst}"
    monkeypatch.setenv("TEST_ROUTE_STORE", copy)
    yield copy, model_dir, version
    dst.unlink(missing_ok=True)


# -- 3: versions never collide, checkpoints never overwritten --------------------------------
class _FrozenClock(datetime):
    @classmethod
    def now(cls, tz=None):  # type: ignore[no-untyped-def,override]
        return datetime(2026, 11, 30, 12, 0, 0, 0, tzinfo=UTC)


def test_two_trainings_in_the_same_instant_keep_two_checkpoints_and_models(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint_module, "datetime", _FrozenClock)
    model_dir = tmp_path / "models"  # one folder for both stores
    urls = [f"ladybug:{tmp_path / 'a.lbug'}", f"ladybug:{tmp_path / 'b.lbug'}"]
    for url in urls:
        write_graph(url, workload())  # the same data: the same training key
    versions = []
    with open_store(urls[0]) as store:  # the same graph trained twice, then another store
        versions.append(train_and_record(store, seed=0, model_dir=model_dir, config=TRAIN).version)
        versions.append(train_and_record(store, seed=0, model_dir=model_dir, config=TRAIN).version)
        models = store.read("MATCH (m:RouterModel) RETURN m.version AS v").column("v")
    with open_store(urls[1]) as store:
        versions.append(train_and_record(store, seed=0, model_dir=model_dir, config=TRAIN).version)
    assert len(set(versions)) == 3
    assert all(v.startswith("gnn-20261130T120000000000Z-") for v in versions)
    assert sorted(models.to_pylist()) == sorted(versions[:2])
    assert sorted(p.stem for p in model_dir.glob("gnn-*.pt")) == sorted(versions)
    for v in versions:
        assert load_checkpoint(model_dir, v)["version"] == v
    assert not list(model_dir.glob(".*.tmp"))  # no temporary file left behind


def test_a_checkpoint_is_never_overwritten(trained, tmp_path):
    _, model_dir, version = trained
    path = model_dir / f"{version}.pt"
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(CheckpointError, match="never overwritten"):
        save_checkpoint(model_dir, version, load_checkpoint(model_dir, version))
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert not list(model_dir.glob(".*.tmp"))
    a, b = new_version("k")[0], new_version("k")[0]
    assert a != b and a.startswith("gnn-") and "-k-" in a


# -- 7: no code execution, no path escape -------------------------------------------------------
@pytest.mark.parametrize("kind", ["absolute", "dotdot", "pickle", "flag"])
def test_a_version_that_is_a_path_or_a_pickle_is_refused_and_runs_nothing(graph, tmp_path, kind):
    url, model_dir, _ = graph
    marker = tmp_path / "code-ran"
    outside = tmp_path / "outside" / "evil.pt"
    plant_pickle(outside, marker)
    args: list[str] = []
    if kind == "absolute":
        record_version(url, str(outside.with_suffix("")))
        expected = "never a path"
    elif kind == "dotdot":
        nested = model_dir / "nested"
        plant_pickle(model_dir / "evil-up.pt", marker)
        record_version(url, "../evil-up")
        model_dir = nested
        expected = "never a path"
    elif kind == "pickle":  # a plain name, inside the folder, but the file holds code
        plant_pickle(model_dir / "gnn-evil.pt", marker)
        record_version(url, "gnn-evil")
        expected = "holding code, which is never loaded"
    else:
        args = ["--model", str(outside.with_suffix(""))]
        expected = "never a path"
    result = route_cli(url, model_dir, *args, "What is 2 + 2?")
    assert_one_line_error(result, expected)
    assert not marker.exists()


def test_a_planted_few_shot_cache_is_refused_and_runs_nothing(trained, tmp_path):
    _, model_dir, version = trained
    ref = ModelRef(version, str(model_dir / f"{version}.pt"), export="unused")
    cache = few_shot_cache_path(ref, ["new_user"], shots=(0, 1))
    marker = tmp_path / "code-ran"
    plant_pickle(cache, marker)
    try:
        with pytest.raises(CheckpointError, match="holding code, which is never loaded"):
            few_shot_results(ref, ["new_user"], shots=(0, 1))
    finally:
        cache.unlink()
    assert not marker.exists()


# -- 10: unreadable checkpoints are one-line errors ----------------------------------------------
@pytest.mark.parametrize("damage", ["truncated", "random", "empty"])
def test_a_damaged_checkpoint_is_a_one_line_error(graph, damage):
    url, model_dir, version = graph
    good = (model_dir / f"{version}.pt").read_bytes()
    content = {
        "truncated": good[: len(good) // 2],
        "random": np.random.default_rng(0).bytes(4096),
        "empty": b"",
    }[damage]
    damaged = f"gnn-damaged-{damage}"
    (model_dir / f"{damaged}.pt").write_bytes(content)
    try:
        record_version(url, damaged)
        assert_one_line_error(
            route_cli(url, model_dir, "What is 2 + 2?"), "is not a readable PersonalizedRouter file"
        )
        assert_one_line_error(
            route_cli(url, model_dir, "--model", damaged, "--json", "hi"), damaged
        )
    finally:
        (model_dir / f"{damaged}.pt").unlink()


# -- 8: a checkpoint of another graph --------------------------------------------------------------
def _renamed(wl: SyntheticWorkload, **ids: list[str]) -> SyntheticWorkload:
    return dataclasses.replace(wl, **ids)


def test_a_model_of_another_graph_is_refused(trained, tmp_path, monkeypatch):
    _, model_dir, version = trained
    wl = workload(seed=7)
    other = f"ladybug:{tmp_path / 'other.lbug'}"  # other queries, same tasks and LLMs
    write_graph(other, _renamed(wl, query_ids=[f"other-{q}" for q in wl.query_ids]))
    monkeypatch.setenv("TEST_ROUTE_STORE", other)
    with pytest.raises(ModelMismatchError, match=r"trained on another graph: only 0 of its \d+"):
        service(other, model_dir, version)
    result = route_cli(other, model_dir, "--model", version, "hi")
    assert_one_line_error(result, "trained on another graph", "retrain")

    fewer = f"ladybug:{tmp_path / 'fewer.lbug'}"  # the model's tasks are not all there
    write_graph(fewer, workload(n_tasks=2))
    monkeypatch.setenv("TEST_ROUTE_STORE", fewer)
    assert_one_line_error(
        route_cli(fewer, model_dir, "--model", version, "hi"), "trained on another graph"
    )


def test_llms_added_or_removed_since_training_are_served_with_a_warning(
    trained, tmp_path, monkeypatch
):
    url, model_dir, version = trained
    wl = workload()
    same = service(url, model_dir, version)  # the graph it was trained on: no warning
    assert sorted(same.router.llm_ids) == sorted(wl.llm_ids) and same.warnings == []
    gone, new = wl.llm_ids[-1], "zephyr-new-7b"
    changed = f"ladybug:{tmp_path / 'changed.lbug'}"
    write_graph(changed, _renamed(wl, llm_ids=[*wl.llm_ids[:-1], new]))
    svc = service(changed, model_dir, version)
    assert len(svc.warnings) == 2
    assert new in svc.warnings[0] and "never saw" in svc.warnings[0]
    assert gone in svc.warnings[1] and "no longer in the graph" in svc.warnings[1]
    assert svc.health()["warnings"] == svc.warnings
    ranked = {r.llm_id for r in svc.route(USER, "What is 2 + 2?").ranking}
    assert new in ranked and gone not in ranked
    monkeypatch.setenv("TEST_ROUTE_STORE", changed)
    result = route_cli(changed, model_dir, "--model", version, "--json", "hi")
    assert result.exit_code == 0, result.output
    assert f"Warning: model {version} never saw LLMs {new}" in result.stderr
    json.loads(result.stdout)


# -- 5: never NaN --------------------------------------------------------------------------------
def _reject_constant(name: str) -> None:
    raise ValueError(f"invalid JSON constant {name}")


def test_training_on_an_absurd_outcome_stops_and_saves_nothing(tmp_path):
    poisoned = f"ladybug:{tmp_path / 'poisoned.lbug'}"
    write_graph(poisoned, workload())
    with open_store(poisoned) as store:
        row = store.read(
            "MATCH (q:Query)-[a:ANSWERED_BY]->(l:LLM) RETURN q.id AS src, l.id AS dst, "
            "a.cost AS cost ORDER BY src, dst LIMIT 1"
        ).to_pylist()[0]
        store.write_edges("ANSWERED_BY", [row | {"performance": 1e300}])
        model_dir = tmp_path / "models"
        with pytest.raises(ProuterError, match=r"training stopped at epoch 0: the loss is"):
            train_and_record(store, seed=0, model_dir=model_dir, config=TRAIN)
        assert store.read("MATCH (m:RouterModel) RETURN count(m) AS n").column("n")[0].as_py() == 0
    assert not list(model_dir.glob("*.pt"))


def test_a_model_with_non_finite_weights_is_refused(graph):
    url, model_dir, version = graph
    state = load_checkpoint(model_dir, version)
    name = next(k for k, v in state["state_dict"].items() if v.is_floating_point())
    state["state_dict"][name] = torch.full_like(state["state_dict"][name], float("nan"))
    poisoned = new_version("poisoned")[0]
    save_checkpoint(model_dir, poisoned, state)
    try:
        with pytest.raises(ModelMismatchError, match="NaN or infinite weights"):
            service(url, model_dir, poisoned)
        assert_one_line_error(
            route_cli(url, model_dir, "--model", poisoned, "--json", "hi"), "NaN or infinite"
        )
    finally:
        (model_dir / f"{poisoned}.pt").unlink()


def test_route_json_is_strict_json(graph):
    url, model_dir, _ = graph
    result = route_cli(url, model_dir, "--json", "--top", "0", "What is 2 + 2?")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout, parse_constant=_reject_constant)
    assert all(
        np.isfinite([r["utility"], r["performance"], r["cost"]]).all() for r in out["ranking"]
    )
