"""What a GNN router's checkpoint holds, and rebuilding a router from it on a graph.

The files themselves (versions, weights-only loading, atomic writes) are
:mod:`gnn.checkpoint`'s; this module is the router's side: its configuration,
weights, task and LLM order, and its training and validation queries by id
(they give the outcome messages when it is rebuilt).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from gnn.data import RoutingData, Split
from gnn.export import exported_messages
from gnn.preference.calibration import VoteCalibration
from prcore.errors import ProuterError

if TYPE_CHECKING:
    from gnn.train import GNNRouter

__all__ = ["restore_router", "router_state"]

R = TypeVar("R", bound="GNNRouter")


def router_state(router: GNNRouter) -> dict[str, object]:
    """What a checkpoint needs to rebuild ``router`` on a graph (see :func:`restore_router`)."""
    return {
        "router": router.name,
        "config": router.config_dict(),
        "state_dict": router.model.state_dict(),
        "task_ids": router.task_ids,
        "llm_ids": router.llm_ids,
        "train_queries": router.features.train_ids,
        "val_queries": router.features.val_ids,
        "best_epoch": router.best_epoch,
        "residual_scale": router.inference.residual_scale,
        "vote_temperature": router.calibration.as_dict(),
        "vote_prior": None if router.vote_prior is None else router.vote_prior.tolist(),
    }


def restore_router(
    cls: type[R],
    state: dict[str, object],
    data: RoutingData,
    *,
    device: str = "auto",
    serving: bool = True,
    exports: Path | None = None,
) -> R:
    """Rebuild a trained router of class ``cls`` on ``data``.

    Its training queries (by id) give the outcome messages: those saved in the export it
    was trained on (looked up in the folder ``exports``) when ``data`` is still the graph
    it was exported from, else searched again. For ``serving``
    (the graph now), every decision and judgement in ``data`` describes its
    user (users and decisions added since training count, without
    retraining) and every outcome may be seen; otherwise (``serving=False``,
    the data it was trained on) it is the router as it was after training,
    e.g. the reference of the few-shot settings.
    """
    config = dict(state["config"])  # type: ignore[call-overload]
    seed = int(config.pop("seed", 0))
    config.pop("router", None)
    router = cls(seed=seed, **(config | {"device": device}))
    ids = {q: i for i, q in enumerate(data.query_ids)}
    train = np.zeros(len(data.query_ids), dtype=bool)
    val = np.zeros_like(train)
    train[[ids[q] for q in state["train_queries"] if q in ids]] = True  # type: ignore[attr-defined]
    val[[ids[q] for q in state["val_queries"] if q in ids]] = True  # type: ignore[attr-defined]
    split = Split(train=train, val=val, test=~(train | val))
    router._set_cost_rank(data, split)
    everything = {
        "seen": np.ones_like(train),
        "decisions": np.arange(len(data.dec_user)),
        "pairs": np.arange(len(data.pref_user)),
    }
    messages = None
    if exports is not None:
        k = router.train_config.neighbours
        messages = exported_messages(exports, state.get("export"), data, split, k=k)
    router._prepare(
        data,
        split,
        **(everything if serving else {}),
        task_ids=list(state["task_ids"]),  # type: ignore[call-overload]
        messages=messages,
    )
    try:
        router.model.load_state_dict(state["state_dict"])  # type: ignore[arg-type]
    except RuntimeError as exc:
        raise ProuterError(
            "the checkpoint's weights do not fit this version of the model (it was "
            f"trained by an older release); retrain it with `prouter train`: {exc}"
        ) from exc
    scale = state.get("residual_scale", 1.0)  # older checkpoints: the whole correction
    if not isinstance(scale, int | float) or not 0.0 <= float(scale) <= 1.0:
        raise ProuterError(f"the checkpoint's residual_scale {scale!r} is not a number in [0, 1]")
    router.inference.residual_scale = float(scale)
    # Older checkpoints: uncalibrated (1 and 1); VoteCalibration range-checks the values.
    router.calibration = VoteCalibration.from_state(state.get("vote_temperature"))
    router.vote_prior = _vote_prior(state.get("vote_prior"), router)
    router.inference.invalidate()
    router.best_epoch = int(state.get("best_epoch", -1))  # type: ignore[call-overload]
    return router


#: The largest Bradley-Terry strength a checkpoint's vote prior may hold (fits with the
#: shrinkage of ``gnn.preference.shrinkage`` stay within a few units).
_MAX_STRENGTH = 50.0


def _vote_prior(value: object, router: GNNRouter) -> np.ndarray | None:
    """A checkpoint's ``vote_prior`` (None: none, or an older checkpoint), checked: one
    finite strength within +-50 per (task, LLM) of the router."""
    if value is None:
        return None
    shape = (len(router.task_ids), len(router.llm_ids))
    try:
        prior = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        prior = None
    if (
        prior is None
        or prior.shape != shape
        or not np.all(np.isfinite(prior))
        or np.abs(prior).max(initial=0.0) > _MAX_STRENGTH
    ):
        raise ProuterError(
            f"the checkpoint's vote_prior is not a {shape[0]} x {shape[1]} table of finite "
            f"strengths within +-{_MAX_STRENGTH:g}"
        )
    return prior
