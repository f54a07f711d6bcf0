"""Matrix factorisation routing (RouteLLM style), personalised with a user embedding.

``score(u, q, l) = <v_l, e_u ⊙ (W q + c)> + b_l``: the query embedding is
projected to the factor space, gated element-wise by the user's factors and
matched against each LLM's factors. Trained with the shared
:class:`~gnn.routers.baselines.mlp.NeuralRouter` loop (listwise cross-entropy
over the candidates, early stopping on validation accuracy).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from gnn.data import RoutingData
from gnn.routers.baselines.mlp import NeuralRouter

__all__ = ["MFImitateRouter"]


class _MF(nn.Module):
    def __init__(self, dim: int, n_users: int, n_llms: int, rank: int) -> None:
        super().__init__()
        self.user = nn.Embedding(n_users + 1, rank)
        nn.init.normal_(self.user.weight, mean=1.0, std=0.1)  # start as "no gating"
        self.proj = nn.Linear(dim, rank)
        self.llm = nn.Embedding(n_llms, rank)
        nn.init.normal_(self.llm.weight, std=rank**-0.5)
        self.bias = nn.Parameter(torch.zeros(n_llms))

    def forward(self, user: torch.Tensor, emb: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        return (self.user(user) * self.proj(emb)) @ self.llm.weight.T + self.bias


class MFImitateRouter(NeuralRouter):
    """Bilinear user-gated query x LLM factor model (the task index is not used)."""

    name = "mf_imitate"

    def __init__(
        self, seed: int = 0, *, rank: int = 32, lr: float = 1e-2, **train_config: Any
    ) -> None:
        super().__init__(seed, rank=rank, lr=lr, **train_config)
        self.rank = rank

    def _build(self, data: RoutingData) -> nn.Module:
        return _MF(data.query_emb.shape[1], len(data.user_ids), data.num_llms, self.rank)
