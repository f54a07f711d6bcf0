"""The route-time forward of :class:`gnn.model.PersonalizedRouterGNN` in numpy.

:class:`LightRouter` answers what :class:`gnn.serving.RoutingService` asks of a
router (``predict``, ``preferences``, ``prior_preference``, ``task_ids``,
``llm_ids``) from arrays saved by :mod:`gnn.light.snapshot`: the query encoder and
the outcome heads (float32, as the network), the LLMs' encodings, each user's
weight on quality, the per-(task, LLM) prior and the reference outcomes whose
neighbours' messages a new query hears (:class:`gnn.outcome_neighbours.OutcomeNeighbourhood`,
the same search as the full path). Same equations as ``gnn.inference.RouterInference.predict``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gnn.outcome_neighbours import OutcomeNeighbourhood
from prcore.activations import gelu, logit, sigmoid
from prcore.errors import ProuterError
from prcore.utility import utility

__all__ = ["WEIGHT_NAMES", "LightPrediction", "LightRouter"]

#: The network weights read at route time (``state_dict`` names).
WEIGHT_NAMES = (
    "query_in.weight",
    "query_in.bias",
    "task_emb.weight",
    "query_out.0.weight",
    "query_out.0.bias",
    "query_out.3.weight",
    "query_out.3.bias",
    "perf_head.0.weight",
    "perf_head.0.bias",
    "perf_head.3.weight",
    "perf_head.3.bias",
    "cost_head.0.weight",
    "cost_head.0.bias",
    "cost_head.3.weight",
    "cost_head.3.bias",
    "prior_weight",
)


@dataclass(frozen=True)
class LightPrediction:
    """(B, L) arrays, as :class:`gnn.inference.Prediction`."""

    utility: np.ndarray
    performance: np.ndarray
    cost: np.ndarray


def _mlp(x: np.ndarray, w: dict[str, np.ndarray], name: str) -> np.ndarray:
    """``Linear -> GELU -> (Dropout) -> Linear`` of ``gnn.model._mlp`` in eval mode."""
    h = gelu(x @ w[f"{name}.0.weight"].T + w[f"{name}.0.bias"])
    return h @ w[f"{name}.3.weight"].T + w[f"{name}.3.bias"]


class LightRouter:
    """A trained GNN router reduced to its route-time forward (see the module docstring).

    ``arrays``: :data:`WEIGHT_NAMES` plus ``h_l`` (L, H), ``task_prior`` (T, L, 3),
    ``task_cost_range`` (T, 2), ``query_emb`` (Q, D), ``ref_perf`` / ``ref_cost`` (Q, L),
    ``user_weight`` (U,); the rest are scalars."""

    light = True  # what callers check (no torch behind it)

    def __init__(
        self,
        arrays: dict[str, np.ndarray],
        *,
        task_ids: list[str],
        llm_ids: list[str],
        neighbours: int,
        residual_scale: float,
        prior_weight: float,
    ) -> None:
        self.task_ids, self.llm_ids = list(task_ids), list(llm_ids)
        self.w = {name: arrays[name] for name in WEIGHT_NAMES}
        self.h_l = arrays["h_l"]
        self.task_prior = arrays["task_prior"]
        self.task_cost_range = arrays["task_cost_range"]
        self.user_weight = arrays["user_weight"]
        self.k = neighbours
        self.residual_scale = residual_scale
        self.prior_weight = prior_weight
        self.ref = (arrays["query_emb"], arrays["ref_perf"], arrays["ref_cost"])
        self._standing: OutcomeNeighbourhood | None = None

    @property
    def features(self) -> LightRouter:
        """What ``RoutingService.warm_up`` reads (``features.neighbours``)."""
        return self

    def neighbours(self, emb: np.ndarray) -> np.ndarray:
        """(B, L, 3) the outcome messages of new queries (standing index, built once)."""
        if self._standing is None:
            self._standing = OutcomeNeighbourhood(*self.ref)
        return self._standing.messages(emb, k=self.k)

    def preferences(self) -> np.ndarray:
        """(U,) each user's weight on quality (the full router's ``preferences()``)."""
        return self.user_weight

    def prior_preference(self) -> float:
        """The weight on quality of a user the router knows nothing about."""
        return self.prior_weight

    def predict(self, query_emb: np.ndarray, tasks: list[str], users: np.ndarray) -> Any:
        """Expected utility, performance and cost of every LLM for new queries, as
        ``gnn.inference.RouterInference.predict``."""
        position = {t: i for i, t in enumerate(self.task_ids)}
        unknown = sorted({t for t in tasks if t not in position})
        if unknown:
            raise ProuterError(f"unknown tasks {unknown}; the model knows {self.task_ids}")
        w = self.w
        task = np.array([position[t] for t in tasks], dtype=np.int64)
        x = np.asarray(query_emb, dtype=np.float32)
        h = np.concatenate(
            [x @ w["query_in.weight"].T + w["query_in.bias"], w["task_emb.weight"][task]], -1
        )
        h_q = _mlp(gelu(h), w, "query_out")
        prior = self.task_prior[task]
        neigh = self.neighbours(x)
        perf, cost = self._outcomes(h_q, neigh, prior)
        users = np.asarray(users, dtype=np.int64)
        known = users >= 0
        a = np.where(
            known, self.user_weight[np.maximum(users, 0)], np.float32(self.prior_weight)
        ).astype(np.float32)[:, None]
        performance = sigmoid(perf)
        value = utility(a, performance, cost)
        lo, hi = self.task_cost_range[task].T
        usd = cost * (hi - lo)[:, None] + lo[:, None]
        return LightPrediction(value.astype(np.float32), performance, usd)

    def _outcomes(
        self, h_q: np.ndarray, neigh: np.ndarray, prior: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Performance logits and normalised cost (``PersonalizedRouterGNN.outcomes``, then
        the residual scale of ``RouterInference.outcomes``)."""
        w, h_l = self.w, self.h_l
        n, m = h_q.shape[0], h_l.shape[0]
        pair = np.concatenate(
            [
                np.broadcast_to(h_q[:, None, :], (n, m, h_q.shape[1])),
                np.broadcast_to(h_l[None, :, :], (n, m, h_l.shape[1])),
                neigh,
                prior,
            ],
            -1,
        )
        heard = (neigh[..., 2] > 0).astype(np.float32)
        pw = w["prior_weight"]
        prior_perf = logit(np.clip(prior[..., 0], 0.02, 0.98))
        prior_cost = prior[..., 1]
        perf = pw[0] * logit(np.clip(neigh[..., 0], 0.02, 0.98)) * heard + pw[2] * prior_perf
        cost = pw[1] * neigh[..., 1] * heard + pw[3] * prior_cost
        perf = _mlp(pair, w, "perf_head")[..., 0] + perf
        cost = _mlp(pair, w, "cost_head")[..., 0] + cost
        scale = np.float32(self.residual_scale)
        if self.residual_scale != 1.0:
            perf = prior_perf + scale * (perf - prior_perf)
            cost = prior_cost + scale * (cost - prior_cost)
        return perf.astype(np.float32), cost.astype(np.float32)
