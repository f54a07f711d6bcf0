"""Always route to the LLM with the lowest mean cost on the training queries."""

from __future__ import annotations

import numpy as np

from gnn.data import RoutingData, Split
from gnn.routers.base import Router, train_mean_cost

__all__ = ["CheapestRouter"]


class CheapestRouter(Router):
    """Scores each LLM by minus its mean training cost (unseen LLMs never win)."""

    name = "cheapest"

    def _fit(self, data: RoutingData, split: Split) -> None:
        self.mean_cost_ = train_mean_cost(data, split)

    def score(self, data: RoutingData, users: np.ndarray, queries: np.ndarray) -> np.ndarray:
        row = np.nan_to_num(-self.mean_cost_, nan=-np.inf)
        return np.broadcast_to(row, (len(queries), len(row))).copy()
