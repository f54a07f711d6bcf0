"""A seeded synthetic routing workload with realistic structure.

LLMs differ in size: larger ones are more skilful and more expensive, and each
has task-specific strengths. Queries belong to tasks and vary in difficulty and
length. Users differ in how much they weigh quality against cost (``alpha``) and
in which tasks they ask about. Each user's decision is the LLM with the best
reward ``alpha * performance - (1 - alpha) * normalised_cost`` (cost min-max
normalised within the task; ties go to the cheaper LLM). Everything is
reproducible from the seed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa

from graphdb.tables import embedding_array
from prcore.utility import best_llm, task_min_max, utility

__all__ = ["SyntheticWorkload", "generate"]

_TASKS = {
    "math": (
        "Grade-school math word problems with a numeric answer.",
        ["apples", "trains", "percent", "sum", "ratio", "area", "speed", "coins"],
    ),
    "code": (
        "Short Python programming tasks checked by unit tests.",
        ["list", "string", "sort", "regex", "class", "recursion", "dict", "file"],
    ),
    "qa": (
        "Reading-comprehension questions answered from a passage.",
        ["history", "river", "city", "author", "planet", "treaty", "species", "war"],
    ),
    "summarize": (
        "Summarise several news articles into one paragraph.",
        ["election", "market", "storm", "trial", "league", "merger", "vaccine", "strike"],
    ),
    "commonsense": (
        "Pick the sensible completion of an everyday sentence.",
        ["kitchen", "garden", "school", "office", "weather", "sport", "travel", "music"],
    ),
}
_FAMILIES = [
    "atlas",
    "birch",
    "cedar",
    "delta",
    "ember",
    "fjord",
    "gale",
    "harbor",
    "iris",
    "juniper",
]


@dataclass(frozen=True)
class SyntheticWorkload:
    """Arrays describing one generated workload (see :func:`generate`)."""

    seed: int
    task_ids: list[str]
    task_descriptions: list[str]
    llm_ids: list[str]
    llm_descriptions: list[str]
    llm_price: np.ndarray  # (n_llms,) USD per 1M tokens, input = output
    query_ids: list[str]
    query_texts: list[str]
    query_task: np.ndarray  # (n_queries,) task index
    query_split: list[str]
    performance: np.ndarray  # (n_queries, n_llms)
    cost: np.ndarray  # (n_queries, n_llms) USD
    input_tokens: np.ndarray  # (n_queries,)
    output_tokens: np.ndarray  # (n_queries, n_llms)
    user_ids: list[str]
    user_alpha: np.ndarray  # (n_users,)
    asked_user: np.ndarray  # (n_asked,) user index
    asked_query: np.ndarray  # (n_asked,) query index
    asked_at: list[str]
    chosen_llm: np.ndarray  # (n_asked,) llm index
    chosen_reward: np.ndarray  # (n_asked,)

    def records(self) -> list[dict[str, Any]]:
        """The workload as canonical interaction records (outcomes, then decisions)."""
        return list(self.iter_records())

    def iter_records(self) -> Iterator[dict[str, Any]]:
        """:meth:`records` one at a time (a large workload never held as dicts at once)."""
        for q, qid in enumerate(self.query_ids):
            t = int(self.query_task[q])
            for m, mid in enumerate(self.llm_ids):
                record = {
                    "task_id": self.task_ids[t],
                    "query_id": qid,
                    "llm_id": mid,
                    "performance": float(self.performance[q, m]),
                    "cost": float(self.cost[q, m]),
                    "input_tokens": int(self.input_tokens[q]),
                    "output_tokens": int(self.output_tokens[q, m]),
                }
                if m == 0:
                    record |= {
                        "query_text": self.query_texts[q],
                        "split": self.query_split[q],
                        "task_description": self.task_descriptions[t],
                    }
                if q == 0:
                    record |= {
                        "llm_description": self.llm_descriptions[m],
                        "llm_input_price": float(self.llm_price[m]),
                        "llm_output_price": float(self.llm_price[m]),
                    }
                yield record
        for i in range(len(self.asked_user)):
            u, q, m = int(self.asked_user[i]), int(self.asked_query[i]), int(self.chosen_llm[i])
            yield {
                "task_id": self.task_ids[int(self.query_task[q])],
                "query_id": self.query_ids[q],
                "user_id": self.user_ids[u],
                "user_alpha": float(self.user_alpha[u]),
                "llm_id": self.llm_ids[m],
                "decision": "chose",
                "reward": float(self.chosen_reward[i]),
                "timestamp": self.asked_at[i],
            }

    def query_embeddings(self, dim: int = 384) -> np.ndarray:
        """Stand-in query embeddings with task clusters (for load tests without a model)."""
        rng = np.random.default_rng(self.seed + 1)
        centroids = rng.normal(size=(len(self.task_ids), dim))
        emb = centroids[self.query_task] + 0.6 * rng.normal(size=(len(self.query_ids), dim))
        return (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float32)

    def tables(self, *, embedding_dim: int | None = None) -> dict[str, pa.Table]:
        """The workload as graph tables, built with array operations (for bulk loads)."""
        nq, nl = self.performance.shape
        tables = {
            "Task": pa.table({"id": self.task_ids, "description": self.task_descriptions}),
            "LLM": pa.table(
                {
                    "id": self.llm_ids,
                    "description": self.llm_descriptions,
                    "input_price": self.llm_price,
                    "output_price": self.llm_price,
                }
            ),
            "User": pa.table({"id": self.user_ids, "alpha": self.user_alpha}),
        }
        query = {"id": self.query_ids, "text": self.query_texts, "split": self.query_split}
        if embedding_dim:
            query["embedding"] = embedding_array(self.query_embeddings(embedding_dim))
        tables["Query"] = pa.table(query)
        qids = np.asarray(self.query_ids, dtype=object)
        lids = np.asarray(self.llm_ids, dtype=object)
        uids = np.asarray(self.user_ids, dtype=object)
        tables["OF_TASK"] = pa.table(
            {"src": self.query_ids, "dst": np.asarray(self.task_ids, dtype=object)[self.query_task]}
        )
        tables["ANSWERED_BY"] = pa.table(
            {
                "src": np.repeat(qids, nl),
                "dst": np.tile(lids, nq),
                "performance": self.performance.ravel(),
                "cost": self.cost.ravel(),
                "input_tokens": np.repeat(self.input_tokens, nl),
                "output_tokens": self.output_tokens.ravel(),
            }
        )
        tables["ASKED"] = pa.table(
            {"src": uids[self.asked_user], "dst": qids[self.asked_query], "ts": self.asked_at}
        )
        tables["CHOSE"] = pa.table(
            {
                "src": uids[self.asked_user],
                "dst": lids[self.chosen_llm],
                "query_id": qids[self.asked_query],
                "reward": self.chosen_reward,
                "ts": self.asked_at,
            }
        )
        return tables


def generate(
    *,
    n_queries: int = 2_000,
    n_llms: int = 10,
    n_users: int = 9,
    n_tasks: int = 4,
    users_per_query: int = 1,
    seed: int = 0,
    start: datetime | None = None,
) -> SyntheticWorkload:
    """Generate a workload; see the module docstring for its structure."""
    if not 1 <= n_tasks <= len(_TASKS):
        raise ValueError(f"n_tasks must be between 1 and {len(_TASKS)}, got {n_tasks}")
    if n_llms < 2 or n_queries < 1 or n_users < 1:
        raise ValueError("need at least 2 LLMs, 1 query and 1 user")
    if not 1 <= users_per_query <= n_users:
        raise ValueError(f"users_per_query must be between 1 and n_users ({n_users})")
    rng = np.random.default_rng(seed)
    task_names = list(_TASKS)[:n_tasks]

    # LLMs: size drives general skill and price; each has task strengths.
    size_b = np.sort(np.exp(rng.uniform(np.log(3), np.log(400), n_llms)))
    general = 0.9 * np.log(size_b / 3) / np.log(400 / 3) * 3 - 1.0
    specialty = rng.normal(0, 0.7, size=(n_llms, n_tasks))
    skill = general[:, None] + specialty
    price = np.round(0.05 * size_b**0.9, 3) + 0.02
    llm_ids = [
        f"{_FAMILIES[i % len(_FAMILIES)]}-{size_b[i]:.0f}b"
        + (f"-v{i // 10 + 1}" if i >= 10 else "")
        for i in range(n_llms)
    ]
    strongest = [task_names[int(np.argmax(skill[m]))] for m in range(n_llms)]
    llm_desc = [
        f"{size_b[m]:.0f}B-parameter model, strongest on {strongest[m]}; "
        f"{price[m]:.2f} USD per 1M tokens."
        for m in range(n_llms)
    ]

    # Queries: task, difficulty, length.
    query_task = rng.integers(0, n_tasks, n_queries)
    difficulty = rng.normal(0, 1.0, n_queries)
    base_len = np.array([120, 200, 300, 2500, 80])[:n_tasks]
    input_tokens = np.maximum(8, rng.lognormal(np.log(base_len[query_task]), 0.4)).astype(np.int64)
    verbosity = rng.lognormal(0, 0.3, n_llms)
    out_base = np.array([150, 250, 40, 300, 10])[:n_tasks]
    output_tokens = np.maximum(
        1,
        out_base[query_task][:, None]
        * verbosity[None, :]
        * rng.lognormal(0, 0.2, (n_queries, n_llms)),
    ).astype(np.int64)
    logits = skill[:, query_task].T - difficulty[:, None] + rng.normal(0, 0.5, (n_queries, n_llms))
    p = 1 / (1 + np.exp(-logits))
    graded = np.array([name == "summarize" for name in task_names])[query_task]
    performance = np.where(
        graded[:, None],
        np.round(0.2 + 0.6 * p, 4),
        (rng.random((n_queries, n_llms)) < p).astype(float),
    )
    cost = (input_tokens[:, None] + output_tokens) * price[None, :] / 1e6

    query_ids = [f"q{i:06d}" for i in range(n_queries)]
    query_texts = []
    for i in range(n_queries):
        name = task_names[query_task[i]]
        words = rng.choice(_TASKS[name][1], size=3, replace=False)
        query_texts.append(
            f"[{name}] question {i} about {words[0]}, {words[1]} and {words[2]}"
            f" (difficulty {difficulty[i]:+.2f})"
        )
    split = rng.choice(["train", "val", "test"], size=n_queries, p=[0.7, 0.1, 0.2]).tolist()

    # Users: alpha evenly spread over 0.2..1.0 (the paper's setting), task mix per user.
    user_alpha = np.round(np.linspace(0.2, 1.0, n_users), 4) if n_users > 1 else np.array([0.6])
    task_mix = rng.dirichlet(np.full(n_tasks, 0.8), size=n_users)
    user_ids = [f"user-{u:04d}" for u in range(n_users)]
    asked_user, asked_query = [], []
    for q in range(n_queries):
        weights = task_mix[:, query_task[q]] / task_mix[:, query_task[q]].sum()
        for u in rng.choice(n_users, size=users_per_query, replace=False, p=weights):
            asked_user.append(int(u))
            asked_query.append(q)
    asked_user_a = np.asarray(asked_user)
    asked_query_a = np.asarray(asked_query)
    norm_cost = task_min_max(cost, query_task)
    alpha = user_alpha[asked_user_a][:, None]
    reward = utility(alpha, performance[asked_query_a], norm_cost[asked_query_a])
    chosen = best_llm(reward, cost[asked_query_a])
    t0 = start or datetime(2026, 1, 1, tzinfo=UTC)
    offsets = np.sort(rng.uniform(0, 90 * 86400, len(asked_user_a)))
    asked_at = [
        (t0 + timedelta(seconds=float(s))).isoformat().replace("+00:00", "Z")
        for s in offsets.round()
    ]

    return SyntheticWorkload(
        seed=seed,
        task_ids=task_names,
        task_descriptions=[_TASKS[t][0] for t in task_names],
        llm_ids=llm_ids,
        llm_descriptions=llm_desc,
        llm_price=price,
        query_ids=query_ids,
        query_texts=query_texts,
        query_task=query_task,
        query_split=split,
        performance=performance,
        cost=cost,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        user_ids=user_ids,
        user_alpha=user_alpha,
        asked_user=asked_user_a,
        asked_query=asked_query_a,
        asked_at=asked_at,
        chosen_llm=chosen,
        chosen_reward=reward[np.arange(len(chosen)), chosen],
    )
