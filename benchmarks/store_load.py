"""Graph-store load benchmark: bulk-ingest a synthetic graph into each backend.

Default size: 50k queries with 384-d embeddings, 10 LLMs, 10 users, 500k
query-LLM outcome edges (+ 50k ASKED, 50k CHOSE, 50k OF_TASK). For each backend
it prints load time and edges/s, the time of an idempotent re-load, the time to
export the training arrays (query embeddings + outcome edges as NumPy), peak
memory, and on-disk size. Each backend runs in its own process so that peak
memory (ru_maxrss) is its own; Neo4j runs on a fresh local server this script
starts in ``.neo4j-bench/`` (its database is wiped first).

    ./dev bench store_load                      # both backends, default size
    ./dev bench store_load --queries 5000       # smaller
    ./dev bench store_load --backends ladybug
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

from _common import dir_size_mb, fresh_store_url, server_peak_rss_mb


def worker(args: argparse.Namespace) -> dict:
    import numpy as np

    from graphdb.ingest import write_tables
    from graphdb.store import open_store
    from workloads.synthetic import generate

    t0 = time.perf_counter()
    workload = generate(n_queries=args.queries, n_llms=args.llms, n_users=args.users, seed=0)
    tables = workload.tables(embedding_dim=args.dim)
    gen_s = time.perf_counter() - t0
    store = open_store(args.url, username=args.user, password=args.password)
    t0 = time.perf_counter()
    stats = write_tables(store, tables)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = write_tables(store, tables)
    reload_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    queries = store.export_nodes("Query", ["embedding"])
    emb = np.asarray(queries.column("embedding").combine_chunks().flatten()).reshape(-1, args.dim)
    edges = store.export_edges("ANSWERED_BY", ["performance", "cost"])
    index = {q: i for i, q in enumerate(queries.column("id").to_pylist())}
    src = np.fromiter((index[q] for q in edges.column("src").to_pylist()), np.int64)
    perf = edges.column("performance").to_numpy()
    export_s = time.perf_counter() - t0
    assert emb.shape == (args.queries, args.dim) and len(src) == len(perf)
    n_edges = sum(stats[k].created for k in stats if k.isupper() and k != "LLM")
    assert all(s.created == 0 and s.updated == 0 for s in again.values())
    store.close()
    return {
        "generate_s": gen_s,
        "load_s": load_s,
        "edges": n_edges,
        "reload_s": reload_s,
        "export_s": export_s,
        "answered_by": len(perf),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_backend(name: str, url: str, user: str, password: str, args: argparse.Namespace) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        "--url",
        url,
        "--user",
        user,
        "--password",
        password,
        "--queries",
        str(args.queries),
        "--llms",
        str(args.llms),
        "--users",
        str(args.users),
        "--dim",
        str(args.dim),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{name} worker failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queries", type=int, default=50_000)
    parser.add_argument("--llms", type=int, default=10)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--backends", default="ladybug,neo4j")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--user", default="", help=argparse.SUPPRESS)
    parser.add_argument("--password", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return

    results: dict[str, dict] = {}
    for backend in args.backends.split(","):
        with fresh_store_url(backend) as (url, user, password, data, pid):
            results[backend] = run_backend(backend, url, user, password, args)
            results[backend]["server_peak_rss_mb"] = server_peak_rss_mb(pid)
            results[backend]["disk_mb"] = dir_size_mb(data)

    print(
        f"graph: {args.queries} queries x {args.llms} LLMs ({args.queries * args.llms} outcome "
        f"edges), {args.users} users, {args.dim}-d embeddings"
    )
    header = (
        f"{'backend':<8} {'load s':>8} {'edges/s':>9} {'reload s':>9} {'export s':>9} "
        f"{'client MB':>10} {'server MB':>10} {'disk MB':>8}"
    )
    print(header)
    for name, r in results.items():
        print(
            f"{name:<8} {r['load_s']:>8.1f} {r['edges'] / r['load_s']:>9.0f} "
            f"{r['reload_s']:>9.1f} {r['export_s']:>9.2f} {r['peak_rss_mb']:>10.0f} "
            f"{r['server_peak_rss_mb']:>10.0f} {r['disk_mb']:>8.0f}"
        )
    print(
        "load: all nodes and edges written (first time); reload: the same rows again "
        "(idempotent, nothing changes); export: query embeddings + outcome edges to NumPy."
    )


if __name__ == "__main__":
    main()
