"""Pairwise judgements: loaded with ties apart, learned from, and scored on held-out queries."""

from __future__ import annotations

import numpy as np
import pytest

from gnn.data import load_routing_data, split_queries
from gnn.evaluate import evaluate, pairwise_accuracy
from gnn.train import GNNRouter, NonPersonalizedGNNRouter
from graphdb.ingest import write_tables
from graphdb.store import open_store
from graphdb.tables import embedding_array
from workloads.simulate import load_outcomes, simulate_preferences
from workloads.synthetic import generate

FAST = {"epochs": 80, "patience": 30, "hidden": 32}


@pytest.fixture(scope="module")
def preference_data(tmp_path_factory):
    """A synthetic workload whose 9 users only judge pairs (no CHOSE edges)."""
    workload = generate(n_queries=300, n_users=9, n_llms=5, users_per_query=9, seed=2)
    tables = workload.tables(embedding_dim=16)
    tables["LLM"] = tables["LLM"].append_column(
        "embedding", embedding_array(np.random.default_rng(2).normal(size=(5, 16)))
    )
    for name in ("User", "ASKED", "CHOSE"):
        tables.pop(name, None)
    url = f"ladybug:{tmp_path_factory.mktemp('pref') / 'g.lbug'}"
    with open_store(url) as store:
        write_tables(store, tables)
        judged = simulate_preferences(load_outcomes(store), n_users=9, pairs_per_query=4, seed=0)
        write_tables(store, judged)
        # A duplicate judgement (same pair again) must not count twice.
        write_tables(store, {"PREFERRED": judged["PREFERRED"].slice(0, 1)})
        data = load_routing_data(store)
    return data, judged["PREFERRED"]


def test_preferences_load_with_ties_apart(preference_data):
    data, judged = preference_data
    ties = sum(judged.column("tie").to_pylist())
    assert len(data.dec_user) == 0
    assert len(data.pref_user) == judged.num_rows - ties
    assert len(data.tie_query) == ties > 0
    assert (data.pref_win != data.pref_lose).all()


@pytest.fixture(scope="module")
def fitted(preference_data):
    data, _ = preference_data
    split = split_queries(data, seed=0)
    ours = GNNRouter(seed=0, **FAST).fit(data, split)
    flat = NonPersonalizedGNNRouter(seed=0, **FAST).fit(data, split)
    return split, ours, flat


def test_personalized_router_beats_the_same_network_without_users(preference_data, fitted):
    data, _ = preference_data
    split, ours, flat = fitted
    acc, n, ties = pairwise_accuracy(ours, data, split.test)
    flat_acc, _, _ = pairwise_accuracy(flat, data, split.test)
    assert n == int(split.test[data.pref_query].sum()) and ties == int(
        split.test[data.tie_query].sum()
    )
    assert acc > flat_acc + 0.02, (acc, flat_acc)
    metrics = evaluate(ours, data, split, "test")
    assert metrics.n == 0 and np.isnan(metrics.reward)  # no choices, only judgements
    assert metrics.pairwise_accuracy == pytest.approx(acc)


def test_pair_margins_are_choice_probabilities(preference_data, fitted):
    """P(first over second) - 1/2: within (-1/2, 1/2) and the reverse pair's negative."""
    data, _ = preference_data
    split, ours, _ = fitted
    idx = np.flatnonzero(split.test[data.pref_query])
    args = data.pref_user[idx], data.pref_query[idx]
    forward = ours.pair_margin(data, *args, data.pref_win[idx], data.pref_lose[idx])
    backward = ours.pair_margin(data, *args, data.pref_lose[idx], data.pref_win[idx])
    assert (np.abs(forward) < 0.5).all() and forward.std() > 0.01
    np.testing.assert_allclose(forward, -backward, atol=1e-5)
