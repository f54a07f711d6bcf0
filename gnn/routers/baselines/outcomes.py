"""Predict-then-optimise routing: predicted outcomes traded off with each user's weight.

An :class:`OutcomeRouter` predicts every LLM's performance and normalised cost
on a query (costs min-max normalised per task with the *training* queries'
ranges, as the GNN does), estimates each user's weight once from the training
decisions and judgements (:func:`gnn.weights.estimate_user_weights`, the
estimator every router shares) and scores::

    score(u, q, l) = alpha_u * perf_hat(q, l) - (1 - alpha_u) * cost_hat(q, l)

Outcome models train on the observed (non-NaN) training outcomes only; they
never read decisions, so onboarding a new user only sets its weight
(:meth:`OutcomeRouter.onboarded`). Hyperparameters are chosen on validation by
:meth:`OutcomeRouter.validation_utility`: the mean utility, under the
estimated weights, of the observed outcomes of the LLMs picked for the
validation decisions (for every validation query at the prior weight when
there are none).
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from gnn.data import RoutingData, Split
from gnn.routers.base import Router, training_decisions
from gnn.validation import validation_pairs
from gnn.weights import UserWeights, estimate_user_weights
from prcore.utility import utility

__all__ = ["OutcomeRouter", "TaskMeans", "nan_mean"]


def nan_mean(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """Mean over ``axis`` ignoring NaN; NaN where nothing is observed (no warning)."""
    seen = ~np.isnan(values)
    total = np.where(seen, values, 0.0).sum(axis=axis)
    count = seen.sum(axis=axis)
    return np.divide(total, count, out=np.full(total.shape, np.nan), where=count > 0)


@dataclass(frozen=True)
class TaskMeans:
    """Mean observed performance and normalised cost per (task, LLM) over training queries;
    an empty cell takes the LLM's mean over all training queries (NaN if never observed)."""

    perf: np.ndarray  # (T, L)
    cost: np.ndarray  # (T, L)

    @classmethod
    def fit(cls, data: RoutingData, train: np.ndarray, cost_norm: np.ndarray) -> TaskMeans:
        n_t = len(data.task_ids)
        out = []
        for values in (data.performance, cost_norm):
            overall = nan_mean(values[train])
            cells = np.stack([nan_mean(values[train & (data.query_task == t)]) for t in range(n_t)])
            out.append(np.where(np.isnan(cells), overall[None, :], cells))
        return cls(out[0].reshape(n_t, -1), out[1].reshape(n_t, -1))

    def predict(self, data: RoutingData, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        tasks = data.query_task[queries]
        return self.perf[tasks], self.cost[tasks]


class OutcomeRouter(Router):
    """Scores by each user's expected utility over predicted outcomes (module docstring)."""

    def _fit(self, data: RoutingData, split: Split) -> None:
        cost_norm = data.cost_norm(split.train)
        self.weights_ = self.estimate_weights(data, split, cost_norm)
        self.task_means_ = TaskMeans.fit(data, split.train, cost_norm)
        self._fit_outcomes(data, split, cost_norm)

    @staticmethod
    def estimate_weights(data: RoutingData, split: Split, cost_norm: np.ndarray) -> UserWeights:
        """The shared estimator on the training decisions and judgements of ``split``."""
        return estimate_user_weights(
            data,
            training_decisions(data, split.train),
            cost_norm,
            judgements=np.flatnonzero(split.train[data.pref_query]),
        )

    @abc.abstractmethod
    def _fit_outcomes(self, data: RoutingData, split: Split, cost_norm: np.ndarray) -> None:
        """Fit the outcome model on the observed training outcomes (validation to select)."""

    @abc.abstractmethod
    def predict(self, data: RoutingData, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, L) predicted performance and normalised cost of every LLM on ``queries``."""

    def score(self, data: RoutingData, users: np.ndarray, queries: np.ndarray) -> np.ndarray:
        queries = np.asarray(queries, dtype=np.int64)
        unique, inverse = np.unique(queries, return_inverse=True)
        perf, cost = self.predict(data, unique)
        alpha = self.weights_.of(np.asarray(users, dtype=np.int64))[:, None]
        return utility(alpha, perf[inverse], cost[inverse])

    def validation_utility(
        self,
        data: RoutingData,
        split: Split,
        cost_norm: np.ndarray,
        predicted: tuple[np.ndarray, np.ndarray],
    ) -> float:
        """Mean estimated-weight utility of the picks (:mod:`gnn.validation`), given
        ``predicted`` outcomes of the validation queries (in ``np.flatnonzero(split.val)``
        order)."""
        pairs = validation_pairs(data, split, self.weights_)
        row_of = np.full(len(data.query_ids), -1)
        row_of[np.flatnonzero(split.val)] = np.arange(int(split.val.sum()))
        perf, cost = (p[row_of[pairs.queries]] for p in predicted)
        return pairs.utility_of(data, cost_norm, utility(pairs.alpha[:, None], perf, cost))

    def reestimated(self, data: RoutingData, split: Split) -> OutcomeRouter:
        """This router (outcome models shared, not copied) with the weights estimated from
        ``data``'s training decisions, e.g. without some users' decisions."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.weights_ = self.estimate_weights(data, split, data.cost_norm(split.train))
        return clone

    @contextmanager
    def onboarded(
        self, data: RoutingData, split: Split, decisions: np.ndarray
    ) -> Iterator[OutcomeRouter]:
        """Within the block, the users of ``decisions`` (indices) have the weight estimated
        from those decisions alone (the shared estimator); others are unchanged."""
        saved = self.weights_
        new = estimate_user_weights(data, decisions, data.cost_norm(split.train))
        users = np.unique(data.dec_user[np.asarray(decisions, dtype=np.int64)])
        users = users[new.source[users] != "prior"]
        self.weights_ = saved.with_users(new, users)
        try:
            yield self
        finally:
            self.weights_ = saved
