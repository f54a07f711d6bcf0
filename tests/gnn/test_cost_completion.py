"""Costs of unlogged answers on partially logged queries (real logs hold the served
LLM's cost only): estimated from the log-additive price x size model, so that per-task
cost ranges and normalised costs are not biased by which LLM was served."""

from __future__ import annotations

import numpy as np
import pytest

from gnn.cost_completion import complete_costs, partial_rows
from gnn.data import RoutingData

SIZE = np.array([1.0, 2.0, 4.0, 0.5, 3.0, 1.5])
RATE = np.array([0.001, 0.01, 0.2])  # cheap, mid, dear LLM
FULL = np.outer(SIZE, RATE)
TASK = np.array([0, 0, 0, 1, 1, 1])


def test_unlogged_costs_are_recovered_from_the_price_times_size_model():
    cost = FULL.copy()
    cost[0, 2] = cost[1, 1] = cost[3, 0] = cost[5, 2] = np.nan
    completed = complete_costs(cost, TASK)
    np.testing.assert_allclose(completed, FULL, rtol=0.02)


def test_full_and_empty_rows_stay_and_nothing_partial_returns_the_input():
    assert complete_costs(FULL, TASK) is FULL
    cost = FULL.copy()
    cost[2] = np.nan  # a votes-only query: no cost at all
    cost[4, 1] = np.nan
    completed = complete_costs(cost, TASK)
    assert np.isnan(completed[2]).all()
    np.testing.assert_array_equal(completed[[0, 1, 3, 5]], FULL[[0, 1, 3, 5]])
    assert completed[4, 1] == pytest.approx(FULL[4, 1], rel=0.02)


def test_rates_come_from_the_reference_rows_only():
    cost = FULL.copy()
    cost[0, 2] = np.nan
    reference = np.array([True, True, True, False, False, False])
    changed = cost.copy()
    changed[3:] *= np.array([1.0, 5.0, 0.1])  # held-out rows' costs: other rates
    a = complete_costs(cost, TASK, reference)
    b = complete_costs(changed, TASK, reference)
    assert a[0, 2] == pytest.approx(b[0, 2], rel=1e-9)
    assert a[0, 2] == pytest.approx(FULL[0, 2], rel=0.02)


def test_a_free_llm_stays_free_and_a_never_logged_llm_stays_unknown():
    cost = np.column_stack([FULL[:, 0], np.zeros(len(SIZE)), np.full(len(SIZE), np.nan)])
    cost[1, 1] = np.nan
    completed = complete_costs(cost, TASK)
    assert completed[1, 1] == 0.0
    assert np.isnan(completed[:, 2]).all()
    np.testing.assert_array_equal(completed[:, 0], FULL[:, 0])


def _data(cost: np.ndarray, task: np.ndarray) -> RoutingData:
    n_q, n_l = cost.shape
    return RoutingData(
        query_ids=[f"q{i}" for i in range(n_q)],
        query_task=task,
        query_split=np.full(n_q, "", dtype=object),
        query_emb=np.zeros((n_q, 2), dtype=np.float32),
        task_ids=["t0", "t1"],
        llm_ids=[f"m{i}" for i in range(n_l)],
        llm_emb=np.zeros((n_l, 2), dtype=np.float32),
        llm_price=np.full((n_l, 2), np.nan),
        performance=np.where(np.isnan(cost), np.nan, 1.0),
        cost=cost,
        user_ids=[],
        user_alpha=np.zeros(0),
        dec_user=np.zeros(0, dtype=np.int64),
        dec_query=np.zeros(0, dtype=np.int64),
        dec_llm=np.zeros(0, dtype=np.int64),
    )


def test_a_task_whose_dear_llm_was_never_served_keeps_its_cost_scale():
    """The reported failure: with outcomes logged only for the served LLM, task t1's dear
    LLM was never served, so its min-max range spanned the cheap LLMs only and the
    cheapest LLM's normalised cost there reached 1 (dearer than the dear LLM looks on t0)."""
    task = np.array([0, 0, 0, 1, 1, 1])
    cost = FULL.copy()
    cost[0, 1] = cost[1, 0] = cost[2, 2] = np.nan  # t0: two of three LLMs served per query
    cost[3:, 2] = np.nan  # t1: the dear LLM never served
    cost[3, 1] = cost[4, 0] = np.nan
    data = _data(cost, task)
    train = np.ones(len(task), dtype=bool)
    ranges = data.cost_range(train)
    np.testing.assert_allclose(ranges[1], [FULL[3:].min(), FULL[3:].max()], rtol=0.02)
    normalised = data.cost_norm(train)
    assert np.isfinite(normalised).all()
    assert normalised[3:, 0].max() < 0.02  # the cheap LLM is cheap on t1 too
    np.testing.assert_allclose(normalised[3:, 2].max(), 1.0, rtol=1e-6)


def test_one_served_llm_per_query_still_gives_the_price_ratios():
    """Real logs: one logged cost per query. With equal sizes within a task, every
    unlogged cost is the logged one scaled by the LLMs' price ratio."""
    task = np.repeat([0, 1], 6)
    size = np.repeat([1.0, 3.0], 6)
    full = np.outer(size, RATE)
    served = np.tile([0, 1, 2], 4)
    cost = np.full(full.shape, np.nan)
    cost[np.arange(len(task)), served] = full[np.arange(len(task)), served]
    np.testing.assert_allclose(complete_costs(cost, task), full, rtol=1e-6)


def test_partial_rows_counts_rows_and_their_missing_entries():
    cost = FULL.copy()
    cost[0, 2] = cost[1, [0, 1]] = np.nan
    cost[2] = np.nan  # no cost at all: not partial
    assert partial_rows(cost) == (2, 3)
    assert partial_rows(FULL) == (0, 0)
