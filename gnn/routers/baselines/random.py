"""Uniform random routing: a seeded, order-independent score per (user, query, LLM)."""

from __future__ import annotations

import numpy as np

from gnn.data import RoutingData, Split
from gnn.routers.base import Router

__all__ = ["RandomRouter"]

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser, element-wise on uint64 (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        x = x + _GOLDEN
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
        return x ^ (x >> np.uint64(31))


class RandomRouter(Router):
    """Picks an available LLM uniformly at random.

    The score of (user, query, LLM) is a hash of the seed and the three indices,
    so it does not depend on the batch it is scored in and is reproducible.
    """

    name = "random"

    def _fit(self, data: RoutingData, split: Split) -> None:
        pass

    def score(self, data: RoutingData, users: np.ndarray, queries: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.uint64)[:, None]
        queries = np.asarray(queries, dtype=np.uint64)[:, None]
        llms = np.arange(data.num_llms, dtype=np.uint64)[None, :]
        x = _mix(np.full((1, 1), self.seed, dtype=np.uint64))
        for part in (users, queries, llms):
            x = _mix(x ^ part)
        return (x >> np.uint64(11)).astype(np.float64) * 2.0**-53
