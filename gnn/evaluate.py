"""Metrics of a router on one part of a split, per the design's evaluation protocol.

For every decision (user, query) in the part, the router picks an LLM and we
report its Performance (score of the chosen LLM), Cost (USD), Reward (under
the user's own alpha, where the user is simulated and has one), and Accuracy
(the pick equals the user's choice). The oracle picks the best-reward LLM for
users with an alpha, else the user's own choice; ``*_of_oracle`` divide by it.

Pairwise judgements (``PREFERRED``) of the part are scored separately: the
share of non-tie judgements where the router scores the preferred LLM above
the other (an exact score tie counts half); tie judgements are excluded and
counted (``pairwise_ties``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from gnn.data import RoutingData, Split
from gnn.routers.base import Router
from prcore.utility import best_llm

__all__ = [
    "Metrics",
    "evaluate",
    "metrics_by_user",
    "metrics_for_choices",
    "oracle_choices",
    "pairwise_accuracy",
    "with_pairwise",
]


@dataclass(frozen=True)
class Metrics:
    """Mean metrics over the decisions of one part (and their count)."""

    n: int
    performance: float
    cost: float
    reward: float
    accuracy: float
    performance_of_oracle: float
    reward_of_oracle: float
    pairwise_accuracy: float = float("nan")
    pairwise_n: int = 0
    pairwise_ties: int = 0

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def oracle_choices(
    data: RoutingData,
    users: np.ndarray,
    queries: np.ndarray,
    chosen: np.ndarray,
    reward: np.ndarray | None = None,
) -> np.ndarray:
    """Best-reward LLM for simulated users (alpha known); the user's own choice otherwise.

    ``reward`` is ``data.reward(users, queries)`` when the caller has it already.
    """

    if reward is None:
        reward = data.reward(users, queries)
    best = best_llm(reward, data.cost[queries])
    known = ~np.isnan(data.user_alpha[users])
    return np.where(known, best, chosen)


def metrics_for_choices(data: RoutingData, idx: np.ndarray, picks: np.ndarray) -> Metrics:
    """Metrics of ``picks`` (an LLM per decision in ``idx``); NaN when ``idx`` is empty."""
    if len(idx) == 0:
        nan = float("nan")
        return Metrics(0, nan, nan, nan, nan, nan, nan)
    users, queries, chosen = data.dec_user[idx], data.dec_query[idx], data.dec_llm[idx]
    rows = np.arange(len(idx))
    reward = data.reward(users, queries)
    oracle = oracle_choices(data, users, queries, chosen, reward)
    perf = data.performance[queries, picks]
    oracle_perf = data.performance[queries, oracle]
    r = reward[rows, picks]
    oracle_r = reward[rows, oracle]
    has_alpha = ~np.isnan(r)
    mean_r = float(np.mean(r[has_alpha])) if has_alpha.any() else float("nan")
    mean_oracle_r = float(np.mean(oracle_r[has_alpha])) if has_alpha.any() else float("nan")
    return Metrics(
        n=len(idx),
        performance=float(np.mean(perf)),
        cost=float(np.mean(data.cost[queries, picks])),
        reward=mean_r,
        accuracy=float(np.mean(picks == chosen)),
        performance_of_oracle=float(np.mean(perf) / np.mean(oracle_perf)),
        reward_of_oracle=mean_r / mean_oracle_r if mean_oracle_r else float("nan"),
    )


def pairwise_accuracy(
    router: Router, data: RoutingData, mask: np.ndarray
) -> tuple[float, int, int]:
    """(accuracy, judgements, ties) on the pairwise judgements of the queries in ``mask``
    (NaN accuracy for routers whose scores do not rank pairs, e.g. the oracle)."""
    idx = np.flatnonzero(mask[data.pref_query])
    ties = int(mask[data.tie_query].sum())
    if len(idx) == 0 or not router.scores_pairs:
        return float("nan"), 0, ties
    margin = router.pair_margin(
        data, data.pref_user[idx], data.pref_query[idx], data.pref_win[idx], data.pref_lose[idx]
    )
    return float(np.mean((margin > 0) + 0.5 * (margin == 0))), len(idx), ties


def metrics_by_user(data: RoutingData, idx: np.ndarray, picks: np.ndarray) -> dict[int, Metrics]:
    """:func:`metrics_for_choices` of each user's decisions among ``idx`` (user row -> metrics)."""
    users = data.dec_user[idx]
    return {
        int(u): metrics_for_choices(data, idx[users == u], picks[users == u])
        for u in np.unique(users)
    }


def evaluate(router: Router, data: RoutingData, split: Split, part: str = "test") -> Metrics:
    """Metrics of a fitted router on the decisions and judgements of ``part`` of ``split``."""
    idx = np.flatnonzero(split.of(part)[data.dec_query])
    picks = router.route(data, data.dec_user[idx], data.dec_query[idx])
    return with_pairwise(metrics_for_choices(data, idx, picks), router, data, split.of(part))


def with_pairwise(metrics: Metrics, router: Router, data: RoutingData, mask: np.ndarray) -> Metrics:
    """``metrics`` with the pairwise accuracy of ``router`` on the judgements in ``mask``."""
    accuracy, n, ties = pairwise_accuracy(router, data, mask)
    return replace(metrics, pairwise_accuracy=accuracy, pairwise_n=n, pairwise_ties=ties)
