"""Learned outcome predictors on the query embedding, combined with each user's weight.

* ``logistic_outcomes``: per LLM, an L2-regularised logistic regression of its
  performance (success probability; graded scores are soft targets) on the
  query embedding and the task one-hot, fitted full-batch with L-BFGS; the L2
  strength is chosen on validation. Costs: the (task, LLM) training means.
* ``mlp_outcomes``: an MLP on [query embedding, task one-hot] with one success
  logit and one normalised-cost output per LLM (cross-entropy + squared error
  on the observed outcomes), early-stopped on validation loss; the hidden
  width is chosen on validation.
* ``mf_outcomes``: matrix factorisation of the query x LLM outcome matrix
  (RouteLLM style): ``logit(q, l) = <v_l, W e_q> + b_l`` with learned LLM
  factors ``v_l``, early-stopped on validation loss; the rank is chosen on
  validation. Costs: the (task, LLM) training means.

Every loss covers observed training outcomes only (performance clipped to
[0, 1]); candidates are chosen by
:meth:`~gnn.routers.baselines.outcomes.OutcomeRouter.validation_utility` (ties:
the first). Training is seeded and single-process.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gnn.data import RoutingData, Split
from gnn.routers.baselines.outcomes import OutcomeRouter

__all__ = ["LogisticOutcomesRouter", "MFOutcomesRouter", "MLPOutcomesRouter"]


def _features(data: RoutingData, queries: np.ndarray, with_task: bool) -> torch.Tensor:
    emb = data.query_emb[queries].astype(np.float32)
    if with_task:
        emb = np.hstack(
            [emb, np.eye(len(data.task_ids), dtype=np.float32)[data.query_task[queries]]]
        )
    return torch.as_tensor(emb)


def _targets(
    data: RoutingData, queries: np.ndarray, cost_norm: np.ndarray
) -> tuple[torch.Tensor, ...]:
    perf, cost = data.performance[queries], cost_norm[queries]
    seen_p, seen_c = ~np.isnan(perf), ~np.isnan(cost)
    return (
        torch.as_tensor(np.clip(np.nan_to_num(perf), 0.0, 1.0), dtype=torch.float32),
        torch.as_tensor(seen_p),
        torch.as_tensor(np.nan_to_num(cost), dtype=torch.float32),
        torch.as_tensor(seen_c),
    )


def _masked_bce(logits: torch.Tensor, target: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
    loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return (loss * seen).sum() / seen.sum().clamp(min=1)


def _masked_mse(pred: torch.Tensor, target: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
    return (((pred - target) ** 2) * seen).sum() / seen.sum().clamp(min=1)


class _TorchOutcomes(OutcomeRouter):
    """Shared: candidate configurations, seeded training, selection on validation."""

    with_task = True
    predicts_cost = False

    def __init__(self, seed: int = 0, **config: Any) -> None:
        super().__init__(seed, **config)

    def _candidates(self) -> Sequence[dict[str, Any]]:
        raise NotImplementedError

    def _train(self, candidate: dict[str, Any], x: torch.Tensor, y: tuple, xv, yv) -> nn.Module:  # type: ignore[no-untyped-def]
        raise NotImplementedError

    def _fit_outcomes(self, data: RoutingData, split: Split, cost_norm: np.ndarray) -> None:
        train, val = np.flatnonzero(split.train), np.flatnonzero(split.val)
        x, y = _features(data, train, self.with_task), _targets(data, train, cost_norm)
        xv, yv = _features(data, val, self.with_task), _targets(data, val, cost_norm)
        best: tuple[float, int] | None = None
        self.validation_ = {}
        for i, candidate in enumerate(self._candidates()):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                self.model_ = self._train(candidate, x, y, xv, yv).eval()
            if len(val) == 0:
                break
            value = self.validation_utility(data, split, cost_norm, self.predict(data, val))
            self.validation_[repr(candidate)] = value
            if best is None or value > best[0]:
                best, best_model = (value, i), self.model_
        if best is not None:
            self.model_ = best_model
            self.chosen_ = self._candidates()[best[1]]

    @torch.no_grad()
    def predict(self, data: RoutingData, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        queries = np.asarray(queries, dtype=np.int64)
        out = self.model_(_features(data, queries, self.with_task)).double()
        n_l = data.num_llms
        perf = torch.sigmoid(out[:, :n_l]).numpy()
        if self.predicts_cost:
            return perf, out[:, n_l:].numpy()
        return perf, self.task_means_.predict(data, queries)[1]


class LogisticOutcomesRouter(_TorchOutcomes):
    """Per-LLM L2 logistic regression of success on [embedding, task one-hot]."""

    name = "logistic_outcomes"

    def __init__(
        self, seed: int = 0, *, l2: Sequence[float] = (1e-4, 1e-3, 1e-2, 1e-1), max_iter: int = 200
    ) -> None:
        super().__init__(seed, l2=tuple(l2), max_iter=max_iter)
        self.l2 = tuple(l2)
        self.max_iter = max_iter

    def _candidates(self) -> Sequence[dict[str, Any]]:
        return [{"l2": c} for c in self.l2]

    def _train(self, candidate, x, y, xv, yv):  # type: ignore[no-untyped-def]
        model = nn.Linear(x.shape[1], y[0].shape[1])
        nn.init.zeros_(model.weight)
        nn.init.zeros_(model.bias)
        optimizer = torch.optim.LBFGS(
            model.parameters(), max_iter=self.max_iter, line_search_fn="strong_wolfe"
        )

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            loss = _masked_bce(model(x), y[0], y[1]) + candidate["l2"] * model.weight.pow(2).sum()
            loss.backward()
            return loss

        optimizer.step(closure)
        return model


class _EarlyStopped(_TorchOutcomes):
    """Adam on seeded mini-batches, early stopping on validation loss (best state kept)."""

    def __init__(
        self,
        seed: int = 0,
        *,
        epochs: int = 200,
        patience: int = 10,
        batch_size: int = 256,
        lr: float = 1e-3,
        weight_decay: float = 1e-5,
        **config: Any,
    ) -> None:
        super().__init__(
            seed,
            **config,
            epochs=epochs,
            patience=patience,
            batch_size=batch_size,
            lr=lr,
            weight_decay=weight_decay,
        )
        self.epochs, self.patience, self.batch_size = epochs, patience, batch_size
        self.lr, self.weight_decay = lr, weight_decay

    def _build(self, candidate: dict[str, Any], dim: int, n_llms: int) -> nn.Module:
        raise NotImplementedError

    def _loss(self, model: nn.Module, x: torch.Tensor, y: tuple) -> torch.Tensor:  # type: ignore[type-arg]
        out = model(x)
        n_l = y[0].shape[1]
        loss = _masked_bce(out[:, :n_l], y[0], y[1])
        if self.predicts_cost:
            loss = loss + _masked_mse(out[:, n_l:], y[2], y[3])
        return loss

    def _train(self, candidate, x, y, xv, yv):  # type: ignore[no-untyped-def]
        model = self._build(candidate, x.shape[1], y[0].shape[1])
        optimizer = torch.optim.Adam(model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        generator = torch.Generator().manual_seed(self.seed)
        best, best_state, stale = float("inf"), copy.deepcopy(model.state_dict()), 0
        for _ in range(self.epochs):
            model.train()
            for batch in torch.randperm(len(x), generator=generator).split(self.batch_size):
                loss = self._loss(model, x[batch], tuple(t[batch] for t in y))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            if len(xv) == 0:
                continue
            model.eval()
            with torch.no_grad():
                val_loss = float(self._loss(model, xv, yv))
            if val_loss < best - 1e-6:
                best, best_state, stale = val_loss, copy.deepcopy(model.state_dict()), 0
            else:
                stale += 1
                if stale >= self.patience:
                    break
        if len(xv):
            model.load_state_dict(best_state)
        return model


class MLPOutcomesRouter(_EarlyStopped):
    """MLP: success logit and normalised cost per LLM from [embedding, task one-hot]."""

    name = "mlp_outcomes"
    predicts_cost = True

    def __init__(
        self,
        seed: int = 0,
        *,
        hidden: Sequence[int] = (64, 256),
        dropout: float = 0.1,
        **config: Any,
    ) -> None:
        super().__init__(seed, hidden=tuple(hidden), dropout=dropout, **config)
        self.hidden, self.dropout = tuple(hidden), dropout

    def _candidates(self) -> Sequence[dict[str, Any]]:
        return [{"hidden": h} for h in self.hidden]

    def _build(self, candidate: dict[str, Any], dim: int, n_llms: int) -> nn.Module:
        h = candidate["hidden"]
        return nn.Sequential(
            nn.Linear(dim, h), nn.ReLU(), nn.Dropout(self.dropout), nn.Linear(h, 2 * n_llms)
        )


class _Factorised(nn.Module):
    def __init__(self, dim: int, n_llms: int, rank: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, rank, bias=False)
        self.llm = nn.Parameter(torch.randn(n_llms, rank) * rank**-0.5)
        self.bias = nn.Parameter(torch.zeros(n_llms))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x) @ self.llm.T + self.bias


class MFOutcomesRouter(_EarlyStopped):
    """Query x LLM factorisation of success (RouteLLM style); rank tuned on validation."""

    name = "mf_outcomes"
    with_task = False

    def __init__(self, seed: int = 0, *, ranks: Sequence[int] = (16, 64), **config: Any) -> None:
        config.setdefault("lr", 3e-3)
        super().__init__(seed, ranks=tuple(ranks), **config)
        self.ranks = tuple(ranks)

    def _candidates(self) -> Sequence[dict[str, Any]]:
        return [{"rank": r} for r in self.ranks]

    def _build(self, candidate: dict[str, Any], dim: int, n_llms: int) -> nn.Module:
        return _Factorised(dim, n_llms, candidate["rank"])
