"""Development data for learning from votes alone: preference-only RouterBench graphs.

From a RouterBench graph with embeddings (``prouter ingest routerbench`` +
``prouter embed``), builds two graphs of simulated voters' PREFERRED edges
*without* the outcomes (``workloads.task_preferences``):

* ``hetero``: users whose quality-vs-cost weight differs strongly per task
  (``--spread 2.5``): personalization should pay;
* ``similar``: users who barely differ (``--spread 0.1``): it must not cost.

and runs the pairwise protocol (``gnn.preference.protocol``) on each: the
by-query table and the new-user curve, mean ± std over the seeds.

Example::

    python experiments/preference_dev.py --source ladybug:rb.lbug --out results.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

from gnn.data import load_routing_data
from gnn.preference.base import DEFAULT_TIES, TIE_OPTIONS
from gnn.preference.protocol import DEFAULT_ROUTERS, compare_on_preferences
from graphdb.ingest import write_tables
from graphdb.store import open_store
from workloads.simulate import Outcomes, load_outcomes
from workloads.task_preferences import preference_only_tables, simulate_task_preferences

SCENARIOS = {"hetero": 2.5, "similar": 0.1}


def _subset(outcomes: Outcomes, n: int) -> Outcomes:
    """``n`` queries drawn with seed 0 (all when n <= 0 or more than there are)."""
    if n <= 0 or n >= len(outcomes.query_ids):
        return outcomes
    rows = np.sort(np.random.default_rng(0).choice(len(outcomes.query_ids), n, replace=False))
    return Outcomes(
        [outcomes.query_ids[i] for i in rows],
        [outcomes.task_ids[i] for i in rows],
        outcomes.llm_ids,
        outcomes.performance[rows],
        outcomes.cost[rows],
    )


def _embedded(queries: pa.Table, keep: set[str], cache: Path | None) -> pa.Table:
    """The ``keep`` queries, embedded (with ``Embedder``) where they are not yet."""
    queries = queries.filter(pa.array([q in keep for q in queries.column("id").to_pylist()]))
    if queries.column("embedding").null_count == 0:
        return queries
    from graphdb.tables import embedding_array
    from workloads.embeddings import Embedder

    with Embedder(cache_path=cache) as embedder:
        matrix = embedder.embed(queries.column("text").to_pylist())
    index = queries.schema.get_field_index("embedding")
    return queries.set_column(index, "embedding", embedding_array(matrix))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", required=True, help="store URL of an embedded RouterBench")
    parser.add_argument("--out", type=Path, required=True, help="JSON results file")
    parser.add_argument("--scenarios", default="hetero,similar")
    parser.add_argument("--routers", default=",".join(DEFAULT_ROUTERS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--queries", type=int, default=600, help="random RouterBench subset")
    parser.add_argument(
        "--cache",
        type=Path,
        help="embedding cache, to embed the subset's queries when "
        "the source graph has no query embeddings",
    )
    parser.add_argument("--users", type=int, default=30)
    parser.add_argument("--queries-per-user", type=int, default=150)
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument(
        "--tie-margin", type=float, default=0.0, help="rewards this close are tie votes"
    )
    parser.add_argument(
        "--ties",
        default=DEFAULT_TIES,
        choices=TIE_OPTIONS,
        help="how the Bradley-Terry baselines train on ties",
    )
    parser.add_argument(
        "--calibrate",
        default="",
        help="routers also scored temperature-calibrated (NAME+T), e.g. gnn",
    )
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--patience", type=int, default=60)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with open_store(args.source, read_only=True) as source:
        outcomes = _subset(load_outcomes(source), args.queries)
        base = preference_only_tables(source)
    keep = set(outcomes.query_ids)
    base["Query"] = _embedded(base["Query"], keep, args.cache)
    of_task = base["OF_TASK"]
    base["OF_TASK"] = of_task.filter(
        pa.array([q in keep for q in of_task.column("src").to_pylist()])
    )
    results = {}
    for name in args.scenarios.split(","):
        votes = simulate_task_preferences(
            outcomes,
            n_users=args.users,
            spread=SCENARIOS[name],
            pairs_per_query=args.pairs,
            queries_per_user=args.queries_per_user,
            seed=0,
            tie_margin=args.tie_margin,
        )
        with tempfile.TemporaryDirectory() as tmp, open_store(f"ladybug:{tmp}/g.lbug") as store:
            write_tables(store, base | votes)
            data = load_routing_data(store)
        gnn = {"epochs": args.epochs, "patience": args.patience}
        comparison = compare_on_preferences(
            data,
            args.routers.split(","),
            [int(s) for s in args.seeds.split(",")],
            configs={"gnn": gnn, "gnn_nonpersonal": gnn}
            | {bt: {"ties": args.ties} for bt in ("bt", "bt_task", "bt_user")},
            calibrate=[r for r in args.calibrate.split(",") if r],
            on_result=lambda r, s, m, n=name: print(
                f"{n} seed {s} {r}: {m.accuracy:.4f}", flush=True
            ),
        )
        print(
            f"\n== {name}: spread {SCENARIOS[name]}, {len(data.pref_user)} votes, "
            f"{len(data.tie_query)} ties, {len(data.query_ids)} queries, {len(data.user_ids)} users"
        )
        print(comparison.table(), flush=True)
        results[name] = comparison.as_dict() | {
            "spread": SCENARIOS[name],
            "votes": len(data.pref_user),
            "ties": len(data.tie_query),
            "tie_margin": args.tie_margin,
            "bt_ties": args.ties,
        }
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
