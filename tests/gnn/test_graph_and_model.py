"""The HeteroData graph hides what must be predicted; the model's shapes and masking."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gnn.graph import (
    ANSWERED_BY,
    CHOSE,
    SIMILAR,
    OutcomeNeighbourhood,
    build_graph,
    knn_train_neighbours,
    neighbour_outcomes,
)
from gnn.model import PersonalizedRouterGNN


def test_graph_holds_only_training_outcomes_and_decisions(routing_data, routing_split):
    g = build_graph(routing_data, routing_split, k=5)
    train = routing_split.train
    q, _ = g[ANSWERED_BY].edge_index.numpy()
    assert train[q].all()
    assert len(q) == int((~np.isnan(routing_data.performance[train])).sum())
    assert train[g[CHOSE].query.numpy()].all()
    assert g[CHOSE].edge_index.size(1) == int(train[routing_data.dec_query].sum())
    src, dst = g[SIMILAR].edge_index.numpy()
    assert train[src].all() and (src != dst).all()
    assert np.bincount(dst, minlength=len(train)).tolist() == [5] * len(train)
    assert g["llm", "rev_answered_by", "query"].edge_index.equal(g[ANSWERED_BY].edge_index.flip(0))
    assert not hasattr(g["llm", "rev_answered_by", "query"], "edge_attr")


@pytest.mark.parametrize("mode", ["exact", "approx"])
def test_the_graph_searches_the_training_queries_once(routing_data, routing_split, mode):
    """The SIMILAR edges and the neighbours' outcome messages search the same k nearest
    training queries when every training query has every outcome: one search, not two
    (the 1M-query export spent about a third of its time on the second), with the
    messages of a search of their own."""
    from gnn.neighbours import NeighbourIndex, using

    searched = []
    original = NeighbourIndex.search

    def counting(self, queries, k, **kw):
        searched.append(len(queries))
        return original(self, queries, k, **kw)

    train = routing_split.train
    assert not np.isnan(routing_data.performance[train]).any()
    with using(mode), pytest.MonkeyPatch.context() as patch:
        patch.setattr(NeighbourIndex, "search", counting)
        g = build_graph(routing_data, routing_split, k=5)
        assert searched == [len(train)]
        ref_perf = np.where(train[:, None], routing_data.performance, np.nan)
        cost = np.nan_to_num(routing_data.cost_norm(train), nan=0.0)
        ref_cost = np.where(train[:, None], cost, np.nan)
        emb = routing_data.query_emb
        alone = neighbour_outcomes(emb, emb, ref_perf, ref_cost, k=5, same=np.arange(len(train)))
    np.testing.assert_allclose(g["query"].neighbour_outcomes.numpy(), alone, rtol=1e-6)


def test_knn_picks_the_most_similar_training_queries():
    emb = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    train = np.array([True, True, True, False])
    src, dst, w = knn_train_neighbours(emb, train, k=1)
    assert dict(zip(dst.tolist(), src.tolist(), strict=True)) == {0: 1, 1: 0, 2: 1, 3: 2}
    assert w[3] > 0.9


def test_neighbour_outcomes_per_llm_use_only_the_queries_it_answered():
    emb = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    perf = np.array([[1.0, 0.0], [0.0, np.nan], [1.0, 1.0], [np.nan, np.nan]])
    cost = np.array([[0.1, 0.2], [0.3, np.nan], [0.5, 0.6], [np.nan, np.nan]])
    nb = neighbour_outcomes(emb, emb, perf, cost, k=1, same=np.arange(4))
    # Query 0: LLM 0's nearest answered query is 1 (itself excluded); LLM 1 only has 2.
    np.testing.assert_allclose(nb[0, :, :2], [[0.0, 0.3], [1.0, 0.6]])
    # Query 3 has no outcome itself but hears query 2 for both LLMs.
    np.testing.assert_allclose(nb[3, :, :2], [[1.0, 0.5], [1.0, 0.6]])
    assert nb[3, 0, 2] == pytest.approx(0.9 / np.hypot(0.1, 0.9), rel=1e-5)
    # An LLM with no reference outcome gets all-zero messages.
    none = neighbour_outcomes(emb, emb, np.full((4, 1), np.nan), np.full((4, 1), np.nan), k=3)
    assert not none.any()


def toy_model(**kw) -> PersonalizedRouterGNN:
    torch.manual_seed(0)
    return PersonalizedRouterGNN(query_dim=8, llm_dim=6, num_llms=3, num_tasks=2, hidden=16, **kw)


def test_model_shapes_and_repr():
    model = toy_model()
    assert repr(model) == "PersonalizedRouterGNN(8, 6, llms=3, hidden=16, personalized=True)"
    x, task, neigh = torch.randn(4, 8), torch.tensor([0, 1, 0, 1]), torch.rand(4, 3, 3)
    h_q = model.encode_queries(x, task)
    h_l = model.encode_llms(torch.randn(3, 6))
    perf, cost = model.outcomes(h_q, h_l, neigh, torch.rand(4, 3, 3))
    assert h_q.shape == (4, 16) and h_l.shape == (3, 16) and perf.shape == cost.shape == (4, 3)
    users, queries, llms = (
        torch.tensor([0, 0, 1, 2]),
        torch.tensor([0, 1, 2, 3]),
        torch.tensor([2, 2, 0, 1]),
    )
    candidates = torch.ones(4, 3, dtype=torch.bool)
    rewards = torch.tensor([0.5, float("nan"), -0.1, 1.0])
    msgs = model.decision_messages(h_q, h_l, perf, cost, candidates, queries, llms, rewards)
    total, count = model.user_states(msgs, users, num_users=3)
    assert (
        msgs.shape == (4, 16) and total.shape == (3, 16) and count.squeeze(1).tolist() == [2, 1, 1]
    )
    scores = model.utility((total / count)[users], torch.sigmoid(perf), cost)
    assert scores.shape == (4, 3)


def test_users_change_scores_only_when_personalized():
    x, task, neigh = torch.randn(2, 8), torch.tensor([0, 1]), torch.rand(2, 3, 3)
    for personalized in (True, False):
        model = toy_model(personalized=personalized).eval()
        h_q = model.encode_queries(x, task)
        h_l = model.encode_llms(torch.randn(3, 6))
        perf, cost = model.outcomes(h_q, h_l, neigh, torch.rand(2, 3, 3))
        a = model.utility(torch.zeros(2, 16), torch.sigmoid(perf), cost)
        b = model.utility(torch.randn(2, 16), torch.sigmoid(perf), cost)
        assert torch.allclose(a, b) is (not personalized)
    # A weight measured from logged rewards replaces the learned one; NaN keeps it.
    weight = torch.tensor([[0.25], [float("nan")]])
    c = model.utility(torch.randn(2, 16), torch.sigmoid(perf), cost, weight)
    torch.testing.assert_close(c[0], 0.25 * torch.sigmoid(perf[0]) - 0.75 * cost[0])
    torch.testing.assert_close(c[1], a[1])


def test_a_kept_neighbourhood_gives_the_one_off_messages():
    rng = np.random.default_rng(0)
    ref, queries = rng.normal(size=(60, 8)), rng.normal(size=(7, 8))
    perf = np.where(rng.random((60, 3)) < 0.3, np.nan, rng.random((60, 3)))
    cost = rng.random((60, 3))
    kept = OutcomeNeighbourhood(ref, perf, cost)
    for _ in range(2):  # the same answer on every lookup
        np.testing.assert_array_equal(
            kept.messages(queries, k=4), neighbour_outcomes(queries, ref, perf, cost, k=4)
        )


def test_route_time_lookups_keep_the_index_until_the_outcomes_change(routing_data, routing_split):
    from gnn.features import RouterFeatures

    f = RouterFeatures(
        routing_data, routing_split, device=torch.device("cpu"), neighbours=5, personalized=True
    )
    new = routing_data.query_emb[:3] + 0.01
    first = f.neighbours(new)
    kept = f._standing
    assert kept is not None
    np.testing.assert_array_equal(f.neighbours(new).numpy(), first.numpy())
    assert f._standing is kept
    test = np.flatnonzero(routing_split.test)
    f.add_outcomes(routing_data, test, 0)  # more reference outcomes for LLM 0
    assert f._standing is not kept
    expected = neighbour_outcomes(new, f.query_emb, f.ref_perf, f.ref_cost, k=5)
    np.testing.assert_array_equal(f.neighbours(new).numpy(), expected)
