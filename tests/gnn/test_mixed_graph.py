"""Mixed graphs: some queries with outcomes and choices, others with votes only."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from gnn.data import load_routing_data, split_queries
from gnn.evaluate import pairwise_accuracy
from gnn.preference.base import votes_of
from gnn.preference.protocol import compare_on_preferences
from gnn.train import GNNRouter
from graphdb.ingest import write_tables
from graphdb.store import open_store
from graphdb.tables import embedding_array
from workloads.simulate import load_outcomes, simulate_preferences
from workloads.synthetic import generate

FAST = {"epochs": 60, "patience": 30, "hidden": 16}


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """300 queries: the even ones with outcomes and choices, the odd ones only votes."""
    workload = generate(n_queries=300, n_users=6, n_llms=4, users_per_query=6, seed=3)
    tables = workload.tables(embedding_dim=16)
    tables["LLM"] = tables["LLM"].append_column(
        "embedding", embedding_array(np.random.default_rng(3).normal(size=(4, 16)))
    )
    full = f"ladybug:{tmp_path_factory.mktemp('full') / 'g.lbug'}"
    with open_store(full) as store:
        write_tables(store, tables)
        votes = simulate_preferences(load_outcomes(store), n_users=6, pairs_per_query=3, seed=0)
    ids = tables["Query"].column("id").to_pylist()
    votes_only = pa.array(ids[1::2])

    def on(table: pa.Table, column: str, inside: bool) -> pa.Table:
        hit = pc.is_in(table.column(column), value_set=votes_only)
        return table.filter(hit if inside else pc.invert(hit))

    tables["ANSWERED_BY"] = on(tables["ANSWERED_BY"], "src", False)
    tables["CHOSE"] = on(tables["CHOSE"], "query_id", False)
    url = f"ladybug:{tmp_path_factory.mktemp('mixed') / 'g.lbug'}"
    with open_store(url) as store:
        write_tables(store, tables)
        write_tables(
            store, {"User": votes["User"], "PREFERRED": on(votes["PREFERRED"], "query_id", True)}
        )
        data = load_routing_data(store)
    return data, set(ids[1::2])


def test_a_mixed_graph_loads_both_signals(mixed):
    data, votes_only = mixed
    only = np.array([q in votes_only for q in data.query_ids])
    assert len(data.query_ids) == 300 and only.sum() == 150
    assert np.isnan(data.performance[only]).all() and not np.isnan(data.performance[~only]).any()
    assert only[data.pref_query].all() and not only[data.dec_query].any()
    assert data.candidates()[only].all()
    # A choice is read as the chosen LLM beating each other candidate of its query.
    v = votes_of(data, ~only)
    assert len(v) == 3 * len(data.dec_user) and (v.win != v.lose).all()


def test_the_gnn_learns_from_outcomes_choices_and_votes(mixed):
    data, _ = mixed
    split = split_queries(data, seed=0)
    router = GNNRouter(seed=0, **FAST).fit(data, split)
    accuracy, n, _ = pairwise_accuracy(router, data, split.test)
    assert n > 50 and accuracy > 0.6, accuracy
    result = compare_on_preferences(data, ["bt", "bt_user"], seeds=[0], shots=[0, 3])
    assert set(result.by_user["bt_user"]) == {0, 3}
    assert result.by_query["bt"][0].n > 0 and 0.5 < result.by_query["bt"][0].accuracy <= 1
