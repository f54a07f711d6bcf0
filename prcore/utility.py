"""The routing objective, defined once: utility, per-task cost normalisation, best LLM.

A user with weight ``alpha`` on quality values LLM ``l`` on query ``q`` at::

    U = alpha * performance(q, l) - (1 - alpha) * cost_norm(q, l)

where ``cost_norm`` is the cost min-max normalised within the query's task (0
for the cheapest answer of the task, 1 for the dearest). For a logged choice
with outcome ``P``, normalised cost ``C`` and reward ``r``, the weight that
makes the utility equal the reward is ``(r + C) / (P + C)``
(:func:`implied_weight`). The functions take numpy arrays; :func:`utility` also
takes torch tensors (plain arithmetic).
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np

__all__ = [
    "best_llm",
    "implied_weight",
    "normalise_cost",
    "task_cost_range",
    "task_min_max",
    "utility",
]

A = TypeVar("A")


def utility(alpha: A, performance: A, cost_norm: A) -> A:
    """``alpha * performance - (1 - alpha) * cost_norm`` (numpy or torch, broadcasting)."""
    return alpha * performance - (1 - alpha) * cost_norm  # type: ignore[operator]


def task_cost_range(
    cost: np.ndarray, task: np.ndarray, n_tasks: int, reference: np.ndarray | None = None
) -> np.ndarray:
    """(T, 2) each task's min and max finite cost over the ``reference`` rows (default all);
    (0, 0) for a task without any."""
    out = np.zeros((n_tasks, 2))
    for t in range(n_tasks):
        rows = task == t
        if reference is not None:
            rows &= reference
        ref = cost[rows]
        if np.isfinite(ref).any():
            out[t] = np.nanmin(ref), np.nanmax(ref)
    return out


def normalise_cost(cost: np.ndarray, task: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """``cost`` (N, L) min-max scaled with each row's task range (T, 2); 0 for flat ranges."""
    lo, hi = ranges[task, 0][:, None], ranges[task, 1][:, None]
    span = hi - lo
    return np.where(span > 0, (cost - lo) / np.where(span > 0, span, 1.0), 0.0)


def task_min_max(cost: np.ndarray, task: np.ndarray) -> np.ndarray:
    """Costs min-max normalised within each task over all rows (NaN stays NaN where the
    task's range is not flat)."""
    n_tasks = int(task.max()) + 1 if len(task) else 0
    return normalise_cost(cost, task, task_cost_range(cost, task, n_tasks))


def best_llm(reward: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Index of the highest reward per row (NaN never wins); exact ties: cheaper, then first."""
    reward = np.where(np.isnan(reward), -np.inf, reward)
    best = reward.max(axis=1, keepdims=True)
    masked_cost = np.where(reward == best, np.nan_to_num(cost, nan=np.inf), np.inf)
    return masked_cost.argmin(axis=1)


def implied_weight(
    reward: np.ndarray, performance: np.ndarray, cost_norm: np.ndarray
) -> np.ndarray:
    """The weight ``(r + C) / (P + C)`` for which a choice's utility equals its logged reward,
    clipped to [0, 1]; NaN where it is undefined (no reward, or ``P + C == 0``)."""
    denom = performance + cost_norm
    with np.errstate(divide="ignore", invalid="ignore"):
        weight = np.where(denom > 0, (reward + cost_norm) / np.where(denom > 0, denom, 1.0), np.nan)
    return np.clip(weight, 0.0, 1.0)
