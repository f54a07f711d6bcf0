"""kNN outcome regression (RouterBench style), combined with each user's weight.

An LLM's predicted performance and normalised cost on a query are the plain
means of its observed outcomes on the ``k`` training queries most similar to
it (cosine over ``query_emb``); where none of them has an outcome of the LLM,
the (task, LLM) training mean. ``k`` is chosen on validation from ``ks``
(:meth:`~gnn.routers.baselines.outcomes.OutcomeRouter.validation_utility`;
ties: the smaller k).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gnn.data import RoutingData, Split
from gnn.neighbours import nearest, unit_rows
from gnn.routers.baselines.outcomes import OutcomeRouter, nan_mean

__all__ = ["KNNOutcomesRouter"]


class KNNOutcomesRouter(OutcomeRouter):
    """Mean outcomes of the k nearest training queries; k tuned on validation."""

    name = "knn_outcomes"

    def __init__(
        self, seed: int = 0, *, ks: Sequence[int] = (5, 10, 20, 50, 100), batch_size: int = 512
    ) -> None:
        if not ks or min(ks) < 1:
            raise ValueError(f"ks must be positive, got {list(ks)}")
        super().__init__(seed, ks=tuple(ks))
        self.ks = tuple(sorted(ks))
        self.batch_size = batch_size

    def _fit_outcomes(self, data: RoutingData, split: Split, cost_norm: np.ndarray) -> None:
        train = np.flatnonzero(split.train)
        self.emb_ = unit_rows(data.query_emb[train])
        self.perf_ = data.performance[train]
        self.cost_ = cost_norm[train]
        self.k_ = self.ks[0]
        val = np.flatnonzero(split.val)
        if len(val) and len(self.ks) > 1:
            scores = {}
            for k in self.ks:
                self.k_ = k
                scores[k] = self.validation_utility(data, split, cost_norm, self.predict(data, val))
            self.k_ = max(self.ks, key=lambda k: (scores[k], -k))
            self.validation_ = scores

    def predict(self, data: RoutingData, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        queries = np.asarray(queries, dtype=np.int64)
        emb = unit_rows(data.query_emb[queries])
        # Top k by similarity; exact ties go to the earlier training query.
        top = nearest(emb, self.emb_, self.k_, batch=self.batch_size, normalised=True).indices
        perf = np.full((len(queries), data.num_llms), np.nan)
        cost = perf.copy()
        for start in range(0, len(queries), self.batch_size):
            rows = slice(start, start + self.batch_size)
            perf[rows] = nan_mean(self.perf_[top[rows]], axis=1)
            cost[rows] = nan_mean(self.cost_[top[rows]], axis=1)
        fallback_perf, fallback_cost = self.task_means_.predict(data, queries)
        return (
            np.where(np.isnan(perf), fallback_perf, perf),
            np.where(np.isnan(cost), fallback_cost, cost),
        )
