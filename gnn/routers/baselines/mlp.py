"""A torch MLP router, and the training loop it shares with matrix factorisation.

:class:`NeuralRouter` trains any module that maps (user index, query
embedding, task index) to one logit per LLM with softmax cross-entropy
against the LLM each user chose on the training queries (unavailable LLMs
masked out), Adam on seeded mini-batches, and early stopping on validation
accuracy with the best state restored. Users without training decisions are
scored with the mean embedding of the users that had some.
"""

from __future__ import annotations

import abc
import copy
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gnn.data import RoutingData, Split
from gnn.routers.base import Router, training_decisions

__all__ = ["MLPImitateRouter", "NeuralRouter"]


class NeuralRouter(Router):
    """Base for the torch routers: subclasses build a module with a ``user`` embedding.

    The module's ``forward(user, emb, task)`` returns (B, L) logits and its
    ``user`` is an ``nn.Embedding`` with one row per user plus a last row for
    users unseen in training.
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        epochs: int = 200,
        batch_size: int = 256,
        lr: float = 1e-3,
        weight_decay: float = 1e-5,
        patience: int = 15,
        device: str = "cpu",
        **model_config: Any,
    ) -> None:
        super().__init__(
            seed,
            **model_config,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            weight_decay=weight_decay,
            patience=patience,
            device=device,
        )
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.device = torch.device(device)

    @abc.abstractmethod
    def _build(self, data: RoutingData) -> nn.Module:
        """The untrained module (called after seeding)."""

    def _tensors(
        self, data: RoutingData, users: np.ndarray, queries: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        users = np.asarray(users, dtype=np.int64)
        queries = np.asarray(queries, dtype=np.int64)
        in_range = users < len(self.known_users_)
        known = np.zeros(len(users), dtype=bool)
        known[in_range] = self.known_users_[users[in_range]]
        mapped = np.where(known, users, len(self.known_users_))
        return (
            torch.as_tensor(mapped, device=self.device),
            torch.as_tensor(data.query_emb[queries], dtype=torch.float32, device=self.device),
            torch.as_tensor(data.query_task[queries], dtype=torch.int64, device=self.device),
        )

    def _decisions(self, data: RoutingData, mask: np.ndarray) -> tuple[torch.Tensor, ...]:
        idx = training_decisions(data, mask)
        queries, target = data.dec_query[idx], data.dec_llm[idx]
        available = ~np.isnan(data.performance[queries])
        available[np.arange(len(idx)), target] = True
        return (
            *self._tensors(data, data.dec_user[idx], queries),
            torch.as_tensor(available, device=self.device),
            torch.as_tensor(target, device=self.device),
        )

    def _fit(self, data: RoutingData, split: Split) -> None:
        known = np.zeros(len(data.user_ids), dtype=bool)
        known[data.dec_user[training_decisions(data, split.train)]] = True
        self.known_users_ = known
        train = self._decisions(data, split.train)
        val = self._decisions(data, split.val)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            generator = torch.Generator().manual_seed(self.seed)
            model = self._build(data).to(self.device)
            self.history_ = self._train(model, train, val, generator)
        with torch.no_grad():  # unseen users: the mean of the trained users' embeddings
            rows = torch.as_tensor(np.flatnonzero(known), device=self.device)
            if len(rows):
                model.user.weight[-1] = model.user.weight[rows].mean(dim=0)
        self.model_ = model.eval()

    def _train(
        self,
        model: nn.Module,
        train: tuple[torch.Tensor, ...],
        val: tuple[torch.Tensor, ...],
        generator: torch.Generator,
    ) -> list[dict[str, float]]:
        optimizer = torch.optim.Adam(model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        n = len(train[-1])
        best: tuple[float, float] | None = None
        best_state = copy.deepcopy(model.state_dict())
        history: list[dict[str, float]] = []
        stale = 0
        for epoch in range(self.epochs):
            model.train()
            total = 0.0
            for batch in torch.randperm(n, generator=generator).split(self.batch_size):
                *inputs, available, target = (t[batch.to(self.device)] for t in train)
                logits = model(*inputs).masked_fill(~available, -1e9)
                loss = F.cross_entropy(logits, target)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.item() * len(batch)
            record = {"epoch": epoch, "train_loss": total / max(n, 1)}
            if len(val[-1]):
                acc, val_loss = self._validate(model, val)
                record |= {"val_accuracy": acc, "val_loss": val_loss}
                if best is None or (acc, -val_loss) > best:
                    best, stale = (acc, -val_loss), 0
                    best_state = copy.deepcopy(model.state_dict())
                else:
                    stale += 1
            history.append(record)
            if len(val[-1]) and stale >= self.patience:
                break
        if len(val[-1]):
            model.load_state_dict(best_state)
        return history

    @torch.no_grad()
    def _validate(self, model: nn.Module, val: tuple[torch.Tensor, ...]) -> tuple[float, float]:
        model.eval()
        *inputs, available, target = val
        logits = model(*inputs).masked_fill(~available, -1e9)
        accuracy = float((logits.argmax(dim=1) == target).float().mean())
        return accuracy, float(F.cross_entropy(logits, target))

    @torch.no_grad()
    def score(self, data: RoutingData, users: np.ndarray, queries: np.ndarray) -> np.ndarray:
        inputs = self._tensors(data, users, queries)
        chunks = [
            self.model_(*(t[i : i + 8192] for t in inputs)).double().cpu().numpy()
            for i in range(0, len(inputs[0]), 8192)
        ]
        return np.concatenate(chunks) if chunks else np.zeros((0, data.num_llms))


class _MLP(nn.Module):
    def __init__(
        self,
        dim: int,
        n_users: int,
        n_tasks: int,
        n_llms: int,
        *,
        user_dim: int,
        hidden: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.n_tasks = n_tasks
        self.user = nn.Embedding(n_users + 1, user_dim)
        self.net = nn.Sequential(
            nn.Linear(dim + user_dim + n_tasks, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_llms),
        )

    def forward(self, user: torch.Tensor, emb: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        task_1h = F.one_hot(task, self.n_tasks).to(emb.dtype)
        return self.net(torch.cat([emb, self.user(user), task_1h], dim=1))


class MLPImitateRouter(NeuralRouter):
    """MLP over [query embedding, learned user embedding, task one-hot] -> one logit per LLM."""

    name = "mlp_imitate"

    def __init__(
        self,
        seed: int = 0,
        *,
        hidden: int = 128,
        user_dim: int = 16,
        dropout: float = 0.1,
        **train_config: Any,
    ) -> None:
        super().__init__(seed, hidden=hidden, user_dim=user_dim, dropout=dropout, **train_config)
        self.hidden = hidden
        self.user_dim = user_dim
        self.dropout = dropout

    def _build(self, data: RoutingData) -> nn.Module:
        return _MLP(
            data.query_emb.shape[1],
            len(data.user_ids),
            len(data.task_ids),
            data.num_llms,
            user_dim=self.user_dim,
            hidden=self.hidden,
            dropout=self.dropout,
        )
