"""The GNN router: learns, is reproducible, never reads test labels, onboards users."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gnn.evaluate import evaluate
from gnn.train import GNNRouter, NonPersonalizedGNNRouter

FAST = {"epochs": 60, "patience": 20, "hidden": 32}


@pytest.fixture(scope="module")
def gnn(routing_data, routing_split):
    return GNNRouter(seed=0, **FAST).fit(routing_data, routing_split)


def test_learns_better_than_chance_and_selects_on_validation(gnn, routing_data, routing_split):
    from gnn.routers.baselines import RandomRouter

    rand = RandomRouter(seed=0).fit(routing_data, routing_split)
    ours = evaluate(gnn, routing_data, routing_split, "test")
    assert ours.reward > evaluate(rand, routing_data, routing_split, "test").reward + 0.05
    # The restored checkpoint is the epoch with the lowest validation loss.
    best = min(gnn.history, key=lambda h: h["val_loss"])
    assert gnn.best_epoch == best["epoch"]
    assert evaluate(gnn, routing_data, routing_split, "val").accuracy == pytest.approx(
        best["val_accuracy"]
    )


def test_same_seed_same_model(gnn, routing_data, routing_split):
    again = GNNRouter(seed=0, **FAST).fit(routing_data, routing_split)
    users, queries = routing_data.dec_user[:50], routing_data.dec_query[:50]
    np.testing.assert_allclose(
        gnn.score(routing_data, users, queries),
        again.score(routing_data, users, queries),
        rtol=1e-5,
        atol=1e-6,
    )


def test_test_labels_and_outcomes_never_reach_training(gnn, routing_data, routing_split):
    test_dec = routing_split.test[routing_data.dec_query]
    rng = np.random.default_rng(1)
    corrupted = dataclasses.replace(
        routing_data,
        dec_llm=np.where(
            test_dec, rng.integers(0, routing_data.num_llms, len(test_dec)), routing_data.dec_llm
        ),
        performance=np.where(
            routing_split.test[:, None],
            rng.random(routing_data.performance.shape),
            routing_data.performance,
        ),
        cost=np.where(
            routing_split.test[:, None], routing_data.cost * rng.random(), routing_data.cost
        ),
    )
    other = GNNRouter(seed=0, **FAST).fit(corrupted, routing_split)
    idx = np.flatnonzero(test_dec)[:100]
    users, queries = routing_data.dec_user[idx], routing_data.dec_query[idx]
    np.testing.assert_allclose(
        gnn.score(routing_data, users, queries),
        other.score(corrupted, users, queries),
        rtol=1e-4,
        atol=1e-5,
    )


def test_onboarding_changes_only_that_users_scores(gnn, routing_data, routing_split):
    router = GNNRouter(seed=0, **FAST).fit(routing_data, routing_split)
    before = router.score(routing_data, np.array([0, 1]), np.array([0, 0]))
    val = np.flatnonzero(routing_split.val[routing_data.dec_query] & (routing_data.dec_user == 0))[
        :3
    ]
    router.onboard(
        routing_data.dec_user[val], routing_data.dec_query[val], routing_data.dec_llm[val]
    )
    after = router.score(routing_data, np.array([0, 1]), np.array([0, 0]))
    assert not np.allclose(before[0], after[0]) and np.allclose(before[1], after[1])


def test_non_personalized_router_gives_every_user_the_same_scores(routing_data, routing_split):
    router = NonPersonalizedGNNRouter(seed=0, **FAST).fit(routing_data, routing_split)
    scores = router.score(
        routing_data,
        np.arange(len(routing_data.user_ids)),
        np.zeros(len(routing_data.user_ids), dtype=int),
    )
    assert np.allclose(scores, scores[0])
