"""Baseline routers on the synthetic routing fixture: validity, determinism, no leakage."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from gnn.data import RoutingData, Split
from gnn.evaluate import evaluate
from gnn.routers.base import Router
from gnn.routers.baselines import (
    BASELINES,
    OUTCOME_BASELINES,
    ImitateUserRouter,
    KNNImitateRouter,
    MFImitateRouter,
    MLPImitateRouter,
)

NAMES = sorted(BASELINES)
LEARNED = ["knn_imitate", "mlp_imitate", "mf_imitate"]
OUTCOMES = sorted(OUTCOME_BASELINES)
# Small training budgets keep the module fast on two cores.
CONFIG: dict[str, dict] = {
    "mlp_imitate": {"epochs": 60, "patience": 8},
    "mf_imitate": {"epochs": 60, "patience": 8},
    "mlp_outcomes": {"epochs": 60, "patience": 8},
    "mf_outcomes": {"epochs": 60, "patience": 8},
}


def make(name: str, seed: int = 0) -> Router:
    return BASELINES[name](seed=seed, **CONFIG.get(name, {}))


def _test_pairs(data: RoutingData, split: Split) -> tuple[np.ndarray, np.ndarray]:
    """(users, queries) of the decisions on test queries."""
    idx = np.flatnonzero(split.test[data.dec_query])
    return data.dec_user[idx], data.dec_query[idx]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models train faster (and far more steadily on a shared machine) on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def fitted(routing_data, routing_split) -> dict[str, Router]:
    return {name: make(name).fit(routing_data, routing_split) for name in NAMES}


@pytest.fixture(scope="module")
def metrics(fitted, routing_data, routing_split) -> dict[str, dict[str, float]]:
    return {
        name: evaluate(router, routing_data, routing_split).as_dict()
        for name, router in fitted.items()
    }


def test_registry():
    assert set(BASELINES) == {
        "random",
        "cheapest",
        "largest",
        "imitate_user",
        "imitate_user_task",
        "oracle",
        "knn_imitate",
        "mlp_imitate",
        "mf_imitate",
        "best_llm_per_user",
        "best_llm_per_user_task",
        "knn_outcomes",
        "mlp_outcomes",
        "mf_outcomes",
        "logistic_outcomes",
    }
    assert set(OUTCOME_BASELINES) == {n for n in BASELINES if n.startswith("best_llm")} | {
        n for n in BASELINES if n.endswith("_outcomes")
    }
    for name, cls in BASELINES.items():
        assert issubclass(cls, Router) and cls.name == name
    assert repr(KNNImitateRouter(seed=3, k=5)) == "KNNImitateRouter(seed=3, k=5)"
    assert "rank=8" in repr(MFImitateRouter(rank=8))
    assert "hidden=32" in repr(MLPImitateRouter(hidden=32))


def test_route_before_fit_fails(routing_data):
    with pytest.raises(RuntimeError, match="fitted"):
        ImitateUserRouter().route(routing_data, np.array([0]), np.array([0]))


@pytest.mark.parametrize("name", NAMES)
def test_routes_valid_available_llms(name, fitted, routing_data, routing_split):
    users, queries = _test_pairs(routing_data, routing_split)
    scores = fitted[name].score(routing_data, users, queries)
    assert scores.shape == (len(users), routing_data.num_llms)
    # Hide a third of the outcomes of the routed queries: those LLMs must never be picked.
    rng = np.random.default_rng(0)
    perf = routing_data.performance.copy()
    hidden = rng.random(perf.shape) < 1 / 3
    hidden[~routing_split.test] = False
    hidden[np.arange(len(perf)), rng.integers(0, perf.shape[1], len(perf))] = False
    perf[hidden] = np.nan
    sparse = dataclasses.replace(routing_data, performance=perf)
    picks = fitted[name].route(sparse, users, queries)
    assert picks.dtype.kind == "i" and picks.shape == (len(users),)
    assert ((picks >= 0) & (picks < routing_data.num_llms)).all()
    assert not np.isnan(perf[queries, picks]).any()


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_for_a_seed(name, fitted, routing_data, routing_split):
    users, queries = _test_pairs(routing_data, routing_split)
    again = make(name).fit(routing_data, routing_split)
    np.testing.assert_allclose(
        again.score(routing_data, users, queries),
        fitted[name].score(routing_data, users, queries),
        rtol=1e-6,
        atol=1e-9,
    )
    # Scores do not depend on the batch a pair is scored in (up to float rounding: BLAS
    # kernels may sum in another order for another batch size on another CPU).
    half = len(users) // 2
    np.testing.assert_allclose(
        again.score(routing_data, users[half:], queries[half:]),
        fitted[name].score(routing_data, users, queries)[half:],
        rtol=1e-6,
        atol=1e-9,
    )


def test_random_depends_on_seed_and_is_uniform(fitted, routing_data, routing_split):
    users, queries = _test_pairs(routing_data, routing_split)
    other = make("random", seed=1).fit(routing_data, routing_split)
    assert not np.array_equal(
        other.score(routing_data, users, queries),
        fitted["random"].score(routing_data, users, queries),
    )
    share = np.bincount(
        fitted["random"].route(routing_data, users, queries), minlength=routing_data.num_llms
    ) / len(users)
    np.testing.assert_allclose(share, 1 / routing_data.num_llms, atol=0.06)


def test_oracle_is_perfect(metrics):
    assert metrics["oracle"]["accuracy"] == 1.0
    assert metrics["oracle"]["reward_of_oracle"] == pytest.approx(1.0)
    for name in NAMES:
        assert metrics[name]["reward"] <= metrics["oracle"]["reward"] + 1e-12


def test_cheapest_and_largest_bound_the_cost(metrics):
    costs = {name: m["cost"] for name, m in metrics.items()}
    assert min(costs, key=costs.get) == "cheapest"
    assert max(costs, key=costs.get) == "largest"


def test_imitate_user_beats_random(metrics):
    assert metrics["imitate_user"]["reward"] > metrics["random"]["reward"]
    assert metrics["imitate_user"]["accuracy"] > metrics["random"]["accuracy"]
    assert metrics["imitate_user_task"]["accuracy"] > metrics["random"]["accuracy"]


@pytest.mark.parametrize("name", LEARNED)
def test_learned_routers_imitate_users(name, metrics):
    """On the plain fixture the embeddings carry the task but not the query's difficulty.

    The users' choices then depend on per-query outcomes no router can see, so the
    learned routers can only recover each user's most likely choice per task: they
    beat random on accuracy by far, but the most likely choice (often a cheap LLM
    that happened to be right) is not the best expected reward, and random can win
    on reward there (see ``test_learned_routers_beat_random_with_informative_queries``).
    """
    assert metrics[name]["accuracy"] > 1.5 * metrics["random"]["accuracy"]
    assert metrics[name]["accuracy"] > metrics["imitate_user"]["accuracy"] - 0.02


@pytest.fixture(scope="module")
def informative(routing_data) -> RoutingData:
    """The fixture with query embeddings that carry a noisy signal of the query's outcomes."""
    rng = np.random.default_rng(0)
    signal = routing_data.performance + 0.3 * rng.normal(size=routing_data.performance.shape)
    emb = np.hstack([routing_data.query_emb, signal]).astype(np.float32)
    return dataclasses.replace(routing_data, query_emb=emb)


def test_learned_routers_beat_random_with_informative_queries(informative, routing_split):
    got = {
        name: evaluate(make(name).fit(informative, routing_split), informative, routing_split)
        for name in ["random", *LEARNED]
    }
    for name in LEARNED:
        assert got[name].reward > got["random"].reward + 0.05, name
        assert got[name].accuracy > got["random"].accuracy + 0.2, name


def _corrupted(data: RoutingData, split: Split) -> RoutingData:
    """Everything a router must not read, changed: test labels, rewards and outcomes, and
    alphas."""
    rng = np.random.default_rng(1)
    n_llms = data.num_llms
    dec_llm = data.dec_llm.copy()
    on_test = split.test[data.dec_query]
    dec_llm[on_test] = (dec_llm[on_test] + rng.integers(1, n_llms, on_test.sum())) % n_llms
    performance, cost = data.performance.copy(), data.cost.copy()
    performance[split.test] = rng.random((split.test.sum(), n_llms))
    cost[split.test] = rng.random((split.test.sum(), n_llms)) * np.nanmax(data.cost)
    return dataclasses.replace(
        data,
        dec_llm=dec_llm,
        dec_reward=np.where(on_test, rng.random(len(on_test)), data.dec_reward),
        performance=performance,
        cost=cost,
        user_alpha=rng.random(len(data.user_alpha)),
    )


@pytest.mark.parametrize("name", NAMES)
def test_no_router_reads_test_labels(name, fitted, routing_data, routing_split):
    users, queries = _test_pairs(routing_data, routing_split)
    corrupted = _corrupted(routing_data, routing_split)
    clean = fitted[name].score(routing_data, users, queries)
    if name == "oracle":  # the upper bound reads the labels by design
        assert not np.array_equal(fitted[name].score(corrupted, users, queries), clean)
        return
    # Scoring must not read the routed queries' labels or outcomes ...
    np.testing.assert_array_equal(fitted[name].score(corrupted, users, queries), clean)
    # ... and fitting must not read them (nor any user's alpha) either.
    refit = make(name).fit(corrupted, routing_split)
    np.testing.assert_array_equal(refit.score(corrupted, users, queries), clean)


@pytest.mark.parametrize("name", [n for n in NAMES if n != "oracle"])
def test_user_without_training_decisions(name, routing_data, routing_split):
    """A user with no training decisions still gets finite scores (the fallbacks)."""
    keep = ~((routing_data.dec_user == 0) & routing_split.train[routing_data.dec_query])
    data = routing_data.with_decisions(keep)
    router = make(name).fit(data, routing_split)
    queries = np.flatnonzero(routing_split.test)
    scores = router.score(data, np.zeros(len(queries), dtype=np.int64), queries)
    assert np.isfinite(scores).all()
    if name == "imitate_user":
        train = routing_split.train[data.dec_query]
        favourite = np.bincount(data.dec_llm[train], minlength=data.num_llms).argmax()
        assert (scores.argmax(axis=1) == favourite).all()


@pytest.mark.parametrize("name", OUTCOMES)
def test_outcome_routers_beat_the_imitators_on_reward(name, metrics):
    """Predicting outcomes and trading them off with each user's weight beats repeating
    choices made with the outcomes in view (the plain fixture: the task is the signal)."""
    assert metrics[name]["reward"] > metrics["random"]["reward"]
    assert metrics[name]["reward"] > metrics["imitate_user"]["reward"] - 0.01


def test_outcome_routers_beat_random_with_informative_queries(informative, routing_split):
    got = {
        name: evaluate(make(name).fit(informative, routing_split), informative, routing_split)
        for name in ["random", "best_llm_per_user_task", "knn_outcomes", "logistic_outcomes"]
    }
    for name in ["knn_outcomes", "logistic_outcomes"]:
        assert got[name].reward > got["best_llm_per_user_task"].reward + 0.02, name
