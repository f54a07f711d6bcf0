"""Bradley-Terry per task: each task's LLM strengths, shrunk to the global ones."""

from __future__ import annotations

import numpy as np

from gnn.data import RoutingData, Split
from gnn.preference.base import PreferenceRouter, votes_of
from gnn.preference.bradley_terry import fit_bradley_terry
from gnn.preference.shrinkage import fit_shrunk

__all__ = ["TaskBradleyTerryRouter"]


class TaskBradleyTerryRouter(PreferenceRouter):
    """``score(u, q, l) = theta[task(q), l]``; the shrinkage is tuned on validation votes."""

    name = "bt_task"

    def __init__(self, seed: int = 0, *, l2: float | None = None, **config: object) -> None:
        super().__init__(seed, l2=l2, **config)
        self.l2 = l2

    def _fit(self, data: RoutingData, split: Split) -> None:
        train, val = votes_of(data, split.train), votes_of(data, split.val)
        base = fit_bradley_terry(train.win, train.lose, data.num_llms, l2=1e-2)[0]
        self.theta, self.chosen_l2 = fit_shrunk(
            train, val, lambda v: data.query_task[v.query], len(data.task_ids), base, self.l2
        )

    def score(self, data: RoutingData, users: np.ndarray, queries: np.ndarray) -> np.ndarray:
        return self.theta[data.query_task[queries]]
