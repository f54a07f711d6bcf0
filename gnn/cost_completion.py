"""Costs of the answers nobody logged, on queries where other LLMs' costs were logged.

Real logs hold the served LLM's answer only, so a query's cost row is partial:
the unlogged entries are not free, and leaving them out biases every per-task
statistic (a dear LLM logged only on short queries looks cheap; a task whose
dear LLMs were never served gets a narrow min-max range, which inflates every
normalised cost in it). An LLM's cost on a query is close to its per-token
price times the query's length, so the log cost is additive::

    log cost(q, l) ~ s_q + r_l

(the LLM's rate ``r_l`` and the query's size ``s_q``; RouterBench's logged costs
fit it with a residual standard deviation of 0.05). The rates are fitted by least
squares on the reference rows' positive logged costs (each query's size shrunk a
little towards its task's mean, so that logs with one served LLM per query still
identify them); each partial row's size comes from its own logged costs; every
unlogged entry is ``exp(s_q + r_l)``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["complete_costs", "partial_rows"]


def complete_costs(
    cost: np.ndarray,
    task: np.ndarray,
    reference: np.ndarray | None = None,
    *,
    shrink: float = 0.01,
) -> np.ndarray:
    """``cost`` (Q, L; NaN: not logged) of queries of ``task`` (Q,) with the unlogged entries
    of partially logged rows estimated (module docstring); rows logged fully or not at
    all are returned as they are, and so is ``cost`` itself when no row is partial.
    ``reference`` (Q,) marks the rows whose logged costs fit the LLMs' rates (default:
    all; pass the training mask so that no held-out cost shapes another row's estimate).

    The least-squares fit shrinks each query's size towards a mean size of its task by
    ``shrink`` pseudo-costs, so that the rates stay identified where each query has one
    logged cost (one served LLM). An LLM whose reference costs are all zero costs zero
    where unlogged; entries of an LLM without a positive reference cost stay NaN.
    """
    known = np.isfinite(cost)
    partial = _partial(known)
    if not partial.any():
        return cost
    in_reference = known if reference is None else known & np.asarray(reference, bool)[:, None]
    positive = known & (np.where(known, cost, 0.0) > 0)
    log_cost = np.where(positive, np.log(np.where(positive, cost, 1.0)), 0.0)
    fit = positive & in_reference
    n_tasks = int(task.max()) + 1
    rate, task_size = _fit_rates(log_cost, fit, task, n_tasks, shrink)
    rated = fit.any(axis=0)
    own = (positive & rated[None, :]).astype(float)
    count = own.sum(axis=1)
    size = ((own * (log_cost - rate)).sum(axis=1) + shrink * task_size[task]) / (count + shrink)
    estimate = np.exp(size[:, None] + rate[None, :])
    estimate[:, ~rated] = np.nan
    estimate[:, ~rated & _all_zero(cost, in_reference)] = 0.0
    return np.where(partial[:, None] & ~known, estimate, cost)


def partial_rows(cost: np.ndarray) -> tuple[int, int]:
    """How many rows of ``cost`` (Q, L; NaN: not logged) are logged for some LLMs only, and
    how many entries those rows lack."""
    known = np.isfinite(cost)
    partial = _partial(known)
    return int(partial.sum()), int((~known[partial]).sum())


def _partial(known: np.ndarray) -> np.ndarray:
    """(Q,) rows with some but not all entries known."""
    return known.any(axis=1) & ~known.all(axis=1)


def _fit_rates(
    log_cost: np.ndarray, fit: np.ndarray, task: np.ndarray, n_tasks: int, shrink: float
) -> tuple[np.ndarray, np.ndarray]:
    """(L,) LLM rates and (T,) task mean sizes minimising, over the ``fit`` entries,
    ``sum (log c - s_q - r_l)^2 + shrink * sum_q (s_q - m_t(q))^2`` with every query's
    size ``s_q`` eliminated in closed form: a (L + T) linear system (minimum-norm
    solution: only ``s + r`` is identified)."""
    rows = fit.any(axis=1)
    x, y, t = fit[rows].astype(float), log_cost[rows], task[rows]
    n_llms = x.shape[1]
    weight = 1.0 / (x.sum(axis=1) + shrink)  # (R,)
    c = (x * y).sum(axis=1)  # (R,) each row's sum of log costs
    # u_q = (-x_q, shrink * e_t(q)); H = diag(sum x, shrink * count_t) - sum_q w_q u_q u_q^T
    xw = x * weight[:, None]
    task_weight = np.bincount(t, weights=weight, minlength=n_tasks)
    cross = np.stack([np.bincount(t, weights=xw[:, j], minlength=n_tasks) for j in range(n_llms)])
    hessian = np.zeros((n_llms + n_tasks, n_llms + n_tasks))
    hessian[:n_llms, :n_llms] = np.diag(x.sum(axis=0)) - x.T @ xw
    hessian[:n_llms, n_llms:] = shrink * cross
    hessian[n_llms:, :n_llms] = shrink * cross.T
    hessian[n_llms:, n_llms:] = np.diag(
        shrink * np.bincount(t, minlength=n_tasks) - shrink**2 * task_weight
    )
    rhs = np.concatenate(
        [
            (x * y).sum(axis=0) - xw.T @ c,
            shrink * np.bincount(t, weights=weight * c, minlength=n_tasks),
        ]
    )
    solution = np.linalg.lstsq(hessian, rhs, rcond=None)[0]
    return solution[:n_llms], solution[n_llms:]


def _all_zero(cost: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(L,) whether a column has masked entries and all of them are zero."""
    return mask.any(axis=0) & ~(mask & (np.where(mask, cost, 0.0) != 0)).any(axis=0)
