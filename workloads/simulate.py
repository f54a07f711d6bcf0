"""The paper's multi-cost-efficiency user simulation (its strategy 1).

User ``u`` has a weight ``alpha_u`` on quality. Its reward for LLM ``l`` on
query ``q`` is::

    reward(u, q, l) = alpha_u * performance(q, l) - (1 - alpha_u) * cost_norm(q, l)

where ``cost_norm`` is the cost min-max normalised over all outcomes of the
query's task (0 for the cheapest answer in the task, 1 for the dearest). Each
user "chooses" the LLM with the highest reward; exact ties go to the cheaper
LLM, then to the LLM id that sorts first. With ``noise > 0`` a user perceives
``performance + N(0, noise)`` (seeded per user) when choosing; the recorded
reward is always the noise-free reward of the chosen LLM. Everything is
reproducible from the seed.

The paper's setting is 9 users with alpha = 0.2, 0.3, ..., 1.0 (``alphas=
"grid"``); its later benchmark has 1,000 users, for which alphas can be drawn
from ``uniform`` or ``beta:A,B``.

:func:`simulate_preferences` makes the same users judge pairs instead of
choosing: shown two LLMs' answers to a query, a user prefers the one with the
higher (perceived) reward, or calls it a tie when the rewards are equal
(``PREFERRED {query_id, over, tie}`` edges).

Real logs hold an outcome only for the LLM a user was served. With
:func:`hide_unchosen_outcomes` (``simulate cost-efficiency --observed chosen``)
the graph keeps, on every query outside the data set's own test split, only the
outcomes of LLMs some user chose there (a query nobody decided on keeps none);
the test queries keep all their outcomes, since scoring any router's pick needs
them. No router reads test outcomes when it fits or scores (the leakage tests
check this), so the hidden outcomes exist nowhere a router learns from.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from graphdb.outcomes import outcome_matrices
from graphdb.store import GraphStore
from prcore.errors import ConfigError, ProuterError
from prcore.utility import best_llm, task_min_max, utility

__all__ = [
    "HiddenOutcomes",
    "Outcomes",
    "draw_alphas",
    "fixed_test_queries",
    "hide_unchosen_outcomes",
    "load_outcomes",
    "require_test_split",
    "simulate_cost_efficiency",
    "simulate_preferences",
    "unobserved_outcomes",
]


@dataclass(frozen=True)
class Outcomes:
    """Dense outcome matrices of the graph: queries x LLMs (NaN where no outcome)."""

    query_ids: list[str]
    task_ids: list[str]  # per query
    llm_ids: list[str]  # sorted
    performance: np.ndarray
    cost: np.ndarray

    @property
    def task_index(self) -> np.ndarray:
        _, index = np.unique(np.asarray(self.task_ids, dtype=object), return_inverse=True)
        return index


def load_outcomes(store: GraphStore) -> Outcomes:
    """Read every (query, task, LLM, performance, cost) outcome from the graph."""
    table = store.read(
        "MATCH (t:Task)<-[:OF_TASK]-(q:Query)-[a:ANSWERED_BY]->(l:LLM) "
        "RETURN q.id AS query_id, t.id AS task_id, l.id AS llm_id, "
        "a.performance AS performance, a.cost AS cost"
    )
    if table.num_rows == 0:
        raise ProuterError("the graph has no outcome (ANSWERED_BY) edges to simulate users on")
    query_ids = sorted(set(table.column("query_id").to_pylist()))
    llm_ids = sorted(set(table.column("llm_id").to_pylist()))
    task_of = dict(
        zip(table.column("query_id").to_pylist(), table.column("task_id").to_pylist(), strict=True)
    )
    tasks = [task_of[q] for q in query_ids]
    edges = table.rename_columns(["src", "task_id", "dst", "performance", "cost"])
    performance, cost = outcome_matrices(edges, query_ids, llm_ids)
    return Outcomes(query_ids, tasks, llm_ids, performance, cost)


def draw_alphas(n_users: int, alphas: str = "grid", seed: int = 0) -> np.ndarray:
    """User weights: ``grid`` (evenly 0.2..1.0, the paper's), ``uniform`` or ``beta:A,B``."""
    if n_users < 1:
        raise ConfigError(f"need at least one user, got {n_users}")
    rng = np.random.default_rng(seed)
    if alphas == "grid":
        return np.round(np.linspace(0.2, 1.0, n_users), 6) if n_users > 1 else np.array([0.6])
    if alphas == "uniform":
        return rng.uniform(0.0, 1.0, n_users)
    if alphas.startswith("beta:"):
        try:
            a, b = (float(x) for x in alphas[5:].split(","))
        except ValueError:
            raise ConfigError(f"bad alpha distribution {alphas!r}; write beta:A,B") from None
        return rng.beta(a, b, n_users)
    raise ConfigError(f"unknown alpha distribution {alphas!r}; valid: grid, uniform, beta:A,B")


def simulate_cost_efficiency(
    outcomes: Outcomes,
    *,
    n_users: int = 9,
    alphas: str = "grid",
    noise: float = 0.0,
    queries_per_user: int | None = None,
    seed: int = 0,
    user_prefix: str = "ce-user-",
) -> dict[str, pa.Table]:
    """Simulated users with their CHOSE decisions, as graph tables (User, ASKED, CHOSE).

    Each user sees every query, or ``queries_per_user`` drawn at random.
    """
    if noise < 0:
        raise ConfigError(f"noise must be >= 0, got {noise}")
    weights = draw_alphas(n_users, alphas, seed)
    width = len(str(n_users - 1))
    user_ids = [f"{user_prefix}{u:0{width}d}" for u in range(n_users)]
    perf, cost = outcomes.performance, outcomes.cost
    norm = task_min_max(cost, outcomes.task_index)
    rng = np.random.default_rng(seed + 1)
    n_queries = len(outcomes.query_ids)
    src, dst, qids, rewards = [], [], [], []
    qid_array = np.asarray(outcomes.query_ids, dtype=object)
    llm_array = np.asarray(outcomes.llm_ids, dtype=object)
    for u, alpha in enumerate(weights):
        if queries_per_user is None or queries_per_user >= n_queries:
            rows = np.arange(n_queries)
        else:
            rows = np.sort(rng.choice(n_queries, size=queries_per_user, replace=False))
        true = utility(alpha, perf[rows], norm[rows])
        seen = true
        if noise:
            perceived = perf[rows] + rng.normal(0, noise, perf[rows].shape)
            seen = utility(alpha, perceived, norm[rows])
            seen = np.where(np.isnan(true), np.nan, seen)
        choice = best_llm(seen, cost[rows])
        keep = ~np.isnan(true).all(axis=1)
        rows, choice = rows[keep], choice[keep]
        src.append(np.full(len(rows), user_ids[u], dtype=object))
        dst.append(llm_array[choice])
        qids.append(qid_array[rows])
        rewards.append(true[keep][np.arange(len(rows)), choice])
    users = pa.table({"id": user_ids, "alpha": weights.astype(float)})
    asked = pa.table({"src": np.concatenate(src), "dst": np.concatenate(qids)})
    chose = pa.table(
        {
            "src": np.concatenate(src),
            "dst": np.concatenate(dst),
            "query_id": np.concatenate(qids),
            "reward": np.concatenate(rewards).astype(float),
        }
    )
    return {"User": users, "ASKED": asked, "CHOSE": chose}


def simulate_preferences(
    outcomes: Outcomes,
    *,
    n_users: int = 9,
    alphas: str = "grid",
    pairs_per_query: int = 2,
    noise: float = 0.0,
    queries_per_user: int | None = None,
    seed: int = 0,
    user_prefix: str = "pref-user-",
) -> dict[str, pa.Table]:
    """Simulated users' pairwise judgements, as graph tables (User, ASKED, PREFERRED).

    For each query a user sees, ``pairs_per_query`` random pairs of LLMs with an
    outcome are judged by the user's reward (perceived with ``noise`` like
    :func:`simulate_cost_efficiency`); equal rewards are ties.
    """
    if noise < 0 or pairs_per_query < 1:
        raise ConfigError("noise must be >= 0 and pairs_per_query >= 1")
    weights = draw_alphas(n_users, alphas, seed)
    width = len(str(n_users - 1))
    user_ids = [f"{user_prefix}{u:0{width}d}" for u in range(n_users)]
    perf, norm = outcomes.performance, task_min_max(outcomes.cost, outcomes.task_index)
    rng = np.random.default_rng(seed + 2)
    n_queries = len(outcomes.query_ids)
    llm_array = np.asarray(outcomes.llm_ids, dtype=object)
    qid_array = np.asarray(outcomes.query_ids, dtype=object)
    asked_src, asked_dst = [], []
    src, dst, over, qids, ties = [], [], [], [], []
    for u, alpha in enumerate(weights):
        rows = np.arange(n_queries)
        if queries_per_user is not None and queries_per_user < n_queries:
            rows = np.sort(rng.choice(n_queries, size=queries_per_user, replace=False))
        for q in rows:
            candidates = np.flatnonzero(~np.isnan(perf[q]))
            if len(candidates) < 2:
                continue
            p = perf[q] + (rng.normal(0, noise, perf.shape[1]) if noise else 0.0)
            reward = utility(alpha, p, norm[q])
            asked_src.append(user_ids[u])
            asked_dst.append(qid_array[q])
            seen: set[tuple[int, int]] = set()
            for _ in range(pairs_per_query):
                a, b = sorted(rng.choice(candidates, 2, replace=False).tolist())
                if (a, b) in seen:
                    continue
                seen.add((a, b))
                tie = bool(np.isclose(reward[a], reward[b], rtol=0, atol=1e-12))
                win, lose = (a, b) if tie or reward[a] > reward[b] else (b, a)
                src.append(user_ids[u])
                dst.append(llm_array[win])
                over.append(llm_array[lose])
                qids.append(qid_array[q])
                ties.append(tie)
    return {
        "User": pa.table({"id": user_ids, "alpha": weights.astype(float)}),
        "ASKED": pa.table({"src": asked_src, "dst": asked_dst}),
        "PREFERRED": pa.table(
            {"src": src, "dst": dst, "query_id": qids, "over": over, "tie": ties}
        ),
    }


@dataclass(frozen=True)
class HiddenOutcomes:
    """What :func:`hide_unchosen_outcomes` did."""

    removed: int  # ANSWERED_BY edges deleted
    test_queries: int  # queries that kept all their outcomes


def fixed_test_queries(store: GraphStore) -> set[str]:
    """Ids of the queries in the data set's own test split (``Query.split == "test"``)."""
    table = store.export_nodes("Query", ["split"])
    return {
        q
        for q, s in zip(
            table.column("id").to_pylist(), table.column("split").to_pylist(), strict=True
        )
        if s == "test"
    }


def require_test_split(test_queries: set[str]) -> None:
    """Refuse outcomes observed only where chosen without a fixed test split."""
    if not test_queries:
        raise ConfigError(
            "outcomes observed only where chosen need the data set's own test split "
            "(queries with split 'test'), whose outcomes stay complete to score routers"
        )


def unobserved_outcomes(
    outcomes: Outcomes, chosen: Iterable[tuple[str, str]], test_queries: set[str]
) -> list[tuple[str, str]]:
    """The (query, LLM) outcomes real logs would not hold: on queries outside
    ``test_queries``, every outcome of an LLM that no (query, LLM) pair in ``chosen``
    names. Sorted by query, then LLM."""
    require_test_split(test_queries)
    seen = set(chosen)
    known = ~np.isnan(outcomes.performance)
    return [
        (q, outcomes.llm_ids[m])
        for i, q in enumerate(outcomes.query_ids)
        if q not in test_queries
        for m in np.flatnonzero(known[i])
        if (q, outcomes.llm_ids[m]) not in seen
    ]


def hide_unchosen_outcomes(
    store: GraphStore, outcomes: Outcomes, test_queries: set[str]
) -> HiddenOutcomes:
    """Delete the outcomes no user chose (every CHOSE edge in the graph counts) outside
    the test split; see the module docstring."""
    chose = store.export_edges("CHOSE", ["query_id"])
    chosen = zip(chose.column("query_id").to_pylist(), chose.column("dst").to_pylist(), strict=True)
    hidden = unobserved_outcomes(outcomes, chosen, test_queries)
    removed = store.delete_outcomes(hidden)
    kept = len(test_queries & set(outcomes.query_ids))
    return HiddenOutcomes(removed=removed, test_queries=kept)
