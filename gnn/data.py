"""Routing data as arrays, read from the graph with array exports (no per-row loops).

:class:`RoutingData` holds everything a router needs: query, task and LLM
features, the dense outcome matrices (queries x LLMs), the users and their
decisions (one chosen LLM per user and query, with the reward the user
logged for it where there is one). :func:`load_routing_data`
builds it from any :class:`graphdb.store.GraphStore`; :func:`split_queries`
makes the seeded train / validation / test split by query.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pyarrow as pa

from gnn.cost_completion import complete_costs
from graphdb.outcomes import outcome_matrices
from graphdb.store import GraphStore
from prcore.errors import ProuterError
from prcore.utility import normalise_cost, task_cost_range, utility

__all__ = ["RoutingData", "Split", "load_routing_data", "split_queries"]


def _embeddings(table: pa.Table, n: int) -> np.ndarray | None:
    column = table.column("embedding")
    if column.null_count == n:
        return None
    if column.null_count:
        raise ProuterError(
            f"{column.null_count} of {n} nodes have no embedding: run `prouter embed` first"
        )
    flat = np.asarray(column.combine_chunks().flatten(), dtype=np.float32)
    return flat.reshape(n, -1)


def _index(ids: Sequence[str]) -> dict[str, int]:
    return {value: i for i, value in enumerate(ids)}


@dataclass
class RoutingData:
    """Arrays of one routing graph. Missing outcomes are NaN."""

    query_ids: list[str]
    query_task: np.ndarray  # (Q,) task index
    query_split: np.ndarray  # (Q,) dataset split label or "" (object array)
    query_emb: np.ndarray  # (Q, D)
    task_ids: list[str]
    llm_ids: list[str]
    llm_emb: np.ndarray  # (L, D)
    llm_price: np.ndarray  # (L, 2) input / output USD per 1M tokens, NaN unknown
    performance: np.ndarray  # (Q, L)
    cost: np.ndarray  # (Q, L)
    user_ids: list[str]
    user_alpha: np.ndarray  # (U,) NaN when not a simulated user
    dec_user: np.ndarray  # (N,) one decision per (user, query)
    dec_query: np.ndarray
    dec_llm: np.ndarray
    # The reward each decision's user logged for it (CHOSE.reward; NaN where none was logged).
    # Empty means none logged at all; it is then filled with NaN.
    dec_reward: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # Non-tie pairwise judgements: user preferred pref_win over pref_lose on pref_query.
    pref_user: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    pref_query: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    pref_win: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    pref_lose: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    tie_query: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # ties
    tie_user: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # their users
    # The two LLMs of each tie (same order as tie_query; empty where not kept, e.g. exports).
    tie_a: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    tie_b: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    meta: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.dec_reward) == 0:
            self.dec_reward = np.full(len(self.dec_user), np.nan)
        if len(self.dec_reward) != len(self.dec_user):
            raise ValueError(
                f"{len(self.dec_reward)} decision rewards for {len(self.dec_user)} decisions"
            )

    @property
    def num_llms(self) -> int:
        return len(self.llm_ids)

    def candidates(self, queries: np.ndarray | slice = slice(None)) -> np.ndarray:
        """(Q, L) the LLMs a router may pick for each query: those with an outcome, or
        every LLM where the query has none (votes-only queries)."""
        known = ~np.isnan(self.performance[queries])
        return known | ~known.any(axis=1, keepdims=True)

    def completed_cost(self, reference: np.ndarray | None = None) -> np.ndarray:
        """(Q, L) the logged costs, and on partially logged queries (logs hold the served
        LLM's answer only) the unlogged ones estimated from the LLMs' rates on the
        ``reference`` queries (:func:`gnn.cost_completion.complete_costs`)."""
        return complete_costs(self.cost, self.query_task, reference)

    def cost_range(self, reference: np.ndarray | None = None) -> np.ndarray:
        """(T, 2) each task's min and max (completed) cost over ``reference`` queries
        (default: all)."""
        return self._cost_range(self.completed_cost(reference), reference)

    def cost_norm(self, reference: np.ndarray | None = None) -> np.ndarray:
        """Costs (completed: :meth:`completed_cost`) min-max normalised within each task
        (as the user simulation does).

        With a ``reference`` query mask, each task's min and max come from those
        queries only (a router must not learn its scale from test costs).
        """
        cost = self.completed_cost(reference)
        return normalise_cost(cost, self.query_task, self._cost_range(cost, reference))

    def _cost_range(self, cost: np.ndarray, reference: np.ndarray | None) -> np.ndarray:
        return task_cost_range(cost, self.query_task, len(self.task_ids), reference)

    def with_decisions(self, keep: np.ndarray) -> RoutingData:
        """A copy with only the decisions in ``keep`` (a mask or indices)."""
        return replace(
            self,
            dec_user=self.dec_user[keep],
            dec_query=self.dec_query[keep],
            dec_llm=self.dec_llm[keep],
            dec_reward=self.dec_reward[keep],
        )

    def reward(self, users: np.ndarray, queries: np.ndarray) -> np.ndarray:
        """(N, L) reward of every LLM for each (user, query) under the user's own alpha, with
        the logged costs normalised by the logged ranges (the simulation's scale; no
        estimated cost enters a score)."""
        alpha = self.user_alpha[users][:, None]
        ranges = self._cost_range(self.cost, None)
        cost = normalise_cost(self.cost[queries], self.query_task[queries], ranges)
        return utility(alpha, self.performance[queries], cost)


def _preferences(
    store: GraphStore, users: dict[str, int], queries: dict[str, int], llms: dict[str, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct non-tie judgements (user, query, winner, loser) of the loaded queries,
    and the (user, query, LLM, other LLM) of the tie judgements."""
    table = store.export_edges("PREFERRED", ["query_id", "over", "tie"]).to_pydict()
    pairs, ties = set(), []
    for u, w, q, lose, tie in zip(
        *(table[k] for k in ("src", "dst", "query_id", "over", "tie")), strict=True
    ):
        if q not in queries or w not in llms or lose not in llms or w == lose:
            continue
        if tie:
            ties.append((users[u], queries[q], llms[w], llms[lose]))
        else:
            pairs.add((users[u], queries[q], llms[w], llms[lose]))
    ordered = np.array(sorted(pairs), dtype=np.int64).reshape(-1, 4)
    return ordered, np.array(ties, dtype=np.int64).reshape(-1, 4)


def load_routing_data(store: GraphStore, *, tasks: Sequence[str] | None = None) -> RoutingData:
    """Read a routing graph from ``store`` (optionally only some tasks)."""
    q_table = store.export_nodes("Query", ["split", "embedding"])
    of_task = store.export_edges("OF_TASK", [])
    task_of = dict(
        zip(of_task.column("src").to_pylist(), of_task.column("dst").to_pylist(), strict=True)
    )
    outcomes = store.export_edges("ANSWERED_BY", ["performance", "cost"])
    chose = store.export_edges("CHOSE", ["query_id", "reward"])
    # A query is routing data when it has outcomes or users' decisions / judgements on it
    # (preference-only graphs have no ANSWERED_BY at all; their outcomes stay NaN).
    informed = set(outcomes.column("src").to_pylist()) | set(chose.column("query_id").to_pylist())
    informed |= set(store.export_edges("PREFERRED", ["query_id"]).column("query_id").to_pylist())
    keep = [
        i
        for i, q in enumerate(q_table.column("id").to_pylist())
        if q in informed and q in task_of and (tasks is None or task_of[q] in tasks)
    ]
    q_table = q_table.take(pa.array(keep, type=pa.int64()))  # typed: keep may be empty
    query_ids = q_table.column("id").to_pylist()
    if not query_ids:
        raise ProuterError(
            "no query with outcomes (ANSWERED_BY), decisions (CHOSE) or judgements "
            "(PREFERRED) in the graph" + (f" for tasks {list(tasks)}" if tasks else "")
        )
    query_emb = _embeddings(q_table, len(query_ids))
    if query_emb is None:
        raise ProuterError("queries have no embeddings: run `prouter embed` first")
    task_ids = sorted({task_of[q] for q in query_ids})
    t_index = _index(task_ids)
    l_table = store.export_nodes("LLM", ["input_price", "output_price", "embedding"])
    llm_ids = l_table.column("id").to_pylist()
    llm_emb = _embeddings(l_table, len(llm_ids))
    if llm_emb is None:  # no descriptions: one-hot identities
        llm_emb = np.eye(len(llm_ids), dtype=np.float32)
    q_index, l_index = _index(query_ids), _index(llm_ids)
    performance, cost = outcome_matrices(outcomes, query_ids, llm_ids)

    u_table = store.export_nodes("User", ["alpha"])
    user_ids = u_table.column("id").to_pylist()
    u_index = _index(user_ids)
    logged = chose.column("reward").to_numpy(zero_copy_only=False).astype(float)
    dec, dec_reward = [], []
    for u, m, q, r in zip(
        chose.column("src").to_pylist(),
        chose.column("dst").to_pylist(),
        chose.column("query_id").to_pylist(),
        logged,
        strict=True,
    ):
        if q in q_index:
            dec.append((u_index[u], q_index[q], l_index[m]))
            dec_reward.append(r)
    dec_arr = np.array(dec, dtype=np.int64).reshape(-1, 3)
    # One decision per (user, query): keep the first if a log has several.
    _, first = np.unique(dec_arr[:, :2], axis=0, return_index=True)
    first = np.sort(first)
    dec_arr = dec_arr[first]
    pairs, tied = _preferences(store, u_index, q_index, l_index)
    return RoutingData(
        query_ids=query_ids,
        query_task=np.array([t_index[task_of[q]] for q in query_ids], dtype=np.int64),
        query_split=np.array([s or "" for s in q_table.column("split").to_pylist()], dtype=object),
        query_emb=query_emb,
        task_ids=task_ids,
        llm_ids=llm_ids,
        llm_emb=llm_emb,
        llm_price=np.stack(
            [
                l_table.column("input_price").to_numpy(zero_copy_only=False).astype(float),
                l_table.column("output_price").to_numpy(zero_copy_only=False).astype(float),
            ],
            axis=1,
        ),
        performance=performance,
        cost=cost,
        user_ids=user_ids,
        user_alpha=u_table.column("alpha").to_numpy(zero_copy_only=False).astype(float),
        dec_user=dec_arr[:, 0],
        dec_query=dec_arr[:, 1],
        dec_llm=dec_arr[:, 2],
        dec_reward=np.asarray(dec_reward, dtype=float)[first],
        pref_user=pairs[:, 0],
        pref_query=pairs[:, 1],
        pref_win=pairs[:, 2],
        pref_lose=pairs[:, 3],
        tie_query=tied[:, 1],
        tie_user=tied[:, 0],
        tie_a=tied[:, 2],
        tie_b=tied[:, 3],
        meta={"duplicate_decisions_dropped": len(dec) - len(dec_arr)},
    )


@dataclass(frozen=True)
class Split:
    """Boolean masks over queries; a query is in exactly one of them."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def of(self, name: str) -> np.ndarray:
        return {"train": self.train, "val": self.val, "test": self.test}[name]


def split_queries(
    data: RoutingData, *, seed: int = 0, val_fraction: float = 0.1, test_fraction: float = 0.2
) -> Split:
    """Seeded split by query.

    When the data set has its own test split (``Query.split == "test"``) it is
    kept as the test set, and validation queries are drawn from the rest;
    otherwise ``test_fraction`` of the queries are drawn for testing. The draw
    is stratified by task so every task appears in every part.
    """
    rng = np.random.default_rng(seed)
    n = len(data.query_ids)
    has_test = bool((data.query_split == "test").any())
    test = data.query_split == "test" if has_test else np.zeros(n, dtype=bool)
    val = np.zeros(n, dtype=bool)
    for t in np.unique(data.query_task):
        pool = np.flatnonzero((data.query_task == t) & ~test)
        rng.shuffle(pool)
        if not has_test:
            n_test = round(test_fraction * len(pool))
            test[pool[:n_test]] = True
            pool = pool[n_test:]
        val[pool[: round(val_fraction * len(pool))]] = True
    return Split(train=~(val | test), val=val, test=test)
