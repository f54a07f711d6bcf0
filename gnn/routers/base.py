"""The router interface: one abstract scorer, one shared ``route``.

A router is fitted on the training queries of a :class:`gnn.data.Split`
(it may use the validation queries for early stopping and model selection,
never the test queries) and then scores every candidate LLM for (user, query)
pairs. ``route`` picks the best available LLM; exact score ties go to the LLM
that was cheaper on the training queries.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import numpy as np

from gnn.data import RoutingData, Split

__all__ = ["Router", "train_mean_cost", "training_decisions"]


def training_decisions(data: RoutingData, mask: np.ndarray) -> np.ndarray:
    """Indices of the decisions whose query is in ``mask``."""
    return np.flatnonzero(mask[data.dec_query])


def train_mean_cost(data: RoutingData, split: Split) -> np.ndarray:
    """(L,) mean cost of each LLM over the training queries (NaN if never answered)."""
    rows = data.cost[split.train]
    seen = ~np.isnan(rows)
    total = np.where(seen, rows, 0.0).sum(axis=0)
    count = seen.sum(axis=0)
    return np.divide(total, count, out=np.full(data.num_llms, np.nan), where=count > 0)


class Router(abc.ABC):
    """Scores candidate LLMs for (user, query) pairs; see the module docstring."""

    name: ClassVar[str] = ""
    #: Whether scores rank any two LLMs (pairwise accuracy); False for the oracle.
    scores_pairs: ClassVar[bool] = True

    def __init__(self, seed: int = 0, **config: Any) -> None:
        self.seed = seed
        self.config = config
        self._cost_rank: np.ndarray | None = None

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v}" for k, v in self.config.items())
        return f"{type(self).__name__}(seed={self.seed}{extra})"

    def fit(self, data: RoutingData, split: Split) -> Router:
        """Learn from the training (and validation) part of ``split``; returns self."""
        self._set_cost_rank(data, split)
        self._fit(data, split)
        return self

    def _set_cost_rank(self, data: RoutingData, split: Split) -> None:
        """Rank of each LLM's mean training cost: the tie-break of :meth:`route`."""
        train_cost = train_mean_cost(data, split)
        self._cost_rank = np.argsort(np.argsort(np.nan_to_num(train_cost, nan=np.inf)))

    @abc.abstractmethod
    def _fit(self, data: RoutingData, split: Split) -> None: ...

    @abc.abstractmethod
    def score(self, data: RoutingData, users: np.ndarray, queries: np.ndarray) -> np.ndarray:
        """(N, L) scores, higher is better, for the pairs (users[i], queries[i])."""

    def pair_margin(
        self,
        data: RoutingData,
        users: np.ndarray,
        queries: np.ndarray,
        first: np.ndarray,
        second: np.ndarray,
    ) -> np.ndarray:
        """(N,) positive where the router expects users[i] to prefer LLM first[i] over
        second[i] on queries[i], negative for the reverse, 0 for no preference. By
        default the difference of the two scores."""
        scores = self.score(data, users, queries)
        rows = np.arange(len(users))
        return scores[rows, first] - scores[rows, second]

    def route(self, data: RoutingData, users: np.ndarray, queries: np.ndarray) -> np.ndarray:
        """The chosen LLM index per pair, among LLMs with an outcome for the query."""
        if self._cost_rank is None:
            raise RuntimeError(f"{type(self).__name__} must be fitted before routing")
        scores = np.asarray(self.score(data, users, queries), dtype=float)
        available = data.candidates(queries)
        scores = np.where(available & ~np.isnan(scores), scores, -np.inf)
        best = scores.max(axis=1, keepdims=True)
        # Among the best scores, the LLM that was cheapest on training queries.
        rank = np.where(scores == best, self._cost_rank[None, :], np.iinfo(np.int64).max)
        return rank.argmin(axis=1)
