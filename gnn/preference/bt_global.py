"""Global Bradley-Terry over LLM identities: one strength per LLM, the same for everyone.

Ties are used (``ties``: Davidson's tie model or half wins, :mod:`gnn.preference.bradley_terry`;
``"off"`` ignores them)."""

from __future__ import annotations

import numpy as np

from gnn.data import RoutingData, Split
from gnn.preference.base import (
    DEFAULT_TIES,
    PreferenceRouter,
    check_ties,
    no_votes,
    ties_of,
    votes_of,
)
from gnn.preference.bradley_terry import fit_bradley_terry

__all__ = ["GlobalBradleyTerryRouter"]


class GlobalBradleyTerryRouter(PreferenceRouter):
    """``score(u, q, l) = theta_l`` fitted on all training votes."""

    name = "bt"

    def __init__(
        self, seed: int = 0, *, l2: float = 1e-2, ties: str = DEFAULT_TIES, **config: object
    ) -> None:
        super().__init__(seed, l2=l2, ties=ties, **config)
        self.l2, self.ties = l2, check_ties(ties)

    def _fit(self, data: RoutingData, split: Split) -> None:
        votes = votes_of(data, split.train)
        ties = ties_of(data, split.train) if self.ties != "off" else no_votes()
        theta, self.tie_weight = fit_bradley_terry(
            votes.win,
            votes.lose,
            data.num_llms,
            l2=self.l2,
            tie_a=ties.win,
            tie_b=ties.lose,
            tie_model="half" if self.ties == "half" else "davidson",
            return_tie_weight=True,
        )
        self.theta = theta[0]

    def score(self, data: RoutingData, users: np.ndarray, queries: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.theta, (len(users), len(self.theta))).copy()
