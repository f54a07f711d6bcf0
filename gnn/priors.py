"""Closed-form evidence the GNN router builds on: outcome priors, users' logged weights,
and what a choice says about the outcomes nobody logged.

* :func:`task_llm_prior`: per (task, LLM) the empirical-Bayes mean of the training
  outcomes (performance and normalised cost), shrunk towards the LLM's mean over
  all tasks (an LLM's price and general skill carry across tasks; a cell nobody
  logged takes them); a training query's own outcome is left out of its prior. The network
  refines this prior with query-level evidence, so at initialisation it routes
  like the per-(task, LLM) lookup.
* :func:`latent_difficulty_prior`: where outcomes were logged only for the LLMs
  users chose, the logged ones are not a random sample (an LLM is logged where the
  cheaper ones failed: on hard queries), so their mean is biased. Each training
  query then gets a latent difficulty ``d_q`` and each (task, LLM) a skill
  ``s_tl`` with ``P(success) = sigmoid(s_tl - d_q)``, fitted to the outcomes known
  (logged, and failures choices imply); the prior is the mean over the task's
  training queries of that probability.
* :func:`implied_weights`: for a logged choice with outcome ``P``, normalised cost
  ``C`` and reward ``r``, the weight ``a = (r + C) / (P + C)`` for which the
  utility ``a P - (1 - a) C`` equals the reward; per user, their sum and count.
* :func:`choice_bounds`: a user with weight ``a`` who chose LLM ``l`` on a query
  preferred it to every other candidate ``k``, so
  ``P_k <= P_l - (1 - a) / a * (C_l - C_k)``: an upper bound on outcomes that were
  not logged (real logs hold only the served LLM's outcome).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from prcore.utility import implied_weight

__all__ = [
    "PRIOR_FEATURES",
    "choice_bounds",
    "implied_weights",
    "latent_difficulty_prior",
    "task_llm_prior",
]

PRIOR_FEATURES = 3  # [performance, normalised cost, confidence] per (query, LLM)


def task_llm_prior(
    ref_perf: np.ndarray,
    ref_cost: np.ndarray,
    task: np.ndarray,
    n_tasks: int,
    *,
    shrink: float = 5.0,
) -> tuple[np.ndarray, np.ndarray]:
    """The per-(task, LLM) prior of the training outcomes ``ref_perf``/``ref_cost`` (Q, L;
    NaN: not a training outcome) of queries of ``task`` (Q,).

    Returns ``(per_query, per_task)``: (Q, L, 3) for the queries themselves (each
    one's own outcome left out) and (T, L, 3) for new queries of each task. The
    features are the shrunk mean performance and cost of the LLM on the task and
    ``n / (n + shrink)``, the weight of the LLM's own ``n`` outcomes on the task
    against the LLM's mean over all tasks (its price and general skill; where
    the LLM has no training outcome at all, the task's mean over all LLMs).
    """
    n_q = ref_perf.shape[0]
    known = ~np.isnan(ref_perf)
    perf, cost = np.where(known, ref_perf, 0.0), np.where(known, ref_cost, 0.0)
    onehot = np.zeros((n_tasks, n_q))
    onehot[task, np.arange(n_q)] = 1.0
    sums = (onehot @ known, onehot @ perf, onehot @ cost)  # each (T, L)
    totals = tuple(s.sum(0, keepdims=True) for s in sums)  # each (1, L): the LLM over tasks
    own = (known, perf, cost)
    loo = tuple(s[task] - o for s, o in zip(sums, own, strict=True))
    loo_totals = tuple(t - o for t, o in zip(totals, own, strict=True))
    return _shrunk(loo, loo_totals, shrink), _shrunk(sums, totals, shrink)


def latent_difficulty_prior(
    ref_perf: np.ndarray,
    task: np.ndarray,
    n_tasks: int,
    *,
    steps: int = 300,
    difficulty_scale: float = 1.5,
    task_skill_scale: float = 1.0,
    skill_scale: float = 2.0,
    seed: int = 0,
) -> np.ndarray:
    """(T, L) the mean success probability of each LLM over its task's training queries
    under the latent-difficulty model (see the module docstring), fitted by maximum a
    posteriori (``d_q ~ N(0, difficulty_scale^2)``; ``s_tl = g_l + e_tl``, the LLM's
    general skill ``g_l ~ N(0, skill_scale^2)`` plus a task-specific part
    ``e_tl ~ N(0, task_skill_scale^2)``, so a cell nobody logged keeps the LLM's
    general skill) to the known outcomes in
    ``ref_perf`` (Q, L; NaN: unknown; graded scores are soft targets)."""
    known = ~np.isnan(ref_perf)
    rows = np.flatnonzero(known.any(1))
    out = np.full((n_tasks, ref_perf.shape[1]), np.nan)
    if len(rows) == 0:
        return out
    generator = torch.Generator().manual_seed(seed)
    q, m = np.nonzero(known[rows])
    target = torch.tensor(ref_perf[rows][q, m], dtype=torch.float32)
    t_of = torch.from_numpy(task[rows])
    q_t, m_t = torch.from_numpy(q), torch.from_numpy(m)
    general = torch.zeros(ref_perf.shape[1], requires_grad=True)
    specific = torch.zeros(n_tasks, ref_perf.shape[1], requires_grad=True)
    difficulty = (0.01 * torch.randn(len(rows), generator=generator)).requires_grad_()
    optim = torch.optim.Adam([general, specific, difficulty], lr=0.1)
    for _ in range(steps):
        skill = general + specific
        logits = skill[t_of[q_t], m_t] - difficulty[q_t]
        loss = F.binary_cross_entropy_with_logits(logits, target, reduction="sum")
        loss = loss + (difficulty.square() / (2 * difficulty_scale**2)).sum()
        loss = loss + (specific.square() / (2 * task_skill_scale**2)).sum()
        loss = loss + (general.square() / (2 * skill_scale**2)).sum()
        optim.zero_grad()
        loss.backward()
        optim.step()
    with torch.no_grad():
        skill = general + specific
        prob = torch.sigmoid(skill[t_of] - difficulty[:, None]).numpy()  # (rows, L)
    for t in range(n_tasks):
        mine = task[rows] == t
        if mine.any():
            out[t] = prob[mine].mean(0)
    return out


def _shrunk(cell: tuple[np.ndarray, ...], llm: tuple[np.ndarray, ...], shrink: float) -> np.ndarray:
    """The prior features from (count, performance sum, cost sum) of each cell and of its
    LLM over all tasks: cells shrink towards their LLM's mean, an LLM without any
    outcome towards the row's mean over LLMs."""
    count, s_perf, s_cost = cell
    l_count, l_perf, l_cost = (np.broadcast_to(x, count.shape) for x in llm)
    row = np.maximum(count.sum(1, keepdims=True), 1.0)
    known = l_count > 0
    base_perf = np.where(known, l_perf / np.maximum(l_count, 1), s_perf.sum(1, keepdims=True) / row)
    base_cost = np.where(known, l_cost / np.maximum(l_count, 1), s_cost.sum(1, keepdims=True) / row)
    denominator = count + shrink
    out = np.empty((*count.shape, PRIOR_FEATURES), dtype=np.float32)
    out[..., 0] = (s_perf + shrink * base_perf) / denominator
    out[..., 1] = (s_cost + shrink * base_cost) / denominator
    out[..., 2] = count / denominator
    return out


def implied_weights(
    users: np.ndarray,
    perf: np.ndarray,
    cost: np.ndarray,
    reward: np.ndarray,
    num_users: int,
    *,
    min_scale: float = 1e-3,
) -> tuple[np.ndarray, np.ndarray]:
    """Per user, the sum and count of the weights implied by their logged rewards.

    ``perf``, ``cost`` and ``reward`` (E,) are each decision's chosen outcome,
    normalised cost and logged reward (NaN: none logged). Decisions without a
    reward, with ``P + C`` below ``min_scale`` (any weight fits) or with an unknown
    outcome are skipped; the weights are clipped to [0, 1].
    """
    implied = implied_weight(reward, perf, cost)  # NaN where undefined
    ok = ~np.isnan(implied) & (perf + cost > min_scale)
    a = implied[ok]
    total = np.bincount(users[ok], weights=a, minlength=num_users)[:num_users]
    count = np.bincount(users[ok], minlength=num_users)[:num_users].astype(float)
    return total, count


def choice_bounds(
    weight: np.ndarray,
    chosen_perf: np.ndarray,
    chosen_cost: np.ndarray,
    cost: np.ndarray,
) -> np.ndarray:
    """(E, L) the upper bound on each candidate's performance implied by a choice.

    ``weight`` (E,) is the deciding user's weight ``a``, ``chosen_perf`` and
    ``chosen_cost`` (E,) the chosen LLM's outcome, ``cost`` (E, L) the candidates'
    (estimated) normalised costs. Where ``a`` is NaN or ~0 the bound is +inf.
    """
    a = weight[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = chosen_perf[:, None] - (1 - a) / a * (chosen_cost[:, None] - cost)
    return np.where(np.isfinite(bound) & (a > 1e-3), bound, np.inf)
