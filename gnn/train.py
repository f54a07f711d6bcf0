"""Training the personalized GNN router, and the router that serves it.

Supervision is grouped per (user, query): for each training decision the
model computes the utility of every candidate LLM of that query from the
outcomes the user saw, with the decision's own message left out of the user's
state, and a softmax over the candidates (listwise) pulls the user's choice
up. Candidates with the same observed performance and a cost no lower count
as the choice too (cost breaks performance ties, as real and simulated users
do). Auxiliary losses fit the outcome heads to the training queries'
performance and normalised cost (costs are normalised with training-query
ranges only). Early stopping and checkpoint selection use validation queries
only (the choice likelihood on them); the test split is never touched here.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch.nn import functional as F
from torch_geometric.utils import scatter
from tqdm import tqdm

from gnn.data import RoutingData, Split
from gnn.graph import ANSWERED_BY, CHOSE, SIMILAR, build_graph
from gnn.model import PersonalizedRouterGNN
from gnn.routers.base import Router

__all__ = ["GNNRouter", "NonPersonalizedGNNRouter", "TrainConfig", "resolve_device"]

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Hyper-parameters of the GNN router."""

    hidden: int = 64
    dropout: float = 0.1
    lr: float = 1e-2
    weight_decay: float = 1e-4
    epochs: int = 600
    patience: int = 100
    neighbours: int = 10
    aux_weight: float = 1.0
    device: str = "auto"


def resolve_device(device: str) -> torch.device:
    """``auto`` means CUDA when present, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _choice_nll(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Listwise negative log-likelihood of a set-valued choice (softmax over candidates)."""
    return (scores.logsumexp(1) - scores.masked_fill(~targets, -1e9).logsumexp(1)).mean()


class GNNRouter(Router):
    """The personalized heterogeneous GNN of :mod:`gnn.model` behind the Router interface."""

    name = "gnn"
    personalized = True

    def __init__(self, seed: int = 0, progress: bool = False, **config: object) -> None:
        super().__init__(seed, **config)
        self.train_config = TrainConfig(**config)  # type: ignore[arg-type]
        self.progress = progress
        self.history: list[dict[str, float]] = []

    # -- fitting ----------------------------------------------------------------
    def _fit(self, data: RoutingData, split: Split) -> None:
        cfg = self.train_config
        torch.manual_seed(self.seed)
        np.random.seed(self.seed)
        self.device = resolve_device(cfg.device)
        graph = build_graph(data, split, k=cfg.neighbours)
        # Costs on the training queries' scale (a router must not learn it from test costs).
        cost_norm = np.nan_to_num(data.cost_norm(split.train), nan=0.0)
        dev = self.device
        self._q_x = graph["query"].x.to(dev)
        self._q_task = graph["query"].task.to(dev)
        self._l_x = graph["llm"].x.to(dev)
        self._neigh = self._neighbour_outcomes(graph, data, cost_norm).to(dev)
        oq, ol = graph[ANSWERED_BY].edge_index.to(dev)
        o_perf, o_cost = graph[ANSWERED_BY].edge_attr.to(dev).T
        du, dl = graph[CHOSE].edge_index.to(dev)
        dq = graph[CHOSE].query.to(dev)
        self._dec = (du, dq, dl)
        self._num_users = len(data.user_ids)
        self._available = torch.from_numpy(~np.isnan(data.performance)).to(dev)
        # The outcomes users saw on training queries (their decisions are explained by them).
        self._seen_perf, self._seen_cost = self._observed(data, split.train, cost_norm)
        # Validation outcomes are labels too: they only ever score checkpoints.
        val_perf, val_cost = self._observed(data, split.val, cost_norm)
        tied = self._tied_with_choice(dq, dl, self._seen_perf, self._seen_cost)
        val = np.flatnonzero(split.val[data.dec_query])
        v_u, v_q, v_l = (
            torch.from_numpy(a[val]).to(dev) for a in (data.dec_user, data.dec_query, data.dec_llm)
        )

        self.model = PersonalizedRouterGNN(
            data.query_emb.shape[1],
            data.llm_emb.shape[1],
            data.num_llms,
            len(data.task_ids),
            hidden=cfg.hidden,
            dropout=cfg.dropout,
            personalized=self.personalized,
        ).to(dev)
        optim = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        best, best_key, waited = None, (-np.inf, -1.0), 0
        bar = tqdm(
            range(cfg.epochs),
            desc=f"train {self.name}",
            disable=not self.progress or None,
            leave=False,
        )
        for epoch in bar:
            self.model.train()
            h_q, h_l, perf, cost = self._encode()
            aux = F.binary_cross_entropy_with_logits(perf[oq, ol], o_perf) + F.mse_loss(
                cost[oq, ol], o_cost
            )
            msgs = self.model.decision_messages(h_q, h_l, self._seen_perf, self._seen_cost, dq, dl)
            total, count = self.model.user_states(msgs, du, self._num_users)
            others = (count[du] - 1).clamp(min=1)
            h_u = (total[du] - msgs) / others  # leave the target's own decision out
            utility = self.model.utility(h_u, h_l, self._seen_perf[dq], self._seen_cost[dq])
            scores = self._masked(self.model.temperature * utility, dq)
            loss = _choice_nll(scores, tied) + cfg.aux_weight * aux
            optim.zero_grad()
            loss.backward()
            optim.step()

            val_acc, val_loss = self._validate(v_u, v_q, v_l, val_perf, val_cost)
            self.history.append(
                {"epoch": epoch, "loss": loss.item(), "val_accuracy": val_acc, "val_loss": val_loss}
            )
            bar.set_postfix(loss=f"{loss.item():.3f}", val_acc=f"{val_acc:.3f}")
            key = (-val_loss, val_acc)
            if key > best_key:
                best, best_key, waited = copy.deepcopy(self.model.state_dict()), key, 0
            else:
                waited += 1
                if waited >= cfg.patience:
                    break
        if best is not None:
            self.model.load_state_dict(best)
        self.best_epoch = int(np.argmin([h["val_loss"] for h in self.history]))
        log.info("%s: best validation loss %.4f", self.name, -best_key[0])

    def _neighbour_outcomes(self, graph, data: RoutingData, cost_norm: np.ndarray) -> torch.Tensor:  # type: ignore[no-untyped-def]
        """Similarity-weighted mean of the neighbours' [performance | cost] rows, (Q, 2L)."""
        src, dst = graph[SIMILAR].edge_index
        w = graph[SIMILAR].edge_weight.clamp(min=0)[:, None]
        outcome = torch.from_numpy(
            np.concatenate(
                [
                    np.nan_to_num(data.performance, nan=0.0),
                    cost_norm,
                ],
                axis=1,
            )
        ).float()
        total = scatter(outcome[src] * w, dst, dim=0, dim_size=len(data.query_ids), reduce="sum")
        weight = scatter(w, dst, dim=0, dim_size=len(data.query_ids), reduce="sum")
        return total / weight.clamp(min=1e-6)

    def _encode(self) -> tuple[torch.Tensor, ...]:
        h_q = self.model.encode_queries(self._q_x, self._q_task, self._neigh)
        h_l = self.model.encode_llms(self._l_x)
        perf, cost = self.model.outcomes(h_q, h_l)
        return h_q, h_l, perf, cost

    def _masked(self, scores: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
        return scores.masked_fill(~self._available[queries], -1e9)

    def _user_state(self, h_q, h_l):  # type: ignore[no-untyped-def]
        du, dq, dl = self._dec
        msgs = self.model.decision_messages(h_q, h_l, self._seen_perf, self._seen_cost, dq, dl)
        total, count = self.model.user_states(msgs, du, self._num_users)
        return total / count.clamp(min=1)

    def _route_utility(self, h_u, h_l, perf, cost):  # type: ignore[no-untyped-def]
        """Expected utility on queries with unknown outcomes: the predicted ones."""
        return self.model.utility(h_u, h_l, torch.sigmoid(perf), cost)

    def _tied_with_choice(self, queries, llms, perf, cost) -> torch.Tensor:  # type: ignore[no-untyped-def]
        """(E, L) candidates as good as the choice: the same observed performance and a
        cost no lower. Cost breaks performance ties, so any of them explains the choice."""
        p, c = perf[queries], cost[queries]
        chosen_p = p.gather(1, llms[:, None])
        chosen_c = c.gather(1, llms[:, None])
        tied = (p == chosen_p) & (c >= chosen_c) & self._available[queries]
        return tied.scatter(1, llms[:, None], True)

    def _observed(
        self, data: RoutingData, mask: np.ndarray, cost_norm: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Observed performance and normalised cost of the queries in ``mask`` (else 0)."""
        seen = mask[:, None] & ~np.isnan(data.performance)
        perf = np.where(seen, data.performance, 0.0)
        cost = np.where(seen, cost_norm, 0.0)
        return (
            torch.tensor(perf, dtype=torch.float32, device=self.device),
            torch.tensor(cost, dtype=torch.float32, device=self.device),
        )

    @torch.no_grad()
    def _validate(self, v_u, v_q, v_l, val_perf, val_cost) -> tuple[float, float]:  # type: ignore[no-untyped-def]
        """Validation routing accuracy, and the validation loss that selects checkpoints.

        The loss is the choice likelihood on held-out queries given the outcomes
        the users saw there. (Adding the outcome heads' error selected early
        epochs, before user preferences were learned.) Accuracy is reported, not
        selected on: agreeing with realised choices favours cheap LLMs over the
        best expected reward.
        """
        if len(v_u) == 0:
            return 0.0, 0.0
        self.model.eval()
        h_q, h_l, perf, cost = self._encode()
        h_u = self._user_state(h_q, h_l)
        routed = self._masked(self._route_utility(h_u[v_u], h_l, perf[v_q], cost[v_q]), v_q)
        seen = self.model.utility(h_u[v_u], h_l, val_perf[v_q], val_cost[v_q])
        tied = self._tied_with_choice(v_q, v_l, val_perf, val_cost)
        nll = _choice_nll(self._masked(self.model.temperature * seen, v_q), tied)
        loss = float(nll)
        return float((routed.argmax(1) == v_l).float().mean()), loss

    # -- serving ----------------------------------------------------------------
    def onboard(self, users: np.ndarray, queries: np.ndarray, llms: np.ndarray) -> None:
        """Add decisions to the users' states without retraining (new-user onboarding)."""
        du, dq, dl = self._dec
        dev = self.device
        self._dec = (
            torch.cat([du, torch.as_tensor(users, device=dev)]),
            torch.cat([dq, torch.as_tensor(queries, device=dev)]),
            torch.cat([dl, torch.as_tensor(llms, device=dev)]),
        )

    @torch.no_grad()
    def score(self, data: RoutingData, users: np.ndarray, queries: np.ndarray) -> np.ndarray:
        self.model.eval()
        h_q, h_l, perf, cost = self._encode()
        h_u = self._user_state(h_q, h_l)
        u = torch.as_tensor(users, device=self.device)
        q = torch.as_tensor(queries, device=self.device)
        out = []
        for start in range(0, len(u), 8192):
            s = slice(start, start + 8192)
            out.append(self._route_utility(h_u[u[s]], h_l, perf[q[s]], cost[q[s]]))
        return torch.cat(out).cpu().numpy() if out else np.zeros((0, data.num_llms))

    def config_dict(self) -> dict[str, object]:
        return asdict(self.train_config) | {"seed": self.seed, "router": self.name}


class NonPersonalizedGNNRouter(GNNRouter):
    """The same network and training, without users (GraphRouter-style)."""

    name = "gnn_nonpersonal"
    personalized = False
