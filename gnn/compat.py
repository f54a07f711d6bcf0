"""Is a checkpoint fit to serve on the graph as it is now?

A checkpoint records the tasks, LLMs and training queries (by id) it was
trained on. :func:`check_graph` compares them with the graph's routing data:

* refused (:class:`ModelMismatchError`): a task of the model is missing from
  the graph, or most of its training queries are (it was trained on another
  graph, and its rankings would be silently wrong);
* warned (returned lines): LLMs added since training (ranked from their
  features only: the model never saw an outcome of theirs) or removed since.

:func:`check_finite_weights` refuses a checkpoint whose weights hold NaN or
infinity (a model trained on poisoned outcomes ranks every LLM NaN).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from prcore.errors import ProuterError

__all__ = ["MIN_KNOWN_TRAIN_QUERIES", "ModelMismatchError", "check_finite_weights", "check_graph"]

# Below this share of its training queries present, a model is taken as trained elsewhere.
MIN_KNOWN_TRAIN_QUERIES = 0.5


class ModelMismatchError(ProuterError):
    """The checkpoint was trained on another graph (or its weights are unusable)."""


def _names(ids: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def check_graph(
    state: Mapping[str, Any],
    *,
    task_ids: Sequence[str],
    llm_ids: Sequence[str],
    query_ids: Sequence[str],
) -> list[str]:
    """Refuse a checkpoint trained on another graph; warnings for changed LLMs."""
    version = state.get("version", "?")
    retrain = "retrain on this graph with `prouter train` (or pass --store / --model)"
    missing_tasks = sorted(set(state["task_ids"]) - set(task_ids))
    if missing_tasks:
        raise ModelMismatchError(
            f"model {version} was trained on another graph: its tasks "
            f"{_names(missing_tasks)} are not in this graph; {retrain}"
        )
    trained = list(state.get("train_queries") or [])
    if trained:
        present = set(query_ids)
        known = sum(q in present for q in trained)
        if known < MIN_KNOWN_TRAIN_QUERIES * len(trained):
            raise ModelMismatchError(
                f"model {version} was trained on another graph: only {known} of its "
                f"{len(trained)} training queries are in this graph; {retrain}"
            )
    warnings = []
    model_llms = list(state["llm_ids"])
    added = [m for m in llm_ids if m not in set(model_llms)]
    removed = [m for m in model_llms if m not in set(llm_ids)]
    if added:
        warnings.append(
            f"model {version} never saw LLMs {_names(added)} (added to the graph after "
            "training): they are ranked from their description embeddings only; retrain "
            "to learn from their outcomes"
        )
    if removed:
        warnings.append(
            f"LLMs {_names(removed)} of model {version} are no longer in the graph "
            "and are not ranked"
        )
    return warnings


def check_finite_weights(state: Mapping[str, Any]) -> None:
    """Refuse a checkpoint with NaN or infinite weights."""
    import torch  # here: the rest of the module serves the light (torch-free) route path

    bad = [
        name
        for name, tensor in dict(state["state_dict"]).items()
        if torch.is_tensor(tensor)
        and tensor.is_floating_point()
        and not bool(torch.isfinite(tensor).all())
    ]
    if bad:
        raise ModelMismatchError(
            f"model {state.get('version', '?')} holds NaN or infinite weights ({_names(bad, 3)}): "
            "it was trained on out-of-range data; fix the outcomes and retrain with `prouter train`"
        )
