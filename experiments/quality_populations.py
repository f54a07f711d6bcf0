"""Routing quality per user population: the GNN against every predict-then-optimise baseline.

From a RouterBench graph with embeddings (``prouter ingest routerbench`` +
``prouter embed``; see docs/results/README.md), builds the populations of
issue #11 in memory with the product's own simulation
(``workloads.simulate.simulate_cost_efficiency``) and evaluates each router on
each seed's split exactly as ``prouter evaluate`` does (``gnn.evaluate``):

* ``rb9``: the paper's 9 users (weights 0.2..1.0) on every query;
* ``beta13``: 9 users with weights drawn from beta(1, 3) (cost-minded);
* ``sparse``: 1,000 users, beta(2, 2) weights, 30 queries each (seed 1);
* ``chosen``: the same, with outcomes observed only for the LLMs some user chose
  on a query (as in ``simulate cost-efficiency --observed chosen``; the test
  split keeps every outcome so that any pick can be scored);
* ``synth``: the seeded synthetic workload with graded (non-0/1) scores (2,000
  queries, 9 users, 32-d stand-in embeddings; needs no RouterBench store).

Prints each router's test reward per seed and the GNN's margin over the
strongest baseline of each seed, and writes them as JSON with ``--out``.

    python experiments/quality_populations.py --store ladybug:rb.lbug --out quality.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from gnn.data import RoutingData, Split, load_routing_data, split_queries
from gnn.evaluate import metrics_for_choices
from gnn.experiment import router_registry
from graphdb.store import open_store
from workloads.simulate import Outcomes, simulate_cost_efficiency

POPULATIONS = ("rb9", "beta13", "sparse", "chosen", "synth")
ROUTERS = (
    "gnn,best_llm_per_user_task,best_llm_per_user,logistic_outcomes,mlp_outcomes,"
    "mf_outcomes,knn_outcomes,imitate_user,imitate_user_task,knn_imitate,mlp_imitate,"
    "mf_imitate"
)


def _load(store: str) -> RoutingData:
    """The graph of ``store`` (a LadybugDB file is copied first: never modified)."""
    if store.startswith("ladybug:"):
        copy = Path(tempfile.mkdtemp(prefix="prouter-quality-")) / "g.lbug"
        shutil.copy(store.removeprefix("ladybug:"), copy)
        store = f"ladybug:{copy}"
    with open_store(store) as graph:
        return load_routing_data(graph)


def with_users(data: RoutingData, users: int, alphas: str, per_user: int | None, seed: int):
    """``data`` with its decisions replaced by simulated cost-efficiency users."""
    outcomes = Outcomes(
        list(data.query_ids),
        [data.task_ids[t] for t in data.query_task],
        list(data.llm_ids),
        data.performance,
        data.cost,
    )
    tables = simulate_cost_efficiency(
        outcomes, n_users=users, alphas=alphas, queries_per_user=per_user, seed=seed
    )
    ids = tables["User"].column("id").to_pylist()
    position = {
        "user": {u: i for i, u in enumerate(ids)},
        "query": {q: i for i, q in enumerate(data.query_ids)},
        "llm": {m: i for i, m in enumerate(data.llm_ids)},
    }
    chose = tables["CHOSE"].to_pydict()

    def rows(kind: str, values: list) -> np.ndarray:
        return np.array([position[kind][v] for v in values], dtype=np.int64)

    return dataclasses.replace(
        data,
        user_ids=ids,
        user_alpha=np.asarray(tables["User"].column("alpha").to_pylist(), dtype=float),
        dec_user=rows("user", chose["src"]),
        dec_query=rows("query", chose["query_id"]),
        dec_llm=rows("llm", chose["dst"]),
        dec_reward=np.asarray(chose["reward"], dtype=float),
        pref_user=np.zeros(0, dtype=np.int64),
        pref_query=np.zeros(0, dtype=np.int64),
        pref_win=np.zeros(0, dtype=np.int64),
        pref_lose=np.zeros(0, dtype=np.int64),
    )


def chosen_only(data: RoutingData, split: Split) -> RoutingData:
    """Outcomes of training and validation queries only for the LLMs some user chose."""
    keep = np.zeros(data.performance.shape, dtype=bool)
    keep[data.dec_query, data.dec_llm] = True
    keep[split.test] = True
    return dataclasses.replace(
        data,
        performance=np.where(keep, data.performance, np.nan),
        cost=np.where(keep, data.cost, np.nan),
    )


def synthetic() -> RoutingData:
    """The seeded synthetic workload with graded scores, in a temporary embedded store."""
    from graphdb.ingest import write_tables
    from graphdb.tables import embedding_array
    from workloads.synthetic import generate

    workload = generate(n_queries=2000, n_users=9, seed=0)
    tables = workload.tables(embedding_dim=32)
    n_llms = tables["LLM"].num_rows
    llm_emb = np.random.default_rng(1).normal(size=(n_llms, 32))
    tables["LLM"] = tables["LLM"].append_column("embedding", embedding_array(llm_emb))
    path = Path(tempfile.mkdtemp(prefix="prouter-quality-")) / "g.lbug"
    with open_store(f"ladybug:{path}") as store:
        write_tables(store, tables)
        return load_routing_data(store)


def population(name: str, base: RoutingData | None) -> RoutingData:
    if name == "synth":
        return synthetic()
    if base is None:
        raise SystemExit(f"population {name} needs --store (a RouterBench graph with embeddings)")
    return {
        "rb9": lambda: base,
        "beta13": lambda: with_users(base, 9, "beta:1,3", None, 0),
        "sparse": lambda: with_users(base, 1000, "beta:2,2", 30, 1),
        "chosen": lambda: with_users(base, 1000, "beta:2,2", 30, 1),
    }[name]()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="a RouterBench graph with embeddings (ladybug:PATH)")
    parser.add_argument("--populations", default=",".join(POPULATIONS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--routers", default=ROUTERS)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    names = args.routers.split(",")
    registry = router_registry()
    base = _load(args.store) if args.store else None
    results: dict[str, dict] = {}
    for pop in args.populations.split(","):
        data = population(pop, base)
        for seed in seeds:
            split = split_queries(data, seed=seed)
            view = chosen_only(data, split) if pop == "chosen" else data
            test = np.flatnonzero(split.test[view.dec_query])
            users, queries = view.dec_user[test], view.dec_query[test]
            row: dict[str, float] = {}
            for name in names:
                started = time.perf_counter()
                router = registry[name](seed=seed).fit(view, split)
                metrics = metrics_for_choices(view, test, router.route(view, users, queries))
                row[name] = metrics.reward
                row["oracle"] = metrics.reward / metrics.reward_of_oracle
                print(
                    f"{pop:<7} seed {seed} {name:<24} {metrics.reward:.4f} "
                    f"({time.perf_counter() - started:.0f} s)",
                    flush=True,
                )
            baselines = {k: v for k, v in row.items() if not k.startswith("gnn") and k != "oracle"}
            if "gnn" in row and baselines:
                strongest = max(baselines, key=baselines.get)
                row["margin"] = row["gnn"] - baselines[strongest]
                print(f"{pop:<7} seed {seed} gnn - {strongest}: {row['margin']:+.4f}", flush=True)
            results.setdefault(pop, {})[str(seed)] = row
    if args.out:
        args.out.write_text(json.dumps(results, indent=2, allow_nan=False))


if __name__ == "__main__":
    main()
