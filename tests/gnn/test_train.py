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
    scale, gnn.inference.residual_scale = gnn.inference.residual_scale, 1.0  # as in training
    try:
        accuracy = evaluate(gnn, routing_data, routing_split, "val").accuracy
    finally:
        gnn.inference.residual_scale = scale
    assert accuracy == pytest.approx(best["val_accuracy"])


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
        dec_reward=np.where(test_dec, rng.random(len(test_dec)), routing_data.dec_reward),
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
    """User 0 logs three more decisions with the rewards of a user who cares only about
    quality (its weight is measured from its logged rewards: decisions that agree with
    the weight it has change nothing)."""
    router = GNNRouter(seed=0, **FAST).fit(routing_data, routing_split)
    before = router.score(routing_data, np.array([0, 1]), np.array([0, 0]))
    val = np.flatnonzero(routing_split.val[routing_data.dec_query] & (routing_data.dec_user == 0))[
        :3
    ]
    router.onboard(
        routing_data.dec_user[val],
        routing_data.dec_query[val],
        routing_data.dec_llm[val],
        routing_data.performance[routing_data.dec_query[val], routing_data.dec_llm[val]],
    )
    after = router.score(routing_data, np.array([0, 1]), np.array([0, 0]))
    assert not np.allclose(before[0], after[0]) and np.allclose(before[1], after[1])


def _ranks(x: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(x)).astype(float)


def test_learned_preferences_follow_the_users_weights(gnn, routing_data):
    """The logged rewards teach each user's quality-vs-cost weight: the learned a_u
    rank the synthetic users as their true alphas do."""
    assert np.isfinite(routing_data.dec_reward).all()
    learned = gnn.preferences()
    assert learned.shape == (len(routing_data.user_ids),)
    rank_corr = np.corrcoef(_ranks(learned), _ranks(routing_data.user_alpha))[0, 1]
    assert rank_corr > 0.8


def test_rewards_tell_apart_users_whose_choices_are_the_same(routing_data, routing_split):
    """A copy of user 0 with the same choices but lower logged rewards (as a weight-0.6
    user would log for the same outcomes, where user 0 logged a weight of 0.9) ends up
    with a lower preference for quality."""
    cost = np.nan_to_num(routing_data.cost_norm(), nan=0.0)
    perf = np.nan_to_num(routing_data.performance, nan=0.0)

    def logged(alpha: float, idx: np.ndarray) -> np.ndarray:
        q, m = routing_data.dec_query[idx], routing_data.dec_llm[idx]
        return alpha * perf[q, m] - (1 - alpha) * cost[q, m]

    mine = np.flatnonzero(routing_data.dec_user == 0)
    twin = len(routing_data.user_ids)
    rewards = routing_data.dec_reward.copy()
    rewards[mine] = logged(0.9, mine)
    data = dataclasses.replace(
        routing_data,
        user_ids=[*routing_data.user_ids, "twin"],
        user_alpha=np.append(routing_data.user_alpha, np.nan),
        dec_user=np.concatenate([routing_data.dec_user, np.full(len(mine), twin)]),
        dec_query=np.concatenate([routing_data.dec_query, routing_data.dec_query[mine]]),
        dec_llm=np.concatenate([routing_data.dec_llm, routing_data.dec_llm[mine]]),
        dec_reward=np.concatenate([rewards, logged(0.6, mine)]),
    )
    a = GNNRouter(seed=0, **FAST).fit(data, routing_split).preferences()
    assert a[0] > a[twin] + 0.05


def test_non_personalized_router_gives_every_user_the_same_scores(routing_data, routing_split):
    router = NonPersonalizedGNNRouter(seed=0, **FAST).fit(routing_data, routing_split)
    scores = router.score(
        routing_data,
        np.arange(len(routing_data.user_ids)),
        np.zeros(len(routing_data.user_ids), dtype=int),
    )
    assert np.allclose(scores, scores[0])


def test_a_checkpoint_of_an_older_model_is_refused_clearly(gnn, routing_data):
    import torch

    from prcore.errors import ProuterError

    state = gnn.state()
    state["state_dict"] = dict(state["state_dict"]) | {"cost_scale": torch.zeros(1)}
    with pytest.raises(ProuterError, match="retrain it with `prouter train`"):
        GNNRouter.from_state(state, routing_data, device="cpu")


def test_users_weights_are_measured_from_their_logged_rewards(gnn, routing_data):
    """A simulated user's logged rewards fix its weight: a = (r + C) / (P + C) (up to the
    costs being normalised with the training queries' ranges)."""
    np.testing.assert_allclose(gnn.preferences(), routing_data.user_alpha, atol=0.03)


def test_users_without_decisions_take_the_population_weight(gnn, routing_data):
    """A user without decisions (and an unknown user, row -1) is routed with the mean
    weight measured from the other users' logged rewards, as the shared estimator's prior."""
    keep = routing_data.dec_user != 0
    silent = dataclasses.replace(
        routing_data,
        dec_user=routing_data.dec_user[keep],
        dec_query=routing_data.dec_query[keep],
        dec_llm=routing_data.dec_llm[keep],
        dec_reward=routing_data.dec_reward[keep],
    )
    router = GNNRouter.from_state(gnn.state(), silent, device="cpu")
    weights = router.preferences()
    np.testing.assert_allclose(weights[0], weights[1:].mean(), atol=1e-6)
    assert router.prior_preference() == pytest.approx(weights[1:].mean(), abs=1e-6)
    assert abs(weights[0] - routing_data.user_alpha[0]) > 0.1  # not user 0's own weight


def test_an_untrained_router_predicts_the_per_task_prior(routing_data, routing_split):
    """The network refines the per-(task, LLM) prior: before training it predicts it."""
    import torch

    from gnn.priors import task_llm_prior

    router = GNNRouter(seed=0, **FAST)
    router._set_cost_rank(routing_data, routing_split)
    router._prepare(routing_data, routing_split)
    router.model.eval()
    with torch.no_grad():
        _, _, perf, cost = router.inference.encode()
    prior, _ = task_llm_prior(
        router.features.ref_perf,
        router.features.ref_cost,
        routing_data.query_task,
        len(routing_data.task_ids),
    )
    np.testing.assert_allclose(
        torch.sigmoid(perf).numpy(), prior[..., 0].clip(0.02, 0.98), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(cost.numpy(), prior[..., 1], rtol=1e-4, atol=1e-5)


def _chosen_outcomes_only(data, split):
    """``data`` as real logs hold it: a training or validation query's outcomes only for
    the LLMs users chose there (the test queries keep theirs, to score any pick)."""
    keep = np.zeros(data.performance.shape, dtype=bool)
    keep[data.dec_query, data.dec_llm] = True
    keep[split.test] = True
    return dataclasses.replace(
        data,
        performance=np.where(keep, data.performance, np.nan),
        cost=np.where(keep, data.cost, np.nan),
    )


def test_choices_reveal_failures_nobody_logged(routing_data, routing_split):
    """With outcomes logged only for the chosen LLMs, a choice of a dearer LLM shows the
    cheaper candidates failed (and a quality-minded user's cheap failure that the dearer
    ones did): those become training targets, and they are failures."""
    sparse = _chosen_outcomes_only(routing_data, routing_split)
    router = GNNRouter(seed=0, **FAST)
    router._set_cost_rank(sparse, routing_split)
    router._prepare(sparse, routing_split)
    queries, llms = np.nonzero(router.features.inferred)
    # 31 here: the candidates' costs are estimated per query (gnn.cost_completion, mean
    # error 0.026), so fewer bounds fall below 1 than with the task-mean costs (which
    # gave 50+); every one inferred is a real failure (checked below).
    assert len(queries) > 20
    assert (router.features.ref_perf[queries, llms] == 0).all()
    assert np.isnan(sparse.performance[queries, llms]).all()  # never a logged outcome
    assert routing_split.train[queries].all()
    assert routing_data.performance[queries, llms].mean() < 0.1


def test_routes_from_chosen_outcomes_only(routing_data, routing_split):
    from gnn.routers.baselines import RandomRouter

    sparse = _chosen_outcomes_only(routing_data, routing_split)
    router = GNNRouter(seed=0, **FAST).fit(sparse, routing_split)
    rand = RandomRouter(seed=0).fit(sparse, routing_split)
    ours = evaluate(router, sparse, routing_split, "test")
    assert np.isfinite(ours.reward)
    assert ours.reward > evaluate(rand, sparse, routing_split, "test").reward + 0.05


def _lookup_reward(data, split) -> float:
    """Test reward of the per-(user, task) lookup: each user's true weight, the LLM with the
    best mean training reward on the task."""
    cost = data.cost_norm(split.train)
    idx = np.flatnonzero(split.test[data.dec_query])
    users, queries = data.dec_user[idx], data.dec_query[idx]
    a = data.user_alpha[:, None]
    picks = np.empty(len(idx), dtype=int)
    for t in range(len(data.task_ids)):
        rows = split.train & (data.query_task == t)
        mean = a * np.nanmean(data.performance[rows], 0) - (1 - a) * np.nanmean(cost[rows], 0)
        mine = data.query_task[queries] == t
        picks[mine] = mean[users[mine]].argmax(1)
    from gnn.evaluate import metrics_for_choices

    return metrics_for_choices(data, idx, picks).reward


def test_query_level_evidence_beats_the_per_task_lookup(routing_data, routing_split):
    """Where the query embedding says which LLMs get a query right, the router beats the
    lookup that knows each user's weight and each (task, LLM)'s mean outcomes."""
    rng = np.random.default_rng(0)
    perf = np.nan_to_num(routing_data.performance, nan=0.5)
    emb = np.concatenate([perf + rng.normal(0, 0.3, perf.shape), routing_data.query_emb], 1)
    data = dataclasses.replace(routing_data, query_emb=emb.astype(np.float32))
    router = GNNRouter(seed=0, **(FAST | {"epochs": 200, "patience": 30})).fit(data, routing_split)
    ours = evaluate(router, data, routing_split, "test").reward
    assert ours > _lookup_reward(data, routing_split) + 0.02
