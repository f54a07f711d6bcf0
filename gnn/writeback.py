"""Write a trained router's predictions and evaluations back into the graph.

* ``RouterModel {version, created_at, config, metrics}`` (JSON strings).
* ``(User)-[:ROUTED_TO {query_id, model_version, score, rank}]->(LLM)``: the k
  best-ranked candidate LLMs (all on request) of every evaluated (user, query), rank 1
  being the pick.
* ``(RouterModel)-[:EVALUATED {setting, shots, reward, performance, cost,
  accuracy, n}]->(User)``: per user, for each evaluation setting.

Versions never overwrite each other, so old predictions stay queryable.

:func:`write_back` commits the ROUTED_TO edges in batches of about
:data:`BATCH_ROWS` rows, each batch its own transaction (one transaction of millions
of rows needs gigabytes of memory on LadybugDB), and writes the RouterModel node
last, with its EVALUATED edges, in one more transaction. The RouterModel node is the
commit marker: everything that reads predictions or evaluations goes through it, so
a version becomes visible at once, complete. A write-back interrupted between
batches leaves ROUTED_TO edges of a version without a RouterModel node: no reader
sees them, a retry of the same version deletes them first (:func:`replace_predictions`)
and ``prouter models prune`` removes them. A write-back that fits one batch is a
single transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from typing import Any

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from gnn.data import RoutingData
from gnn.evaluate import metrics_by_user
from graphdb.store import GraphStore, WriteStats
from prcore.errors import StoreError
from prcore.values import finite_or_none

__all__ = [
    "BATCH_ROWS",
    "evaluation_rows",
    "is_recorded",
    "prediction_table",
    "record_version",
    "replace_predictions",
    "routed_count",
    "write_back",
    "write_evaluation",
    "write_predictions",
]

BATCH_ROWS = 200_000  # ROUTED_TO rows per transaction (each batch: about +1 GB on LadybugDB)


def prediction_table(
    data: RoutingData,
    version: str,
    users: np.ndarray,
    queries: np.ndarray,
    scores: np.ndarray,
    top_k: int | None = None,
) -> pa.Table:
    """ROUTED_TO rows: the ``top_k`` best-scored available candidates (all when None) of
    each (user, query), ranked by score (ties by LLM order), ordered by user."""
    available = data.candidates(queries)
    masked = np.where(available, scores, -np.inf)
    order = np.argsort(-masked, axis=1, kind="stable")
    rank = np.empty_like(order)
    rank[np.arange(len(order))[:, None], order] = np.arange(1, order.shape[1] + 1)
    if top_k is not None:
        available &= rank <= top_k
    pair, llm = np.nonzero(available)
    by_user = np.argsort(users[pair], kind="stable")  # a user's rows together, for batches
    pair, llm = pair[by_user], llm[by_user]
    user_ids = np.asarray(data.user_ids, dtype=object)
    llm_ids = np.asarray(data.llm_ids, dtype=object)
    query_ids = np.asarray(data.query_ids, dtype=object)
    return pa.table(
        {
            "src": user_ids[users[pair]],
            "dst": llm_ids[llm],
            "query_id": query_ids[queries[pair]],
            "model_version": np.full(len(pair), version, dtype=object),
            "score": scores[pair, llm].astype(float),
            "rank": rank[pair, llm].astype(np.int64),
        }
    )


def write_predictions(
    store: GraphStore, table: pa.Table, *, batch_rows: int | None = None
) -> WriteStats:
    """Write ROUTED_TO rows (see :func:`prediction_table`; ordered by user) in batches of
    about ``batch_rows`` (default :data:`BATCH_ROWS`) rows that never split a user, each
    its own transaction (joining the caller's, if one is open), so that both the
    transaction and the lookup of what is stored (every edge leaving the batch's users)
    stay bounded."""
    batch_rows = batch_rows or BATCH_ROWS
    src = table.column("src").to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(np.r_[True, src[1:] != src[:-1]]) if len(src) else np.zeros(0, int)
    bounds, begin = [], 0
    for start in [*starts[1:].tolist(), len(src)]:
        if start - begin >= batch_rows or start == len(src):
            bounds.append((begin, start))
            begin = start
    written = WriteStats()
    with tqdm(
        total=len(src),
        unit="rows",
        desc="write-back ROUTED_TO",
        leave=False,
        disable=None if len(bounds) > 1 else True,
    ) as bar:
        for begin, end in bounds:
            with store.transaction():
                written = written + store.write_edges("ROUTED_TO", table.slice(begin, end - begin))
            bar.update(end - begin)
    return written


def is_recorded(store: GraphStore, version: str) -> bool:
    """Whether ``version`` has its RouterModel node (its write-back finished)."""
    table = store.read(
        "MATCH (m:RouterModel) WHERE m.version = $version RETURN count(m) AS n",
        {"version": version},
    )
    return int(table.column("n")[0].as_py()) > 0


def routed_count(store: GraphStore, version: str) -> int:
    """How many ROUTED_TO edges carry ``version``."""
    table = store.read(
        "MATCH (:User)-[r:ROUTED_TO]->(:LLM) WHERE r.model_version = $version RETURN count(r) AS n",
        {"version": version},
    )
    return int(table.column("n")[0].as_py())


def replace_predictions(
    store: GraphStore,
    version: str,
    table: pa.Table,
    *,
    top_k: int | None,
    batch_rows: int | None = None,
) -> WriteStats:
    """Make the ROUTED_TO edges of ``version`` exactly ``table`` (its rows ranked up to
    ``top_k``; None: all), in batches (:func:`write_predictions`).

    A version without its RouterModel node can only hold what an interrupted
    write-back left: that is deleted first. A recorded version is upserted, then its
    edges ranked below ``top_k`` (left by an earlier write with a larger k) are deleted.
    """
    recorded = is_recorded(store, version)
    if not recorded and routed_count(store, version):
        store.delete_routed(version)
    written = write_predictions(store, table, batch_rows=batch_rows)
    if recorded and top_k is not None:
        store.delete_routed(version, above_rank=top_k)
    return written


def record_version(
    store: GraphStore,
    model: Mapping[str, Any],
    *,
    routed: int,
    evaluations: Sequence[Mapping[str, Any]] = (),
) -> dict[str, WriteStats]:
    """Write the RouterModel node ``model`` (the commit marker) and its EVALUATED
    ``evaluations`` in one transaction, once the graph holds at least the ``routed``
    ROUTED_TO edges of its version (more: ``prouter serve`` records served routes under
    the version it serves); else a :class:`StoreError`, and nothing is written."""
    version = str(model["version"])
    with store.transaction():
        found = routed_count(store, version)
        if found < routed:
            raise StoreError(
                f"the write-back of {version} is incomplete ({found} of {routed} ROUTED_TO "
                "edges in the graph; removed by a concurrent prune?): its RouterModel was "
                "not written; run the write-back again"
            )
        written = {"RouterModel": store.write_nodes("RouterModel", [dict(model)])}
        written["EVALUATED"] = (
            store.write_edges("EVALUATED", list(evaluations)) if evaluations else WriteStats()
        )
    return written


def write_back(
    store: GraphStore,
    model: Mapping[str, Any],
    predictions: pa.Table,
    evaluations: Sequence[Mapping[str, Any]] = (),
    *,
    top_k: int | None,
    batch_rows: int | None = None,
) -> dict[str, WriteStats]:
    """A model version's whole write-back: the ROUTED_TO ``predictions`` in batches
    (:func:`replace_predictions`), then the RouterModel node ``model`` with its EVALUATED
    ``evaluations`` (:func:`record_version`). One transaction when the predictions fit
    one batch. Idempotent: a re-run, also after an interruption, leaves the same graph."""
    batch_rows = batch_rows or BATCH_ROWS
    version = str(model["version"])
    small = predictions.num_rows <= batch_rows
    with store.transaction() if small else nullcontext():
        routed = replace_predictions(
            store, version, predictions, top_k=top_k, batch_rows=batch_rows
        )
        written = record_version(store, model, routed=predictions.num_rows, evaluations=evaluations)
    return {"ROUTED_TO": routed} | written


def evaluation_rows(
    data: RoutingData,
    version: str,
    idx: np.ndarray,
    picks: np.ndarray,
    *,
    setting: str,
    shots: int = 0,
) -> list[dict[str, Any]]:
    """EVALUATED rows: the metrics of ``picks`` per user, for one setting."""
    return [
        {
            "src": version,
            "dst": data.user_ids[u],
            "setting": setting,
            "shots": shots,
            "reward": finite_or_none(m.reward),
            "performance": finite_or_none(m.performance),  # NaN on votes-only queries
            "cost": finite_or_none(m.cost),
            "accuracy": m.accuracy,
            "n": m.n,
        }
        for u, m in metrics_by_user(data, idx, picks).items()
    ]


def write_evaluation(
    store: GraphStore,
    data: RoutingData,
    version: str,
    idx: np.ndarray,
    picks: np.ndarray,
    *,
    setting: str,
    shots: int = 0,
) -> WriteStats:
    """EVALUATED edges: the metrics of ``picks`` per user, for one setting (the version's
    RouterModel node must exist)."""
    rows = evaluation_rows(data, version, idx, picks, setting=setting, shots=shots)
    if not rows:  # no decisions to evaluate (a preference-only graph)
        return WriteStats()
    return store.write_edges("EVALUATED", rows)
