"""Bradley-Terry baselines and the pairwise metrics on hand-computable fixtures."""

from __future__ import annotations

import numpy as np
import pytest

from gnn.data import RoutingData, Split
from gnn.preference import (
    GlobalBradleyTerryRouter,
    TaskBradleyTerryRouter,
    UserBradleyTerryRouter,
    VoteMatrixFactorizationRouter,
)
from gnn.preference.base import Votes, votes_of
from gnn.preference.bradley_terry import fit_bradley_terry, win_probability
from gnn.preference.metrics import pair_metrics, score_votes
from gnn.preference.protocol import split_users, without_users


def test_two_llm_fit_recovers_the_win_rate():
    """A beats B 3 times out of 4: P(A > B) = 3/4, theta_A - theta_B = log 3."""
    theta = fit_bradley_terry([0, 0, 0, 1], [1, 1, 1, 0], 2, l2=1e-8)[0]
    assert theta[0] - theta[1] == pytest.approx(np.log(3), abs=1e-4)
    assert win_probability(theta[0], theta[1]) == pytest.approx(0.75, abs=1e-5)


def test_groups_shrink_to_the_prior():
    """Group 1 always prefers B; heavy shrinkage keeps it at the prior, none follows it."""
    win, lose, group = [0, 0, 0, 1, 1], [1, 1, 1, 0, 0], [0, 0, 0, 1, 1]
    prior = np.array([1.0, -1.0])
    loose = fit_bradley_terry(win, lose, 2, group=group, n_groups=3, prior=prior, l2=1e-3)
    tight = fit_bradley_terry(win, lose, 2, group=group, n_groups=3, prior=prior, l2=1e6)
    assert loose[1, 1] - loose[1, 0] > 5  # follows its votes
    np.testing.assert_allclose(tight, np.broadcast_to(prior, (3, 2)), atol=1e-4)
    np.testing.assert_allclose(loose[2], prior)  # a group without votes gets the prior


def test_pair_metrics_by_hand():
    # Winners predicted with 0.8 and 0.4: accuracy 1/2, log-loss -(ln .8 + ln .4)/2,
    # Brier ((0.2)^2 + (0.6)^2) / 2.
    m = pair_metrics(np.array([0.3, -0.1]), np.array([0.8, 0.4]), ties=3)
    assert m.accuracy == 0.5 and m.n == 2 and m.ties == 3
    assert m.log_loss == pytest.approx(-(np.log(0.8) + np.log(0.4)) / 2)
    assert m.brier == pytest.approx((0.04 + 0.36) / 2)
    assert pair_metrics(np.array([0.0]), None, 0).accuracy == 0.5  # a score tie counts half
    assert (
        m.as_dict()["ties"] == 3 and pair_metrics(np.zeros(0), None, 0).as_dict()["brier"] is None
    )


def _data() -> RoutingData:
    """2 tasks x 4 queries each, 3 LLMs, 2 users: user 0 prefers LLM 0 > 1 > 2 everywhere,
    user 1 the reverse, but only on task 1."""
    rng = np.random.default_rng(0)
    users, queries, win, lose = [], [], [], []
    for q in range(8):
        for u in range(2):
            for a, b in ((0, 1), (1, 2), (0, 2)):
                reverse = u == 1 and q >= 4
                users.append(u)
                queries.append(q)
                win.append(b if reverse else a)
                lose.append(a if reverse else b)
    n = 8
    return RoutingData(
        query_ids=[f"q{i}" for i in range(n)],
        query_task=np.array([0] * 4 + [1] * 4),
        query_split=np.array([""] * n, dtype=object),
        query_emb=rng.normal(size=(n, 4)).astype(np.float32),
        task_ids=["t0", "t1"],
        llm_ids=["a", "b", "c"],
        llm_emb=np.eye(3, dtype=np.float32),
        llm_price=np.full((3, 2), np.nan),
        performance=np.full((n, 3), np.nan),
        cost=np.full((n, 3), np.nan),
        user_ids=["u0", "u1"],
        user_alpha=np.full(2, np.nan),
        dec_user=np.zeros(0, dtype=np.int64),
        dec_query=np.zeros(0, dtype=np.int64),
        dec_llm=np.zeros(0, dtype=np.int64),
        pref_user=np.array(users),
        pref_query=np.array(queries),
        pref_win=np.array(win),
        pref_lose=np.array(lose),
        tie_query=np.array([0]),
        tie_user=np.array([1]),
    )


def _split(train: list[int], val: list[int], test: list[int]) -> Split:
    masks = [np.isin(np.arange(8), part) for part in (train, val, test)]
    return Split(*masks)


def test_bradley_terry_baselines_on_a_fixture():
    data = _data()
    split = _split([0, 1, 4, 5], [2, 6], [3, 7])
    test = votes_of(data, split.test)
    glob = GlobalBradleyTerryRouter().fit(data, split)
    # Globally the votes cancel on task 1, so LLM 0 > 1 > 2 from task 0 only.
    assert glob.theta[0] > glob.theta[1] > glob.theta[2]
    per_task = TaskBradleyTerryRouter().fit(data, split)
    per_user = UserBradleyTerryRouter().fit(data, split)
    assert per_user.chosen_l2 < 3  # validation says: follow each user
    acc = {r.name: score_votes(r, data, test, 0).accuracy for r in (glob, per_task, per_user)}
    # user 1's reversal on task 1 is a user effect: the global model gets 9 of 12 right
    # (all of user 0's and user 1's task-0 votes), the per-task model cannot tell the users
    # apart on task 1 (half of those right), the per-user one gets user 0 and 1 right on
    # task 1 and loses user 1 on task 0.
    assert acc["bt"] == pytest.approx(9 / 12)
    assert acc["bt_task"] <= acc["bt"] and acc["bt_user"] >= 0.5
    probs = per_user.pair_probability(data, test.user, test.query, test.win, test.lose)
    assert ((probs > 0) & (probs < 1)).all()


def test_onboarding_a_user_moves_only_that_user():
    data = _data()
    split = _split([0, 1, 4, 5], [2, 6], [3, 7])
    held = np.array([False, True])
    router = UserBradleyTerryRouter(l2=1.0).fit(without_users(data, held), split)
    before = router.theta.copy()
    np.testing.assert_allclose(before[1], router.global_theta)  # nothing known of user 1
    reverse = Votes(np.array([1, 1]), np.array([4, 5]), np.array([2, 2]), np.array([0, 0]))
    with router.onboarded_pairs(data, reverse):
        gap = router.theta[1, 2] - router.theta[1, 0]
        assert gap > before[1, 2] - before[1, 0] + 0.5  # moved towards its votes
        np.testing.assert_allclose(router.theta[0], before[0])
    np.testing.assert_allclose(router.theta, before)


def test_user_split_and_vote_mf():
    data = _data()
    held = split_users(data, seed=0)
    assert held.sum() == 1
    rest = without_users(data, held)
    assert not held[rest.pref_user].any() and len(rest.tie_user) == int(~held[1])
    split = _split([0, 1, 4, 5], [2, 6], [3, 7])
    mf = VoteMatrixFactorizationRouter(epochs=50).fit(data, split)
    assert mf.score(data, np.zeros(8, dtype=np.int64), np.arange(8)).shape == (8, 3)
