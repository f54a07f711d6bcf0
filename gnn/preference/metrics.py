"""Pairwise-preference metrics: accuracy (ties excluded and counted), log-loss, Brier."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from gnn.data import RoutingData
from gnn.preference.base import PreferenceRouter, Votes
from gnn.routers.base import Router

__all__ = [
    "PairMetrics",
    "pair_metrics",
    "pair_probability",
    "per_vote",
    "score_votes",
    "vote_outcomes",
]

NAN = float("nan")


@dataclass(frozen=True)
class PairMetrics:
    """Over ``n`` non-tie votes: share where the winner was ranked first (an exact tie of
    the scores counts half), mean log-loss and Brier score of the predicted probability
    that the winner wins (NaN for routers without probabilities); ``ties`` tie votes."""

    accuracy: float
    log_loss: float
    brier: float
    n: int
    ties: int

    def as_dict(self) -> dict[str, float | None]:
        """The fields, NaN as None (JSON has no NaN)."""
        return {k: None if v != v else v for k, v in asdict(self).items()}


def pair_metrics(margin: np.ndarray, prob: np.ndarray | None, ties: int) -> PairMetrics:
    """Metrics from each vote's margin (> 0: the winner ranked first) and probability."""
    if len(margin) == 0:
        return PairMetrics(NAN, NAN, NAN, 0, ties)
    correct, loss = per_vote(margin, prob)
    if prob is None:
        return PairMetrics(float(np.mean(correct)), NAN, NAN, len(margin), ties)
    brier = float(np.mean((1 - np.clip(prob, 1e-6, 1 - 1e-6)) ** 2))
    return PairMetrics(float(np.mean(correct)), float(np.mean(loss)), brier, len(margin), ties)


def pair_probability(
    router: Router, data: RoutingData, votes: Votes, first: np.ndarray, second: np.ndarray
) -> np.ndarray | None:
    """P(votes.user prefers first over second), or None when the router has no such
    probability (then only its ranking is scored). The GNNs' pair margin is their choice
    probability minus 1/2."""
    from gnn.train import GNNRouter

    args = (data, votes.user, votes.query, first, second)
    if isinstance(router, PreferenceRouter):
        return router.pair_probability(*args)
    if isinstance(router, GNNRouter):
        return np.clip(router.pair_margin(*args) + 0.5, 0.0, 1.0)
    return None


def vote_outcomes(
    router: Router, data: RoutingData, votes: Votes
) -> tuple[np.ndarray, np.ndarray | None]:
    """Per vote of a fitted router: the margin (> 0: the winner ranked first) and the
    probability that the winner wins (None: the router gives none)."""
    prob = pair_probability(router, data, votes, votes.win, votes.lose)
    if prob is not None:
        return prob - 0.5, prob
    return router.pair_margin(data, votes.user, votes.query, votes.win, votes.lose), None


def per_vote(margin: np.ndarray, prob: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Per vote: 1 where the winner was ranked first (1/2 on an exact tie of the scores),
    and the log-loss of the winner's probability (NaN without probabilities)."""
    correct = (margin > 0) + 0.5 * (margin == 0)
    if prob is None:
        return correct, np.full(len(margin), NAN)
    return correct, -np.log(np.clip(prob, 1e-6, 1 - 1e-6))


def score_votes(router: Router, data: RoutingData, votes: Votes, ties: int) -> PairMetrics:
    """:class:`PairMetrics` of a fitted router on ``votes``."""
    if len(votes) == 0 or not router.scores_pairs:
        return PairMetrics(NAN, NAN, NAN, len(votes) if router.scores_pairs else 0, ties)
    return pair_metrics(*vote_outcomes(router, data, votes), ties)
