"""Per-user Bradley-Terry shrunk to the global fit (the shrinkage tuned on validation).

``theta_u = theta_global + delta_u`` with ``delta_u ~ N(0, 1 / l2)``: a user
with few votes stays near everyone's ranking. New users are onboarded by
fitting their ``delta_u`` on their votes, the global fit and ``l2`` unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from gnn.data import RoutingData, Split
from gnn.preference.base import PreferenceRouter, Votes, votes_of
from gnn.preference.bradley_terry import fit_bradley_terry
from gnn.preference.shrinkage import fit_shrunk

__all__ = ["UserBradleyTerryRouter"]


class UserBradleyTerryRouter(PreferenceRouter):
    """``score(u, q, l) = theta[u, l]`` (see the module docstring)."""

    name = "bt_user"
    personalized = True

    def __init__(self, seed: int = 0, *, l2: float | None = None, **config: object) -> None:
        super().__init__(seed, l2=l2, **config)
        self.l2 = l2

    def _fit(self, data: RoutingData, split: Split) -> None:
        train, val = votes_of(data, split.train), votes_of(data, split.val)
        self.global_theta = fit_bradley_terry(train.win, train.lose, data.num_llms, l2=1e-2)[0]
        self.theta, self.chosen_l2 = fit_shrunk(
            train, val, lambda v: v.user, len(data.user_ids), self.global_theta, self.l2
        )

    def score(self, data: RoutingData, users: np.ndarray, queries: np.ndarray) -> np.ndarray:
        return self.theta[users]

    @contextmanager
    def onboarded_pairs(self, data: RoutingData, votes: Votes) -> Iterator[None]:
        saved = self.theta.copy()
        users = np.unique(votes.user)
        row = np.searchsorted(users, votes.user)
        fitted = fit_bradley_terry(
            votes.win,
            votes.lose,
            len(self.global_theta),
            group=row,
            n_groups=len(users),
            prior=self.global_theta,
            l2=self.chosen_l2,
        )
        self.theta[users] = fitted
        try:
            yield
        finally:
            self.theta = saved
