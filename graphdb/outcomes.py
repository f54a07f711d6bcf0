"""Outcome facts (``ANSWERED_BY``) as dense query x LLM matrices."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

__all__ = ["outcome_matrices"]


def outcome_matrices(
    edges: pa.Table, query_ids: Sequence[str], llm_ids: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """(Q, L) performance and cost from ANSWERED_BY rows (``src`` query, ``dst`` LLM,
    ``performance``, ``cost``); NaN where there is no outcome. Rows whose query or LLM
    is not listed are ignored."""
    q_index = {q: i for i, q in enumerate(query_ids)}
    l_index = {m: i for i, m in enumerate(llm_ids)}
    rows = np.fromiter((q_index.get(q, -1) for q in edges.column("src").to_pylist()), np.int64)
    cols = np.fromiter((l_index.get(m, -1) for m in edges.column("dst").to_pylist()), np.int64)
    ok = (rows >= 0) & (cols >= 0)
    performance = np.full((len(query_ids), len(llm_ids)), np.nan)
    cost = np.full_like(performance, np.nan)
    for matrix, name in ((performance, "performance"), (cost, "cost")):
        values = edges.column(name).to_numpy(zero_copy_only=False).astype(float)
        matrix[rows[ok], cols[ok]] = values[ok]
    return performance, cost
