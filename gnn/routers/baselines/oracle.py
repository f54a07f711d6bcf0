"""The upper bound: reads the users' recorded decisions on the routed queries.

This is the only router allowed to look at the labels of the queries it routes;
it exists to bound the other routers from above and must never be used as a
real policy.
"""

from __future__ import annotations

import numpy as np

from gnn.data import RoutingData, Split
from gnn.routers.base import Router

__all__ = ["OracleRouter"]


class OracleRouter(Router):
    """Scores 1 for the LLM the user chose for that query (read from ``data``), else 0.

    Pairs without a recorded decision score 0 everywhere (so the cheapest
    available LLM is routed). Nothing is learned in ``fit``.
    """

    name = "oracle"
    scores_pairs = False  # one-hot on the recorded choice: says nothing about other pairs

    def _fit(self, data: RoutingData, split: Split) -> None:
        pass

    def score(self, data: RoutingData, users: np.ndarray, queries: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        queries = np.asarray(queries, dtype=np.int64)
        n_q = len(data.query_ids)
        keys = data.dec_user.astype(np.int64) * n_q + data.dec_query
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        wanted = users * n_q + queries
        pos = np.clip(np.searchsorted(sorted_keys, wanted), 0, max(len(keys) - 1, 0))
        found = sorted_keys[pos] == wanted if len(keys) else np.zeros(len(wanted), dtype=bool)
        out = np.zeros((len(users), data.num_llms))
        rows = np.flatnonzero(found)
        out[rows, data.dec_llm[order[pos[rows]]]] = 1.0
        return out
