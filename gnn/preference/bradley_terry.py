"""Bradley-Terry fits: LLM strengths from pairwise votes, optionally per group, with ties.

``P(w beats l) = sigmoid(theta[g, w] - theta[g, l])``. Every group's strengths
are shrunk towards a prior (``theta[g] ~ prior + N(0, 1 / l2)``), which also fixes
the scale an unregularised fit leaves free; with ``prior = 0`` and one group it
is the global model. Fitted by L-BFGS on the penalised log-likelihood (convex).

Ties, when given, enter through Davidson's (1970) tie model: with gap
``d = theta_a - theta_b`` and a tie weight ``nu`` (fitted, one for all votes),
``P(a wins) = e^{d/2} / Z``, ``P(tie) = nu / Z``, ``P(b wins) = e^{-d/2} / Z``,
``Z = e^{d/2} + e^{-d/2} + nu``. A tie says the two are close; given that a vote
is not a tie, ``P(a wins)`` is still ``sigmoid(d)``, so predictions keep the
plain form; ties move the strengths only through the shared ``nu`` (pairs
with many ties are judged close). Alternatively (``tie_model="half"``) a tie
counts as half a win for each side, which pulls the two strengths together
directly. Without ties it is plain Bradley-Terry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.optimize import minimize

__all__ = [
    "TIE_MODELS",
    "bradley_terry_objective",
    "davidson_nll",
    "fit_bradley_terry",
    "win_probability",
]

#: How ties enter a fit: Davidson's tie likelihood, or half a win for each side.
TIE_MODELS = ("davidson", "half")

ArrayLike = np.ndarray | Sequence[int]


def win_probability(theta_first: np.ndarray, theta_second: np.ndarray) -> np.ndarray:
    """P(first beats second) under Bradley-Terry (given no tie), from the two strengths."""
    return 1.0 / (1.0 + np.exp(-(np.asarray(theta_first) - np.asarray(theta_second))))


def _davidson(gap: np.ndarray, log_nu: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """log Z and the probabilities of a win and a tie for gaps ``gap`` (stable)."""
    parts = np.stack([gap / 2, -gap / 2, np.full_like(gap, log_nu)])
    log_z = np.logaddexp.reduce(parts, axis=0)
    return log_z, np.exp(parts[0] - log_z) - np.exp(parts[1] - log_z), np.exp(parts[2] - log_z)


def davidson_nll(gap: np.ndarray, log_nu: float, *, tie: np.ndarray) -> np.ndarray:
    """Per vote: -log P(first wins) for a decided vote with gap ``first - second``, or
    -log P(tie) where ``tie`` (Davidson's model, see the module docstring)."""
    log_z, _, _ = _davidson(np.asarray(gap, dtype=float), log_nu)
    return log_z - np.where(tie, log_nu, gap / 2)


def bradley_terry_objective(
    win: ArrayLike,
    lose: ArrayLike,
    n_items: int,
    *,
    group: ArrayLike | None = None,
    n_groups: int = 1,
    base: np.ndarray | None = None,
    l2: float = 1e-3,
    tie_a: ArrayLike | None = None,
    tie_b: ArrayLike | None = None,
    tie_group: ArrayLike | None = None,
    tie_model: str = "davidson",
) -> tuple[Callable[[np.ndarray], tuple[float, np.ndarray]], int]:
    """The penalised negative log-likelihood and its gradient over the parameters (each
    group's deviation from ``base``, flattened, then ``log nu`` when there are ties),
    and the number of parameters."""
    win, lose = np.asarray(win, dtype=np.int64), np.asarray(lose, dtype=np.int64)
    group = np.zeros(len(win), np.int64) if group is None else np.asarray(group, np.int64)
    size = n_groups * n_items
    base = np.zeros(size) if base is None else np.asarray(base, dtype=float).ravel()
    w_idx, l_idx = group * n_items + win, group * n_items + lose
    tie_a = np.zeros(0, np.int64) if tie_a is None else np.asarray(tie_a, np.int64)
    tie_b = np.zeros(0, np.int64) if tie_b is None else np.asarray(tie_b, np.int64)
    t_group = np.zeros(len(tie_a), np.int64) if tie_group is None else np.asarray(tie_group)
    a_idx, b_idx = t_group * n_items + tie_a, t_group * n_items + tie_b
    if tie_model not in TIE_MODELS:
        raise ValueError(f"unknown tie model {tie_model!r}; valid: {', '.join(TIE_MODELS)}")
    with_ties = len(tie_a) > 0 and tie_model == "davidson"
    weight = np.ones(len(w_idx))
    if len(tie_a) and tie_model == "half":  # each side wins half a vote
        w_idx, l_idx = np.concatenate([w_idx, a_idx, b_idx]), np.concatenate([l_idx, b_idx, a_idx])
        weight = np.concatenate([weight, np.full(2 * len(a_idx), 0.5)])

    def plain(x: np.ndarray) -> tuple[float, np.ndarray]:
        delta = x[:size]
        theta = base + delta
        gap = theta[w_idx] - theta[l_idx]
        nll = weight @ np.logaddexp(0.0, -gap)
        slope = -weight / (1.0 + np.exp(gap))  # d nll / d gap
        grad = np.bincount(w_idx, slope, size) - np.bincount(l_idx, slope, size)
        return nll + 0.5 * l2 * delta @ delta, grad + l2 * delta

    def davidson(x: np.ndarray) -> tuple[float, np.ndarray]:
        delta, log_nu = x[:size], x[size]
        theta = base + delta
        gap = np.concatenate([theta[w_idx] - theta[l_idx], theta[a_idx] - theta[b_idx]])
        tie = np.arange(len(gap)) >= len(w_idx)
        log_z, half_diff, p_tie = _davidson(gap, log_nu)
        nll = (log_z - np.where(tie, log_nu, gap / 2)).sum()
        slope = 0.5 * half_diff - np.where(tie, 0.0, 0.5)  # d nll / d gap
        first = np.concatenate([w_idx, a_idx])
        second = np.concatenate([l_idx, b_idx])
        grad = np.bincount(first, slope, size) - np.bincount(second, slope, size)
        d_nu = (p_tie - tie).sum()
        return nll + 0.5 * l2 * delta @ delta, np.append(grad + l2 * delta, d_nu)

    return (davidson, size + 1) if with_ties else (plain, size)


def fit_bradley_terry(
    win: ArrayLike,
    lose: ArrayLike,
    n_items: int,
    *,
    group: ArrayLike | None = None,
    n_groups: int = 1,
    prior: np.ndarray | None = None,
    l2: float = 1e-3,
    tie_a: ArrayLike | None = None,
    tie_b: ArrayLike | None = None,
    tie_group: ArrayLike | None = None,
    tie_model: str = "davidson",
    return_tie_weight: bool = False,
) -> np.ndarray | tuple[np.ndarray, float]:
    """(n_groups, n_items) strengths from votes ``win[i]`` over ``lose[i]`` in ``group[i]``
    and ties ``tie_a[j]`` = ``tie_b[j]`` in ``tie_group[j]``.

    ``prior`` (n_items,) or (n_groups, n_items) is what each group is shrunk to
    with weight ``l2`` (default 0); a group without votes gets the prior. Ties enter
    by ``tie_model`` (see the module docstring). With ``return_tie_weight``, also
    Davidson's ``nu`` (0 without ties or with half wins).
    """
    if l2 <= 0:
        raise ValueError("l2 must be > 0 (it fixes the free scale of the strengths)")
    base = (
        np.zeros((n_groups, n_items))
        if prior is None
        else np.broadcast_to(prior, (n_groups, n_items))
    )
    base = np.asarray(base, dtype=float).ravel()
    objective, n_params = bradley_terry_objective(
        win,
        lose,
        n_items,
        group=group,
        n_groups=n_groups,
        base=base,
        l2=l2,
        tie_a=tie_a,
        tie_b=tie_b,
        tie_group=tie_group,
        tie_model=tie_model,
    )
    size = n_groups * n_items
    start = np.zeros(n_params)
    bounds = [(None, None)] * size + [(-20.0, 10.0)] * (n_params - size)  # log nu
    result = minimize(
        objective, start, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 500}
    )
    theta = (base + result.x[:size]).reshape(n_groups, n_items)
    if not return_tie_weight:
        return theta
    return theta, float(np.exp(result.x[size])) if n_params > size else 0.0
