"""Routing latency: a cold `prouter route` process against the warm `prouter serve` API.

Builds a small synthetic store by default (a seeded workload whose queries,
tasks and LLMs are embedded with the real all-MiniLM-L6-v2, then a GNN
trained for a few epochs), or uses ``--store`` / ``--model-dir`` as given.
Then it times:

* cold CLI: ``prouter route`` as a fresh subprocess (imports, graph and model
  load, embedding, routing), for new texts (the embedding model is loaded) and
  for texts already in the embedding cache (it is not);
* warm API: ``POST /route`` on one ``prouter serve`` process, one client, then
  ``--clients`` concurrent clients, each sending ``--requests`` requests
  (new texts, then repeated texts that hit the embedding cache).

Prints one table: requests, p50 / p99 latency and throughput per scenario.

    .venv/bin/python benchmarks/route_latency.py
    .venv/bin/python benchmarks/route_latency.py --clients 8 --requests 100
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _common import REPO

from prcore.settings import DEFAULT_MODEL_DIR

PROUTER = str(Path(sys.executable).parent / "prouter")
_TOPICS = ["sorting a list", "compound interest", "the French Revolution", "photosynthesis",
           "binary trees", "train timetables", "a news merger", "garden weather"]  # fmt: skip


def texts(n: int, tag: str) -> list[str]:
    """``n`` distinct query texts."""
    return [f"[{tag} {i}] Please explain {_TOPICS[i % len(_TOPICS)]} briefly." for i in range(n)]


def build(folder: Path, queries: int, users: int, llms: int, epochs: int) -> tuple[str, Path]:
    """A synthetic, embedded and trained LadybugDB store; returns (url, model dir)."""
    from gnn.pipeline import train_and_record
    from graphdb.ingest import write_tables
    from graphdb.store import open_store
    from workloads.embeddings import Embedder, embed_graph
    from workloads.synthetic import generate

    url = f"ladybug:{folder / 'g.lbug'}"
    workload = generate(n_queries=queries, n_users=users, n_llms=llms, users_per_query=2, seed=0)
    with open_store(url) as store, Embedder(cache_path=folder / "cache.sqlite") as embedder:
        write_tables(store, workload.tables())
        embed_graph(store, embedder, progress=False)
        train_and_record(
            store, seed=0, model_dir=folder / "models", config={"epochs": epochs, "hidden": 32}
        )
    return url, folder / "models"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def cold_cli(url: str, model_dir: Path, cache: Path, queries: list[str]) -> list[float]:
    """Wall seconds of one `prouter route` subprocess per query."""
    out = []
    where = ["--model-dir", str(model_dir), "--cache", str(cache)]
    for query in queries:
        t0 = time.perf_counter()
        subprocess.run(
            [PROUTER, "--store", url, "route", "--user", "user-0000", "--json", query, *where],
            check=True,
            capture_output=True,
            cwd=REPO,
        )
        out.append(time.perf_counter() - t0)
    return out


def post(base: str, payload: dict[str, str]) -> float:
    request = urllib.request.Request(
        base + "/route", json.dumps(payload).encode(), {"Content-Type": "application/json"}
    )
    t0 = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as response:
        json.loads(response.read())
        assert response.status == 200
    return time.perf_counter() - t0


def load_test(base: str, clients: int, queries: list[list[str]]) -> tuple[list[float], float]:
    """Each client sends its queries in turn; (latencies, wall seconds)."""
    users = ["user-0000", "user-0001", "newcomer"]

    def client(i: int) -> list[float]:
        return [post(base, {"user": users[i % 3], "query": q}) for q in queries[i]]

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        latencies = [x for part in pool.map(client, range(clients)) for x in part]
    return latencies, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", help="existing store URL (default: build a synthetic one)")
    parser.add_argument("--model-dir", type=Path, help="checkpoints of --store")
    parser.add_argument("--queries", type=int, default=300, help="synthetic queries")
    parser.add_argument("--users", type=int, default=6, help="synthetic users")
    parser.add_argument("--llms", type=int, default=5, help="synthetic LLMs")
    parser.add_argument("--epochs", type=int, default=40, help="training epochs")
    parser.add_argument("--cold-runs", type=int, default=3, help="CLI runs per cold scenario")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients")
    parser.add_argument("--requests", type=int, default=50, help="requests per client")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="prouter-route-bench-"))
    server = None
    try:
        t0 = time.perf_counter()
        if args.store:
            url, model_dir = args.store, args.model_dir or DEFAULT_MODEL_DIR
        else:
            url, model_dir = build(tmp, args.queries, args.users, args.llms, args.epochs)
            print(f"built and trained a synthetic store in {time.perf_counter() - t0:.1f} s")
        cache = tmp / "cache.sqlite"
        where = ["--model-dir", str(model_dir), "--cache", str(cache)]
        rows: list[tuple[str, int, float, float, float]] = []

        def add(name: str, latencies: list[float], wall: float) -> None:
            p50, p99 = (1e3 * percentile(latencies, q) for q in (50, 99))
            rows.append((name, len(latencies), p50, p99, len(latencies) / wall))

        new = texts(args.cold_runs, "cold")
        for name in ("cold CLI route, new text", "cold CLI route, cached text"):
            t0 = time.perf_counter()
            add(name, cold_cli(url, model_dir, cache, new), time.perf_counter() - t0)

        server = subprocess.Popen(
            [PROUTER, "--store", url, "serve", "--port", "0", *where],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=REPO,
            env=os.environ | {"PYTHONUNBUFFERED": "1"},
        )
        t0 = time.perf_counter()
        line = server.stdout.readline()  # type: ignore[union-attr]
        match = re.search(r"http://[\d.]+:(\d+)", line)
        if not match:
            raise SystemExit(f"prouter serve did not start: {line!r}")
        print(f"prouter serve ready in {time.perf_counter() - t0:.1f} s (model loaded, warm)")
        base = f"http://127.0.0.1:{match.group(1)}"
        one = texts(args.requests, "single")
        add("warm /route, 1 client, new texts", *load_test(base, 1, [one]))
        fresh = [texts(args.requests, f"c{i}") for i in range(args.clients)]
        add(
            f"warm /route, {args.clients} clients, new texts", *load_test(base, args.clients, fresh)
        )
        add(
            f"warm /route, {args.clients} clients, cached texts",
            *load_test(base, args.clients, fresh),
        )
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=30)

        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"\n{os.cpu_count()} CPUs, load average {load}; server exited {code} on SIGTERM")
        head = f"{'scenario':<38} {'requests':>8} {'p50 ms':>9} {'p99 ms':>9} {'req/s':>8}"
        print(head)
        print("-" * len(head))
        for name, n, p50, p99, rate in rows:
            print(f"{name:<38} {n:>8} {p50:>9.1f} {p99:>9.1f} {rate:>8.2f}")
    finally:
        if server is not None and server.poll() is None:
            server.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
