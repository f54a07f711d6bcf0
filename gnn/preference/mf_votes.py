"""RouteLLM-style matrix factorisation over (query embedding, LLM), trained on votes.

``s(q, l) = w^T (v_l ⊙ (W x_q)) + b_l`` and ``P(a beats b on q) = sigmoid(s(q, a) -
s(q, b))`` (RouteLLM's MF router, Ong et al. 2024), fitted by the votes'
log-likelihood with Adam, the epoch kept by validation log-loss. Users are
ignored (as in RouteLLM).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from gnn.data import RoutingData, Split
from gnn.preference.base import PreferenceRouter, Votes, votes_of

__all__ = ["VoteMatrixFactorizationRouter"]


class _MF(nn.Module):
    def __init__(self, dim: int, n_llms: int, rank: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, rank, bias=False)
        self.llm = nn.Embedding(n_llms, rank)
        self.out = nn.Linear(rank, 1, bias=False)
        self.bias = nn.Parameter(torch.zeros(n_llms))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L) scores of every LLM for B query embeddings."""
        q = F.normalize(self.proj(x), dim=-1)
        return self.out(q[:, None, :] * self.llm.weight[None]).squeeze(-1) + self.bias


class VoteMatrixFactorizationRouter(PreferenceRouter):
    """See the module docstring."""

    name = "mf_votes"

    def __init__(
        self,
        seed: int = 0,
        *,
        rank: int = 32,
        lr: float = 3e-3,
        weight_decay: float = 1e-4,
        epochs: int = 300,
        patience: int = 40,
        **config: object,
    ) -> None:
        super().__init__(seed, rank=rank, lr=lr, epochs=epochs, **config)
        self.rank, self.lr, self.weight_decay = rank, lr, weight_decay
        self.epochs, self.patience = epochs, patience

    def _loss(self, x: torch.Tensor, votes: Votes) -> torch.Tensor:
        s = self.model(x[votes.query])
        rows = torch.arange(len(votes))
        gap = s[rows, torch.from_numpy(votes.win)] - s[rows, torch.from_numpy(votes.lose)]
        return F.softplus(-gap).mean()

    def _fit(self, data: RoutingData, split: Split) -> None:
        torch.manual_seed(self.seed)
        x = torch.tensor(data.query_emb, dtype=torch.float32)
        train, val = votes_of(data, split.train), votes_of(data, split.val)
        self.model = _MF(x.shape[1], data.num_llms, self.rank)
        optim = torch.optim.Adam(
            self.model.parameters(), lr=self.lr, weight_decay=self.weight_decay
        )
        best, best_loss, waited = None, np.inf, 0
        for _ in range(self.epochs if len(train) else 0):
            self.model.train()
            loss = self._loss(x, train)
            optim.zero_grad()
            loss.backward()
            optim.step()
            if not len(val):
                continue
            with torch.no_grad():
                self.model.eval()
                val_loss = float(self._loss(x, val))
            if val_loss < best_loss:
                best, best_loss, waited = copy.deepcopy(self.model.state_dict()), val_loss, 0
            else:
                waited += 1
                if waited >= self.patience:
                    break
        if best is not None:
            self.model.load_state_dict(best)
        self.model.eval()

    @torch.no_grad()
    def score(self, data: RoutingData, users: np.ndarray, queries: np.ndarray) -> np.ndarray:
        x = torch.tensor(data.query_emb[queries], dtype=torch.float32)
        return self.model(x).numpy().astype(float)
