"""Preference-only graphs (PREFERRED votes, no ANSWERED_BY): load, train, evaluate, route."""

from __future__ import annotations

import numpy as np
from preference_support import LLMS, ingest_mtbench

from gnn.data import load_routing_data, split_queries
from gnn.evaluate import pairwise_accuracy
from gnn.train import GNNRouter

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
