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
from gnn.routers.base import Router, training_decisions

__all__ = ["KNNImitateRouter"]


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def _top_k_votes(
    sim: np.ndarray, k: int, votes_of: np.ndarray, n_llms: int, min_weight: float
) -> np.ndarray:
    """(B, L) sums of the top-k similarities (weights) times each neighbour's (n, L) votes."""
    k = min(k, sim.shape[1])
    if k == 0:
        return np.zeros((len(sim), n_llms))
    if k < sim.shape[1]:
        top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    else:
        top = np.broadcast_to(np.arange(sim.shape[1]), sim.shape)
    weight = np.maximum(np.take_along_axis(sim, top, axis=1), 0.0) + min_weight
    return np.einsum("bk,bkl->bl", weight, votes_of[top])


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
        self.dec_emb_ = _normalise(data.query_emb[data.dec_query[idx]])
        # Everyone's decisions per training query, as a distribution over LLMs.
        queries, inverse = np.unique(data.dec_query[idx], return_inverse=True)
        counts = np.zeros((len(queries), data.num_llms))
        np.add.at(counts, (inverse, self.dec_llm_), 1.0)
        self.query_votes_ = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
        self.query_emb_ = _normalise(data.query_emb[queries])
        order = np.argsort(self.dec_user_, kind="stable")
        self.user_order_ = order
        self.user_start_ = np.searchsorted(self.dec_user_[order], np.arange(len(data.user_ids) + 1))

    def _user_rows(self, user: int) -> np.ndarray:
        if user + 1 >= len(self.user_start_):
            return np.zeros(0, dtype=np.int64)
        return self.user_order_[self.user_start_[user] : self.user_start_[user + 1]]

    def score(self, data: RoutingData, users: np.ndarray, queries: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        emb = _normalise(data.query_emb[np.asarray(queries, dtype=np.int64)])
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
            for start in range(0, len(pairs), self.batch_size):
                batch = pairs[start : start + self.batch_size]
                sim = emb[batch] @ self.dec_emb_[rows].T
                out[batch] = _top_k_votes(sim, self.k, votes, self.num_llms_, self._MIN_WEIGHT)
        if fallback:
            pairs = np.concatenate(fallback)
            for start in range(0, len(pairs), self.batch_size):
                batch = pairs[start : start + self.batch_size]
                sim = emb[batch] @ self.query_emb_.T
                out[batch] = _top_k_votes(
                    sim, self.k, self.query_votes_, self.num_llms_, self._MIN_WEIGHT
                )
        return out
