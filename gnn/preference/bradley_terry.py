"""Bradley-Terry fits: LLM strengths from pairwise votes, optionally per group.

``P(w beats l) = sigmoid(theta[g, w] - theta[g, l])``. Every group's strengths
are shrunk towards a prior (``theta[g] ~ prior + N(0, 1 / l2)``), which also fixes
the scale an unregularised fit leaves free; with ``prior = 0`` and one group it
is the global model. Fitted by L-BFGS on the penalised log-likelihood (convex).
Ties are not used (they carry no direction); callers count them apart.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

__all__ = ["fit_bradley_terry", "win_probability"]


def win_probability(theta_first: np.ndarray, theta_second: np.ndarray) -> np.ndarray:
    """P(first beats second) under Bradley-Terry, from the two strengths."""
    return 1.0 / (1.0 + np.exp(-(np.asarray(theta_first) - np.asarray(theta_second))))


def fit_bradley_terry(
    win: np.ndarray,
    lose: np.ndarray,
    n_items: int,
    *,
    group: np.ndarray | None = None,
    n_groups: int = 1,
    prior: np.ndarray | None = None,
    l2: float = 1e-3,
) -> np.ndarray:
    """(n_groups, n_items) strengths from votes ``win[i]`` over ``lose[i]`` in ``group[i]``.

    ``prior`` (n_items,) or (n_groups, n_items) is what each group is shrunk to
    with weight ``l2`` (default 0); a group without votes gets the prior.
    """
    if l2 <= 0:
        raise ValueError("l2 must be > 0 (it fixes the free scale of the strengths)")
    win, lose = np.asarray(win, dtype=np.int64), np.asarray(lose, dtype=np.int64)
    group = np.zeros(len(win), dtype=np.int64) if group is None else np.asarray(group, np.int64)
    base = (
        np.zeros((n_groups, n_items))
        if prior is None
        else np.broadcast_to(prior, (n_groups, n_items))
    )
    base = np.asarray(base, dtype=float).ravel()
    w_idx, l_idx = group * n_items + win, group * n_items + lose
    size = n_groups * n_items

    def objective(delta: np.ndarray) -> tuple[float, np.ndarray]:
        theta = base + delta
        gap = theta[w_idx] - theta[l_idx]
        nll = np.logaddexp(0.0, -gap).sum()
        slope = -1.0 / (1.0 + np.exp(gap))  # d nll / d gap
        grad = np.bincount(w_idx, slope, size) - np.bincount(l_idx, slope, size)
        return nll + 0.5 * l2 * delta @ delta, grad + l2 * delta

    result = minimize(
        objective, np.zeros(size), jac=True, method="L-BFGS-B", options={"maxiter": 500}
    )
    return (base + result.x).reshape(n_groups, n_items)
