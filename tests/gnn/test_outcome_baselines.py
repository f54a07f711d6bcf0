"""Predict-then-optimise baselines on a toy whose answers are computed by hand.

3 LLMs (A cheap, B middle, C dear), 3 users with weights 0.2, 0.6 and 1.0
(logged rewards fix them exactly), 2 tasks. Training queries:

    query task  perf A B C   cost A B C   cost_norm (train range of the task)
    q0    0     1 1 1        1 2 4        0 1/3 1
    q1    0     0 1 1        1 2 4        0 1/3 1
    q2    1     0 0 1        2 3 6        0 1/4 1
    q3    1     1 0 1        2 3 6        0 1/4 1

q4 (task 0, perf 1 1 1) is the validation query, q5 (task 0, perf 0 0 1) and q6
(task 1, perf 1 1 1) the test ones.
Training means per task: task 0 perf (1/2, 1, 1), cost (0, 1/3, 1); task 1 perf
(1/2, 0, 1), cost (0, 1/4, 1); over both: perf (1/2, 1/2, 1), cost (0, 7/24, 1).
Expected utilities ``a * perf - (1 - a) * cost``:

* task 0: a=0.2: A 0.1, B -0.067, C -0.6 -> A; a=0.6: A 0.3, B 0.467, C 0.2 -> B;
  a=1: B = C = 1 -> B (cheaper on training queries).
* task 1: a=0.2 -> A (0.1); a=0.6: A 0.3, B -0.1, C 0.2 -> A; a=1 -> C.
* both tasks: a=0.2 -> A; a=0.6: A 0.3, B 0.183, C 0.2 -> A; a=1 -> C.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from gnn.data import RoutingData, Split
from gnn.routers.baselines import (
    BASELINES,
    BestLLMPerUserRouter,
    BestLLMPerUserTaskRouter,
    KNNOutcomesRouter,
    LogisticOutcomesRouter,
    MFOutcomesRouter,
    MLPOutcomesRouter,
)
from prcore.utility import best_llm, utility

A, B, C = 0, 1, 2
ALPHA = np.array([0.2, 0.6, 1.0])
PERF = np.array(
    [[1, 1, 1], [0, 1, 1], [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 0, 1], [1, 1, 1]], dtype=float
)
COST = np.array(
    [[1, 2, 4], [1, 2, 4], [2, 3, 6], [2, 3, 6], [1, 2, 4], [1, 2, 4], [2, 3, 6]], dtype=float
)
TASK = np.array([0, 0, 1, 1, 0, 0, 1])
# Embeddings: the task, plus a coordinate that makes q4 nearest to q0, q5 to q1, q6 to q3
# (and A's training outcomes linearly separable: A succeeded where it is 0).
EMB = np.array(
    [[1, 0, 0.0], [1, 0, 1], [0, 1, 1], [0, 1, 0], [1, 0, 0.1], [1, 0, 1.1], [0, 1, -0.2]],
    dtype=np.float32,
)
SPLIT = Split(
    train=np.array([1, 1, 1, 1, 0, 0, 0], dtype=bool),
    val=np.array([0, 0, 0, 0, 1, 0, 0], dtype=bool),
    test=np.array([0, 0, 0, 0, 0, 1, 1], dtype=bool),
)


def toy(alpha_known: bool = False) -> RoutingData:
    """Every user decides every query (their best under the simulation), logging rewards."""
    data = RoutingData(
        query_ids=[f"q{i}" for i in range(7)],
        query_task=TASK,
        query_split=np.full(7, "", dtype=object),
        query_emb=EMB,
        task_ids=["t0", "t1"],
        llm_ids=["A", "B", "C"],
        llm_emb=np.eye(3, dtype=np.float32),
        llm_price=np.full((3, 2), np.nan),
        performance=PERF.copy(),
        cost=COST.copy(),
        user_ids=["u0", "u1", "u2"],
        user_alpha=ALPHA.copy(),
        dec_user=np.repeat(np.arange(3), 7),
        dec_query=np.tile(np.arange(7), 3),
        dec_llm=np.zeros(21, dtype=np.int64),
    )
    reward = data.reward(data.dec_user, data.dec_query)
    data.dec_llm = best_llm(reward, data.cost[data.dec_query])
    data.dec_reward = reward[np.arange(21), data.dec_llm]
    if not alpha_known:  # the routers must not need the simulation's weights
        data.user_alpha = np.full(3, np.nan)
    return data


USERS = np.array([0, 1, 2])


def picks(router, data: RoutingData, query: int) -> list[int]:
    return router.route(data, USERS, np.full(3, query)).tolist()


def test_weights_come_from_the_logged_rewards():
    router = BestLLMPerUserTaskRouter().fit(toy(), SPLIT)
    np.testing.assert_allclose(router.weights_.weight, ALPHA, atol=1e-12)


def test_best_llm_per_user_task_by_hand():
    data = toy()
    router = BestLLMPerUserTaskRouter().fit(data, SPLIT)
    assert picks(router, data, 5) == [A, B, B]
    assert picks(router, data, 6) == [A, A, C]
    scores = router.score(data, USERS, np.full(3, 5))
    expected = utility(ALPHA[:, None], np.array([0.5, 1, 1]), np.array([0, 1 / 3, 1]))
    np.testing.assert_allclose(scores, expected, atol=1e-12)


def test_best_llm_per_user_by_hand():
    data = toy()
    router = BestLLMPerUserRouter().fit(data, SPLIT)
    assert picks(router, data, 5) == [A, A, C]
    assert picks(router, data, 6) == [A, A, C]
    expected = utility(ALPHA[:, None], np.array([0.5, 0.5, 1]), np.array([0, 7 / 24, 1]))
    np.testing.assert_allclose(router.score(data, USERS, np.full(3, 6)), expected, atol=1e-12)


def test_unobserved_training_outcomes_are_ignored():
    """A's outcome on q1 is unknown: task 0's A mean is then q0's (perf 1, cost 0), so
    A is the best for everyone (a=1: A = B = C = 1, A cheapest)."""
    data = toy()
    data.performance[1, A] = data.cost[1, A] = np.nan
    router = BestLLMPerUserTaskRouter().fit(data, SPLIT)
    assert picks(router, data, 5) == [A, A, A]
    # An LLM without an outcome on the routed query is never picked.
    data.performance[5, A] = np.nan
    assert picks(router, data, 5) == [B, B, B]


def test_knn_outcomes_by_hand():
    data = toy()
    # k=1: q5's nearest training query is q1 (perf 0 1 1): a=0.2 -> A (0 > -0.067),
    # a=0.6 -> B, a=1 -> B (tie with C, cheaper). q6's is q3 (perf 1 0 1): A, A, A/C tie -> A.
    one = KNNOutcomesRouter(ks=(1,)).fit(data, SPLIT)
    assert picks(one, data, 5) == [A, B, B]
    assert picks(one, data, 6) == [A, A, A]
    # k=2 averages the task's two training queries: the per-(user, task) lookup.
    two = KNNOutcomesRouter(ks=(2,)).fit(data, SPLIT)
    assert picks(two, data, 6) == [A, A, C]
    # Tuned on validation: k=1 predicts q4 from q0 (all succeed) and routes everyone to A
    # (mean utility 0.6); k=2 routes A, B, B (0.556).
    tuned = KNNOutcomesRouter(ks=(1, 2)).fit(data, SPLIT)
    assert tuned.k_ == 1 and tuned.validation_[1] > tuned.validation_[2]


@pytest.mark.parametrize(
    "router",
    [
        LogisticOutcomesRouter(l2=(1e-6,), max_iter=500),
        MLPOutcomesRouter(hidden=(16,), epochs=600, patience=600, lr=1e-2, dropout=0.0),
        MFOutcomesRouter(ranks=(4,), epochs=600, patience=600, lr=3e-2, weight_decay=0.0),
    ],
    ids=["logistic", "mlp", "mf"],
)
def test_learned_outcome_models_fit_the_toy_outcomes(router):
    """With the task in the features and little regularisation, the predicted success on a
    training query approaches its observed outcome (on q0..q3) and routing follows."""
    torch.set_num_threads(1)
    data = toy()
    router.fit(data, SPLIT)
    perf, cost = router.predict(data, np.arange(4))
    np.testing.assert_allclose(perf, PERF[:4], atol=0.15)
    if isinstance(router, MLPOutcomesRouter):  # the MLP predicts the costs too
        np.testing.assert_allclose(cost, data.cost_norm(SPLIT.train)[:4], atol=0.15)
    else:  # the others take the (task, LLM) training means
        np.testing.assert_allclose(cost[:2], [[0, 1 / 3, 1]] * 2, atol=1e-12)
    # Clear-cut picks on the training queries: a=0.2 on q2 (A: 0, B: -0.2, C: -0.6).
    assert picks(router, data, 2)[0] == A
    # a=1 on q2: only C succeeds.
    assert picks(router, data, 2)[2] == C


def test_onboarding_sets_only_the_new_users_weight():
    data = toy()
    router = BestLLMPerUserTaskRouter().fit(data, SPLIT)
    # Re-estimated without user 2's decisions: user 2 gets the prior (mean of 0.2, 0.6).
    keep = data.dec_user != 2
    without = router.reestimated(data.with_decisions(keep), SPLIT)
    assert without.weights_.weight[2] == pytest.approx(0.4)
    assert without.weights_.source[2] == "prior"
    assert router.weights_.weight[2] == pytest.approx(1.0)  # the original is untouched
    # One logged decision of user 2 on a training query fixes the weight (q1: chose B,
    # P = 1, C = 1/3, r = 1).
    shot = np.flatnonzero((data.dec_user == 2) & (data.dec_query == 1))
    with without.onboarded(data, SPLIT, shot):
        assert without.weights_.weight[2] == pytest.approx(1.0)
        assert picks(without, data, 6) == [A, A, C]
    assert without.weights_.weight[2] == pytest.approx(0.4)
    assert picks(without, data, 6)[2] == A  # a=0.4: A 0.2, B -0.15, C -0.2


@pytest.mark.parametrize("name", ["best_llm_per_user", "best_llm_per_user_task", "knn_outcomes"])
def test_no_label_leaks_on_the_toy(name):
    """Test outcomes, test decisions and rewards, and the users' alphas may change freely."""
    data = toy()
    clean = BASELINES[name]().fit(data, SPLIT).score(data, USERS, np.full(3, 5))
    changed = dataclasses.replace(
        toy(alpha_known=True),
        performance=np.where(SPLIT.test[:, None], 1 - PERF, PERF),
        cost=np.where(SPLIT.test[:, None], COST[::-1] * 3, COST),
        dec_reward=np.where(SPLIT.test[data.dec_query], 0.5, data.dec_reward),
    )
    again = BASELINES[name]().fit(changed, SPLIT).score(changed, USERS, np.full(3, 5))
    np.testing.assert_array_equal(again, clean)
