"""Always route to the LLM with the lowest mean cost on the training queries."""

from __future__ import annotations

import numpy as np

from gnn.data import RoutingData, Split
from gnn.routers.base import Router

__all__ = ["CheapestRouter", "train_mean_cost"]


def train_mean_cost(data: RoutingData, split: Split) -> np.ndarray:
    """(L,) mean cost of each LLM over the training queries (NaN if never answered)."""
    rows = data.cost[split.train]
    seen = ~np.isnan(rows)
    total = np.where(seen, rows, 0.0).sum(axis=0)
    count = seen.sum(axis=0)
    return np.divide(total, count, out=np.full(data.num_llms, np.nan), where=count > 0)


class CheapestRouter(Router):
    """Scores each LLM by minus its mean training cost (unseen LLMs never win)."""

    name = "cheapest"

    def _fit(self, data: RoutingData, split: Split) -> None:
        self.mean_cost_ = train_mean_cost(data, split)

    def score(self, data: RoutingData, users: np.ndarray, queries: np.ndarray) -> np.ndarray:
        row = np.nan_to_num(-self.mean_cost_, nan=-np.inf)
        return np.broadcast_to(row, (len(queries), len(row))).copy()
