"""The synthetic workload: reproducible, structured, decisions follow the reward rule."""

from __future__ import annotations

import numpy as np
import pytest

from prcore.utility import best_llm, task_min_max
from workloads.synthetic import generate


def test_same_seed_same_workload_other_seed_differs():
    a, b, c = (
        generate(n_queries=200, seed=7),
        generate(n_queries=200, seed=7),
        generate(n_queries=200, seed=8),
    )
    assert a.records() == b.records()
    assert a.records() != c.records()


def test_bigger_llms_cost_more_and_perform_better_on_average():
    w = generate(n_queries=3_000, n_llms=8, seed=0)
    order = np.argsort(w.llm_price)
    mean_perf = w.performance.mean(axis=0)[order]
    assert np.all(np.diff(w.llm_price[order]) >= 0)
    assert mean_perf[-3:].mean() > mean_perf[:3].mean() + 0.15
    assert np.all(w.cost > 0) and set(np.unique(w.query_split)) == {"train", "val", "test"}


def test_each_decision_is_the_best_reward_with_cheaper_tie_break():
    w = generate(n_queries=400, n_users=9, seed=2)
    norm = task_min_max(w.cost, w.query_task)
    for i in range(0, len(w.asked_user), 37):
        u, q, m = w.asked_user[i], w.asked_query[i], w.chosen_llm[i]
        alpha = w.user_alpha[u]
        reward = alpha * w.performance[q] - (1 - alpha) * norm[q]
        assert w.chosen_reward[i] == pytest.approx(reward.max())
        best = np.flatnonzero(reward == reward.max())
        assert m == best[np.argmin(w.cost[q, best])]


def test_tie_break_and_min_max_by_hand():
    reward = np.array([[0.5, 0.5, 0.1], [0.2, 0.9, 0.9]])
    cost = np.array([[3.0, 1.0, 0.5], [1.0, 2.0, 1.5]])
    assert best_llm(reward, cost).tolist() == [1, 2]
    norm = task_min_max(np.array([[1.0, 3.0], [2.0, 5.0]]), np.array([0, 0]))
    assert norm.tolist() == [[0.0, 0.5], [0.25, 1.0]]


def test_users_span_the_papers_alpha_grid():
    w = generate(n_queries=50, n_users=9, seed=0)
    assert w.user_alpha.tolist() == pytest.approx([0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])


@pytest.mark.parametrize("kwargs", [{"n_tasks": 9}, {"n_llms": 1}, {"users_per_query": 20}])
def test_bad_parameters_are_refused(kwargs):
    with pytest.raises(ValueError):
        generate(n_queries=10, **kwargs)
