"""Reading a GNN router: users' states, expected utilities, predictions for new queries.

:class:`RouterInference` runs a :class:`gnn.model.PersonalizedRouterGNN` over the
:class:`gnn.features.RouterFeatures` of a graph state. Routing a query uses the
predicted outcomes and each user's weight measured from their logged rewards
(``RouterFeatures.logged_weights``) where there is one, else the learned one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gnn.features import RouterFeatures
from gnn.model import PersonalizedRouterGNN
from prcore.errors import ProuterError

__all__ = ["Prediction", "RouterInference"]

_CHUNK = 8192  # (user, query) pairs scored per forward of the utility


@dataclass(frozen=True)
class Prediction:
    """What the router expects for new queries: (B, L) arrays."""

    utility: np.ndarray  # the user's expected utility, higher is better
    performance: np.ndarray  # predicted probability of success / score
    cost: np.ndarray  # predicted cost, USD (de-normalised with the task's training range)


class RouterInference:
    """The network applied to one graph state; users' states are cached until
    :meth:`invalidate` (serving answers many lookups per graph state)."""

    def __init__(
        self, model: PersonalizedRouterGNN, features: RouterFeatures, prior_decisions: float
    ) -> None:
        self.model = model
        self.features = features
        self.prior_decisions = prior_decisions
        #: How much of the network's correction of the per-(task, LLM) prior routing uses:
        #: 1 while training; chosen on validation afterwards (``gnn.fitting``).
        self.residual_scale = 1.0
        #: Queries / decisions per forward where no gradient is needed (None: all at once);
        #: set on large graphs (``gnn.minibatch.inference_chunk``) to bound memory.
        self.chunk: int | None = None
        self._states: torch.Tensor | None = None
        self._h_l: torch.Tensor | None = None

    def invalidate(self) -> None:
        """Forget the cached users' and LLMs' states (decisions, outcomes, LLMs or weights
        changed)."""
        self._states = None
        self._h_l = None

    def _eval(self) -> None:
        if self.model.training:  # eval() walks every module: not on each lookup
            self.model.eval()

    def _llm_states(self) -> torch.Tensor:
        """The LLMs' encodings (eval mode), kept until :meth:`invalidate`."""
        if self._h_l is None:
            self._h_l = self.model.encode_llms(self.features.l_x)
        return self._h_l

    def outcomes(
        self, h_q: torch.Tensor, h_l: torch.Tensor, neigh: torch.Tensor, prior: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The network's predicted performance logits and normalised cost, its correction
        of the prior scaled by :attr:`residual_scale` (0: the prior alone)."""
        perf, cost = self.model.outcomes(h_q, h_l, neigh, prior)
        scale = self.residual_scale
        if scale == 1.0:
            return perf, cost
        base_perf, base_cost = self.model.prior_outcomes(prior)
        return base_perf + scale * (perf - base_perf), base_cost + scale * (cost - base_cost)

    def encode(self, neigh: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        """(h_q, h_l, performance logits, normalised cost) of every query of the graph;
        ``neigh`` replaces the outcome messages (training with a few-shot LLM)."""
        f = self.features
        if self._chunked(f.q_x.shape[0]):
            h_q = torch.cat(
                [
                    self.model.encode_queries(f.q_x[s], f.q_task[s])
                    for s in self._slices(f.q_x.shape[0])
                ]
            )
            h_l = self.model.encode_llms(f.l_x)
            return h_q, h_l, *self._chunked_outcomes(h_q, h_l, neigh)
        h_q = self.model.encode_queries(f.q_x, f.q_task)
        h_l = self.model.encode_llms(f.l_x)
        perf, cost = self.outcomes(h_q, h_l, f.neigh if neigh is None else neigh, f.prior)
        return h_q, h_l, perf, cost

    def _chunked(self, n: int) -> bool:
        return self.chunk is not None and n > self.chunk and not torch.is_grad_enabled()

    def _slices(self, n: int) -> list[slice]:
        step = self.chunk or n
        return [slice(start, start + step) for start in range(0, n, step)]

    def _chunked_outcomes(
        self, h_q: torch.Tensor, h_l: torch.Tensor, neigh: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`outcomes` of every query, :attr:`chunk` queries at a time."""
        f = self.features
        neigh = f.neigh if neigh is None else neigh
        parts = [
            self.outcomes(h_q[s], h_l, neigh[s], f.prior[s]) for s in self._slices(h_q.shape[0])
        ]
        perf, cost = (torch.cat(p) for p in zip(*parts, strict=True))
        return perf, cost

    def user_states(self, h_q: torch.Tensor, h_l: torch.Tensor) -> torch.Tensor:
        """(U, H) every user's state from all decisions known now, shrunk to the prior."""
        f = self.features
        du, dq, dl, dr = f.dec
        if self._chunked(max(len(du), h_q.shape[0])):
            seen_p, seen_c = f.filled(*self._chunked_outcomes(h_q, h_l, None))
            total = torch.zeros(f.num_users, h_q.shape[1], device=f.device)
            count = torch.zeros(f.num_users, 1, device=f.device)
            for s in self._slices(len(du)):
                msgs = self.model.decision_messages(
                    h_q, h_l, seen_p, seen_c, f.cand[s], dq[s], dl[s], dr[s]
                )
                t, c = self.model.user_states(msgs, du[s], f.num_users)
                total += t
                count += c
            return total / (count + self.prior_decisions).clamp(min=1)
        seen_p, seen_c = f.filled(*self.outcomes(h_q, h_l, f.neigh, f.prior))
        msgs = self.model.decision_messages(h_q, h_l, seen_p, seen_c, f.cand, dq, dl, dr)
        total, count = self.model.user_states(msgs, du, f.num_users)
        return total / (count + self.prior_decisions).clamp(min=1)

    def cached_states(self, h_l: torch.Tensor) -> torch.Tensor:
        """The users' states (eval mode), kept until :meth:`invalidate`."""
        if self._states is None:
            h_q = self.model.encode_queries(self.features.q_x, self.features.q_task)
            self._states = self.user_states(h_q, h_l)
        return self._states

    def route_utility(self, h_u, perf, cost, weight=None):  # type: ignore[no-untyped-def]
        """Expected utility on queries with unknown outcomes: the predicted ones; ``weight``
        (B, 1) the users' weights measured from logged rewards (NaN: the learned one)."""
        return self.model.utility(h_u, torch.sigmoid(perf), cost, weight)

    @torch.no_grad()
    def score(self, users: np.ndarray, queries: np.ndarray, num_llms: int) -> np.ndarray:
        """(B, L) expected utility of each LLM for ``users[i]`` on graph query ``queries[i]``."""
        self.model.eval()
        h_q, h_l, perf, cost = self.encode()
        h_u = self.user_states(h_q, h_l)
        weight = self.features.logged_weights()
        dev = self.features.device
        u = torch.as_tensor(users, device=dev)
        q = torch.as_tensor(queries, device=dev)
        out = []
        for start in range(0, len(u), _CHUNK):
            s = slice(start, start + _CHUNK)
            out.append(self.route_utility(h_u[u[s]], perf[q[s]], cost[q[s]], weight[u[s]]))
        return torch.cat(out).cpu().numpy() if out else np.zeros((0, num_llms))

    @torch.no_grad()
    def pair_margin(
        self, users: np.ndarray, queries: np.ndarray, first: np.ndarray, second: np.ndarray
    ) -> np.ndarray:
        """P(users[i] prefers first[i] over second[i]) - 1/2 (see
        :meth:`gnn.train.GNNRouter.pair_margin`)."""
        self.model.eval()
        h_q, h_l, perf, cost = self.encode()
        h_u = self.user_states(h_q, h_l)
        dev = self.features.device
        u, q, f, s = (torch.as_tensor(x, device=dev) for x in (users, queries, first, second))
        logged = self.features.logged_weights()[u]
        a = torch.where(logged.isnan(), self.model.preference(h_u[u]), logged)[:, 0]
        p_f, p_s = torch.sigmoid(perf[q, f]), torch.sigmoid(perf[q, s])
        cost_gap = (1 - a) * (cost[q, f] - cost[q, s])
        prob = torch.zeros_like(a)
        for x_f in (0.0, 1.0):
            for x_s in (0.0, 1.0):
                weight = (p_f if x_f else 1 - p_f) * (p_s if x_s else 1 - p_s)
                gap = a * (x_f - x_s) - cost_gap
                prob += weight * torch.sigmoid(self.model.temperature * gap)
        return (prob - 0.5).cpu().numpy()

    @torch.no_grad()
    def predict(self, query_emb: np.ndarray, tasks: list[str], users: np.ndarray) -> Prediction:
        """Expected utility, performance and cost of every LLM for new queries (see
        :meth:`gnn.train.GNNRouter.predict`)."""
        self._eval()
        f = self.features
        dev = f.device
        position = {t: i for i, t in enumerate(f.task_ids)}
        unknown = sorted({t for t in tasks if t not in position})
        if unknown:
            raise ProuterError(f"unknown tasks {unknown}; the model knows {f.task_ids}")
        task = torch.tensor([position[t] for t in tasks], dtype=torch.long, device=dev)
        x = torch.tensor(np.asarray(query_emb), dtype=torch.float32, device=dev)
        h_q = self.model.encode_queries(x, task)
        h_l = self._llm_states()
        prior = torch.from_numpy(f.task_prior[task.cpu().numpy()]).to(dev)
        perf, cost = self.outcomes(h_q, h_l, f.neighbours(np.asarray(query_emb)), prior)
        states = self.cached_states(h_l)
        users_t = torch.as_tensor(np.asarray(users), dtype=torch.long, device=dev)
        known = (users_t >= 0)[:, None]
        h_u = torch.where(known, states[users_t.clamp(min=0)], torch.zeros_like(h_q))
        weight = torch.where(known, f.logged_weights()[users_t.clamp(min=0)], f.population_weight())
        utility = self.route_utility(h_u, perf, cost, weight).cpu().numpy()
        lo, hi = f.task_cost_range[task.cpu().numpy()].T
        usd = cost.cpu().numpy() * (hi - lo)[:, None] + lo[:, None]
        return Prediction(utility, torch.sigmoid(perf).cpu().numpy(), usd)

    @torch.no_grad()
    def preferences(self) -> np.ndarray:
        """(U,) each user's weight on quality: the logged one, else the learned one."""
        self.model.eval()
        states = self.cached_states(self.model.encode_llms(self.features.l_x))
        learned = self.model.preference(states)
        logged = self.features.logged_weights()
        return torch.where(logged.isnan(), learned, logged)[:, 0].cpu().numpy()

    @torch.no_grad()
    def prior_preference(self) -> float:
        """The weight on quality of a user the router knows nothing about: the population's
        measured weight, else the learned prior."""
        population = self.features.population_weight()
        if not np.isnan(population):
            return population
        zero = torch.zeros(1, self.model.hidden, device=self.features.device)
        return float(self.model.preference(zero))
