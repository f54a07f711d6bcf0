"""Simulated voters whose quality-vs-cost trade-off differs per task, and
preference-only graphs built from their votes.

User ``u`` has a weight ``alpha[u, t] = sigmoid(logit(centre) + spread * z[u, t])``
on quality in task ``t`` (``z ~ N(0, 1)``): with a large ``spread`` one user is
quality-first on code and cost-first on commonsense, another the reverse; with
a small one everybody is about the same. Shown two LLMs' answers to a query, a
user prefers the one with the higher perceived reward
``alpha * (performance + N(0, noise)) - (1 - alpha) * cost_norm`` (cost min-max
normalised per task, as in :mod:`workloads.simulate`); rewards within
``tie_margin`` of each other (default: equal) are ties.
Votes carry increasing timestamps (``ts``). The outcomes are only used to
simulate: :func:`preference_only_tables` keeps the graph's queries, tasks and
LLMs and the votes, and no ``ANSWERED_BY``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa

from graphdb.store import GraphStore
from prcore.errors import ConfigError
from prcore.utility import task_min_max, utility
from workloads.simulate import Outcomes

__all__ = ["preference_only_tables", "simulate_task_preferences"]


def simulate_task_preferences(
    outcomes: Outcomes,
    *,
    n_users: int = 30,
    spread: float = 2.0,
    centre: float = 0.7,
    pairs_per_query: int = 2,
    queries_per_user: int | None = 300,
    noise: float = 0.1,
    seed: int = 0,
    user_prefix: str = "voter-",
    tie_margin: float = 0.0,
) -> dict[str, pa.Table]:
    """Votes of ``n_users`` simulated users (see the module docstring) as graph tables
    (User, ASKED, PREFERRED with ``ts``)."""
    if min(spread, noise, tie_margin) < 0 or pairs_per_query < 1 or not 0 < centre < 1:
        raise ConfigError(
            "spread, noise and tie_margin must be >= 0, pairs_per_query >= 1, 0 < centre < 1"
        )
    if n_users < 1:
        raise ConfigError(f"need at least one voter, got {n_users}")
    rng = np.random.default_rng(seed)
    tasks = outcomes.task_index
    z = rng.normal(size=(n_users, int(tasks.max()) + 1))
    alpha = 1 / (1 + np.exp(-(np.log(centre / (1 - centre)) + spread * z)))
    perf, norm = outcomes.performance, task_min_max(outcomes.cost, tasks)
    width = len(str(n_users - 1))
    user_ids = [f"{user_prefix}{u:0{width}d}" for u in range(n_users)]
    llms = np.asarray(outcomes.llm_ids, dtype=object)
    qids = np.asarray(outcomes.query_ids, dtype=object)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    asked: list[tuple[str, str]] = []
    rows: list[tuple[str, str, str, str, bool, str]] = []
    for u in range(n_users):
        queries = np.arange(len(qids))
        if queries_per_user is not None and queries_per_user < len(qids):
            queries = np.sort(rng.choice(len(qids), queries_per_user, replace=False))
        for q in queries:
            candidates = np.flatnonzero(~np.isnan(perf[q]))
            if len(candidates) < 2:
                continue
            a_ut = alpha[u, tasks[q]]
            seen = perf[q] + rng.normal(0, noise, perf.shape[1]) if noise else perf[q]
            reward = utility(a_ut, seen, norm[q])
            asked.append((user_ids[u], qids[q]))
            pairs = {
                tuple(sorted(rng.choice(candidates, 2, replace=False).tolist()))
                for _ in range(pairs_per_query)
            }
            for a, b in sorted(pairs):
                tie = bool(abs(reward[a] - reward[b]) <= max(tie_margin, 1e-12))
                win, lose = (a, b) if tie or reward[a] > reward[b] else (b, a)
                ts = (start + timedelta(minutes=len(rows))).isoformat().replace("+00:00", "Z")
                rows.append((user_ids[u], llms[win], qids[q], llms[lose], tie, ts))
    src, dst, query_id, over, tie, ts = (list(c) for c in zip(*rows, strict=True))
    return {
        "User": pa.table({"id": user_ids}),
        "ASKED": pa.table({"src": [a for a, _ in asked], "dst": [q for _, q in asked]}),
        "PREFERRED": pa.table(
            {"src": src, "dst": dst, "query_id": query_id, "over": over, "tie": tie, "ts": ts}
        ),
    }


def preference_only_tables(store: GraphStore) -> dict[str, pa.Table]:
    """The graph's Task, Query (with embeddings), LLM and OF_TASK tables: a graph to add
    votes to, without any outcome."""
    return {
        "Task": store.export_nodes("Task"),
        "LLM": store.export_nodes("LLM"),
        "Query": store.export_nodes("Query"),
        "OF_TASK": store.export_edges("OF_TASK", []),
    }
