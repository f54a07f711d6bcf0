"""Write a trained router's predictions and evaluations back into the graph.

* ``RouterModel {version, created_at, config, metrics}`` (JSON strings).
* ``(User)-[:ROUTED_TO {query_id, model_version, score, rank}]->(LLM)``: the k
  best-ranked candidate LLMs (all on request) of every evaluated (user, query), rank 1
  being the pick.
* ``(RouterModel)-[:EVALUATED {setting, shots, reward, performance, cost,
  accuracy, n}]->(User)``: per user, for each evaluation setting.

Versions never overwrite each other, so old predictions stay queryable.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from gnn.data import RoutingData
from gnn.evaluate import metrics_by_user
from graphdb.store import GraphStore, WriteStats
from prcore.values import finite_or_none

__all__ = ["BATCH_ROWS", "prediction_table", "write_evaluation", "write_predictions"]

BATCH_ROWS = 200_000  # ROUTED_TO rows per write_edges call


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
    store: GraphStore, table: pa.Table, *, batch_rows: int = BATCH_ROWS
) -> WriteStats:
    """Write ROUTED_TO rows (see :func:`prediction_table`; ordered by user) in batches of
    about ``batch_rows`` rows that never split a user, so that the lookup of what is
    stored (every edge leaving the batch's users) stays bounded too."""
    src = table.column("src").to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(np.r_[True, src[1:] != src[:-1]]) if len(src) else np.zeros(0, int)
    written = WriteStats()
    begin = 0
    with store.transaction():
        for start in [*starts[1:].tolist(), len(src)]:
            if start - begin >= batch_rows or start == len(src):
                written = written + store.write_edges(
                    "ROUTED_TO", table.slice(begin, start - begin)
                )
                begin = start
    return written


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
    """EVALUATED edges: the metrics of ``picks`` per user, for one setting."""
    rows = []
    for u, m in metrics_by_user(data, idx, picks).items():
        rows.append(
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
        )
    if not rows:  # no decisions to evaluate (a preference-only graph)
        return WriteStats()
    return store.write_edges("EVALUATED", rows)
