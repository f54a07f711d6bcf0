"""The light route path (gnn.light): the same answers as the full path, without torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner
from test_route import TRAIN, write_workload

from gnn.light.snapshot import (
    BadSnapshot,
    StaleSnapshot,
    load_service,
    snapshot_path,
    store_stamp,
    write_snapshot,
)
from gnn.pipeline import train_and_record
from gnn.serving import RouteRequest, RoutingService
from graphdb.ingest import write_tables
from graphdb.store import embedded_store_file, open_store
from prouter.cli import cli
from workloads.embeddings import Embedder, embed_graph
from workloads.synthetic import generate

HEAVY = ("torch", "sentence_transformers", "transformers", "torch_geometric")
TEXT = "Write a Python function that reverses a linked list"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(store file, model dir, embedding cache) of a small store embedded with the real
    all-MiniLM-L6-v2 and a trained GNN router."""
    tmp = tmp_path_factory.mktemp("route-light")
    path = tmp / "g.lbug"
    cache = tmp / "cache.sqlite"
    with open_store(f"ladybug:{path}") as store, Embedder(cache_path=cache) as embedder:
        write_workload(store, dim=None)
        embed_graph(store, embedder, progress=False)
        train_and_record(store, seed=0, model_dir=tmp / "models", config=TRAIN)
    return path, tmp / "models", cache


def full_service(path: Path, model_dir: Path, cache: Path) -> RoutingService:
    with open_store(f"ladybug:{path}", read_only=True) as store:
        return RoutingService(store, Embedder(cache_path=cache), model_dir=model_dir)


def snapshot_of(trained, tmp_path: Path) -> tuple[RoutingService, Path]:
    path, model_dir, cache = trained
    stamp = store_stamp(path)
    full = full_service(path, model_dir, cache)
    snap = snapshot_path(tmp_path / "models", path)
    write_snapshot(full, snap, stamp=stamp, store_file=path, latest=True)
    return full, snap


def assert_same(light: dict, full: dict) -> None:
    """Two RouteResult dicts agree: ranking, numbers (1e-5), task, explanation."""
    for key in ("user", "query", "task", "task_inferred", "model_version"):
        assert light[key] == full[key], key
    assert [r["llm_id"] for r in light["ranking"]] == [r["llm_id"] for r in full["ranking"]]
    for a, b in zip(light["ranking"], full["ranking"], strict=True):
        assert a["rank"] == b["rank"] and a["cost_source"] == b["cost_source"]
        for name in ("utility", "performance", "cost"):
            assert a[name] == pytest.approx(b[name], abs=1e-5), name
    ex_l, ex_f = light["explanation"], full["explanation"]
    assert ex_l["quality_weight"] == pytest.approx(ex_f["quality_weight"], abs=1e-6)
    for name in ("known_user", "message", "prior_queries", "prior_choices", "task_note"):
        assert ex_l[name] == ex_f[name], name
    assert len(ex_l["past_queries"]) == len(ex_f["past_queries"])
    for a, b in zip(ex_l["past_queries"], ex_f["past_queries"], strict=True):
        assert a["similarity"] == pytest.approx(b["similarity"], abs=1e-5)
        assert {k: v for k, v in a.items() if k != "similarity"} == {
            k: v for k, v in b.items() if k != "similarity"
        }


CASES = [
    ("user-0001", TEXT, None),  # a known user, task inferred
    ("user-0002", "What is 17% of 240?", "math"),  # a known user, task given
    ("stranger", "Summarise this article about rivers in two lines", None),  # new, inferred
    ("stranger", TEXT, "code"),  # a new user, task given
]


def test_light_service_routes_as_the_full_one(trained, tmp_path):
    full, snap = snapshot_of(trained, tmp_path)
    path, _, _ = trained
    # Its own cache: the light service encodes the texts with the numpy MiniLM itself.
    light = load_service(
        snap,
        model_dir=trained[1],
        stamp=store_stamp(path),
        embedder=Embedder(cache_path=tmp_path / "light.sqlite", numpy_encoder=True),
    )
    assert type(light.router).__name__ == "LightRouter"
    assert light.health() == full.health()
    for user, text, task in CASES:
        assert_same(light.route(user, text, task).to_dict(), full.route(user, text, task).to_dict())
    graph_text = next(t for t in full.query_text if t)  # a query of the graph itself
    assert_same(
        light.route("user-0003", graph_text).to_dict(),
        full.route("user-0003", graph_text).to_dict(),
    )
    requests = [RouteRequest(u, q, t) for u, q, t in CASES]
    for a, b in zip(light.route_many(requests), full.route_many(requests), strict=True):
        assert_same(a.to_dict(), b.to_dict())
    assert type(light.embedder._model).__name__ == "NumpyMiniLM"  # it encoded the texts


def test_a_changed_store_or_another_model_makes_the_snapshot_stale(trained, tmp_path):
    full, snap = snapshot_of(trained, tmp_path)
    path, model_dir, _ = trained
    stamp = store_stamp(path)
    embedder = Embedder(cache_path=None, numpy_encoder=True)
    with pytest.raises(StaleSnapshot, match="changed"):
        load_service(
            snap, model_dir=model_dir, stamp=[stamp[0], stamp[1] + 1, stamp[2]], embedder=embedder
        )
    with pytest.raises(StaleSnapshot, match="another model"):
        load_service(snap, model_dir=model_dir, stamp=stamp, embedder=embedder, version="gnn-other")
    assert load_service(
        snap, model_dir=model_dir, stamp=stamp, embedder=embedder, version=full.version
    )
    with pytest.raises(StaleSnapshot):
        load_service(snap, model_dir=model_dir, stamp=None, embedder=embedder)


def _rewrite(snap: Path, out: Path, **changes: object) -> None:
    with np.load(snap, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    header = json.loads(arrays["header"].tobytes())
    for key, value in changes.items():
        if key in arrays:
            arrays[key] = value  # type: ignore[assignment]
        else:
            header[key] = value
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with open(out, "wb") as f:
        np.savez(f, **arrays)


@pytest.mark.parametrize(
    "change",
    [
        lambda a: {"user_weight": np.full_like(a["user_weight"], 1.5)},
        lambda a: {"perf_head.0.weight": np.full_like(a["perf_head.0.weight"], np.nan)},
        lambda a: {"dec_llm": a["dec_llm"] + 100},
        lambda a: {"query_task": a["query_task"][:-1]},
        lambda a: {"h_l": a["h_l"][:, :-1]},
        lambda a: {"user_query_rows": a["user_query_rows"] - 1000},
        lambda a: {"task_cost_range": a["task_cost_range"][:, ::-1] * np.array([1.0, -1.0])},
        lambda a: {"residual_scale": 2.0},
        lambda a: {"neighbours": 0},
        lambda a: {"query_text": ["only one"]},
        lambda a: {"format": 99},
    ],
)
def test_out_of_range_snapshots_are_refused(trained, tmp_path, change):
    _, snap = snapshot_of(trained, tmp_path)
    path, model_dir, _ = trained
    with np.load(snap, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    bad = tmp_path / "bad.npz"
    _rewrite(snap, bad, **change(arrays))
    with pytest.raises(BadSnapshot):
        load_service(bad, model_dir=model_dir, stamp=store_stamp(path), embedder=None)


def test_truncated_or_garbled_snapshots_are_refused(trained, tmp_path):
    _, snap = snapshot_of(trained, tmp_path)
    path, model_dir, _ = trained
    data = snap.read_bytes()
    for i, blob in enumerate([data[: len(data) // 2], b"not a zip", data[:100] + b"x" * 50]):
        bad = tmp_path / f"bad{i}.npz"
        bad.write_bytes(blob)
        with pytest.raises(BadSnapshot):
            load_service(bad, model_dir=model_dir, stamp=store_stamp(path), embedder=None)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, header=np.array([{"format": 1}], dtype=object))
    with pytest.raises(BadSnapshot):  # object arrays are never unpickled
        load_service(pickled, model_dir=model_dir, stamp=store_stamp(path), embedder=None)


def test_embedded_store_file_only_for_ladybug():
    assert embedded_store_file("ladybug:/x/g.lbug") == Path("/x/g.lbug")
    assert embedded_store_file("data/g.lbug") == Path("data/g.lbug")
    assert embedded_store_file("neo4j://localhost:7687") is None
    assert embedded_store_file("bolt://h/x.lbug") is None


# -- the CLI ----------------------------------------------------------------------------
def route_args(path: Path, model_dir: Path, cache: Path, *args: str) -> list[str]:
    store = ["--store", f"ladybug:{path}"]
    return [*store, "route", "--model-dir", str(model_dir), "--cache", str(cache), "-v", *args]


def cli_route(path: Path, model_dir: Path, cache: Path, *args: str) -> tuple[dict, str]:
    result = CliRunner().invoke(cli, route_args(path, model_dir, cache, "--json", *args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), result.stderr


@pytest.fixture
def copied(trained, tmp_path):
    """A private copy of the trained store and its models (the CLI writes snapshots)."""
    import shutil

    path, model_dir, cache = trained
    shutil.copy(path, tmp_path / "g.lbug")
    shutil.copytree(model_dir, tmp_path / "models")
    shutil.copy(cache, tmp_path / "cache.sqlite")
    return tmp_path / "g.lbug", tmp_path / "models", tmp_path / "cache.sqlite"


def test_cli_writes_a_snapshot_then_routes_light_with_the_same_answers(copied):
    path, model_dir, cache = copied
    for user, text, task in CASES:
        extra = ["--user", user, *(["--task", task] if task else []), text]
        full, note = cli_route(path, model_dir, cache, *extra)
        assert "full path" in note or "light path" in note
        light, note = cli_route(path, model_dir, cache, *extra)
        assert "light path" in note
        assert_same(light, full)
    # The model asked for by version, when it is the snapshot's, is served light too.
    named = ("--model", light["model_version"], "--user", "user-0001", TEXT)
    assert "light path" in cli_route(path, model_dir, cache, *named)[1]


def test_cli_light_path_imports_no_torch(copied):
    path, model_dir, cache = copied
    CliRunner().invoke(cli, route_args(path, model_dir, cache, "--user", "user-0001", TEXT))
    code = (
        "import sys, json\n"
        "from prouter.cli import cli\n"
        "try:\n"
        f"    cli.main({route_args(path, model_dir, cache, '--user', 'user-0001', 'hi there')!r},"
        " prog_name='prouter')\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ | {"OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr
    assert "light path" in done.stderr
    assert "user-0001" in done.stdout
    assert json.loads(done.stderr.strip().splitlines()[-1]) == []


def test_a_write_to_the_store_sends_the_next_route_down_the_full_path(copied):
    path, model_dir, cache = copied
    args = ("--user", "late-user", "--task", "code", TEXT)
    before, _ = cli_route(path, model_dir, cache, *args)
    assert not before["explanation"]["known_user"]
    assert "light path" in cli_route(path, model_dir, cache, *args)[1]
    # The new user decides on a query: a write to the store (the file is replaced).
    tables = generate(n_queries=120, n_users=4, n_llms=4, users_per_query=2, seed=1).tables()
    late = {
        name: tables[name].slice(0, 1).set_column(0, "src", pa.array(["late-user"]))
        for name in ("ASKED", "CHOSE")
    }
    with open_store(f"ladybug:{path}") as store:
        write_tables(store, {"User": pa.table({"id": ["late-user"]}), **late})
    after, note = cli_route(path, model_dir, cache, *args)
    assert "store changed" in note and "full path" in note
    assert after["explanation"]["known_user"]  # the write is seen
    expected = full_service(path, model_dir, cache).route("late-user", TEXT, "code")
    assert_same(after, expected.to_dict())
    again, note = cli_route(path, model_dir, cache, *args)  # the snapshot was rewritten
    assert "light path" in note
    assert_same(again, after)


def test_corrupt_snapshot_falls_back_to_the_full_path(copied):
    path, model_dir, cache = copied
    args = ("--user", "user-0001", TEXT)
    first, _ = cli_route(path, model_dir, cache, *args)
    snap = snapshot_path(model_dir, path)
    snap.write_bytes(snap.read_bytes()[:-200])
    again, note = cli_route(path, model_dir, cache, *args)
    assert "full path" in note and "unreadable" in note
    assert_same(again, first)
    assert "light path" in cli_route(path, model_dir, cache, *args)[1]  # rewritten


def test_other_embedding_models_and_devices_take_the_full_path(copied, tmp_path):
    path, model_dir, cache = copied
    cli_route(path, model_dir, cache, "--user", "user-0001", TEXT)  # writes the snapshot
    folder = tmp_path / "other-model"
    folder.mkdir()
    result = CliRunner().invoke(
        cli,
        route_args(path, model_dir, cache, "--embedding-model", str(folder), "--user", "u", "hi"),
    )
    assert "not the bundled embedding model" in result.stderr
    _, note = cli_route(path, model_dir, cache, "--device", "auto", "--user", "user-0001", TEXT)
    assert "full path" in note


def test_a_removed_checkpoint_is_not_served_from_the_snapshot(copied):
    path, model_dir, cache = copied
    first, _ = cli_route(path, model_dir, cache, "--user", "user-0001", TEXT)
    checkpoint = model_dir / f"{first['model_version']}.pt"
    checkpoint.rename(model_dir / "moved.bin")
    result = CliRunner().invoke(cli, route_args(path, model_dir, cache, "--user", "u", TEXT))
    assert "changed or is gone" in result.stderr  # the light path refused ...
    assert result.exit_code == 1  # ... and the full one says what is missing
    assert first["model_version"] in result.stderr


def test_cli_batch_mode_routes_light_with_the_same_answers(copied, tmp_path):
    path, model_dir, cache = copied
    src = tmp_path / "queries.jsonl"
    src.write_text(
        "".join(json.dumps({"user": u, "query": q, "task": t}) + "\n" for u, q, t in CASES)
    )
    outputs = []
    for _ in range(2):  # full (writes the snapshot), then light
        result = CliRunner().invoke(cli, route_args(path, model_dir, cache, "--input", str(src)))
        assert result.exit_code == 0, result.output
        outputs.append(([json.loads(line) for line in result.stdout.splitlines()], result.stderr))
    (full, full_note), (light, light_note) = outputs
    assert "full path" in full_note and "light path" in light_note
    assert [r["line"] for r in light] == [1, 2, 3, 4]
    for a, b in zip(light, full, strict=True):
        assert_same(a, b)


def test_train_writes_the_snapshot_so_the_first_route_is_light(copied):
    path, model_dir, cache = copied
    store = ["--store", f"ladybug:{path}"]
    trained = CliRunner().invoke(
        cli, [*store, "train", "--epochs", "5", "--hidden", "8", "--model-dir", str(model_dir)]
    )
    assert trained.exit_code == 0, trained.output
    assert f"route snapshot written to {snapshot_path(model_dir, path)}" in trained.output
    version = trained.output.split("model ", 1)[1].split()[0]
    light, note = cli_route(path, model_dir, cache, "--user", "user-0001", TEXT)
    assert "light path" in note and light["model_version"] == version
    expected = full_service(path, model_dir, cache).route("user-0001", TEXT)
    assert_same(light, expected.to_dict())


def test_store_stamp_is_none_while_a_recovery_is_pending(tmp_path):
    store = tmp_path / "g.lbug"
    assert store_stamp(store) is None  # no file
    store.write_bytes(b"x")
    stamp = store_stamp(store)
    assert stamp is not None and stamp[1] == 1
    (tmp_path / "g.lbug.wal").write_bytes(b"")  # a read-only open may replay it
    assert store_stamp(store) is None


@pytest.mark.neo4j
def test_a_neo4j_store_takes_the_full_path(neo4j_server, trained, tmp_path):
    """The light path needs a store file to stamp: Neo4j is routed in full, as before."""
    url, user, password = (neo4j_server[k] for k in ("uri", "username", "password"))
    cache = trained[2]
    with open_store(url, username=user, password=password) as store:
        store.clear()
        with Embedder(cache_path=cache) as embedder:
            write_workload(store, dim=None)
            embed_graph(store, embedder, progress=False)
        train_and_record(store, seed=0, model_dir=tmp_path / "models", config=TRAIN)
    args = ["--store", url, "--neo4j-user", user, "--neo4j-password", password, "route"]
    args += ["--model-dir", str(tmp_path / "models"), "--cache", str(cache), "-v", "--json"]
    for _ in range(2):
        result = CliRunner().invoke(cli, [*args, "--user", "user-0001", TEXT])
        assert result.exit_code == 0, result.output
        assert "full path: not an embedded store" in result.stderr
    assert not (tmp_path / "models" / "route-snapshots").exists()
    assert json.loads(result.stdout)["explanation"]["known_user"]


def test_snapshot_target_says_why_a_store_has_no_light_path(tmp_path):
    from gnn.light.refresh import NoLightPath, snapshot_target

    store = tmp_path / "g.lbug"
    bundled = {"embedding_model": "all-MiniLM-L6-v2"}
    cases = {
        "not an embedded store": ("neo4j://127.0.0.1:7687", bundled),
        "runs on the CPU": (f"ladybug:{store}", bundled | {"device": "cuda"}),
        "not the bundled embedding model": (f"ladybug:{store}", {"embedding_model": "hashing"}),
    }
    for why, (url, options) in cases.items():
        with pytest.raises(NoLightPath, match=why):
            snapshot_target(url, tmp_path / "models", **options)
    alias = {"embedding_model": "sentence-transformers/all-MiniLM-L6-v2"}
    target = snapshot_target(f"ladybug:{store}", tmp_path / "models", **alias)
    assert target.path == snapshot_path(tmp_path / "models", store)
    assert target.stamp is None  # no store file yet: nothing can claim to be its snapshot
    with pytest.raises(StaleSnapshot, match="cannot be stamped"):
        target.write(object(), latest=True)
    store.write_bytes(b"x")
    assert snapshot_target(f"ladybug:{store}", tmp_path / "models", **bundled).stamp == store_stamp(
        store
    )
