"""Baseline routers of the evaluation protocol, and a registry of them by ``name``."""

from __future__ import annotations

from gnn.routers.base import Router
from gnn.routers.baselines.best_single import BestSingleUserRouter, BestSingleUserTaskRouter
from gnn.routers.baselines.cheapest import CheapestRouter
from gnn.routers.baselines.knn import KNNRouter
from gnn.routers.baselines.largest import LargestRouter
from gnn.routers.baselines.mf import MatrixFactorizationRouter
from gnn.routers.baselines.mlp import MLPRouter, NeuralRouter
from gnn.routers.baselines.oracle import OracleRouter
from gnn.routers.baselines.random import RandomRouter

__all__ = [
    "BASELINES",
    "BestSingleUserRouter",
    "BestSingleUserTaskRouter",
    "CheapestRouter",
    "KNNRouter",
    "LargestRouter",
    "MLPRouter",
    "MatrixFactorizationRouter",
    "NeuralRouter",
    "OracleRouter",
    "RandomRouter",
]

BASELINES: dict[str, type[Router]] = {
    cls.name: cls
    for cls in (
        RandomRouter,
        CheapestRouter,
        LargestRouter,
        BestSingleUserRouter,
        BestSingleUserTaskRouter,
        OracleRouter,
        KNNRouter,
        MLPRouter,
        MatrixFactorizationRouter,
    )
}
