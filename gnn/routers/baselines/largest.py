"""Always route to the biggest LLM: the one with the highest mean training cost."""

from __future__ import annotations

import numpy as np

from gnn.data import RoutingData, Split
from gnn.routers.base import Router, train_mean_cost

__all__ = ["LargestRouter"]


class LargestRouter(Router):
    """Scores each LLM by its mean training cost (price as a proxy for size)."""

    name = "largest"

    def _fit(self, data: RoutingData, split: Split) -> None:
        self.mean_cost_ = train_mean_cost(data, split)

    def score(self, data: RoutingData, users: np.ndarray, queries: np.ndarray) -> np.ndarray:
        row = np.nan_to_num(self.mean_cost_, nan=-np.inf)
        return np.broadcast_to(row, (len(queries), len(row))).copy()
