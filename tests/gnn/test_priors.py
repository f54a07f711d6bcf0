"""The closed-form evidence of the GNN router: outcome priors, logged weights, choice bounds."""

from __future__ import annotations

import numpy as np
import pytest

from gnn.priors import choice_bounds, implied_weights, latent_difficulty_prior, task_llm_prior
from prcore.utility import task_min_max
from workloads.simulate import Outcomes, simulate_cost_efficiency

NAN = np.nan


def test_task_llm_prior_by_hand():
    """Task 0 has outcomes of LLM 0 on q0 (1) and q1 (0) and of LLM 1 on q0 (0); task 1 of
    both on q2 (1, 1). Cells shrink (shrink 1) towards their LLM's mean over all tasks:
    LLM 0's is 2/3 (cost 0.7/3), LLM 1's 1/2 (cost 0.7). So on task 0 LLM 0 gets
    (1 + 2/3) / 3 and LLM 1 (0 + 1/2) / 2. q0's own prior leaves its outcomes out: LLM 0
    is known from q1 (0) and, over tasks, from q1 and q2 (mean 1/2); LLM 1 not at all on
    task 0, so it takes its mean over tasks without q0 (q2: 1)."""
    perf = np.array([[1.0, 0.0], [0.0, NAN], [1.0, 1.0], [NAN, NAN]])
    cost = np.array([[0.5, 1.0], [0.0, NAN], [0.2, 0.4], [NAN, NAN]])
    task = np.array([0, 0, 1, 1])
    per_query, per_task = task_llm_prior(perf, cost, task, 2, shrink=1.0)
    np.testing.assert_allclose(per_task[0, :, 0], [5 / 9, 1 / 4], rtol=1e-6)
    np.testing.assert_allclose(per_task[0, :, 1], [(0.5 + 0.7 / 3) / 3, (1.0 + 0.7) / 2], rtol=1e-6)
    np.testing.assert_allclose(per_task[0, :, 2], [2 / 3, 1 / 2], rtol=1e-6)
    np.testing.assert_allclose(per_query[0, :, 0], [1 / 4, 1.0], rtol=1e-6)
    np.testing.assert_allclose(per_query[0, :, 2], [1 / 2, 0.0], rtol=1e-6)
    # q3 has no outcome of its own: its prior is its task's.
    np.testing.assert_allclose(per_query[3], per_task[1])


def test_an_llm_nobody_logged_on_a_task_keeps_its_price_and_skill():
    """Real logs: a dear LLM never served on one task still costs what it costs elsewhere
    (not the task's mean over cheap LLMs)."""
    perf = np.array([[1.0, 1.0], [0.0, 1.0], [1.0, NAN], [0.0, NAN]])
    cost = np.array([[0.0, 1.0], [0.0, 1.0], [0.0, NAN], [0.0, NAN]])
    _, per_task = task_llm_prior(perf, cost, np.array([0, 0, 1, 1]), 2)
    assert per_task[1, 1, 1] == pytest.approx(1.0) and per_task[1, 1, 0] == pytest.approx(1.0)


def test_logged_rewards_give_the_users_exact_weights():
    rng = np.random.default_rng(0)
    n_q, n_l = 60, 5
    outcomes = Outcomes(
        query_ids=[f"q{i}" for i in range(n_q)],
        task_ids=[f"t{i % 2}" for i in range(n_q)],
        llm_ids=[f"m{j}" for j in range(n_l)],
        performance=(rng.random((n_q, n_l)) < 0.6).astype(float),
        cost=rng.random((n_q, n_l)) * np.arange(1, n_l + 1),
    )
    tables = simulate_cost_efficiency(outcomes, n_users=5, alphas="beta:2,2", seed=3)
    chose = tables["CHOSE"].to_pydict()
    q = np.array([int(x[1:]) for x in chose["query_id"]])
    m = np.array([int(x[1:]) for x in chose["dst"]])
    u = np.array([int(x.rsplit("-", 1)[1]) for x in chose["src"]])
    norm = task_min_max(outcomes.cost, outcomes.task_index)
    total, count = implied_weights(
        u, outcomes.performance[q, m], norm[q, m], np.array(chose["reward"]), 5
    )
    assert (count > 0).all()
    np.testing.assert_allclose(total / count, tables["User"]["alpha"].to_numpy(), atol=1e-9)


def test_decisions_without_a_usable_reward_are_skipped():
    total, count = implied_weights(
        np.array([0, 0, 1]),
        np.array([1.0, 0.0, 1.0]),
        np.array([0.5, 0.0, NAN]),
        np.array([0.25, 0.0, 0.3]),
        3,
    )
    np.testing.assert_allclose(count, [1, 0, 0])
    assert total[0] == pytest.approx(0.5)  # (0.25 + 0.5) / (1 + 0.5)


def test_a_choice_bounds_the_other_candidates_outcomes():
    """Weight 0.5, chose an answer of score 1 at cost 0.6: a candidate at cost c scores at
    most 1 - (0.6 - c); a user with an unknown weight bounds nothing."""
    bound = choice_bounds(
        np.array([0.5, NAN]),
        np.array([1.0, 1.0]),
        np.array([0.6, 0.6]),
        np.array([[0.2, 0.6, 0.9], [0.2, 0.6, 0.9]]),
    )
    np.testing.assert_allclose(bound[0], [0.6, 1.0, 1.3])
    assert np.isinf(bound[1]).all()


def test_latent_difficulty_corrects_outcomes_logged_only_where_chosen():
    """LLM 1 is logged only where the cheaper LLM 0 failed (the hard queries): the mean of
    its logged outcomes underrates it; the latent-difficulty estimate, which explains
    LLM 0's failures by the queries' difficulty, comes closer to its true success rate.
    """
    rng = np.random.default_rng(0)
    n = 2000
    difficulty = rng.normal(0, 1.5, n)
    prob = 1 / (1 + np.exp(-(np.array([1.0, 0.5])[None, :] - difficulty[:, None])))
    outcome = (rng.random((n, 2)) < prob).astype(float)
    logged = outcome.copy()
    logged[outcome[:, 0] == 1, 1] = np.nan
    task = np.zeros(n, dtype=np.int64)
    fitted = latent_difficulty_prior(logged, task, 1)
    true = prob.mean(0)
    naive = np.nanmean(logged[:, 1])
    assert abs(fitted[0, 1] - true[1]) < 0.5 * abs(naive - true[1])
    assert fitted[0, 0] == pytest.approx(true[0], abs=0.05)  # fully logged: unbiased
