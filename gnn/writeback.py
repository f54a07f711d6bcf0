"""Write a trained router's predictions and evaluations back into the graph.

* ``RouterModel {version, created_at, config, metrics}`` (JSON strings).
* ``(User)-[:ROUTED_TO {query_id, model_version, score, rank}]->(LLM)``: every
  candidate LLM of every evaluated (user, query), rank 1 being the pick.
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

__all__ = ["prediction_table", "write_evaluation", "write_predictions"]


def prediction_table(
    data: RoutingData, version: str, users: np.ndarray, queries: np.ndarray, scores: np.ndarray
) -> pa.Table:
    """ROUTED_TO rows: every available candidate of each (user, query), ranked by score."""
    available = data.candidates(queries)
    masked = np.where(available, scores, -np.inf)
    order = np.argsort(-masked, axis=1, kind="stable")
    rank = np.empty_like(order)
    rank[np.arange(len(order))[:, None], order] = np.arange(1, order.shape[1] + 1)
    pair, llm = np.nonzero(available)
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


def write_predictions(store: GraphStore, table: pa.Table) -> WriteStats:
    """Write ROUTED_TO rows (see :func:`prediction_table`)."""
    return store.write_edges("ROUTED_TO", table)


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
                "reward": _finite(m.reward),
                "performance": _finite(m.performance),  # NaN on votes-only queries
                "cost": _finite(m.cost),
                "accuracy": m.accuracy,
                "n": m.n,
            }
        )
    if not rows:  # no decisions to evaluate (a preference-only graph)
        return WriteStats()
    return store.write_edges("EVALUATED", rows)


def _finite(value: float) -> float | None:
    return None if np.isnan(value) else value
