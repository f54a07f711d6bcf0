"""The one estimator of each user's quality-vs-cost weight, shared by every router.

A user's weight ``alpha`` (see :mod:`prcore.utility`) is estimated from the
decisions (and pairwise judgements) it is given, which must come from
training data only. Per user, the first kind of evidence that exists decides:

1. **Logged rewards.** For a logged choice with outcome ``P``, normalised cost
   ``C`` and reward ``r`` the weight that makes the chosen LLM's utility equal
   the reward is ``(r + C) / (P + C)`` (:func:`prcore.utility.implied_weight`);
   the estimate is the median of the defined ones (robust to the odd choice
   whose cost scale differs, e.g. a cost outside the training range).
2. **Choices and judgements.** On a grid of weights, the share of the user's
   choices that are a best-utility LLM under the observed outcomes (exact ties
   count), plus the share of judgements whose winner has the higher utility
   (ties count half), is maximised; the estimate is the mean of the grid
   weights that reach the maximum (the middle of the consistent interval).
3. **The population prior** otherwise (no evidence, or a user the data does not
   know): the mean estimate of the users with evidence, or 0.5 when none has any.

Onboarding a new user with k decisions is the same call with those decisions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gnn.data import RoutingData
from prcore.utility import implied_weight, utility

__all__ = ["DEFAULT_PRIOR", "GRID", "UserWeights", "estimate_user_weights"]

#: The weights tried from choices and judgements.
GRID = np.round(np.linspace(0.0, 1.0, 101), 6)
#: The prior when no user has any evidence.
DEFAULT_PRIOR = 0.5


@dataclass(frozen=True)
class UserWeights:
    """Estimated weight per user row, where it came from, and the population prior."""

    weight: np.ndarray  # (U,) in [0, 1]
    source: np.ndarray  # (U,) "reward", "choice" or "prior" (object array)
    prior: float

    def of(self, users: np.ndarray) -> np.ndarray:
        """(N,) the weights of ``users`` (rows beyond the known users get the prior)."""
        users = np.asarray(users, dtype=np.int64)
        known = users < len(self.weight)
        return np.where(known, self.weight[np.where(known, users, 0)], self.prior)

    def with_users(self, other: UserWeights, users: np.ndarray) -> UserWeights:
        """A copy whose ``users`` take their weight (and source) from ``other``."""
        weight, source = self.weight.copy(), self.source.copy()
        weight[users], source[users] = other.weight[users], other.source[users]
        return UserWeights(weight, source, self.prior)


def _choice_fit(
    perf: np.ndarray,
    cost: np.ndarray,
    chosen: np.ndarray,
    win: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None,
) -> float:
    """Mean grid weight maximising the consistency of choices (and judgements)."""
    score = np.zeros(len(GRID))
    rows = np.arange(len(chosen))
    for i, a in enumerate(GRID):
        if len(chosen):
            u = np.where(np.isnan(perf + cost), -np.inf, utility(a, perf, cost))
            score[i] += np.mean(u[rows, chosen] >= u.max(axis=1) - 1e-12)
        if win is not None and len(win[0]):
            pw, cw, pl, cl = win
            diff = utility(a, pw, cw) - utility(a, pl, cl)
            score[i] += np.mean((diff > 1e-12) + 0.5 * (np.abs(diff) <= 1e-12))
    return float(GRID[score >= score.max() - 1e-12].mean())


def estimate_user_weights(
    data: RoutingData,
    decisions: np.ndarray,
    cost_norm: np.ndarray,
    *,
    judgements: np.ndarray | None = None,
) -> UserWeights:
    """Each user's weight from ``decisions`` (indices into the decision arrays) and
    ``judgements`` (indices into the pairwise arrays; default none), with ``cost_norm``
    the (Q, L) normalised costs (from training ranges). See the module docstring."""
    decisions = np.asarray(decisions, dtype=np.int64)
    judgements = np.zeros(0, dtype=np.int64) if judgements is None else judgements
    n_users = len(data.user_ids)
    weight = np.full(n_users, np.nan)
    source = np.full(n_users, "prior", dtype=object)
    users, queries, llms = (a[decisions] for a in (data.dec_user, data.dec_query, data.dec_llm))
    perf_chosen = data.performance[queries, llms]
    cost_chosen = cost_norm[queries, llms]
    implied = implied_weight(data.dec_reward[decisions], perf_chosen, cost_chosen)
    implied = np.where(np.isfinite(cost_chosen) & np.isfinite(perf_chosen), implied, np.nan)
    j_users = data.pref_user[judgements]
    for u in np.union1d(np.unique(users), np.unique(j_users)):
        mine = users == u
        valid = implied[mine][~np.isnan(implied[mine])]
        if len(valid):
            weight[u], source[u] = float(np.median(valid)), "reward"
            continue
        # Choices whose chosen outcome is observed; judgements with both outcomes observed.
        observed = mine & ~np.isnan(perf_chosen) & np.isfinite(cost_chosen)
        q = queries[observed]
        jm = judgements[j_users == u]
        jq, jw, jl = data.pref_query[jm], data.pref_win[jm], data.pref_lose[jm]
        pw, pl = data.performance[jq, jw], data.performance[jq, jl]
        cw, cl = cost_norm[jq, jw], cost_norm[jq, jl]
        ok = ~np.isnan(pw + pl + cw + cl)
        if not len(q) and not ok.any():
            continue
        weight[u] = _choice_fit(
            data.performance[q],
            cost_norm[q],
            llms[observed],
            (pw[ok], cw[ok], pl[ok], cl[ok]),
        )
        source[u] = "choice"
    has = ~np.isnan(weight)
    prior = float(weight[has].mean()) if has.any() else DEFAULT_PRIOR
    return UserWeights(np.where(has, weight, prior), source, prior)
