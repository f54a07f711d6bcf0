"""Learning and evaluating from pairwise preference votes (no outcome scores needed).

Baselines (one module each): global Bradley-Terry (``bt``), per task
(``bt_task``), per user shrunk to the global fit (``bt_user``), and
RouteLLM-style matrix factorisation trained on votes (``mf_votes``); the
protocol (:mod:`gnn.preference.protocol`) scores them and the GNNs by query,
by user and on new users onboarded with k votes.
"""

from __future__ import annotations

from gnn.preference.bt_global import GlobalBradleyTerryRouter
from gnn.preference.bt_task import TaskBradleyTerryRouter
from gnn.preference.bt_user import UserBradleyTerryRouter
from gnn.preference.mf_votes import VoteMatrixFactorizationRouter
from gnn.routers.base import Router

__all__ = [
    "PREFERENCE_ROUTERS",
    "GlobalBradleyTerryRouter",
    "TaskBradleyTerryRouter",
    "UserBradleyTerryRouter",
    "VoteMatrixFactorizationRouter",
]

PREFERENCE_ROUTERS: dict[str, type[Router]] = {
    cls.name: cls
    for cls in (
        GlobalBradleyTerryRouter,
        TaskBradleyTerryRouter,
        UserBradleyTerryRouter,
        VoteMatrixFactorizationRouter,
    )
}
