"""Bradley-Terry per task: each task's LLM strengths, shrunk to the global ones."""

from __future__ import annotations

import numpy as np

from gnn.data import RoutingData, Split
from gnn.preference.base import BradleyTerryRouter, votes_of
from gnn.preference.shrinkage import fit_shrunk, global_fit

__all__ = ["TaskBradleyTerryRouter"]


class TaskBradleyTerryRouter(BradleyTerryRouter):
    """``score(u, q, l) = theta[task(q), l]``; the shrinkage is tuned on validation votes."""

    name = "bt_task"

    def _fit(self, data: RoutingData, split: Split) -> None:
        train, val = votes_of(data, split.train), votes_of(data, split.val)
        ties = self.training_ties(data, split.train)
        base, self.tie_weight = global_fit(train, ties, data.num_llms, self.ties)
        self.theta, self.chosen_l2 = fit_shrunk(
            train,
            val,
            lambda v: data.query_task[v.query],
            len(data.task_ids),
            base,
            self.l2,
            ties,
            self.ties,
        )

    def score(self, data: RoutingData, users: np.ndarray, queries: np.ndarray) -> np.ndarray:
        return self.theta[data.query_task[queries]]
