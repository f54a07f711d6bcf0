"""The LLM each user chose most often on the training queries (overall or per task).

Scores nest the fallbacks: the most specific counts decide, and the coarser
levels (per user, then all users) only break their ties, which also covers
users or (user, task) pairs without training decisions.
"""

from __future__ import annotations

import numpy as np

from gnn.data import RoutingData, Split
from gnn.routers.base import Router, training_decisions

__all__ = ["ImitateUserRouter", "ImitateUserTaskRouter"]


def _nest(counts: np.ndarray, tie_break: np.ndarray, bound: np.ndarray | float) -> np.ndarray:
    """``counts`` (integers) with ``tie_break`` in [0, bound] ordering only their ties."""
    return counts + 0.5 * tie_break / np.asarray(bound)


class _ChoiceCounts(Router):
    """Shared fitting: counts of training decisions per user (and task) and LLM."""

    def _fit(self, data: RoutingData, split: Split) -> None:
        idx = training_decisions(data, split.train)
        users, llms = data.dec_user[idx], data.dec_llm[idx]
        tasks = data.query_task[data.dec_query[idx]]
        n_u, n_t, n_l = len(data.user_ids), len(data.task_ids), data.num_llms
        self.global_counts_ = np.bincount(llms, minlength=n_l).astype(float)
        self.user_counts_ = np.zeros((n_u, n_l))
        np.add.at(self.user_counts_, (users, llms), 1.0)
        self.user_task_counts_ = np.zeros((n_u, n_t, n_l))
        np.add.at(self.user_task_counts_, (users, tasks, llms), 1.0)

    def _user_level(self, users: np.ndarray) -> np.ndarray:
        """(N, L) per-user counts, ties broken by the global share; unknown users: global."""
        share = self.global_counts_ / max(self.global_counts_.sum(), 1.0)
        known = users < len(self.user_counts_)
        counts = np.zeros((len(users), len(share)))
        counts[known] = self.user_counts_[users[known]]
        return _nest(counts, share[None, :], 1.0)


class ImitateUserRouter(_ChoiceCounts):
    """Per user, the LLM they chose most on training queries; else the global favourite."""

    name = "imitate_user"

    def score(self, data: RoutingData, users: np.ndarray, queries: np.ndarray) -> np.ndarray:
        return self._user_level(np.asarray(users, dtype=np.int64))


class ImitateUserTaskRouter(_ChoiceCounts):
    """Per (user, task) favourite; falls back to the per-user, then the global favourite."""

    name = "imitate_user_task"

    def score(self, data: RoutingData, users: np.ndarray, queries: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        tasks = data.query_task[np.asarray(queries, dtype=np.int64)]
        user_level = self._user_level(users)
        known = (users < len(self.user_counts_)) & (tasks < self.user_task_counts_.shape[1])
        counts = np.zeros_like(user_level)
        counts[known] = self.user_task_counts_[users[known], tasks[known]]
        bound = user_level.max(axis=1, keepdims=True) + 1.0
        return _nest(counts, user_level, bound)
