"""Global Bradley-Terry over LLM identities: one strength per LLM, the same for everyone."""

from __future__ import annotations

import numpy as np

from gnn.data import RoutingData, Split
from gnn.preference.base import PreferenceRouter, votes_of
from gnn.preference.bradley_terry import fit_bradley_terry

__all__ = ["GlobalBradleyTerryRouter"]


class GlobalBradleyTerryRouter(PreferenceRouter):
    """``score(u, q, l) = theta_l`` fitted on all training votes."""

    name = "bt"

    def __init__(self, seed: int = 0, *, l2: float = 1e-2, **config: object) -> None:
        super().__init__(seed, l2=l2, **config)
        self.l2 = l2

    def _fit(self, data: RoutingData, split: Split) -> None:
        votes = votes_of(data, split.train)
        self.theta = fit_bradley_terry(votes.win, votes.lose, data.num_llms, l2=self.l2)[0]

    def score(self, data: RoutingData, users: np.ndarray, queries: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.theta, (len(users), len(self.theta))).copy()
