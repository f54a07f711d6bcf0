"""Ties in training: the Davidson tie likelihood in the Bradley-Terry baselines."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import check_grad

from gnn.data import load_routing_data, split_queries
from gnn.preference import GlobalBradleyTerryRouter, TaskBradleyTerryRouter, UserBradleyTerryRouter
from gnn.preference.base import ties_of, votes_of
from gnn.preference.bradley_terry import (
    bradley_terry_objective,
    davidson_nll,
    fit_bradley_terry,
)


def test_davidson_by_hand():
    """With strength gap d and tie weight nu: P(win) = e^{d/2} / Z, P(tie) = nu / Z,
    P(loss) = e^{-d/2} / Z; win given no tie is the plain logistic of d."""
    d, nu = 0.8, 0.5
    z = np.exp(d / 2) + np.exp(-d / 2) + nu
    win = davidson_nll(np.array([d]), np.log(nu), tie=np.array([False]))[0]
    assert win == pytest.approx(-np.log(np.exp(d / 2) / z))
    tie = davidson_nll(np.array([d]), np.log(nu), tie=np.array([True]))[0]
    assert tie == pytest.approx(-np.log(nu / z))
    loss = davidson_nll(np.array([-d]), np.log(nu), tie=np.array([False]))[0]
    assert np.exp(-win) + np.exp(-tie) + np.exp(-loss) == pytest.approx(1.0)
    assert np.exp(-win) / (np.exp(-win) + np.exp(-loss)) == pytest.approx(1 / (1 + np.exp(-d)))


def test_tie_models_on_one_pair():
    """A beats B 3 times, loses once, 4 ties. Davidson: the gap stays log 3 (given no tie,
    A wins 3 of 4) and nu makes P(tie) = 1/2; half wins: A 5 of 8, gap log(5/3). Without
    ties both are the plain fit."""
    win, lose = [0, 0, 0, 1], [1, 1, 1, 0]
    ties = {"tie_a": [0, 1, 0, 1], "tie_b": [1, 0, 1, 0]}
    plain = fit_bradley_terry(win, lose, 2, l2=1e-8)[0]
    for model in ("davidson", "half"):
        none = fit_bradley_terry(win, lose, 2, l2=1e-8, tie_a=[], tie_b=[], tie_model=model)
        np.testing.assert_allclose(none[0], plain, atol=1e-6)
    theta, nu = fit_bradley_terry(win, lose, 2, l2=1e-8, return_tie_weight=True, **ties)
    d = theta[0, 0] - theta[0, 1]
    assert d == pytest.approx(np.log(3), abs=1e-3)
    assert nu / (np.exp(d / 2) + np.exp(-d / 2) + nu) == pytest.approx(0.5, abs=1e-3)
    half = fit_bradley_terry(win, lose, 2, l2=1e-8, tie_model="half", **ties)[0]
    assert half[0] - half[1] == pytest.approx(np.log(5 / 3), abs=1e-3)
    with pytest.raises(ValueError, match="tie model"):
        fit_bradley_terry(win, lose, 2, tie_model="coin", **ties)


def test_davidson_gradient_is_exact():
    rng = np.random.default_rng(0)
    win, lose = rng.integers(0, 4, 30), rng.integers(0, 4, 30)
    keep = win != lose
    f, n = bradley_terry_objective(
        win[keep],
        lose[keep],
        4,
        group=np.arange(keep.sum()) % 2,
        n_groups=2,
        base=rng.normal(size=8),
        l2=0.1,
        tie_a=[0, 1, 2],
        tie_b=[1, 2, 3],
        tie_group=[0, 1, 1],
    )
    assert n == 2 * 4 + 1  # each group's strengths and log nu
    x = rng.normal(size=n)
    assert check_grad(lambda v: f(v)[0], lambda v: f(v)[1], x) < 1e-5


def test_ties_are_loaded_with_their_pair_and_used_by_the_baselines(store, tmp_path):
    from preference_support import ingest_mtbench

    votes = ingest_mtbench(store, tmp_path, n_questions=60, judges=4)
    data = load_routing_data(store)
    n_ties = sum('"tie"' in line for line in votes.read_text().splitlines())
    assert len(data.tie_query) == len(data.tie_a) == len(data.tie_b) == n_ties > 0
    assert (data.tie_a != data.tie_b).all()
    split = split_queries(data, seed=0)
    ties = ties_of(data, split.train)
    assert len(ties) == int(split.train[data.tie_query].sum()) > 0
    for cls in (GlobalBradleyTerryRouter, TaskBradleyTerryRouter, UserBradleyTerryRouter):
        with_ties = cls(seed=0, ties="davidson").fit(data, split)
        without = cls(seed=0, ties="off").fit(data, split)
        assert with_ties.tie_weight > 0 and without.tie_weight == 0
        assert cls(seed=0, ties="half").fit(data, split).tie_weight == 0
        test = votes_of(data, split.test, choices=False)
        p = with_ties.pair_probability(data, test.user, test.query, test.win, test.lose)
        assert np.isfinite(p).all() and ((p > 0) & (p < 1)).all()
        assert not np.allclose(
            p, without.pair_probability(data, test.user, test.query, test.win, test.lose)
        )
