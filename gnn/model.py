"""The personalized heterogeneous GNN router.

Message passing, in order (all aggregations are means; see ``gnn/graph.py``):

1. **Queries**: ``h_q = MLP([W q, task embedding])``.
2. **LLMs**: ``h_l = MLP(description embedding)``.
3. **Outcome heads** predict performance ``p(q, l)`` and normalised cost
   ``c(q, l)`` as a residual on the per-(task, LLM) prior ``m(q, l)`` (the
   empirical-Bayes mean of the LLM's training outcomes on the query's task,
   ``gnn.priors.task_llm_prior``): ``logit p = w_m logit m_p + w_p logit n_p +
   MLP(...)`` and ``c = w_m' m_c + w_c n_c + MLP(...)``, the MLP correction read from
   ``[h_q, h_l, n(q, l), m(q, l)]``. The corrections start at 0 and the neighbours'
   weights at 0, so an untrained network routes like the per-(task, LLM) lookup.
   ``n(q, l)`` are the messages
   from the query's most similar *training* queries that LLM l answered (their
   similarity-weighted mean [performance, normalised cost] and mean
   similarity; ``gnn.graph.neighbour_outcomes``). A query never hears its own
   outcomes, so training and test queries are encoded alike, and no weight is
   tied to an LLM's index: an LLM added later with a few outcomes and its
   description is scored without retraining.
4. **Users** hear from their decisions (``CHOSE``, and non-tie ``PREFERRED``
   judgements as a choice between two candidates): a decision on query q for
   LLM l sends ``MLP([h_l, h_q, P, C, P - max P, C - min C, r, logit a_r])`` where
   P, C are the outcomes the user saw on q (what was chosen and, over the
   candidates it was shown, what it gave up), r the reward the user logged for
   the decision and ``a_r = (r + C) / (P + C)`` the weight for which the
   utility below equals it (each with a flag: 0 where there is no reward or
   ``a_r`` is undefined).
   ``h_u = sum / (count + n_0)``, a mean shrunk towards 0 (the population
   prior) for users known from few decisions; while a decision is a training
   target its own message is left out (exact leave-one-out); a user without
   decisions has ``h_u = 0`` (new users are onboarded by adding decisions, no
   retraining).
5. **Utility** of LLM l for user u on query q::

       U(u, q, l) = a_u * P(q, l) - (1 - a_u) * C(q, l)

   with ``a_u = sigmoid(w^T h_u + b)`` the learned quality-vs-cost preference,
   on the scale of the logged rewards (a free per-user LLM-affinity term was
   tried and dropped: it explained the choices by LLM identity instead of the
   trade-off, and routed worse). Training explains each choice by the outcomes
   the user saw (a listwise softmax over the candidates of ``beta * U``) and
   each logged reward by ``U`` of the chosen LLM. Choices alone say little
   about a_u: with 0/1 scores, every user who values a correct answer above
   its cost difference picks the cheapest correct LLM, whatever the weight;
   the rewards tell those users apart. Routing a new query uses the predicted
   outcomes ``p, c`` and picks the highest expected utility, with ``a_u``
   replaced by the weight the user's logged rewards imply where there are any
   (``weight`` of :meth:`PersonalizedRouterGNN.utility`; ``gnn.priors.implied_weights``:
   for noise-free rewards it is exact, where the learned weight is an estimate). With
   ``personalized=False`` ``h_u`` is always 0: the same network without users
   (GraphRouter-style, equal capacity).

Shapes: ``N`` queries, ``L`` LLMs, ``U`` users, ``E`` decisions, ``D`` embedding
size, ``H`` hidden size.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch_geometric.utils import scatter

from gnn.priors import PRIOR_FEATURES
from prcore.utility import utility

__all__ = ["NEIGHBOUR_FEATURES", "PersonalizedRouterGNN"]

NEIGHBOUR_FEATURES = 3  # [performance, normalised cost, similarity] per (query, LLM)


def _mlp(i: int, h: int, o: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(i, h), nn.GELU(), nn.Dropout(dropout), nn.Linear(h, o))


class PersonalizedRouterGNN(nn.Module):
    r"""Scores LLMs per (user, query); see the module docstring for the equations.

    Args:
        query_dim (int): size of query embeddings :math:`D_q`.
        llm_dim (int): size of LLM description embeddings :math:`D_l`.
        num_llms (int): number of candidate LLMs when trained (informative only;
            no weight depends on it).
        num_tasks (int): number of tasks.
        hidden (int, optional): hidden size :math:`H`. (default: :obj:`64`)
        dropout (float, optional): dropout probability. (default: :obj:`0.1`)
        personalized (bool, optional): if :obj:`False`, users are ignored.
            (default: :obj:`True`)

    Shapes:
        - **encode_queries** input: query embeddings :math:`(N, D_q)`, tasks :math:`(N)`;
          output :math:`(N, H)`
        - **outcomes** input: :math:`(N, H)`, :math:`(L, H)`, neighbour outcomes
          :math:`(N, L, 3)`; output: performance logits and cost, each :math:`(N, L)`
        - **user_states** output: :math:`(U, H)`
        - **utility** output: :math:`(B, L)`
    """

    def __init__(
        self,
        query_dim: int,
        llm_dim: int,
        num_llms: int,
        num_tasks: int,
        hidden: int = 64,
        dropout: float = 0.1,
        personalized: bool = True,
    ) -> None:
        super().__init__()
        self.query_dim, self.llm_dim = query_dim, llm_dim
        self.num_llms, self.num_tasks = num_llms, num_tasks
        self.hidden, self.dropout, self.personalized = hidden, dropout, personalized
        self.query_in = nn.Linear(query_dim, hidden)
        self.task_emb = nn.Embedding(num_tasks, hidden)
        self.query_out = _mlp(2 * hidden, hidden, hidden, dropout)
        self.llm_enc = _mlp(llm_dim, hidden, hidden, dropout)
        pair_dim = 2 * hidden + NEIGHBOUR_FEATURES + PRIOR_FEATURES
        self.perf_head = _mlp(pair_dim, hidden, 1, dropout)
        self.cost_head = _mlp(pair_dim, hidden, 1, dropout)
        self.decision_msg = _mlp(2 * hidden + 8, hidden, hidden, dropout)
        self.pref = nn.Linear(hidden, 1)
        # [neighbours' performance, neighbours' cost, prior performance, prior cost]
        self.prior_weight = nn.Parameter(torch.ones(4))
        self.log_beta = nn.Parameter(torch.zeros(1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                module.reset_parameters()
        with torch.no_grad():
            self.prior_weight.copy_(torch.tensor([0.0, 0.0, 1.0, 1.0]))
            for head in (self.perf_head, self.cost_head):  # start as the prior
                head[-1].weight.zero_()
                head[-1].bias.zero_()
        nn.init.constant_(self.log_beta, 2.0)  # beta = e^2; choices are near-deterministic

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.query_dim}, {self.llm_dim}, llms={self.num_llms}, "
            f"hidden={self.hidden}, personalized={self.personalized})"
        )

    # -- encoders ---------------------------------------------------------------
    def encode_queries(self, x: Tensor, task: Tensor) -> Tensor:
        h = torch.cat([self.query_in(x), self.task_emb(task)], -1)
        return self.query_out(F.gelu(h))

    def encode_llms(self, x: Tensor) -> Tensor:
        return self.llm_enc(x)

    def outcomes(
        self, h_q: Tensor, h_l: Tensor, neighbours: Tensor, prior: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Predicted performance logits and normalised cost, each (N, L), from the
        neighbour messages and the per-(task, LLM) prior, each (N, L, 3)."""
        n, m = h_q.size(0), h_l.size(0)
        pair = torch.cat(
            [h_q[:, None, :].expand(n, m, -1), h_l[None, :, :].expand(n, m, -1), neighbours, prior],
            -1,
        )
        heard = (neighbours[..., 2] > 0).to(h_q.dtype)  # the neighbours' estimate, where any
        w = self.prior_weight
        prior_perf, prior_cost = self.prior_outcomes(prior)
        perf = w[0] * torch.logit(neighbours[..., 0].clamp(0.02, 0.98)) * heard + w[2] * prior_perf
        cost = w[1] * neighbours[..., 1] * heard + w[3] * prior_cost
        return self.perf_head(pair).squeeze(-1) + perf, self.cost_head(pair).squeeze(-1) + cost

    @staticmethod
    def prior_outcomes(prior: Tensor) -> tuple[Tensor, Tensor]:
        """The per-(task, LLM) prior (N, L, 3) as performance logits and normalised cost:
        what an untrained network predicts."""
        return torch.logit(prior[..., 0].clamp(0.02, 0.98)), prior[..., 1]

    def decision_messages(
        self,
        h_q: Tensor,
        h_l: Tensor,
        perf: Tensor,
        cost: Tensor,
        candidates: Tensor,
        query: Tensor,
        llm: Tensor,
        reward: Tensor,
    ) -> Tensor:
        """One message per decision (query[i] decided for llm[i] among the
        ``candidates[i]`` (E, L) it was shown: all LLMs of a choice, two of a
        pairwise preference) from the outcomes ``perf``/``cost`` (N, L) the user saw
        and the ``reward`` (E,) the user logged (NaN: none); (E, H)."""
        p, c, ok = perf[query], cost[query], candidates
        logged = ~reward.isnan()
        chosen_p = p.gather(1, llm[:, None])
        chosen_c = c.gather(1, llm[:, None])
        feats = torch.cat(
            [
                chosen_p,
                chosen_c,
                chosen_p - p.masked_fill(~ok, -torch.inf).max(1, keepdim=True).values,
                chosen_c - c.masked_fill(~ok, torch.inf).min(1, keepdim=True).values,
                torch.where(logged, reward, 0.0)[:, None],
                logged[:, None].to(p.dtype),
                *self._implied_weight(chosen_p, chosen_c, reward),
            ],
            -1,
        )
        return self.decision_msg(torch.cat([h_l[llm], h_q[query], feats], -1))

    @staticmethod
    def _implied_weight(perf: Tensor, cost: Tensor, reward: Tensor) -> tuple[Tensor, Tensor]:
        """The weight ``a`` for which the utility of the chosen LLM equals the logged
        reward (``a = (r + C) / (P + C)``), as a logit, and where it is defined (a reward
        was logged and ``P + C`` is not ~0): two (E, 1) features."""
        reward = reward[:, None]
        scale = perf + cost
        defined = ~reward.isnan() & (scale > 0.1)
        # NaN rewards zeroed first: torch.where would pass NaN gradients to predicted outcomes.
        a = ((reward.nan_to_num(0.0) + cost) / scale.clamp(min=0.1)).clamp(0.02, 0.98)
        return torch.where(defined, torch.logit(a), 0.0), defined.to(perf.dtype)

    def user_states(self, messages: Tensor, user: Tensor, num_users: int) -> tuple[Tensor, Tensor]:
        """Sum and count of decision messages per user: (U, H), (U, 1)."""
        total = scatter(messages, user, dim=0, dim_size=num_users, reduce="sum")
        count = scatter(
            torch.ones_like(user, dtype=messages.dtype)[:, None],
            user,
            dim=0,
            dim_size=num_users,
            reduce="sum",
        )
        return total, count

    # -- scoring ----------------------------------------------------------------
    def preference(self, h_u: Tensor) -> Tensor:
        """(B, 1) each user state's weight ``a_u`` on quality against cost."""
        if not self.personalized:
            h_u = torch.zeros_like(h_u)
        return torch.sigmoid(self.pref(h_u))

    def utility(
        self, h_u: Tensor, perf: Tensor, cost: Tensor, weight: Tensor | None = None
    ) -> Tensor:
        """(B, L) utilities for B user states, given each row's performance (as a
        probability or observed score) and normalised cost per LLM. ``weight`` (B, 1),
        where not NaN, replaces the learned weight (a user's weight measured from their
        logged rewards)."""
        a = self.preference(h_u)
        if weight is not None:
            a = torch.where(weight.isnan(), a, weight)
        return utility(a, perf, cost)

    @property
    def temperature(self) -> Tensor:
        """Inverse temperature ``beta`` of the choice model."""
        return self.log_beta.exp()
