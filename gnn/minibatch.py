"""Mini-batch training of the GNN router's network, with memory bounded by the batch.

Full-batch training (:func:`gnn.fitting.fit_network`) encodes every query and
sends every decision's message each epoch: its memory grows with the graph.
Here an epoch is a pass over the training targets (decisions and pairwise
judgements) in batches of ``batch_size`` drawn by windows of users
(:meth:`_Batches.by_user`: a step touches a bounded number of users, so that
the states it reads follow the batch, not the number of users); a step encodes
only the queries its batch needs:

- the targets' queries;
- the decisions that form the targets' users' states: a user with at most
  ``state_sample`` training decisions is read in full (then the state is the
  full-batch one, leave-one-out included), a user with more from a random
  sample of ``state_sample`` of them (a sampled neighbourhood: the mean of the
  sampled messages, the target's own left out, stands for the mean of all);
- the outcome targets of a batch of training queries (the queries with
  outcomes split into as many batches as there are steps).

The few-shot draw (an LLM known from a few training queries) is redone per
step for the step's queries only. Validation is the full-batch validation
computed in chunks (:func:`validate_chunked`, no gradients). The choice between
full and mini batches is :func:`batch_plan`'s (``batch_size=-1``: automatic by
graph size, logged).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch_geometric.utils import scatter
from tqdm import tqdm

from gnn.data import RoutingData, Split
from gnn.fitting import (
    EarlyStopping,
    FitResult,
    check_finite_loss,
    choice_nll_terms,
    decision_loss,
    outcome_loss,
    tie_nll_terms,
    training_targets,
)
from gnn.graph import neighbour_outcomes
from gnn.inference import RouterInference
from prcore.errors import ProuterError

__all__ = [
    "AUTO_BATCH",
    "FULL_BATCH_LIMIT",
    "MAX_AUTO_BATCH",
    "Ranks",
    "StepLoss",
    "batch_plan",
    "fit_minibatch",
    "graph_size",
    "inference_chunk",
    "validate_chunked",
]

#: Above this graph size (training decisions + query x LLM pairs) ``batch_size=-1``
#: trains in mini-batches of :data:`AUTO_BATCH` queries' worth of targets, at most
#: :data:`MAX_AUTO_BATCH` (see :func:`batch_plan`).
FULL_BATCH_LIMIT = 500_000
AUTO_BATCH = 4096
MAX_AUTO_BATCH = 65_536
_CHUNK = 16_384  # queries / decisions per no-gradient forward in validation

log = logging.getLogger(__name__)


def graph_size(inference: RouterInference) -> int:
    """Rows of full-batch training's largest activations: decisions + query x LLM pairs."""
    f = inference.features
    return len(f.dec[0]) + f.q_x.shape[0] * f.l_x.shape[0]


def batch_plan(inference: RouterInference, batch_size: int, processes: int = 1) -> int:
    """The batch size to train with (0: full batch): ``batch_size`` when given (>= 0),
    else (-1) full batch up to :data:`FULL_BATCH_LIMIT` and above it mini-batches of
    :data:`AUTO_BATCH` x (training decisions per query) targets, at most
    :data:`MAX_AUTO_BATCH`: a step encodes its targets' queries, so where many users
    decide on the same queries a small batch costs nearly a full pass over the queries.
    The choice is logged (with ``processes`` when several)."""
    if batch_size < -1:
        raise ProuterError(
            f"batch_size must be -1 (automatic), 0 (full batch) or more: {batch_size}"
        )
    size = graph_size(inference)
    targets = inference.features.dec[0]
    if batch_size == -1:
        queries = len(np.unique(inference.features.dec[1].cpu().numpy()))
        per_query = len(targets) / max(1, queries)  # training decisions per query
        auto = min(MAX_AUTO_BATCH, max(AUTO_BATCH, round(AUTO_BATCH * per_query)))
        batch_size = 0 if size <= FULL_BATCH_LIMIT else auto
        how = "automatic"
    else:
        how = "configured"
    across = f", across {processes} processes (DDP)" if processes > 1 else ""
    if batch_size == 0 or batch_size >= len(targets):
        log.info("training: full batch (%s; graph size %d)%s", how, size, across)
        return 0
    log.info(
        "training: mini-batches of %d targets (%s; graph size %d)%s", batch_size, how, size, across
    )
    return batch_size


class _Batches:
    """Per-user decision lists and outcome targets, for sampling steps (numpy, CPU)."""

    def __init__(self, inference: RouterInference, targets: tuple[torch.Tensor, ...]) -> None:
        f = inference.features
        self.du, self.dq = (t.cpu().numpy() for t in f.dec[:2])
        self.count = np.bincount(self.du, minlength=f.num_users)
        self.order = np.argsort(self.du, kind="stable")
        self.ptr = np.concatenate([[0], np.cumsum(self.count)])
        self.pq = targets[0].cpu().numpy()  # sorted by query (np.nonzero order)
        self.oq = targets[3].cpu().numpy()
        self.queries = np.union1d(self.pq, self.oq)
        self.tu, self.tq = (t.cpu().numpy() for t in f.ties[:2])  # training ties

    def by_user(
        self, rng: np.random.Generator, batch_size: int, cap: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """An epoch's order of the targets and of the ties, drawn by windows of users: the
        users in a random order, cut into windows whose sampled states (up to ``cap``
        decisions a user) add up to about ``batch_size``; targets (and ties) of a window
        in a random order, windows one after the other. A slice of ``batch_size``
        consecutive targets then reads at most 3 x ``batch_size`` + 2 x ``cap`` state
        decisions, from at least ``batch_size / cap`` users where users have ``cap``
        targets or more (a step is not one user's)."""
        place = rng.permutation(len(self.count))
        states = np.minimum(self.count[place], cap)
        window = np.empty(len(place), dtype=np.int64)
        window[place] = (np.cumsum(states) - states) // max(1, batch_size)
        order = np.lexsort((rng.random(len(self.du)), window[self.du]))
        ties = np.lexsort((rng.random(len(self.tu)), window[self.tu]))
        return order, ties

    def state_sample(self, users: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
        """Decisions describing ``users``: all of a user's up to ``cap``, else ``cap`` at random."""
        lens = self.count[users]
        small, big = users[lens <= cap], users[lens > cap]
        lens = self.count[small]
        offsets = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)
        parts = [self.order[np.repeat(self.ptr[small], lens) + offsets]]
        for u in big:
            parts.append(self.order[self.ptr[u] + rng.choice(self.count[u], cap, replace=False)])
        return np.concatenate(parts)

    @staticmethod
    def entries(sorted_q: np.ndarray, queries: np.ndarray) -> np.ndarray:
        """Positions in ``sorted_q`` of the entries whose query is in ``queries``."""
        lo = np.searchsorted(sorted_q, queries, "left")
        hi = np.searchsorted(sorted_q, queries, "right")
        lens = hi - lo
        return np.repeat(lo, lens) + np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)


def _few_shot_rows(
    inference: RouterInference, rng: np.random.Generator, max_shots: int, rows: np.ndarray
) -> torch.Tensor:
    """The outcome messages of ``rows`` with one random LLM known from only a few training
    queries (:meth:`RouterFeatures.few_shot_neighbours` for a subset of queries)."""
    f = inference.features
    neigh = f.neigh[torch.from_numpy(rows).to(f.device)]
    llm = int(rng.integers(f.ref_perf.shape[1]))
    answered = np.flatnonzero(~np.isnan(f.ref_perf[:, llm]))
    if len(answered) == 0:
        return neigh
    shots = rng.choice(
        answered, min(len(answered), int(rng.integers(1, max_shots + 1))), replace=False
    )
    where = {int(q): i for i, q in enumerate(shots)}
    same = np.array([where.get(int(q), -1) for q in rows], dtype=np.int64)
    column = neighbour_outcomes(
        f.query_emb[rows],
        f.query_emb[shots],
        f.ref_perf[shots, llm : llm + 1],
        f.ref_cost[shots, llm : llm + 1],
        k=f.k,
        same=same,
    )
    neigh = neigh.clone()
    neigh[:, llm] = torch.from_numpy(column[:, 0]).to(f.device)
    return neigh


def _shard(n: int, rank: int, world: int) -> np.ndarray:
    """Rank ``rank``'s contiguous part of ``range(n)`` (all of it when ``world`` is 1)."""
    return np.arange(n) if world == 1 else np.array_split(np.arange(n), world)[rank]


def _step_loss(
    inference: RouterInference,
    cfg: Any,
    batches: _Batches,
    targets: tuple[torch.Tensor, ...],
    perf_weight: float,
    batch: np.ndarray,
    outcome_queries: np.ndarray,
    rng: np.random.Generator,
    part: tuple[int, int] = (0, 1),
    tie_batch: np.ndarray | None = None,
) -> torch.Tensor:
    """The training loss of one batch of target decisions, outcome queries and training
    ties (``tie_batch``: rows of ``RouterFeatures.ties``; a tie's user state is made of
    the user's sampled decisions, none left out, as in full-batch training).

    ``part = (rank, world)``: the share of rank ``rank`` of ``world`` processes (DDP),
    its contiguous slice of the batch's targets and outcome entries, each term scaled by
    the batch's counts and times ``world``, so that the ranks' averaged gradients are
    the whole batch's. Every rank draws the batch's random choices alike (the users'
    sampled states, the few-shot draw), so the same ``rng`` gives the same draws."""
    model, f = inference.model, inference.features
    dev = f.device
    rank, world = part
    _, dq, dl, dr = f.dec
    _, pl, o_perf, _, ol, o_cost = targets
    ties = np.zeros(0, dtype=np.int64) if tie_batch is None else tie_batch
    targeted = np.concatenate([batches.du[batch], batches.tu[ties]])
    state = batches.state_sample(np.unique(targeted), cfg.state_sample, rng)
    p_all = batches.entries(batches.pq, outcome_queries)
    c_all = batches.entries(batches.oq, outcome_queries)
    logged_all = int((~dr[torch.from_numpy(batch)].isnan()).sum())
    whole = len(batch) + len(ties), len(p_all), len(c_all), logged_all
    batch = batch[_shard(len(batch), rank, world)]
    ties = ties[_shard(len(ties), rank, world)]
    p_idx, c_idx = p_all[_shard(len(p_all), rank, world)], c_all[_shard(len(c_all), rank, world)]
    users = np.unique(np.concatenate([batches.du[batch], batches.tu[ties]]))
    state = state[np.isin(batches.du[state], users)]
    rows = np.unique(
        np.concatenate(
            [
                batches.dq[batch],
                batches.dq[state],
                batches.pq[p_idx],
                batches.oq[c_idx],
                batches.tq[ties],
            ]
        )
    )

    def local(q: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.searchsorted(rows, q)).to(dev)

    rows_t = torch.from_numpy(rows).to(dev)
    few_shot = rng.random() < cfg.new_llm_rate
    neigh = (
        _few_shot_rows(inference, rng, cfg.new_llm_max_shots, rows) if few_shot else f.neigh[rows_t]
    )
    h_q = model.encode_queries(f.q_x[rows_t], f.q_task[rows_t])
    h_l = model.encode_llms(f.l_x)
    perf, cost = inference.outcomes(h_q, h_l, neigh, f.prior[rows_t])
    known = f.seen_known[rows_t]
    seen_p = torch.where(known, f.seen_perf[rows_t], torch.sigmoid(perf))
    seen_c = torch.where(known, f.seen_cost[rows_t], cost)

    aux = perf.sum() * 0.0
    if len(p_idx):
        p = torch.from_numpy(p_idx).to(dev)
        aux = aux + perf_weight * F.binary_cross_entropy_with_logits(
            perf[local(batches.pq[p_idx]), pl[p]], o_perf[p]
        ) * (len(p_idx) / whole[1])
    if len(c_idx):
        c = torch.from_numpy(c_idx).to(dev)
        aux = aux + F.mse_loss(cost[local(batches.oq[c_idx]), ol[c]], o_cost[c]) * (
            len(c_idx) / whole[2]
        )
    if not len(batch) and not len(ties):  # a rank without targets in a small last batch
        touch = sum(p.sum() for p in model.parameters()) * 0.0  # every weight in DDP's graph
        return world * (cfg.aux_weight * aux + touch)

    s = torch.from_numpy(state).to(dev)
    msgs = model.decision_messages(
        h_q, h_l, seen_p, seen_c, f.cand[s], local(batches.dq[state]), dl[s], dr[s]
    )
    state_user = torch.from_numpy(np.searchsorted(users, batches.du[state])).to(dev)
    total = scatter(msgs, state_user, dim=0, dim_size=len(users), reduce="sum")
    sampled = torch.bincount(state_user, minlength=len(users)).to(msgs.dtype)[:, None]
    # Leave-one-out: a target among its user's sampled decisions drops its own message.
    by_id = np.argsort(state)
    j = np.minimum(np.searchsorted(state[by_id], batch), len(state) - 1)
    found = state[by_id][j] == batch
    own = torch.from_numpy(np.where(found, by_id[j], 0)).to(dev)
    found_t = torch.from_numpy(found).to(dev)[:, None]
    t_user = torch.from_numpy(np.searchsorted(users, batches.du[batch])).to(dev)
    others_sum = total[t_user] - torch.where(found_t, msgs[own], 0.0)
    others_n = sampled[t_user] - found_t.to(msgs.dtype)
    count = torch.from_numpy(batches.count[batches.du[batch]]).to(dev, msgs.dtype)[:, None]
    mean = others_sum / others_n.clamp(min=1)
    h_u = mean * (count - 1) / (count - 1 + cfg.prior_decisions).clamp(min=1)
    tie_nll = None
    if len(ties):  # not in the states: a tie's user is the mean of all sampled, shrunk
        t = torch.from_numpy(ties).to(dev)
        t_user = torch.from_numpy(np.searchsorted(users, batches.tu[ties])).to(dev)
        n = torch.from_numpy(batches.count[batches.tu[ties]]).to(dev, msgs.dtype)[:, None]
        h_t = total[t_user] / sampled[t_user].clamp(min=1) * n
        h_t = h_t / (n + cfg.prior_decisions).clamp(min=1)
        tie_rows = (f.ties[0][t], local(batches.tq[ties]), *(x[t] for x in f.ties[2:]))
        tie_nll = tie_nll_terms(inference, h_t, tie_rows, seen_p, seen_c)

    b = torch.from_numpy(batch).to(dev)
    tied = f.tied_with_choice(dq[b], dl[b], f.cand[b])
    # decision_loss = mean choice (and tie) NLL + reward_weight * mean logged error: rescaled
    # to the batch's counts, share = targets / whole[0] and the logged error's weight adjusted.
    share = (len(batch) + len(ties)) / whole[0]
    logged = int((~dr[b].isnan()).sum())
    reward_weight = cfg.reward_weight * (logged / whole[3] / share if logged else 1.0)
    loss = decision_loss(
        inference,
        reward_weight,
        h_u,
        local(batches.dq[batch]),
        dl[b],
        dr[b],
        f.cand[b],
        tied,
        seen_p,
        seen_c,
        tie_nll=tie_nll,
    )
    return world * (loss * share + cfg.aux_weight * aux)


def inference_chunk(inference: RouterInference) -> int | None:
    """The :attr:`RouterInference.chunk` for this graph: chunks above
    :data:`FULL_BATCH_LIMIT`, none below (small graphs score all at once, as before)."""
    return _CHUNK if graph_size(inference) > FULL_BATCH_LIMIT else None


@torch.no_grad()
def validate_chunked(
    inference: RouterInference,
    reward_weight: float,
    val: tuple[torch.Tensor, ...],
    outcomes: tuple[torch.Tensor, ...],
    ties: tuple[torch.Tensor, ...] | None = None,
) -> tuple[float, float, float]:
    """:func:`gnn.fitting.validate` in chunks: the same figures up to float summation
    order, with memory bounded by the chunk (plus (Q, H) query states)."""
    model, f = inference.model, inference.features
    v_u, v_q, v_l, v_r, v_c = val
    model.eval()
    saved, inference.chunk = inference.chunk, inference.chunk or _CHUNK
    try:
        h_q, h_l, perf, cost = inference.encode()
        h_u = inference.user_states(h_q, h_l) if len(v_u) else None
    finally:
        inference.chunk = saved
    outcome = outcome_loss(perf, cost, outcomes)
    if h_u is None:
        return 0.0, outcome, outcome
    weight = f.logged_weights()
    seen_p, seen_c = f.filled(perf, cost)
    correct = nll = sq = 0.0
    logged = int((~v_r.isnan()).sum())
    for start in range(0, len(v_u), _CHUNK):
        s = slice(start, start + _CHUNK)
        u, q, ll, r, c = v_u[s], v_q[s], v_l[s], v_r[s], v_c[s]
        routed = inference.route_utility(h_u[u], perf[q], cost[q], weight[u]).masked_fill(~c, -1e9)
        correct += float((routed.argmax(1) == ll).sum())
        tied = f.tied_with_choice(q, ll, c)
        utility = model.utility(h_u[u], seen_p[q], seen_c[q])
        scores = (model.temperature * utility).masked_fill(~c, -1e9)
        nll += float(choice_nll_terms(scores, tied).sum())
        ok = ~r.isnan()
        if ok.any():
            sq += float((utility.gather(1, ll[:, None])[:, 0] - r)[ok].square().sum())
    n_ties = 0 if ties is None else len(ties[0])
    for start in range(0, n_ties, _CHUNK):
        rows = tuple(t[start : start + _CHUNK] for t in ties)  # type: ignore[union-attr]
        nll += float(tie_nll_terms(inference, h_u[rows[0]], rows, seen_p, seen_c).sum())
    loss = nll / (len(v_u) + n_ties) + (reward_weight * sq / logged if logged else 0.0)
    return correct / len(v_u), loss + outcome, outcome


class StepLoss(nn.Module):
    """:func:`_step_loss` as a module, the model its parameters (what DDP wraps)."""

    def __init__(
        self,
        inference: RouterInference,
        cfg: Any,
        batches: _Batches,
        targets: tuple[torch.Tensor, ...],
        perf_weight: float,
        part: tuple[int, int] = (0, 1),
    ) -> None:
        super().__init__()
        self.model = inference.model
        self.inference, self.cfg, self.batches, self.targets = inference, cfg, batches, targets
        self.perf_weight, self.part = perf_weight, part

    def forward(
        self,
        batch: np.ndarray,
        outcome_queries: np.ndarray,
        rng: np.random.Generator,
        tie_batch: np.ndarray | None = None,
    ) -> torch.Tensor:
        return _step_loss(
            self.inference,
            self.cfg,
            self.batches,
            self.targets,
            self.perf_weight,
            batch,
            outcome_queries,
            rng,
            self.part,
            tie_batch,
        )


class Ranks(Protocol):
    """How the mini-batch loop runs as one of several processes (:mod:`gnn.distributed`)."""

    part: tuple[int, int]  # (rank, world)

    def wrap(self, step: StepLoss) -> nn.Module: ...

    def mean(self, loss: torch.Tensor) -> float:
        """The step's whole-batch loss from this rank's (scaled) loss."""

    def improved(self, improved: bool) -> bool:
        """Rank 0's early-stopping decision, on every rank."""


def fit_minibatch(
    inference: RouterInference,
    data: RoutingData,
    split: Split,
    cfg: Any,
    *,
    rng: np.random.Generator,
    name: str,
    batch_size: int,
    progress: bool = False,
    ranks: Ranks | None = None,
) -> FitResult:
    """Train ``inference.model`` in mini-batches of ``batch_size`` targets (see module
    doc), keeping the weights of the epoch with the lowest validation loss; stop after
    ``cfg.patience`` epochs without improvement. With ``ranks`` this is one process of
    several (DDP): every rank draws the same batches and takes its share of each."""
    model, f = inference.model, inference.features
    inference.chunk = inference.chunk or _CHUNK  # scoring after training, too
    plan = training_targets(f, data, split)
    targets = plan.outcomes
    batches = _Batches(inference, targets)
    n_targets = len(batches.du)
    steps = max(1, -(-n_targets // batch_size))
    step_loss = StepLoss(
        inference, cfg, batches, targets, plan.perf_weight, ranks.part if ranks else (0, 1)
    )
    run = ranks.wrap(step_loss) if ranks else step_loss
    optim = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    stopping = EarlyStopping(model, cfg.patience, keep_initial=ranks is not None)
    bar = tqdm(range(cfg.epochs), desc=f"train {name}", disable=not progress or None, leave=False)
    for epoch in bar:
        started = time.perf_counter()
        model.train()
        order, tie_order = batches.by_user(rng, batch_size, cfg.state_sample)
        outcome_batches = np.array_split(rng.permutation(batches.queries), steps)
        tie_batches = np.array_split(tie_order, steps)  # ties ride along, as many per step
        losses = []
        for step in range(steps):
            batch = np.sort(order[step * batch_size : (step + 1) * batch_size])
            loss = run(batch, np.sort(outcome_batches[step]), rng, np.sort(tie_batches[step]))
            losses.append(ranks.mean(loss) if ranks else loss.item())
            check_finite_loss(torch.tensor(losses[-1]), epoch)
            optim.zero_grad()
            loss.backward()
            optim.step()
        validation = validate_chunked(
            inference, cfg.reward_weight, plan.val, plan.val_outcomes, plan.val_ties
        )
        mean_loss = float(np.mean(losses))
        bar.set_postfix(loss=f"{mean_loss:.3f}", val_acc=f"{validation[0]:.3f}")
        improved = (
            ranks.improved(stopping.improves(validation[1], validation[0])) if ranks else None
        )
        if stopping.update(epoch, mean_loss, validation, started, improved):
            break
    return stopping.finish(inference, f"{name} (mini-batch)")
