"""k-nearest-neighbour routing over the user's own past decisions.

For a (user, query) pair the router takes the ``k`` training queries most
similar to the query (cosine over ``query_emb``) among those the user decided
on, and sums their similarities per chosen LLM. Users without training
decisions vote with everyone's decisions on the ``k`` most similar training
queries instead (each query's choices as a distribution).
"""

from __future__ import annotations

import numpy as np

from gnn.data import RoutingData, Split
from gnn.neighbours import nearest, unit_rows
from gnn.routers.base import Router, training_decisions

__all__ = ["KNNImitateRouter"]


def _top_k_votes(
    queries: np.ndarray,
    base: np.ndarray,
    k: int,
    votes_of: np.ndarray,
    min_weight: float,
    batch: int,
) -> np.ndarray:
    """(B, L) sums over each query's k nearest base rows (unit rows) of their similarity
    (the weight) times the row's (n, L) votes."""
    found = nearest(queries, base, k, batch=batch, normalised=True)
    weight = np.maximum(found.similarities, 0.0) + min_weight
    return np.einsum("bk,bkl->bl", weight, votes_of[found.indices])


class KNNImitateRouter(Router):
    """Similarity-weighted vote of the user's choices on the k nearest training queries."""

    name = "knn_imitate"
    # A tiny floor so neighbours with non-positive similarity still count a little.
    _MIN_WEIGHT = 1e-6

    def __init__(self, seed: int = 0, *, k: int = 10, batch_size: int = 512) -> None:
        super().__init__(seed, k=k)
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.k = k
        self.batch_size = batch_size

    def _fit(self, data: RoutingData, split: Split) -> None:
        idx = training_decisions(data, split.train)
        self.num_llms_ = data.num_llms
        self.dec_user_ = data.dec_user[idx].copy()
        self.dec_llm_ = data.dec_llm[idx].copy()
        self.dec_emb_ = unit_rows(data.query_emb[data.dec_query[idx]])
        # Everyone's decisions per training query, as a distribution over LLMs.
        queries, inverse = np.unique(data.dec_query[idx], return_inverse=True)
        counts = np.zeros((len(queries), data.num_llms))
        np.add.at(counts, (inverse, self.dec_llm_), 1.0)
        self.query_votes_ = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
        self.query_emb_ = unit_rows(data.query_emb[queries])
        order = np.argsort(self.dec_user_, kind="stable")
        self.user_order_ = order
        self.user_start_ = np.searchsorted(self.dec_user_[order], np.arange(len(data.user_ids) + 1))

    def _user_rows(self, user: int) -> np.ndarray:
        if user + 1 >= len(self.user_start_):
            return np.zeros(0, dtype=np.int64)
        return self.user_order_[self.user_start_[user] : self.user_start_[user + 1]]

    def score(self, data: RoutingData, users: np.ndarray, queries: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        emb = unit_rows(data.query_emb[np.asarray(queries, dtype=np.int64)])
        out = np.zeros((len(users), self.num_llms_))
        one_hot = np.eye(self.num_llms_)
        fallback: list[np.ndarray] = []
        order = np.argsort(users, kind="stable")
        bounds = np.flatnonzero(np.diff(users[order])) + 1
        for pairs in np.split(order, bounds) if len(order) else []:
            user = users[pairs[0]]
            rows = self._user_rows(int(user))
            if len(rows) == 0:
                fallback.append(pairs)
                continue
            votes = one_hot[self.dec_llm_[rows]]
            out[pairs] = _top_k_votes(
                emb[pairs], self.dec_emb_[rows], self.k, votes, self._MIN_WEIGHT, self.batch_size
            )
        if fallback:
            pairs = np.concatenate(fallback)
            out[pairs] = _top_k_votes(
                emb[pairs],
                self.query_emb_,
                self.k,
                self.query_votes_,
                self._MIN_WEIGHT,
                self.batch_size,
            )
        return out
