"""Preference-only graphs (PREFERRED votes, no ANSWERED_BY): load, train, evaluate, route."""

from __future__ import annotations

import json
import re

import numpy as np
from click.testing import CliRunner
from preference_support import LLMS, embed_stand_in, ingest_mtbench, write_mtbench

from gnn.data import load_routing_data, split_queries
from gnn.evaluate import pairwise_accuracy
from gnn.serving import RoutingService
from gnn.train import GNNRouter
from graphdb.store import open_store
from prouter.cli import cli

FAST = {"epochs": 60, "patience": 30, "hidden": 16}


def test_preference_only_graph_trains_and_routes(store, tmp_path):
    """Once a crash: `array_take` on a null index array when no query had outcomes."""
    votes = ingest_mtbench(store, tmp_path)
    ties = sum('"tie"' in line for line in votes.read_text().splitlines())
    data = load_routing_data(store)
    assert len(data.query_ids) == 80 and sorted(data.llm_ids) == sorted(LLMS)
    assert np.isnan(data.performance).all() and np.isnan(data.cost).all()
    assert len(data.dec_user) == 0
    assert len(data.pref_user) + len(data.tie_query) == 80 * 4 and len(data.tie_query) == ties
    split = split_queries(data, seed=0)
    router = GNNRouter(seed=0, **FAST).fit(data, split)
    accuracy, n, n_ties = pairwise_accuracy(router, data, split.test)
    assert n == int(split.test[data.pref_query].sum()) > 0
    assert n_ties == int(split.test[data.tie_query].sum())
    assert accuracy > 0.7, accuracy  # strong > middle > weak is learnable from votes alone
    test = np.flatnonzero(split.test)
    picks = router.route(data, np.zeros(len(test), dtype=np.int64), test)
    assert (np.asarray(data.llm_ids)[picks] == "strong").mean() > 0.8


class _Embedder:
    """Graph texts get their stand-in embedding; a math query another math direction."""

    def __init__(self, dim: int = 8) -> None:
        self.dim = dim

    def embed(self, texts, progress=True):  # type: ignore[no-untyped-def]
        return np.array([[1.0 if "math" in t else -1.0] + [0.0] * (self.dim - 1) for t in texts])


def test_cli_evaluates_trains_and_routes_a_preference_only_graph(tmp_path):
    url = f"ladybug:{tmp_path / 'g.lbug'}"
    questions, votes = write_mtbench(tmp_path, judges=6)
    runner = CliRunner()
    ingested = runner.invoke(
        cli, ["--store", url, "ingest", "preferences", str(votes), "--questions", str(questions)]
    )
    assert ingested.exit_code == 0, ingested.output
    with open_store(url) as store:
        embed_stand_in(store)
    args = ["--store", url, "evaluate", "--seeds", "0,1,2", "--epochs", "20", "--shots", "0,3"]
    table = runner.invoke(cli, [*args, "--routers", "bt,bt_user,gnn"])
    assert table.exit_code == 0, table.output
    assert "no outcomes (ANSWERED_BY)" in table.output and "new users" in table.output
    assert re.search(r"^bt_user +0\.\d{4}±0\.\d{4} +0\.\d{4}±", table.output, re.MULTILINE)
    out = json.loads(runner.invoke(cli, [*args, "--routers", "bt,gnn", "--json"]).stdout)
    by_query = out["pairwise"]["by_query"]
    assert set(by_query) == {"bt", "gnn"} and len(by_query["gnn"]) == 3
    assert all(0.5 < run["accuracy"] <= 1 and run["log_loss"] > 0 for run in by_query["bt"])
    assert set(out["pairwise"]["new_user"]["gnn"]) == {"0", "3"}
    model_dir = tmp_path / "models"
    trained = runner.invoke(
        cli, ["--store", url, "train", "--epochs", "40", "--model-dir", str(model_dir)]
    )
    assert trained.exit_code == 0, trained.output
    with open_store(url) as store:
        metrics = store.export_nodes("RouterModel").column("metrics").to_pylist()[0]
        assert "NaN" not in metrics and json.loads(metrics)["test"]["n"] == 0
        service = RoutingService(store, _Embedder(), model_dir=model_dir)
        known = service.route("judge0", "a math question", "math")
        new = service.route("somebody-new", "a writing question", "writing")
    assert known.ranking[0].llm_id == "strong" and new.ranking[0].llm_id == "strong"
    assert known.ranking[0].cost is None  # no outcome costs to learn USD from: unknown
