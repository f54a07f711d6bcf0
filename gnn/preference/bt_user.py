"""Per-user Bradley-Terry shrunk to the global fit (the shrinkage tuned on validation).

``theta_u = theta_global + delta_u`` with ``delta_u ~ N(0, 1 / l2)``: a user
with few votes stays near everyone's ranking. New users are onboarded by
fitting their ``delta_u`` on their votes, the global fit unchanged and ``l2`` the
one chosen on validation without ties (onboarding votes are decided votes).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from gnn.data import RoutingData, Split
from gnn.preference.base import BradleyTerryRouter, Votes, votes_of
from gnn.preference.bradley_terry import fit_bradley_terry
from gnn.preference.shrinkage import fit_shrunk, global_fit

__all__ = ["UserBradleyTerryRouter"]


class UserBradleyTerryRouter(BradleyTerryRouter):
    """``score(u, q, l) = theta[u, l]`` (see the module docstring)."""

    name = "bt_user"
    personalized = True

    def _fit(self, data: RoutingData, split: Split) -> None:
        train, val = votes_of(data, split.train), votes_of(data, split.val)
        ties = self.training_ties(data, split.train)
        self.global_theta, self.tie_weight = global_fit(train, ties, data.num_llms, self.ties)
        self.theta, self.chosen_l2 = fit_shrunk(
            train,
            val,
            lambda v: v.user,
            len(data.user_ids),
            self.global_theta,
            self.l2,
            ties,
            self.ties,
        )
        # New users are onboarded from decided votes only: their shrinkage is the one chosen
        # without ties (ties regularise known users, so theirs is weaker than a new user needs).
        self.onboard_l2 = self.chosen_l2
        if len(ties) and self.ties != "off":
            _, self.onboard_l2 = fit_shrunk(
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
            l2=self.onboard_l2,
        )
        self.theta[users] = fitted
        try:
            yield
        finally:
            self.theta = saved
