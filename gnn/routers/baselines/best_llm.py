"""The best single LLM per user, and per (user, task), by the user's estimated mean reward.

The mean reward of an LLM over the training queries under the user's weight is
``alpha_u * mean(perf) - (1 - alpha_u) * mean(cost_norm)`` (utility is linear),
so both routers predict the mean observed outcomes: over all training queries
(per user), or over the training queries of the query's task (per (user,
task); a task without an observed outcome of an LLM falls back to its mean
over all training queries).
"""

from __future__ import annotations

import numpy as np

from gnn.data import RoutingData, Split
from gnn.routers.baselines.outcomes import OutcomeRouter, nan_mean

__all__ = ["BestLLMPerUserRouter", "BestLLMPerUserTaskRouter"]


class BestLLMPerUserRouter(OutcomeRouter):
    """Per user, the LLM with the best mean training reward under the user's weight."""

    name = "best_llm_per_user"

    def _fit_outcomes(self, data: RoutingData, split: Split, cost_norm: np.ndarray) -> None:
        self.perf_ = nan_mean(data.performance[split.train])
        self.cost_ = nan_mean(cost_norm[split.train])

    def predict(self, data: RoutingData, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        shape = (len(queries), data.num_llms)
        return np.broadcast_to(self.perf_, shape), np.broadcast_to(self.cost_, shape)


class BestLLMPerUserTaskRouter(OutcomeRouter):
    """Per (user, task), the LLM with the best mean training reward under the user's weight."""

    name = "best_llm_per_user_task"

    def _fit_outcomes(self, data: RoutingData, split: Split, cost_norm: np.ndarray) -> None:
        pass  # the task means every outcome router fits

    def predict(self, data: RoutingData, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.task_means_.predict(data, queries)
