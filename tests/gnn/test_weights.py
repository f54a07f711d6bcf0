"""The shared user-weight estimator recovers simulated users' weights."""

from __future__ import annotations

import numpy as np
import pytest

from gnn.data import RoutingData
from gnn.weights import DEFAULT_PRIOR, estimate_user_weights
from workloads.simulate import Outcomes, simulate_cost_efficiency, simulate_preferences

N_QUERIES, N_LLMS = 240, 5


def _outcomes(graded: bool = True) -> Outcomes:
    """A synthetic outcome table: 2 tasks, 5 LLMs, graded (or 0/1) scores, costs rising
    with the LLM's index."""
    rng = np.random.default_rng(7)
    perf = rng.random((N_QUERIES, N_LLMS))
    if not graded:
        perf = (perf < np.linspace(0.3, 0.9, N_LLMS)).astype(float)
    cost = np.linspace(1.0, 5.0, N_LLMS) * rng.uniform(0.5, 1.5, (N_QUERIES, 1))
    tasks = [f"t{q % 2}" for q in range(N_QUERIES)]
    return Outcomes(
        [f"q{q:03d}" for q in range(N_QUERIES)], tasks, [f"m{i}" for i in range(N_LLMS)], perf, cost
    )


def _data(outcomes: Outcomes, tables: dict, *, rewards: bool = True) -> RoutingData:
    """RoutingData of a simulation's tables (decisions and/or judgements)."""
    users = tables["User"].column("id").to_pylist()
    u_index = {u: i for i, u in enumerate(users)}
    q_index = {q: i for i, q in enumerate(outcomes.query_ids)}
    l_index = {m: i for i, m in enumerate(outcomes.llm_ids)}
    extra: dict[str, np.ndarray] = {}
    dec = np.zeros((0, 3), dtype=np.int64)
    if "CHOSE" in tables:
        chose = tables["CHOSE"].to_pydict()
        dec = np.array(
            [
                (u_index[u], q_index[q], l_index[m])
                for u, m, q in zip(chose["src"], chose["dst"], chose["query_id"], strict=True)
            ]
        )
        extra["dec_reward"] = np.asarray(chose["reward"], dtype=float)
        if not rewards:
            extra["dec_reward"] = np.full(len(dec), np.nan)
    if "PREFERRED" in tables:
        pref = tables["PREFERRED"].to_pydict()
        rows = [
            (u_index[u], q_index[q], l_index[w], l_index[o])
            for u, w, q, o, tie in zip(
                pref["src"], pref["dst"], pref["query_id"], pref["over"], pref["tie"], strict=True
            )
            if not tie
        ]
        arr = np.array(rows, dtype=np.int64).reshape(-1, 4)
        extra |= {
            "pref_user": arr[:, 0],
            "pref_query": arr[:, 1],
            "pref_win": arr[:, 2],
            "pref_lose": arr[:, 3],
        }
    return RoutingData(
        query_ids=outcomes.query_ids,
        query_task=outcomes.task_index,
        query_split=np.full(N_QUERIES, "", dtype=object),
        query_emb=np.zeros((N_QUERIES, 2), dtype=np.float32),
        task_ids=["t0", "t1"],
        llm_ids=outcomes.llm_ids,
        llm_emb=np.eye(N_LLMS, dtype=np.float32),
        llm_price=np.full((N_LLMS, 2), np.nan),
        performance=outcomes.performance,
        cost=outcomes.cost,
        user_ids=users,
        user_alpha=tables["User"].column("alpha").to_numpy(),
        dec_user=dec[:, 0],
        dec_query=dec[:, 1],
        dec_llm=dec[:, 2],
        **extra,
    )


TRAIN = np.arange(N_QUERIES) < 160  # the first 160 queries are "training"


def _train_decisions(data: RoutingData) -> np.ndarray:
    return np.flatnonzero(TRAIN[data.dec_query])


@pytest.mark.parametrize("graded", [True, False])
def test_rewards_recover_the_weights(graded):
    outcomes = _outcomes(graded)
    data = _data(outcomes, simulate_cost_efficiency(outcomes, n_users=6, alphas="uniform"))
    # With the simulation's own cost scale (all queries) the implied weights are exact ...
    exact = estimate_user_weights(data, _train_decisions(data), data.cost_norm())
    np.testing.assert_allclose(exact.weight, data.user_alpha, atol=1e-9)
    assert (exact.source == "reward").all()
    # ... and with the training queries' ranges (what a router may use) close.
    train_scale = estimate_user_weights(data, _train_decisions(data), data.cost_norm(TRAIN))
    np.testing.assert_allclose(train_scale.weight, data.user_alpha, atol=0.03)


def test_choices_alone_recover_the_weights_with_graded_outcomes():
    outcomes = _outcomes(graded=True)
    tables = simulate_cost_efficiency(outcomes, n_users=6, alphas="uniform", seed=3)
    data = _data(outcomes, tables, rewards=False)
    got = estimate_user_weights(data, _train_decisions(data), data.cost_norm(TRAIN))
    assert (got.source == "choice").all()
    np.testing.assert_allclose(got.weight, data.user_alpha, atol=0.05)


def test_judgements_alone_recover_the_weights():
    outcomes = _outcomes(graded=True)
    tables = simulate_preferences(outcomes, n_users=5, alphas="uniform", pairs_per_query=3)
    data = _data(outcomes, tables)
    judgements = np.flatnonzero(TRAIN[data.pref_query])
    got = estimate_user_weights(
        data, np.zeros(0, dtype=np.int64), data.cost_norm(TRAIN), judgements=judgements
    )
    assert (got.source == "choice").all()
    np.testing.assert_allclose(got.weight, data.user_alpha, atol=0.05)


def test_unknown_users_get_the_population_prior():
    outcomes = _outcomes()
    data = _data(outcomes, simulate_cost_efficiency(outcomes, n_users=4, alphas="uniform"))
    without_user_0 = np.flatnonzero(TRAIN[data.dec_query] & (data.dec_user != 0))
    got = estimate_user_weights(data, without_user_0, data.cost_norm())
    assert got.source[0] == "prior"
    assert got.prior == pytest.approx(data.user_alpha[1:].mean(), abs=1e-9)
    assert got.weight[0] == pytest.approx(got.prior)
    assert got.of(np.array([0, 99])) == pytest.approx([got.prior, got.prior])
    empty = estimate_user_weights(data, np.zeros(0, dtype=np.int64), data.cost_norm())
    assert empty.prior == DEFAULT_PRIOR and (empty.weight == DEFAULT_PRIOR).all()


def test_one_logged_reward_fixes_a_new_users_weight():
    """Onboarding: k decisions through the same estimator; one reward suffices when the
    chosen LLM's outcome and cost are not both 0."""
    outcomes = _outcomes()
    data = _data(outcomes, simulate_cost_efficiency(outcomes, n_users=3, alphas="uniform"))
    for u in range(3):
        first = np.flatnonzero(data.dec_user == u)[:1]
        got = estimate_user_weights(data, first, data.cost_norm())
        assert got.weight[u] == pytest.approx(data.user_alpha[u], abs=1e-9)
