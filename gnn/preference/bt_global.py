"""Global Bradley-Terry over LLM identities: one strength per LLM, the same for everyone.

Ties are used (``ties``: Davidson's tie model or half wins, :mod:`gnn.preference.bradley_terry`;
``"off"`` ignores them)."""

from __future__ import annotations

import numpy as np

from gnn.data import RoutingData, Split
from gnn.preference.base import DEFAULT_TIES, BradleyTerryRouter, votes_of
from gnn.preference.shrinkage import global_fit

__all__ = ["GlobalBradleyTerryRouter"]


class GlobalBradleyTerryRouter(BradleyTerryRouter):
    """``score(u, q, l) = theta_l`` fitted on all training votes."""

    name = "bt"

    def __init__(
        self, seed: int = 0, *, l2: float = 1e-2, ties: str = DEFAULT_TIES, **config: object
    ) -> None:
        super().__init__(seed, l2=l2, ties=ties, **config)

    def _fit(self, data: RoutingData, split: Split) -> None:
        self.theta, self.tie_weight = global_fit(
            votes_of(data, split.train),
            self.training_ties(data, split.train),
            data.num_llms,
            self.ties,
            l2=self.l2,
        )

    def score(self, data: RoutingData, users: np.ndarray, queries: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.theta, (len(users), len(self.theta))).copy()
