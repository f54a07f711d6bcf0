"""Training the GNN router's network across processes (``torch.distributed`` DDP).

Each of ``W`` processes holds the whole graph state and runs the same forward
pass (queries, outcome heads, every decision's message and the users' states,
with the same dropout masks and few-shot draws: every rank starts from the
same torch and numpy random state); each takes a disjoint shard of the
training *targets* (the decisions whose choice and reward are fitted, and the
outcome targets of the auxiliary heads). A rank's loss is its shard's sum
divided by the global number of targets, times ``W``, so the gradients
:class:`~torch.nn.parallel.DistributedDataParallel` averages are exactly the
full-batch gradients (up to float summation order) whatever the shard sizes:
``W`` processes train the model single-process full-batch training trains.
Validation and early stopping run on every rank alike (rank 0's decision is
broadcast). Backends: ``gloo`` on CPU, ``nccl`` on CUDA (one GPU per rank).

With mini-batches (``batch_size``, :func:`gnn.minibatch.batch_plan`) every rank
draws the same batches (same numpy random state) and takes a contiguous share
of each step's targets and outcome entries, encoding only the queries its share
needs; the shares' losses are scaled by the batch's counts, so the averaged
gradients are the single-process mini-batch gradients (equal up to float
summation order where there is no dropout: the ranks' dropout masks differ).
"""

from __future__ import annotations

import copy
import json
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import distributed as dist
from torch import multiprocessing as mp
from torch import nn
from torch.nn import functional as F
from torch.nn.parallel import DistributedDataParallel

from gnn.data import RoutingData, Split
from gnn.features import RouterFeatures
from gnn.fitting import (
    EarlyStopping,
    FitResult,
    check_finite_loss,
    choice_nll_terms,
    tie_nll_terms,
    training_targets,
    validate,
)
from gnn.inference import RouterInference
from gnn.minibatch import _CHUNK, StepLoss, batch_plan, fit_minibatch
from prcore.errors import ProuterError

__all__ = ["fit_distributed", "free_port", "shard"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 free now (for ``MASTER_PORT``)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def shard(n: int, rank: int, world: int) -> np.ndarray:
    """Rank ``rank``'s part of ``range(n)``: contiguous, disjoint, sizes differ by at most 1."""
    return np.array_split(np.arange(n), world)[rank]


class _ShardLoss(nn.Module):
    """The full-batch training loss restricted to one rank's targets (see module doc)."""

    def __init__(
        self,
        inference: RouterInference,
        cfg: Any,
        rank: int,
        world: int,
        targets: tuple[torch.Tensor, ...],
        tied: torch.Tensor,
        perf_weight: float,
    ) -> None:
        super().__init__()
        self.model = inference.model
        self.inference, self.cfg, self.world = inference, cfg, world
        self.pq, self.pl, self.o_perf, self.oq, self.ol, self.o_cost = targets
        features = inference.features
        dev = features.device
        n_dec = len(features.dec[0])
        self.mine = torch.from_numpy(shard(n_dec, rank, world)).to(dev)
        self.t_mine = torch.from_numpy(shard(len(features.ties[0]), rank, world)).to(dev)
        self.p_mine = torch.from_numpy(shard(len(self.pq), rank, world)).to(dev)
        self.c_mine = torch.from_numpy(shard(len(self.oq), rank, world)).to(dev)
        self.n_dec, self.tied, self.perf_weight = n_dec, tied, perf_weight
        self.n_terms = n_dec + len(features.ties[0])  # choices and ties: one NLL term each
        self.n_logged = int((~features.dec[3].isnan()).sum())

    def forward(self, neigh: torch.Tensor | None) -> torch.Tensor:
        inference, cfg, model = self.inference, self.cfg, self.model
        features = inference.features
        du, dq, dl, dr = features.dec
        cand = features.cand
        h_q, h_l, perf, cost = inference.encode(neigh)
        aux = perf.sum() * 0.0
        pm, cm = self.p_mine, self.c_mine
        if len(self.pq):
            bce = F.binary_cross_entropy_with_logits(
                perf[self.pq[pm], self.pl[pm]], self.o_perf[pm], reduction="sum"
            )
            aux = aux + self.perf_weight * bce / len(self.pq)
        if len(self.oq):
            sq = (cost[self.oq[cm], self.ol[cm]] - self.o_cost[cm]).square().sum()
            aux = aux + sq / len(self.oq)
        seen_p, seen_c = features.filled(perf, cost)
        msgs = model.decision_messages(h_q, h_l, seen_p, seen_c, cand, dq, dl, dr)
        total, count = model.user_states(msgs, du, features.num_users)
        m = self.mine
        others = (count[du[m]] - 1 + cfg.prior_decisions).clamp(min=1)
        h_u = (total[du[m]] - msgs[m]) / others
        utility = model.utility(h_u, seen_p[dq[m]], seen_c[dq[m]])
        scores = (model.temperature * utility).masked_fill(~cand[m], -1e9)
        decision = scores.sum() * 0.0
        if len(m):
            decision = decision + choice_nll_terms(scores, self.tied[m]).sum() / self.n_terms
        t = self.t_mine
        if len(t):  # ties are not in the users' states: the whole state describes them
            tu = features.ties[0][t]
            h_t = total[tu] / (count[tu] + cfg.prior_decisions).clamp(min=1)
            ties = tuple(x[t] for x in features.ties)
            tie_nll = tie_nll_terms(inference, h_t, ties, seen_p, seen_c)
            decision = decision + tie_nll.sum() / self.n_terms
        logged = ~dr[m].isnan()
        if self.n_logged:
            chosen = utility.gather(1, dl[m][:, None])[:, 0]
            error = (chosen - dr[m])[logged]
            decision = decision + cfg.reward_weight * error.square().sum() / self.n_logged
        return self.world * (decision + cfg.aux_weight * aux)


def _move(features: RouterFeatures, device: torch.device) -> None:
    """Put every tensor of ``features`` on ``device`` (a rank's GPU)."""
    for name, value in vars(features).items():
        if isinstance(value, torch.Tensor):
            setattr(features, name, value.to(device))
        elif isinstance(value, list) and value and isinstance(value[0], torch.Tensor):
            setattr(features, name, [t.to(device) for t in value])
    features.device = device


def _worker(
    rank: int,
    world: int,
    port: int,
    inference: RouterInference,
    data: RoutingData,
    split: Split,
    cfg: Any,
    rng: np.random.Generator,
    torch_state: torch.Tensor,
    out: str,
    batch_size: int = 0,
) -> None:
    torch.set_num_threads(int(os.environ.get("PROUTER_DDP_THREADS", "1")))
    # The parent's tensors arrive in shared memory: each rank trains its own copy.
    model = copy.deepcopy(inference.model)
    scale, chunk = inference.residual_scale, inference.chunk
    inference = RouterInference(model, inference.features, inference.prior_decisions)
    inference.residual_scale, inference.chunk = scale, chunk
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    cuda = inference.features.device.type == "cuda"
    dist.init_process_group("nccl" if cuda else "gloo", rank=rank, world_size=world)
    try:
        if cuda:
            device = torch.device("cuda", rank)
            torch.cuda.set_device(device)
            _move(inference.features, device)
            inference.model.to(device)
        if batch_size:
            torch.set_rng_state(torch_state)
            ranks = _Ranks(rank, world, inference)
            result = fit_minibatch(
                inference, data, split, cfg, rng=rng, name="ddp", batch_size=batch_size, ranks=ranks
            )
            weights = inference.model.state_dict()  # the best epoch's, restored by the loop
        else:
            result, weights = _train(rank, world, inference, data, split, cfg, rng, torch_state)
        if rank == 0:
            torch.save({k: v.cpu() for k, v in weights.items()}, Path(out) / "weights.pt")
            (Path(out) / "history.json").write_text(json.dumps(result.history))
    finally:
        dist.destroy_process_group()


class _Ranks:
    """The DDP side of the mini-batch loop (:class:`gnn.minibatch.Ranks`)."""

    def __init__(self, rank: int, world: int, inference: RouterInference) -> None:
        self.part = (rank, world)
        self.device = inference.features.device
        self.find_unused = not inference.model.personalized

    def wrap(self, step: StepLoss) -> nn.Module:
        return DistributedDataParallel(step, find_unused_parameters=self.find_unused)

    def mean(self, loss: torch.Tensor) -> float:
        total = loss.detach() / self.part[1]
        dist.all_reduce(total)
        return float(total.item())

    def improved(self, improved: bool) -> bool:
        flag = torch.tensor([int(improved)], device=self.device)
        dist.broadcast(flag, 0)  # every rank stops where rank 0 does
        return bool(flag.item())


def _train(
    rank: int,
    world: int,
    inference: RouterInference,
    data: RoutingData,
    split: Split,
    cfg: Any,
    rng: np.random.Generator,
    torch_state: torch.Tensor,
) -> tuple[FitResult, dict[str, torch.Tensor]]:
    """The loop of :func:`gnn.fitting.fit_network` with the loss of :class:`_ShardLoss`."""
    torch.set_rng_state(torch_state)
    model, features = inference.model, inference.features
    dq, dl = features.dec[1], features.dec[2]
    plan = training_targets(features, data, split)
    tied = features.tied_with_choice(dq, dl, features.cand)
    step = DistributedDataParallel(
        _ShardLoss(inference, cfg, rank, world, plan.outcomes, tied, plan.perf_weight),
        find_unused_parameters=not model.personalized,
    )
    optim = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    stopping = EarlyStopping(model, cfg.patience, keep_initial=True)
    for epoch in range(cfg.epochs):
        started = time.perf_counter()
        model.train()
        few_shot = rng.random() < cfg.new_llm_rate
        neigh = features.few_shot_neighbours(rng, cfg.new_llm_max_shots) if few_shot else None
        loss = step(neigh)
        optim.zero_grad()
        loss.backward()
        optim.step()
        total = loss.detach() / world
        dist.all_reduce(total)
        check_finite_loss(total, epoch)
        validation = validate(
            inference, cfg.reward_weight, plan.val, plan.val_outcomes, plan.val_ties
        )
        improved = torch.tensor(
            [1 if stopping.improves(validation[1], validation[0]) else 0], device=features.device
        )
        dist.broadcast(improved, 0)  # every rank stops where rank 0 does
        if stopping.update(epoch, total.item(), validation, started, bool(improved.item())):
            break
    best = stopping.best
    return stopping.finish(), best


def fit_distributed(
    inference: RouterInference,
    data: RoutingData,
    split: Split,
    cfg: Any,
    *,
    rng: np.random.Generator,
    processes: int,
) -> FitResult:
    """Train ``inference.model`` as :func:`gnn.fitting.fit_network` does (full batch or
    mini-batches, :func:`gnn.minibatch.batch_plan`'s choice, logged), across
    ``processes`` local processes with DDP; the parent's model ends with the weights
    of the epoch with the lowest validation loss."""
    if processes < 2:
        raise ProuterError(f"processes must be at least 2 for DDP, got {processes}")
    if inference.features.device.type == "cuda" and torch.cuda.device_count() < processes:
        raise ProuterError(
            f"{processes} processes need {processes} GPUs (NCCL, one per rank); "
            f"{torch.cuda.device_count()} visible"
        )
    batch_size = batch_plan(inference, int(getattr(cfg, "batch_size", 0)), processes)
    if batch_size:
        inference.chunk = inference.chunk or _CHUNK  # scoring after training, as fit_minibatch
    with tempfile.TemporaryDirectory(prefix="prouter-ddp-") as out:
        mp.spawn(
            _worker,
            args=(
                processes,
                free_port(),
                inference,
                data,
                split,
                cfg,
                rng,
                torch.get_rng_state(),
                out,
                batch_size,
            ),
            nprocs=processes,
            join=True,
        )
        weights = torch.load(Path(out) / "weights.pt", weights_only=True)
        history = json.loads((Path(out) / "history.json").read_text())
    inference.model.load_state_dict(weights)
    inference.invalidate()
    result = FitResult(history=history)
    result.best_epoch = int(np.argmin([h["val_loss"] for h in history]))
    return result
