"""The per-task Bradley-Terry prior a router adds to its vote probabilities for voters it
knows little about (``gnn.preference.calibration.VoteCalibration.prior_new``).

The prior is the ``bt_task`` baseline's fit of the training votes with a fixed
shrinkage (:data:`VOTE_PRIOR_L2`), so that the validation votes that weigh it
were not used to fit it. Its weight for new voters is chosen on validation votes
scored with the prior of the *other* half of the voters (:func:`unseen_margin`):
scored with the prior of all voters, the known voters' own leanings would look
like the population's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gnn.data import RoutingData, Split
from gnn.preference.base import Votes

__all__ = ["VOTE_PRIOR_L2", "fit_vote_prior", "margin", "unseen_margin"]

#: Shrinkage of each task's strengths towards the global ones (fixed, not tuned on
#: validation votes).
VOTE_PRIOR_L2 = 3.0


def fit_vote_prior(
    data: RoutingData, split: Split, task_ids: Sequence[str], seed: int = 0
) -> np.ndarray:
    """(tasks, LLMs) per-task Bradley-Terry strengths of the training votes, rows in the
    order of ``task_ids`` (0 for a task the data does not have)."""
    from gnn.preference.bt_task import TaskBradleyTerryRouter

    theta = TaskBradleyTerryRouter(seed=seed, l2=VOTE_PRIOR_L2).fit(data, split).theta
    prior = np.zeros((len(task_ids), data.num_llms))
    row = {t: i for i, t in enumerate(data.task_ids)}
    for i, task in enumerate(task_ids):
        if task in row:
            prior[i] = theta[row[task]]
    return prior


def margin(
    prior: np.ndarray, task: np.ndarray, first: np.ndarray, second: np.ndarray
) -> np.ndarray:
    """(N,) the strength in ``prior`` of ``first`` minus ``second`` in task ``task``."""
    return prior[task, first] - prior[task, second]


def unseen_margin(
    data: RoutingData,
    split: Split,
    task_ids: Sequence[str],
    query_task: np.ndarray,
    val: Votes,
    seed: int = 0,
) -> np.ndarray:
    """(N,) prior margins of the votes ``val`` from strengths fitted without their voters:
    the voters split into two seeded halves, each half's votes scored with the prior of
    the other half's training votes (``query_task``: each query's row in ``task_ids``)."""
    from gnn.preference.protocol import without_users

    voters = np.unique(np.concatenate([data.pref_user, data.dec_user]))
    left_out = np.zeros(len(data.user_ids), dtype=bool)
    left_out[np.random.default_rng(seed + 15485863).permutation(voters)[: len(voters) // 2]] = True
    out = np.zeros(len(val))
    for side in (left_out, ~left_out):
        rows = side[val.user]
        if rows.any():
            prior = fit_vote_prior(without_users(data, side), split, task_ids, seed)
            out[rows] = margin(prior, query_task[val.query[rows]], val.win[rows], val.lose[rows])
    return out
