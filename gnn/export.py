"""Export a training subgraph (tasks, users, time window) to a PyG ``HeteroData`` file.

The file is the message-passing graph of :func:`gnn.graph.build_graph` plus
everything needed to train and evaluate on exactly that subgraph: node ids,
the outcome matrices, user weights and every decision (training, validation and
test; the masks say which is which). :func:`load_training_subgraph` turns it
back into the :class:`~gnn.data.RoutingData` and :class:`~gnn.data.Split` it was
built from. The file name carries a fingerprint of the content, so exporting
the same subgraph twice gives the same file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import HeteroData
from torch_geometric.data.storage import BaseStorage, EdgeStorage, GlobalStorage, NodeStorage

from gnn.checkpoint import CheckpointError, load_file, save_file
from gnn.data import RoutingData, Split, load_routing_data, split_queries
from gnn.graph import build_graph
from graphdb.store import GraphStore
from prcore.errors import ConfigError, ProuterError

__all__ = [
    "ExportedSubgraph",
    "SubgraphSpec",
    "TrainingSubgraph",
    "export_training_subgraph",
    "exported_messages",
    "filter_decisions",
    "load_training_subgraph",
]


log = logging.getLogger(__name__)

# The PyG classes an export file may hold (loaded weights-only: data, never code).
_HETERO_DATA_CLASSES = (HeteroData, BaseStorage, NodeStorage, EdgeStorage, GlobalStorage)


@dataclass(frozen=True)
class SubgraphSpec:
    """Which part of the graph to train on; ``None`` means all.

    ``start`` (inclusive) and ``end`` (exclusive) are ISO-8601 times compared with
    each decision's ``CHOSE.ts``; with a window, decisions without a time are left out.
    """

    tasks: tuple[str, ...] | None = None
    users: tuple[str, ...] | None = None
    start: str | None = None
    end: str | None = None
    seed: int = 0
    neighbours: int = 10

    def as_dict(self) -> dict[str, object]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in vars(self).items()}


@dataclass(frozen=True)
class ExportedSubgraph:
    """Where an export went and what it holds."""

    path: Path
    fingerprint: str
    counts: dict[str, int]


@dataclass(frozen=True)
class TrainingSubgraph:
    """A loaded export: the PyG graph and the routing arrays and split behind it."""

    graph: HeteroData
    data: RoutingData
    split: Split
    fingerprint: str
    spec: dict[str, object]


def _time(value: str | None, what: str) -> datetime | None:
    if value is None:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{what} {value!r} is not an ISO-8601 time") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)  # naive times are UTC


def filter_decisions(store: GraphStore, data: RoutingData, spec: SubgraphSpec) -> RoutingData:
    """``data`` restricted to the users and the time window of ``spec``.

    Pairwise judgements (PREFERRED, ties included) follow the user filter; the time
    window applies to decisions (CHOSE) only."""
    keep = np.ones(len(data.dec_user), dtype=bool)
    user_ids = list(data.user_ids)
    if spec.users is not None:
        unknown = sorted(set(spec.users) - set(user_ids))
        if unknown:
            raise ConfigError(f"unknown users in the subgraph filter: {unknown[:10]}")
        user_ids = [u for u in user_ids if u in set(spec.users)]
    start, end = _time(spec.start, "start"), _time(spec.end, "end")
    if start or end:
        chose = store.export_edges("CHOSE", ["query_id", "ts"]).to_pydict()
        ts = {
            (u, q): _time(t, "CHOSE.ts")
            for u, q, t in zip(chose["src"], chose["query_id"], chose["ts"], strict=True)
            if t is not None
        }
        users, queries = np.asarray(data.user_ids), np.asarray(data.query_ids)
        for i, (u, q) in enumerate(zip(users[data.dec_user], queries[data.dec_query], strict=True)):
            t = ts.get((u, q))
            keep[i] = t is not None and (start is None or t >= start) and (end is None or t < end)
    new_index = {u: i for i, u in enumerate(user_ids)}
    old_to_new = np.array([new_index.get(u, -1) for u in data.user_ids], dtype=np.int64)
    keep &= old_to_new[data.dec_user] >= 0
    pairs = old_to_new[data.pref_user] >= 0
    # Ties follow the users where they know theirs (loaded from the graph, not older exports).
    ties = old_to_new[data.tie_user] >= 0
    if len(data.tie_user) != len(data.tie_query):
        ties = np.ones(len(data.tie_query), dtype=bool)
    paired = len(data.tie_a) == len(data.tie_b) == len(data.tie_query)
    if not keep.any() and not pairs.any():
        raise ProuterError(f"no decision left in the subgraph {spec.as_dict()}")
    kept = data.with_decisions(keep)
    return dataclasses.replace(
        kept,
        user_ids=user_ids,
        user_alpha=data.user_alpha[old_to_new >= 0],
        dec_user=old_to_new[kept.dec_user],
        pref_user=old_to_new[data.pref_user[pairs]],
        pref_query=data.pref_query[pairs],
        pref_win=data.pref_win[pairs],
        pref_lose=data.pref_lose[pairs],
        tie_user=old_to_new[data.tie_user[ties]] if len(data.tie_user) else data.tie_user,
        tie_query=data.tie_query[ties],
        tie_a=data.tie_a[ties] if paired else data.tie_a[:0],
        tie_b=data.tie_b[ties] if paired else data.tie_b[:0],
    )


def _fingerprint(data: RoutingData, split: Split, spec: dict[str, object]) -> str:
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode())
    for ids in (data.query_ids, data.llm_ids, data.user_ids, data.task_ids):
        digest.update("\x1f".join(ids).encode() + b"\x1e")
    digest.update("\x1f".join(data.query_split.tolist()).encode())
    for array in (
        data.query_emb,
        data.llm_emb,
        data.performance,
        data.cost,
        data.llm_price,
        data.user_alpha,
        data.query_task,
        data.dec_user,
        data.dec_query,
        data.dec_llm,
        data.dec_reward,
        data.pref_user,
        data.pref_query,
        data.pref_win,
        data.pref_lose,
        data.tie_query,
        data.tie_user,  # no bytes without ties: the fingerprints of such exports are unchanged
        data.tie_a,
        data.tie_b,
        split.train,
        split.val,
        split.test,
    ):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def export_training_subgraph(
    store: GraphStore, directory: Path, spec: SubgraphSpec = SubgraphSpec()
) -> ExportedSubgraph:
    """Read the subgraph of ``spec`` from ``store``, split it and save it under ``directory``."""
    data = load_routing_data(store, tasks=list(spec.tasks) if spec.tasks else None)
    data = filter_decisions(store, data, spec)
    split = split_queries(data, seed=spec.seed)
    g = build_graph(data, split, k=spec.neighbours)
    g["query"].ids = list(data.query_ids)
    g["query"].split_label = data.query_split.tolist()
    g["query"].performance = torch.from_numpy(data.performance)
    g["query"].cost = torch.from_numpy(data.cost)
    g["llm"].ids = list(data.llm_ids)
    g["llm"].price = torch.from_numpy(data.llm_price)
    g["user"].ids = list(data.user_ids)
    g["user"].alpha = torch.from_numpy(data.user_alpha)
    g["task"].ids = list(data.task_ids)
    g.decisions = torch.from_numpy(np.stack([data.dec_user, data.dec_query, data.dec_llm]))
    g.decision_reward = torch.from_numpy(data.dec_reward)  # NaN where none was logged
    g.preferences = torch.from_numpy(
        np.stack([data.pref_user, data.pref_query, data.pref_win, data.pref_lose])
    )
    g.tie_queries = torch.from_numpy(data.tie_query)
    if len(data.tie_a) == len(data.tie_b) == len(data.tie_user) == len(data.tie_query):
        g.ties = torch.from_numpy(  # (user, query, one LLM, the other): the GNN trains on them
            np.stack([data.tie_user, data.tie_query, data.tie_a, data.tie_b]).astype(np.int64)
        )
    g.fingerprint = _fingerprint(data, split, spec.as_dict())
    g.spec = spec.as_dict()
    directory.mkdir(parents=True, exist_ok=True)
    path = _export_path(directory, g.fingerprint)
    if not path.exists():  # the name is the content's fingerprint: same file, same graph
        save_file(path, g, overwrite=True)
    counts = {
        "queries": len(data.query_ids),
        "llms": data.num_llms,
        "users": len(data.user_ids),
        "tasks": len(data.task_ids),
        "decisions": len(data.dec_user),
        "preferences": len(data.pref_user),
        "train_queries": int(split.train.sum()),
        "val_queries": int(split.val.sum()),
        "test_queries": int(split.test.sum()),
    }
    return ExportedSubgraph(path, g.fingerprint, counts)


def _export_path(directory: Path, fingerprint: str) -> Path:
    return directory / f"training-subgraph-{fingerprint[:16]}.pt"


def exported_messages(
    directory: Path, export: object, data: RoutingData, split: Split, k: int
) -> np.ndarray | None:
    """The neighbours' outcome messages saved in the export a checkpoint was trained on
    (``export``: the checkpoint's record of it, fingerprint and spec), when ``data`` and
    ``split`` are the graph it was exported from (the same fingerprint) and they were made
    with ``k`` neighbours; None otherwise (the caller searches). The file is looked up by
    its fingerprint in ``directory`` (never by a path read from the checkpoint)."""
    if not isinstance(export, dict) or not isinstance(export.get("spec"), dict):
        return None
    fingerprint, spec = export.get("fingerprint"), export["spec"]
    if not isinstance(fingerprint, str) or len(fingerprint) != 64 or spec.get("neighbours") != k:
        return None
    if set(fingerprint) - set("0123456789abcdef"):
        return None
    path = _export_path(Path(directory), fingerprint)
    if not path.is_file() or _fingerprint(data, split, spec) != fingerprint:
        return None
    try:
        g = load_file(path, safe_globals=_HETERO_DATA_CLASSES, mmap=True)
    except CheckpointError as exc:
        log.warning("the export's neighbour messages are not read (%s): searching again", exc)
        return None
    if not isinstance(g, HeteroData) or getattr(g, "fingerprint", None) != fingerprint:
        return None
    messages = getattr(g["query"], "neighbour_outcomes", None)
    if not isinstance(messages, torch.Tensor):
        return None
    return messages.numpy().copy()  # not the mapped file's pages


def load_training_subgraph(path: str | Path) -> TrainingSubgraph:
    """The graph, routing data and split saved by :func:`export_training_subgraph`."""
    g = load_file(Path(path), safe_globals=_HETERO_DATA_CLASSES)
    if not isinstance(g, HeteroData):
        raise ProuterError(f"{path} is not a training-subgraph export")
    q, m, u = g["query"], g["llm"], g["user"]
    dec, pref = g.decisions.numpy(), g.preferences.numpy()
    # Older exports kept only the ties' queries.
    ties = g.ties.numpy() if getattr(g, "ties", None) is not None else None
    data = RoutingData(
        query_ids=list(q.ids),
        query_task=q.task.numpy(),
        query_split=np.array(q.split_label, dtype=object),
        query_emb=q.x.numpy(),
        task_ids=list(g["task"].ids),
        llm_ids=list(m.ids),
        llm_emb=m.x.numpy(),
        llm_price=m.price.numpy(),
        performance=q.performance.numpy(),
        cost=q.cost.numpy(),
        user_ids=list(u.ids),
        user_alpha=u.alpha.numpy(),
        dec_user=dec[0],
        dec_query=dec[1],
        dec_llm=dec[2],
        dec_reward=g.decision_reward.numpy(),
        pref_user=pref[0],
        pref_query=pref[1],
        pref_win=pref[2],
        pref_lose=pref[3],
        tie_query=g.tie_queries.numpy(),
        **({"tie_user": ties[0], "tie_a": ties[2], "tie_b": ties[3]} if ties is not None else {}),
    )
    split = Split(train=q.train_mask.numpy(), val=q.val_mask.numpy(), test=q.test_mask.numpy())
    return TrainingSubgraph(g, data, split, g.fingerprint, dict(g.spec))
