"""Baseline routers of the evaluation protocol, and a registry of them by ``name``.

Two families: the predict-then-optimise routers (``*_outcomes``,
``best_llm_per_user*``) predict each LLM's outcomes and route by the user's
estimated weight (:mod:`gnn.weights`); the ``imitate*`` routers learn to repeat
the users' past choices.
"""

from __future__ import annotations

from gnn.routers.base import Router
from gnn.routers.baselines.best_llm import BestLLMPerUserRouter, BestLLMPerUserTaskRouter
from gnn.routers.baselines.cheapest import CheapestRouter
from gnn.routers.baselines.imitate_user import ImitateUserRouter, ImitateUserTaskRouter
from gnn.routers.baselines.knn import KNNImitateRouter
from gnn.routers.baselines.knn_outcomes import KNNOutcomesRouter
from gnn.routers.baselines.largest import LargestRouter
from gnn.routers.baselines.mf import MFImitateRouter
from gnn.routers.baselines.mlp import MLPImitateRouter, NeuralRouter
from gnn.routers.baselines.neural_outcomes import (
    LogisticOutcomesRouter,
    MFOutcomesRouter,
    MLPOutcomesRouter,
)
from gnn.routers.baselines.oracle import OracleRouter
from gnn.routers.baselines.outcomes import OutcomeRouter
from gnn.routers.baselines.random import RandomRouter

__all__ = [
    "BASELINES",
    "OUTCOME_BASELINES",
    "STRONGEST_BASELINE",
    "BestLLMPerUserRouter",
    "BestLLMPerUserTaskRouter",
    "CheapestRouter",
    "ImitateUserRouter",
    "ImitateUserTaskRouter",
    "KNNImitateRouter",
    "KNNOutcomesRouter",
    "LargestRouter",
    "LogisticOutcomesRouter",
    "MFImitateRouter",
    "MFOutcomesRouter",
    "MLPImitateRouter",
    "MLPOutcomesRouter",
    "NeuralRouter",
    "OracleRouter",
    "OutcomeRouter",
    "RandomRouter",
]

BASELINES: dict[str, type[Router]] = {
    cls.name: cls
    for cls in (
        RandomRouter,
        CheapestRouter,
        LargestRouter,
        BestLLMPerUserRouter,
        BestLLMPerUserTaskRouter,
        KNNOutcomesRouter,
        MLPOutcomesRouter,
        MFOutcomesRouter,
        LogisticOutcomesRouter,
        ImitateUserRouter,
        ImitateUserTaskRouter,
        KNNImitateRouter,
        MLPImitateRouter,
        MFImitateRouter,
        OracleRouter,
    )
}

#: The predict-then-optimise baselines (the ones a new user is onboarded into, too).
OUTCOME_BASELINES = [name for name, cls in BASELINES.items() if issubclass(cls, OutcomeRouter)]

#: The honest baseline the model-quality check compares with (cheap, strong on RouterBench).
STRONGEST_BASELINE = BestLLMPerUserTaskRouter.name
