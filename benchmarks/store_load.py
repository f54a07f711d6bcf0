"""Graph-store load benchmark: bulk-ingest a synthetic graph into each backend.

Default size: 50k queries with 384-d embeddings, 10 LLMs, 10 users, 500k
query-LLM outcome edges (+ 50k ASKED, 50k CHOSE, 50k OF_TASK). For each backend
it prints load time and edges/s, the time of an idempotent re-load, the time to
export the training arrays (query embeddings + outcome edges as NumPy), peak
memory, and on-disk size. Each backend runs in its own process so that peak
memory (ru_maxrss) is its own; Neo4j runs on a local server this script starts
(``.neo4j-bench/``) unless ``--neo4j-uri`` is given.

    ./dev bench                      # both backends, default size
    ./dev bench --queries 5000       # smaller
    ./dev bench --backends ladybug
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def dir_size(path: Path) -> int:
    return (
        sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        if path.is_dir()
        else (path.stat().st_size if path.exists() else 0)
    )


def worker(args: argparse.Namespace) -> dict:
    import numpy as np

    from graphdb.ingest import write_tables
    from graphdb.store import open_store
    from prouter.synthetic import generate

    t0 = time.perf_counter()
    workload = generate(n_queries=args.queries, n_llms=args.llms, n_users=args.users, seed=0)
    tables = workload.tables(embedding_dim=args.dim)
    gen_s = time.perf_counter() - t0
    store = open_store(args.url, username=args.user, password=args.password)
    store.clear()
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
    parser.add_argument("--neo4j-uri")
    parser.add_argument("--neo4j-user", default="neo4j")
    parser.add_argument("--neo4j-password", default="")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--user", default="", help=argparse.SUPPRESS)
    parser.add_argument("--password", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return

    results: dict[str, dict] = {}
    backends = args.backends.split(",")
    if "ladybug" in backends:
        tmp = Path(tempfile.mkdtemp(prefix="prouter-bench-"))
        try:
            results["ladybug"] = run_backend("ladybug", f"ladybug:{tmp / 'g.lbug'}", "", "", args)
            results["ladybug"]["disk_mb"] = dir_size(tmp) / 2**20
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if "neo4j" in backends:
        from prouter import neo4j_local

        home = REPO / ".neo4j-bench"
        info = None
        if args.neo4j_uri:
            url, user, password = args.neo4j_uri, args.neo4j_user, args.neo4j_password
        else:
            info = neo4j_local.start(home=home)
            url, user, password = info.uri, info.username, info.password
        try:
            results["neo4j"] = run_backend("neo4j", url, user, password, args)
            if info is not None:
                status = Path(f"/proc/{info.pid}/status").read_text()
                hwm = [line for line in status.splitlines() if line.startswith("VmHWM")]
                results["neo4j"]["server_peak_rss_mb"] = int(hwm[0].split()[1]) / 1024
                results["neo4j"]["disk_mb"] = dir_size(home / "data") / 2**20
        finally:
            if info is not None:
                neo4j_local.stop(home=home)

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
            f"{r.get('server_peak_rss_mb', float('nan')):>10.0f} {r['disk_mb']:>8.0f}"
        )
    print(
        "load: all nodes and edges written (first time); reload: the same rows again "
        "(idempotent, nothing changes); export: query embeddings + outcome edges to NumPy."
    )


if __name__ == "__main__":
    main()
