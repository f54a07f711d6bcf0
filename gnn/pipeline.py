"""The one train -> checkpoint -> RouterModel -> write-back pipeline (CLI and Dagster).

:func:`train_and_record` (``prouter train``) runs every step in order; the
Dagster assets run them one by one. Each step reads what the previous one saved
(the export file, the checkpoint), so each can be re-run on its own:

* :func:`gnn.export.export_training_subgraph` saves the subgraph to train on.
* :func:`train_from_export` fits the GNN on an exported subgraph and saves a
  versioned checkpoint ``<model_dir>/<version>.pt`` (:mod:`gnn.checkpoint`;
  servable by ``prouter route``) that also holds the test-split scores and picks. A
  checkpoint is keyed by (export fingerprint, config, seed): unless ``retrain``
  is set, a re-run finds the existing one and trains nothing. A re-train always
  creates a new version (older versions and their edges stay).
* :func:`write_version` (``prouter train``) writes the version into the graph from the
  checkpoint: the ROUTED_TO predictions in batches, each its own transaction, then
  the RouterModel node (the commit marker: a version without one is invisible to
  readers) with the EVALUATED edges (:mod:`gnn.writeback`). The Dagster steps do
  the same in parts: :func:`publish_predictions` (ROUTED_TO, then the RouterModel),
  then :func:`write_general_evaluation` / :func:`write_user_evaluation`. All are
  idempotent; a re-run completes an interrupted write-back.
* :func:`few_shot_results` runs the new-user / new-LLM settings
  (:mod:`gnn.fewshot`) against the trained checkpoint and
  :func:`write_few_shot_evaluation` writes them as EVALUATED edges per k.
* :func:`compare_with_baseline` and :func:`prediction_completeness` are the
  numbers behind the model-quality and write-back asset checks.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from gnn.checkpoint import (
    find_checkpoints,
    load_checkpoint,
    load_file,
    new_version,
    save_checkpoint,
    save_file,
)
from gnn.data import RoutingData
from gnn.evaluate import Metrics, evaluate, metrics_for_choices
from gnn.writeback import (
    evaluation_rows,
    is_recorded,
    prediction_table,
    record_version,
    replace_predictions,
    write_back,
    write_evaluation,
)
from graphdb.store import GraphStore, WriteStats
from prcore.errors import ConfigError, StoreError
from prcore.values import finite_or_none

if TYPE_CHECKING:
    from gnn.export import TrainingSubgraph
    from gnn.fewshot import FewShotResult

__all__ = [
    "ROUTED_TOP",
    "ModelRef",
    "TrainResult",
    "check_routed_top",
    "compare_with_baseline",
    "data_snapshot",
    "few_shot_cache_path",
    "few_shot_results",
    "few_shot_skipped",
    "model_row",
    "prediction_completeness",
    "publish_predictions",
    "read_checkpoint",
    "require_recorded",
    "train_and_record",
    "train_from_export",
    "user_metrics",
    "write_few_shot_evaluation",
    "write_general_evaluation",
    "write_routing_predictions",
    "write_user_evaluation",
    "write_version",
]

GENERAL = "general"
ROUTED_TOP = 3  # ROUTED_TO edges written per evaluated (user, query) by default


@dataclass(frozen=True)
class ModelRef:
    """A trained model version: its checkpoint, the export it was trained on, and how many
    ranked candidates per evaluated (user, query) its write-back keeps (None: all)."""

    version: str
    checkpoint: str
    export: str
    reused: bool = False
    routed_top: int | None = ROUTED_TOP

    def __post_init__(self) -> None:
        check_routed_top(self.routed_top)


def check_routed_top(k: int | None) -> int | None:
    """``k`` if it is a valid number of ROUTED_TO edges per pair (a positive int, or None
    for every candidate); else a :class:`ConfigError`."""
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        raise ConfigError(f"routed top-k must be a positive integer or 'all', got {k!r}")
    return k


@dataclass
class TrainResult:
    """What :func:`train_and_record` produced."""

    version: str
    checkpoint: Path
    metrics: dict[str, dict[str, Any]]
    written: dict[str, WriteStats] = field(default_factory=dict)
    ref: ModelRef | None = None


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


def _training_key(fingerprint: str, config: dict[str, Any], seed: int) -> str:
    recipe = {k: v for k, v in config.items() if k != "device"}  # same model on any device
    payload = json.dumps({"export": fingerprint, "config": recipe, "seed": seed}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:10]


def read_checkpoint(ref: ModelRef) -> dict[str, Any]:
    """The checkpoint of ``ref`` (weights-only load, confined to its folder)."""
    path = Path(ref.checkpoint)
    return load_checkpoint(path.parent, ref.version)


def train_from_export(
    export: str | Path,
    model_dir: Path,
    *,
    seed: int = 0,
    config: dict[str, Any] | None = None,
    retrain: bool = False,
    graph_counts: dict[str, int] | None = None,
    progress: bool = False,
    routed_top: int | None = ROUTED_TOP,
) -> ModelRef:
    """Fit the GNN on the export's train split (select on validation, score test once)."""
    from gnn.export import load_training_subgraph
    from gnn.train import GNNRouter

    sub = load_training_subgraph(export)
    config = {"neighbours": int(sub.spec.get("neighbours", 10))} | dict(config or {})
    key = _training_key(sub.fingerprint, config, seed)
    existing = find_checkpoints(model_dir, key)
    if existing and not retrain:
        return ModelRef(
            existing[-1].stem, str(existing[-1]), str(export), True, check_routed_top(routed_top)
        )
    data, split = sub.data, sub.split
    started = time.perf_counter()
    # The export's neighbour messages, when made with the configured k, are not searched again.
    same_k = config["neighbours"] == int(sub.spec.get("neighbours", 10))
    exported = getattr(sub.graph["query"], "neighbour_outcomes", None)
    messages = exported.numpy() if same_k and exported is not None else None
    router = GNNRouter(seed=seed, progress=progress, **config).fit(data, split, messages=messages)
    training = {
        "seconds": time.perf_counter() - started,  # features, epochs and model selection
        "epoch_seconds": [h["seconds"] for h in router.history],
        "best_epoch": router.best_epoch,
    }
    metrics = {part: evaluate(router, data, split, part).as_dict() for part in ("val", "test")}
    idx = np.flatnonzero(split.test[data.dec_query])
    users, queries = data.dec_user[idx], data.dec_query[idx]
    version, created_at = new_version(key)
    # router.state() makes the checkpoint servable (`prouter route`); the rest is provenance
    # and the test-split scores and picks that the write-back steps publish.
    checkpoint = save_checkpoint(
        model_dir,
        version,
        router.state()
        | {
            "key": key,
            "created_at": created_at,
            "data": data_snapshot(data),
            "export": {"path": str(export), "fingerprint": sub.fingerprint, "spec": sub.spec},
            "graph_counts": dict(graph_counts or {}),
            "metrics": metrics,
            "training": training,
            "evaluated": {
                "idx": idx,
                "scores": router.score(data, users, queries),
                "picks": router.route(data, users, queries),
            },
        },
    )
    return ModelRef(version, str(checkpoint), str(export), routed_top=routed_top)


def train_and_record(
    store: GraphStore,
    *,
    seed: int = 0,
    tasks: Sequence[str] | None = None,
    model_dir: Path,
    write_back: bool = True,
    config: dict[str, Any] | None = None,
    few_shot: Sequence[str] = (),
    shots: Sequence[int] = (0, 1, 3, 5, 10),
    routed_top: int | None = ROUTED_TOP,
) -> TrainResult:
    """Every step in order: export, fit (select on validation, test once), save a new
    version, and write it back (:func:`write_version`: ROUTED_TO, the ``routed_top`` best
    candidates per test pair, None: all, in batches; then the RouterModel node with the
    EVALUATED edges). ``few_shot`` adds the ``new_user`` / ``new_llm`` settings per k."""
    from gnn.export import SubgraphSpec, export_training_subgraph
    from gnn.fewshot import check_settings

    check_settings(few_shot)
    check_routed_top(routed_top)
    spec = SubgraphSpec(tasks=tuple(tasks) if tasks else None, seed=seed)
    exported = export_training_subgraph(store, Path(model_dir) / "exports", spec)
    ref = train_from_export(
        exported.path,
        Path(model_dir),
        seed=seed,
        config=config,
        retrain=True,
        progress=True,
        routed_top=routed_top,
    )
    few = few_shot_results(ref, few_shot, shots=shots) if few_shot else []
    metrics = dict(read_checkpoint(ref)["metrics"]) | {res.setting: res.summary() for res in few}
    result = TrainResult(ref.version, Path(ref.checkpoint), metrics, ref=ref)
    if write_back:
        result.written = write_version(store, ref, few)
    return result


def write_version(
    store: GraphStore, ref: ModelRef, few: Sequence[FewShotResult] = ()
) -> dict[str, WriteStats]:
    """Write version ``ref`` into the graph (:func:`gnn.writeback.write_back`): its
    ROUTED_TO predictions in batches, then its RouterModel node (with the few-shot
    summaries of ``few`` in its metrics) and its EVALUATED edges (general, plus one per
    few-shot setting and k) in one transaction. Idempotent; a re-run completes an
    interrupted write-back of the same version."""
    ev, sub = _evaluated(ref)
    data = sub.data
    evaluations = evaluation_rows(data, ref.version, ev["idx"], ev["picks"], setting=GENERAL)
    for res in few:
        for k, picks in res.picks.items():
            evaluations += evaluation_rows(
                data, ref.version, res.idx, picks, setting=res.setting, shots=k
            )
    return write_back(
        store, model_row(ref, few), _prediction_table(ref), evaluations, top_k=ref.routed_top
    )


def model_row(ref: ModelRef, few: Sequence[FewShotResult] = ()) -> dict[str, Any]:
    """The RouterModel node of ``ref`` (its values come from the checkpoint, plus the
    summaries of the few-shot results ``few`` in its metrics and the write-back's top-k
    as ``routed_top`` in its config, "all" for every candidate)."""
    ckpt = read_checkpoint(ref)
    metrics = dict(ckpt["metrics"]) | {res.setting: res.summary() for res in few}
    config = ckpt["config"] | {
        "data": ckpt["data"],
        "export": ckpt["export"]["fingerprint"],
        "graph_counts": ckpt["graph_counts"],
        "routed_top": "all" if ref.routed_top is None else ref.routed_top,
    }
    return {
        "version": ckpt["version"],
        "created_at": ckpt["created_at"],
        "config": json.dumps(config, sort_keys=True, default=str),
        "metrics": json.dumps(finite_or_none(metrics), sort_keys=True, default=str),
    }


def require_recorded(store: GraphStore, ref: ModelRef) -> None:
    """A :class:`StoreError` unless version ``ref`` has its RouterModel node (what the
    EVALUATED edges hang from, written when its predictions are complete)."""
    if not is_recorded(store, ref.version):
        raise StoreError(
            f"model version {ref.version} has no RouterModel node yet (its write-back has "
            "not finished): materialise routing_predictions first"
        )


def _identity(path: str) -> tuple[int, int, int] | None:
    """What changes when a file is replaced (None when it is missing)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _load_evaluated(
    version: str, checkpoint: str, export: str, _identities: tuple[Any, ...]
) -> tuple[dict[str, Any], TrainingSubgraph]:
    from gnn.export import load_training_subgraph

    state = load_checkpoint(Path(checkpoint).parent, version)
    evaluated = {k: v.numpy() for k, v in state["evaluated"].items()}
    return evaluated, load_training_subgraph(export)


def _evaluated(ref: ModelRef) -> tuple[dict[str, Any], TrainingSubgraph]:
    """The test-split scores and picks of ``ref`` and its export, loaded once per process
    (the per-user Dagster steps and write-back steps share them; treat as read-only).
    A replaced file (another inode, size or time) is loaded again."""
    identities = (_identity(ref.checkpoint), _identity(ref.export))
    return _load_evaluated(ref.version, ref.checkpoint, ref.export, identities)


def _prediction_table(ref: ModelRef) -> pa.Table:
    """The ROUTED_TO rows of ``ref`` (its ``routed_top`` best candidates per test pair)."""
    ev, sub = _evaluated(ref)
    data, idx = sub.data, ev["idx"]
    return prediction_table(
        data, ref.version, data.dec_user[idx], data.dec_query[idx], ev["scores"], ref.routed_top
    )


def write_routing_predictions(store: GraphStore, ref: ModelRef) -> WriteStats:
    """ROUTED_TO edges: the ``ref.routed_top`` best-ranked candidates (all when None) of
    every test (user, query), with the version, in batches of users, each its own
    transaction (:func:`gnn.writeback.replace_predictions`: what an interrupted write of
    an unrecorded version left is deleted first; of a recorded one, edges ranked below k
    are deleted after), so the graph holds exactly what :func:`prediction_completeness`
    expects. Readers see them once the RouterModel node is written."""
    return replace_predictions(store, ref.version, _prediction_table(ref), top_k=ref.routed_top)


def publish_predictions(store: GraphStore, ref: ModelRef) -> dict[str, WriteStats]:
    """The Dagster write-back step: :func:`write_routing_predictions`, then the RouterModel
    node (the commit marker) once every edge is in the graph."""
    table = _prediction_table(ref)
    routed = replace_predictions(store, ref.version, table, top_k=ref.routed_top)
    recorded = record_version(store, model_row(ref), routed=table.num_rows)
    return {"ROUTED_TO": routed, "RouterModel": recorded["RouterModel"]}


def write_general_evaluation(store: GraphStore, ref: ModelRef) -> WriteStats:
    """EVALUATED {setting: 'general', shots: 0} per user, on the test decisions (the
    version must be recorded: :func:`require_recorded`)."""
    require_recorded(store, ref)
    ev, sub = _evaluated(ref)
    return write_evaluation(store, sub.data, ref.version, ev["idx"], ev["picks"], setting=GENERAL)


def _user_rows(ref: ModelRef, user_id: str) -> tuple[TrainingSubgraph, np.ndarray, np.ndarray]:
    ev, sub = _evaluated(ref)
    data = sub.data
    if user_id not in data.user_ids:
        empty = np.zeros(0, dtype=np.int64)
        return sub, empty, empty
    mine = data.dec_user[ev["idx"]] == data.user_ids.index(user_id)
    return sub, ev["idx"][mine], ev["picks"][mine]


def user_metrics(ref: ModelRef, user_id: str) -> Metrics | None:
    """General (test-split) metrics of one user; None if the user has no test decision."""
    sub, idx, picks = _user_rows(ref, user_id)
    return metrics_for_choices(sub.data, idx, picks) if len(idx) else None


def write_user_evaluation(store: GraphStore, ref: ModelRef, user_id: str) -> WriteStats:
    """The general EVALUATED edge of one user (same values as the all-user write); the
    version must be recorded (:func:`require_recorded`)."""
    require_recorded(store, ref)
    sub, idx, picks = _user_rows(ref, user_id)
    if not len(idx):
        return WriteStats()
    return write_evaluation(store, sub.data, ref.version, idx, picks, setting=GENERAL)


def few_shot_results(
    ref: ModelRef,
    settings: Sequence[str] = ("new_user", "new_llm"),
    *,
    shots: Sequence[int] = (0, 1, 3, 5, 10),
    users: Sequence[str] | None = None,
    device: str = "cpu",
) -> list[FewShotResult]:
    """The few-shot settings against the trained router of ``ref`` (same split and seed).

    ``users`` restricts the new-user setting to those users (one partition per
    user); by default a seeded third of the users is held out. Results are kept
    beside the checkpoint, keyed by the arguments, so a re-run (re-materialising)
    reads them instead of fitting the held-out models again.
    """
    from gnn.fewshot import FewShotResult, check_settings

    check_settings(settings)
    cached = few_shot_cache_path(ref, settings, shots=shots, users=users)
    if cached.exists():  # weights-only: a planted pickle is refused, never run
        return [FewShotResult.from_plain(r) for r in load_file(cached)]
    results = _run_few_shot(ref, settings, shots=shots, users=users, device=device)
    save_file(cached, [r.to_plain() for r in results], overwrite=True)
    return results


def few_shot_skipped(ref: ModelRef, settings: Sequence[str]) -> dict[str, str]:
    """The few-shot settings the training subgraph of ``ref`` cannot evaluate, and why
    (``gnn.fewshot.unavailable_settings``: e.g. a preference-only graph has no decisions)."""
    from gnn.export import load_training_subgraph
    from gnn.fewshot import check_settings, unavailable_settings

    check_settings(settings)
    return unavailable_settings(load_training_subgraph(ref.export).data, settings)


def few_shot_cache_path(
    ref: ModelRef,
    settings: Sequence[str],
    *,
    shots: Sequence[int],
    users: Sequence[str] | None = None,
) -> Path:
    """Where :func:`few_shot_results` keeps its results for these arguments."""
    request = {"settings": list(settings), "shots": list(shots), "users": users and list(users)}
    key = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()[:10]
    return Path(ref.checkpoint).with_name(f"{ref.version}-fewshot-{key}.pt")


def _run_few_shot(
    ref: ModelRef,
    settings: Sequence[str],
    *,
    shots: Sequence[int],
    users: Sequence[str] | None,
    device: str,
) -> list[FewShotResult]:
    from gnn.export import load_training_subgraph
    from gnn.fewshot import new_user_evaluation, run_setting
    from gnn.train import GNNRouter

    sub = load_training_subgraph(ref.export)
    state = read_checkpoint(ref)
    router = GNNRouter.from_state(
        state, sub.data, device=device, serving=False, exports=Path(ref.export).parent
    )
    seed = int(state["config"].get("seed", 0))
    out = []
    for name in settings:
        if name == "new_user" and users is not None:
            rows = np.array([sub.data.user_ids.index(u) for u in users if u in sub.data.user_ids])
            result = new_user_evaluation(sub.data, sub.split, router, rows, shots=shots, seed=seed)
        else:
            result = run_setting(name, sub.data, sub.split, router, shots=shots, seed=seed)
        out.append(result)
    return out


def write_few_shot_evaluation(
    store: GraphStore, ref: ModelRef, results: Sequence[FewShotResult]
) -> WriteStats:
    """EVALUATED {setting, shots: k} per user for each few-shot result (the version must
    be recorded: :func:`require_recorded`)."""
    from gnn.export import load_training_subgraph

    if results:
        require_recorded(store, ref)
    data = load_training_subgraph(ref.export).data
    written = WriteStats()
    for result in results:
        for k, picks in result.picks.items():
            written = written + write_evaluation(
                store, data, ref.version, result.idx, picks, setting=result.setting, shots=k
            )
    return written


def compare_with_baseline(ref: ModelRef, baseline: str | None = None) -> dict[str, Any]:
    """The model's validation metric against a baseline fitted on the same split (default:
    the strongest honest one, ``gnn.routers.baselines.STRONGEST_BASELINE``).

    The metric is the mean reward where users have a weight (simulated users),
    else accuracy (agreement with the users' choices). ``passed``: strictly better.
    """
    from gnn.export import load_training_subgraph
    from gnn.routers.baselines import BASELINES, STRONGEST_BASELINE

    baseline = baseline or STRONGEST_BASELINE
    sub = load_training_subgraph(ref.export)
    ckpt = read_checkpoint(ref)
    model_val = ckpt["metrics"]["val"]
    router = BASELINES[baseline](seed=ckpt["config"].get("seed", 0)).fit(sub.data, sub.split)
    base = evaluate(router, sub.data, sub.split, "val")
    metric = "reward" if not np.isnan(model_val["reward"]) else "accuracy"
    ours, theirs = float(model_val[metric]), float(getattr(base, metric))
    return {
        "metric": metric,
        "model": ours,
        "baseline": baseline,
        "baseline_value": theirs,
        "margin": ours - theirs,
        "val_decisions": int(model_val["n"]),
        "passed": bool(ours > theirs),
    }


def prediction_completeness(store: GraphStore, ref: ModelRef) -> dict[str, Any]:
    """Compare the ROUTED_TO edges of ``ref.version`` with the evaluated (user, query) pairs.

    Complete means: the version has its RouterModel node (``recorded``: without it,
    readers see none of its edges), every evaluated pair has exactly one rank-1
    prediction and min(k, available candidates) edges, k being ``ref.routed_top`` (every
    candidate when None), and no other pair has predictions.
    """
    ev, sub = _evaluated(ref)
    data, idx = sub.data, ev["idx"]
    users, queries = data.dec_user[idx], data.dec_query[idx]
    available = data.candidates(queries).sum(axis=1)
    if ref.routed_top is not None:
        available = np.minimum(available, ref.routed_top)
    expected = {
        (data.user_ids[u], data.query_ids[q]): int(n)
        for u, q, n in zip(users, queries, available, strict=True)
    }
    rows = store.read(
        "MATCH (u:User)-[r:ROUTED_TO]->(:LLM) WHERE r.model_version = $version "
        "RETURN u.id AS user_id, r.query_id AS query_id, count(r) AS edges, "
        "sum(CASE WHEN r.rank = 1 THEN 1 ELSE 0 END) AS top",
        {"version": ref.version},
    ).to_pylist()
    found = {(r["user_id"], r["query_id"]): r for r in rows}
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = sorted(
        pair
        for pair, r in found.items()
        if pair in expected and (int(r["top"]) != 1 or int(r["edges"]) != expected[pair])
    )
    recorded = is_recorded(store, ref.version)
    return {
        "version": ref.version,
        "recorded": recorded,
        "routed_top": "all" if ref.routed_top is None else ref.routed_top,
        "evaluated_pairs": len(expected),
        "predicted_pairs": len(found),
        "missing_pairs": len(missing),
        "unexpected_pairs": len(unexpected),
        "pairs_without_one_top_pick": len(wrong),
        "examples": [list(p) for p in (missing + unexpected + wrong)[:5]],
        "passed": recorded and not (missing or unexpected or wrong),
    }
