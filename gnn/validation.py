"""The routing objective on validation queries, from what training may observe.

Every router that tunes something for routing (a baseline's hyper-parameters, the
GNN's residual scale) scores its candidates the same way: the validation
decisions' (user, query) pairs, or every validation query at the population
prior weight when there are none; the LLM each pair is routed to; the mean
utility of that LLM's *observed* outcome under the user's weight estimated by
:func:`gnn.weights.estimate_user_weights` from training data. LLMs without an
observed outcome on a validation query are not picked there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gnn.data import RoutingData, Split
from gnn.routers.base import training_decisions
from gnn.weights import UserWeights
from prcore.utility import utility

__all__ = ["ValidationPairs", "validation_pairs"]


@dataclass(frozen=True)
class ValidationPairs:
    """The pairs a router is scored on: user rows (-1: the prior user), queries, weights."""

    users: np.ndarray
    queries: np.ndarray
    alpha: np.ndarray

    def utilities(self, data: RoutingData, cost_norm: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """(N,) utility of the observed outcome of each pair's best-``scores`` LLM ((N, L)
        scores over the pairs); NaN where the pair has no observed outcome."""
        true_perf, true_cost = data.performance[self.queries], cost_norm[self.queries]
        scores = np.where(np.isnan(true_perf) | np.isnan(scores), -np.inf, scores)
        picks = scores.argmax(axis=1)
        rows = np.arange(len(self.queries))
        got = utility(self.alpha, true_perf[rows, picks], true_cost[rows, picks])
        return np.where(np.isfinite(got), got, np.nan)

    def utility_of(self, data: RoutingData, cost_norm: np.ndarray, scores: np.ndarray) -> float:
        """Mean of :meth:`utilities`; -inf when no pair has an observed outcome."""
        got = self.utilities(data, cost_norm, scores)
        return float(np.nanmean(got)) if not np.isnan(got).all() else float("-inf")


def validation_pairs(data: RoutingData, split: Split, weights: UserWeights) -> ValidationPairs:
    """The validation decisions' pairs with the users' estimated weights, or every
    validation query for the prior user (row -1) when there are no validation decisions."""
    idx = training_decisions(data, split.val)
    if len(idx):
        users = data.dec_user[idx]
        return ValidationPairs(users, data.dec_query[idx], weights.of(users))
    val = np.flatnonzero(split.val)
    return ValidationPairs(np.full(len(val), -1), val, np.full(len(val), weights.prior))
