"""Train the GNN router on a store and record it: checkpoint, RouterModel, write-back."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gnn import fewshot
from gnn.data import RoutingData, load_routing_data, split_queries
from gnn.evaluate import evaluate
from gnn.fewshot import DEFAULT_SHOTS
from gnn.train import GNNRouter
from gnn.writeback import prediction_table, write_evaluation, write_model, write_predictions
from graphdb.store import GraphStore, WriteStats

__all__ = ["TrainResult", "data_snapshot", "train_and_record"]


@dataclass
class TrainResult:
    """What a training run produced."""

    version: str
    checkpoint: Path
    metrics: dict[str, dict[str, float]]
    written: dict[str, WriteStats] = field(default_factory=dict)


def data_snapshot(data: RoutingData) -> dict[str, Any]:
    """Sizes and a fingerprint of the ids the model was trained on."""
    digest = hashlib.sha256()
    for ids in (data.query_ids, data.llm_ids, data.user_ids):
        digest.update("\x1f".join(ids).encode())
    return {
        "queries": len(data.query_ids),
        "llms": data.num_llms,
        "users": len(data.user_ids),
        "decisions": len(data.dec_user),
        "ids_sha256": digest.hexdigest(),
    }


def train_and_record(
    store: GraphStore,
    *,
    seed: int = 0,
    tasks: list[str] | None = None,
    model_dir: Path = Path("prouter-data/models"),
    write_back: bool = True,
    config: dict[str, Any] | None = None,
    few_shot: Sequence[str] = (),
    shots: Sequence[int] = DEFAULT_SHOTS,
) -> TrainResult:
    """Fit on train, select on validation, evaluate once on test, save and write back.

    ``few_shot`` adds the settings ``"new_user"`` and ``"new_llm"`` (see
    :mod:`gnn.fewshot`), written back as EVALUATED edges per user and shots.
    """
    fewshot.check_settings(few_shot)
    data = load_routing_data(store, tasks=tasks)
    split = split_queries(data, seed=seed)
    router = GNNRouter(seed=seed, progress=True, **(config or {}))
    router.fit(data, split)
    metrics: dict[str, Any] = {
        part: evaluate(router, data, split, part).as_dict() for part in ("val", "test")
    }
    few = [
        fewshot.run_setting(name, data, split, router, shots=shots, seed=seed) for name in few_shot
    ]
    for result in few:
        metrics[result.setting] = result.summary()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    version = f"gnn-{stamp}-s{seed}"
    model_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = model_dir / f"{version}.pt"
    torch.save(
        router.state() | {"version": version, "data": data_snapshot(data), "metrics": metrics},
        checkpoint,
    )
    result = TrainResult(version, checkpoint, metrics)
    if write_back:
        idx = np.flatnonzero(split.test[data.dec_query])
        users, queries = data.dec_user[idx], data.dec_query[idx]
        picks = router.route(data, users, queries)
        with store.transaction():
            result.written["RouterModel"] = write_model(
                store, version, router.config_dict() | {"data": data_snapshot(data)}, metrics
            )
            result.written["ROUTED_TO"] = write_predictions(
                store,
                prediction_table(data, version, users, queries, router.score(data, users, queries)),
            )
            result.written["EVALUATED"] = write_evaluation(
                store, data, version, idx, picks, setting="general"
            )
            for res in few:
                for k, few_picks in res.picks.items():
                    stats = write_evaluation(
                        store, data, version, res.idx, few_picks, setting=res.setting, shots=k
                    )
                    result.written["EVALUATED"] = result.written["EVALUATED"] + stats
    return result
