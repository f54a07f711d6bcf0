"""Group-wise Bradley-Terry shrunk to the global fit, the shrinkage chosen on validation."""

from __future__ import annotations

import numpy as np

from gnn.preference.base import Votes, no_votes
from gnn.preference.bradley_terry import fit_bradley_terry, win_probability

__all__ = ["L2_GRID", "fit_shrunk", "global_fit", "log_loss"]

#: Candidate shrinkage weights (prior precision on a group's deviation from the global fit).
L2_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)


def log_loss(prob: np.ndarray) -> float:
    """Mean negative log-likelihood of votes given the probability of their winner."""
    return float(-np.mean(np.log(np.clip(prob, 1e-6, 1.0))))


def global_fit(
    train: Votes, ties: Votes, n_items: int, tie_model: str = "davidson", *, l2: float = 1e-2
) -> tuple[np.ndarray, float]:
    """The global strengths (one per LLM) the groups are shrunk to, ``ties`` entering by
    ``tie_model`` ("off" ignores them), and Davidson's tie weight (0 without)."""
    tie_model, ties = ("davidson", no_votes()) if tie_model == "off" else (tie_model, ties)
    theta, nu = fit_bradley_terry(
        train.win,
        train.lose,
        n_items,
        l2=l2,
        tie_a=ties.win,
        tie_b=ties.lose,
        tie_model=tie_model,
        return_tie_weight=True,
    )
    return theta[0], nu


def fit_shrunk(
    train: Votes,
    val: Votes,
    group_of,  # Callable[[Votes], np.ndarray]: the group of each vote
    n_groups: int,
    global_theta: np.ndarray,
    l2: float | None = None,
    ties: Votes | None = None,
    tie_model: str = "davidson",
) -> tuple[np.ndarray, float]:
    """(n_groups, L) strengths shrunk to ``global_theta``, and the ``l2`` used: the given
    one, else the grid value with the lowest validation log-loss (3 without votes).
    ``ties`` (training tie votes) enter the fit by ``tie_model`` ("off": not at all);
    validation scores the decided votes."""
    n_items = len(global_theta)
    ties = ties if ties is not None and len(ties) and tie_model != "off" else None

    def fit(weight: float) -> np.ndarray:
        return fit_bradley_terry(
            train.win,
            train.lose,
            n_items,
            group=group_of(train),
            n_groups=n_groups,
            prior=global_theta,
            l2=weight,
            tie_a=None if ties is None else ties.win,
            tie_b=None if ties is None else ties.lose,
            tie_group=None if ties is None else group_of(ties),
            tie_model="davidson" if tie_model == "off" else tie_model,
        )

    if l2 is not None or len(val) == 0:
        weight = 3.0 if l2 is None else l2
        return fit(weight), weight
    g = group_of(val)
    best = min(
        (
            (log_loss(win_probability(t[g, val.win], t[g, val.lose])), w, t)
            for w in L2_GRID
            for t in [fit(w)]
        ),
        key=lambda item: item[0],
    )
    return best[2], best[1]
