"""Scale benchmark: synthetic graphs of growing size, end to end, per backend where it fits.

For each size (queries, users; 10 LLMs, an outcome for every query x LLM, one decision
per query) a seeded workload (``prouter generate synthetic``) is written as a canonical
Parquet file, then, each in its own process (so that peak RSS is its own):

* ladybug: ingest (the canonical UNWIND/COPY path), the stand-in query / LLM embeddings
  written as ``prouter embed`` writes them (an update of the ingested nodes), export of
  the training subgraph, ``--epochs`` epochs of GNN training (its setup: features and
  neighbour messages; time per epoch, the per-epoch validation included, from the
  checkpoint's ``training`` record), write-back of ROUTED_TO with top-k (k=3) and with
  every candidate (edges and time), route p50 through ``gnn.serving.RoutingService`` (a
  hashing stand-in embedder), peak RSS, file size; the approximate neighbour indexes it
  builds are kept in its folder. Then a serving restart: a new process that opens the
  store and is ready to route, reading those indexes (``serve_start.py``; time, peak RSS).
* neo4j (sizes up to ``--neo4j-max``): the initial load through ``neo4j-admin database
  import full`` (``prouter neo4j import``: validate, CSV, stop, import, start, schema)
  on a fresh server, then the UNWIND path (``prouter ingest canonical``) on another
  fresh server, export time, server peak RSS, data size.

Sizes or backends that do not fit ``--max-queries`` / ``--neo4j-max`` are printed as
skipped. Embeddings are ``--dim``-d stand-ins (the real MiniLM would dominate the time).

Then RouterBench with ``--routerbench-users`` simulated users (0: skipped) end to end
through the ``prouter`` commands themselves (ingest, embed, simulate, train with its
write-back, evaluate), each step's time and peak RSS (``benchmarks/_routerbench_users.py``).

    ./dev bench scale                                  # 10k and 100k queries, RouterBench x 1,000
    ./dev bench scale --sizes 10000:100 --epochs 3 --neo4j-max 10000 --routerbench-users 0
    ./dev bench scale --sizes none --routerbench-users 1000 --rb-epochs 30 \
        --embedding-cache prouter-data/embedding-cache.sqlite --log rb-users.log
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import BENCH_NEO4J_HOME, REPO, dir_size_mb, fresh_store_url, server_peak_rss_mb
from _routerbench_users import report, run_routerbench
from serve_start import measure_start

SIZES = "10000:100,100000:1000,1000000:10000"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class PhasePeaks:
    """Peak RSS per phase of a worker (sampled every 0.2 s), each phase also reported on
    stderr as it ends (ru_maxrss alone gives the whole process's peak)."""

    def __init__(self, out: dict) -> None:
        import threading

        self.out, self.peak = out, 0.0
        threading.Thread(target=self._sample, daemon=True).start()

    @staticmethod
    def current_mb() -> float:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, self.current_mb())
            time.sleep(0.2)

    @contextlib.contextmanager
    def phase(self, name: str):  # type: ignore[no-untyped-def]
        self.peak = self.current_mb()
        t0 = time.perf_counter()
        yield
        self.peak = max(self.peak, self.current_mb())
        self.out[f"{name}_peak_mb"] = self.peak
        seconds = time.perf_counter() - t0
        print(
            f"phase {name}: {seconds:.1f} s, peak RSS {self.peak:.0f} MB",
            file=sys.stderr,
            flush=True,
        )


class HashEmbedder:
    """Deterministic stand-in for a sentence embedder (``dim``-d, per text)."""

    def __init__(self, dim: int) -> None:
        self.dim = dim

    def embed(self, texts, progress: bool = False):  # type: ignore[no-untyped-def]
        import numpy as np

        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            out[i] = np.random.default_rng(seed).normal(size=self.dim)
        return out


def write_workload(path: Path, queries: int, users: int, llms: int, batch: int = 100_000) -> None:
    """The seeded workload as a canonical Parquet file, written ``batch`` records at a time
    (1M queries are 11M records: never all held as dicts)."""
    import itertools

    import pyarrow as pa
    import pyarrow.parquet as pq

    from graphdb.canonical import FIELDS
    from workloads.synthetic import generate

    kinds = {"float": pa.float64(), "int": pa.int64()}
    schema = pa.schema([(n, kinds.get(f.kind, pa.string())) for n, f in FIELDS.items()])
    records = generate(n_queries=queries, n_users=users, n_llms=llms, seed=0).iter_records()
    with pq.ParquetWriter(path, schema) as writer:
        while chunk := list(itertools.islice(records, batch)):
            writer.write_table(pa.Table.from_pylist(chunk, schema=schema))


def ladybug_worker(args: argparse.Namespace) -> dict:
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from gnn import neighbours
    from gnn.checkpoint import load_checkpoint
    from gnn.export import SubgraphSpec, export_training_subgraph
    from gnn.pipeline import ModelRef, publish_predictions, train_from_export
    from gnn.serving import RoutingService
    from graphdb.ingest import ingest_files
    from graphdb.store import open_store
    from graphdb.tables import embedding_array
    from workloads.synthetic import generate

    out: dict = {}
    peaks = PhasePeaks(out)
    folder = Path(args.folder)
    # The approximate indexes built are kept here (not in the repository's prouter-data/),
    # for the serving restart measured after this worker.
    neighbours.configure(index_dir=str(folder / "indexes"))
    store = open_store(f"ladybug:{folder / 'g.lbug'}")
    t0 = time.perf_counter()
    with peaks.phase("ingest"):
        ingest_files(store, [args.file])
    out["ingest_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with peaks.phase("embed"):
        wl = generate(n_queries=args.queries, n_users=args.users, n_llms=args.llms, seed=0)
        emb = HashEmbedder(args.dim)
        store.write_nodes(
            "Query",
            {"id": wl.query_ids, "embedding": embedding_array(wl.query_embeddings(args.dim))},
        )
        store.write_nodes(
            "LLM", {"id": wl.llm_ids, "embedding": embedding_array(emb.embed(wl.llm_ids))}
        )
        del wl
    out["embed_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with peaks.phase("export"):
        exported = export_training_subgraph(store, folder / "models" / "exports", SubgraphSpec())
    out["export_s"] = time.perf_counter() - t0
    with peaks.phase("train"):
        ref = train_from_export(
            exported.path,
            folder / "models",
            config={"epochs": args.epochs, "patience": args.epochs, "device": "cpu"},
        )
    training = load_checkpoint(folder / "models", ref.version)["training"]
    out["epoch_s"] = float(np.mean(training["epoch_seconds"]))
    out["train_setup_s"] = training["seconds"] - sum(training["epoch_seconds"])
    for k in (3, None):  # ROUTED_TO in batches, then the RouterModel node
        t0 = time.perf_counter()
        with peaks.phase(f"routed_{k or 'all'}"):
            stats = publish_predictions(
                store, ModelRef(ref.version, ref.checkpoint, ref.export, routed_top=k)
            )["ROUTED_TO"]
        out[f"routed_{k or 'all'}"] = stats.total  # edges of the version after the write
        out[f"routed_{k or 'all'}_s"] = time.perf_counter() - t0
    service = RoutingService(store, emb, model_dir=folder / "models")
    users = store.node_ids("User")[:20]
    times = []
    for i in range(args.routes):
        t0 = time.perf_counter()
        service.route(users[i % len(users)], f"route benchmark query {i}: explain topic {i}")
        times.append(time.perf_counter() - t0)
    out["route_p50_ms"] = float(np.median(times[1:]) * 1000)  # the first call warms up
    store.close()
    out["peak_rss_mb"] = _rss_mb()
    out["disk_mb"] = dir_size_mb(folder / "g.lbug")
    return out


def neo4j_worker(args: argparse.Namespace) -> dict:
    """The UNWIND ingest and the export against the running server ``args.url``."""
    from graphdb.ingest import ingest_files
    from graphdb.store import open_store

    store = open_store(args.url, username=args.user, password=args.password)
    t0 = time.perf_counter()
    ingest_files(store, [args.file])
    out = {"ingest_s": time.perf_counter() - t0}
    t0 = time.perf_counter()
    store.export_nodes("Query")
    store.export_edges("ANSWERED_BY", ["performance", "cost"])
    store.export_edges("CHOSE")
    out["export_s"] = time.perf_counter() - t0
    store.close()
    out["peak_rss_mb"] = _rss_mb()
    return out


def _run_worker(kind: str, extra: list[str]) -> dict:
    cmd = [sys.executable, __file__, "--worker", kind, *extra]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(f"{kind} worker failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def neo4j_bulk(file: Path) -> dict:
    """``prouter neo4j import`` on a fresh local server: time and size."""
    import neo4j_local
    from prouter.bulk_load import bulk_load

    neo4j_local.stop(home=BENCH_NEO4J_HOME)
    shutil.rmtree(BENCH_NEO4J_HOME / "data", ignore_errors=True)
    neo4j_local.start(home=BENCH_NEO4J_HOME)
    try:
        t0 = time.perf_counter()
        report = bulk_load([file], home=BENCH_NEO4J_HOME)
        total = time.perf_counter() - t0
        return {
            "bulk_s": total,
            "bulk_steps": report.seconds,
            "bulk_disk_mb": dir_size_mb(BENCH_NEO4J_HOME / "data"),
            "edges": sum(v for k, v in report.counts.items() if k.isupper()),
        }
    finally:
        neo4j_local.stop(home=BENCH_NEO4J_HOME)


def _f(row: dict, key: str, width: int, digits: int) -> str:
    """``row[key]`` right-aligned with ``digits`` decimals, '-' when absent."""
    value = row.get(key)
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


def print_synthetic(rows: list, args: argparse.Namespace) -> None:
    """The synthetic graphs' table."""
    print(f"synthetic graphs: {args.llms} LLMs, {args.dim}-d stand-in embeddings, "
          f"{args.epochs} epochs, 1 decision per query")  # fmt: skip
    print(
        f"{'backend':<8} {'queries':>8} {'users':>6} {'ingest s':>9} {'bulk s':>7} {'embed s':>8} "
        f"{'export s':>9} {'setup s':>8} {'s/epoch':>8} {'peak MB':>8} {'route p50 ms':>13} "
        f"{'disk MB':>8} "
        f"{'ROUTED_TO top-3':>16} {'(s)':>6} {'all':>9} {'(s)':>6} {'restart s':>10} {'(MB)':>7}"
    )
    for name, queries, users, _gen, r in rows:
        print(
            f"{name:<8} {queries:>8} {users:>6} {_f(r, 'ingest_s', 9, 1)} {_f(r, 'bulk_s', 7, 1)} "
            f"{_f(r, 'embed_s', 8, 1)} "
            f"{_f(r, 'export_s', 9, 2)} {_f(r, 'train_setup_s', 8, 1)} {_f(r, 'epoch_s', 8, 2)} "
            f"{_f(r, 'peak_rss_mb', 8, 0)} "
            f"{_f(r, 'route_p50_ms', 13, 1)} {_f(r, 'disk_mb', 8, 0)} "
            f"{_f(r, 'routed_3', 16, 0)} {_f(r, 'routed_3_s', 6, 1)} "
            f"{_f(r, 'routed_all', 9, 0)} {_f(r, 'routed_all_s', 6, 1)} "
            f"{_f(r, 'restart_s', 10, 1)} {_f(r, 'restart_peak_mb', 7, 0)}"
        )
        if "bulk_steps" in r:
            steps = ", ".join(f"{k} {v:.1f}s" for k, v in r["bulk_steps"].items())
            print(
                f"  neo4j bulk import of {r['edges']} edges: {steps}; data "
                f"{r['bulk_disk_mb']:.0f} MB; UNWIND server peak {r['server_peak_rss_mb']:.0f} MB"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default=SIZES, help="queries:users,... (10 LLMs each)")
    parser.add_argument("--llms", type=int, default=10)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--routes", type=int, default=50)
    parser.add_argument("--max-queries", type=int, default=100_000)
    parser.add_argument("--neo4j-max", type=int, default=10_000)
    parser.add_argument("--routerbench-users", type=int, default=1000, help="0: skipped")
    parser.add_argument("--queries-per-user", type=int, help="RouterBench: default every query")
    parser.add_argument("--rb-epochs", type=int, default=30, help="RouterBench: --epochs")
    parser.add_argument("--rb-batch-size", type=int, help="RouterBench: train --batch-size")
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--embedding-cache", type=Path, help="copied, never written")
    parser.add_argument("--log", type=Path, help="RouterBench: every command's output")
    parser.add_argument("--rb-skip-evaluate", action="store_true", help="RouterBench: no evaluate")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    for name in ("folder", "file", "url", "user", "password"):
        parser.add_argument(f"--{name}", default="", help=argparse.SUPPRESS)
    parser.add_argument("--queries", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--users", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        fn = ladybug_worker if args.worker == "ladybug" else neo4j_worker
        print(json.dumps(fn(args)))
        return

    rows, skipped = [], []
    for size in [] if args.sizes == "none" else args.sizes.split(","):
        queries, users = (int(x) for x in size.split(":"))
        if queries > args.max_queries:
            skipped.append(f"{queries} queries / {users} users: over --max-queries (time/memory)")
            continue
        tmp = Path(tempfile.mkdtemp(prefix="prouter-scale-"))
        try:
            file = tmp / "workload.parquet"
            t0 = time.perf_counter()
            write_workload(file, queries, users, args.llms)
            gen_s = time.perf_counter() - t0
            common = ["--file", str(file), "--queries", str(queries), "--users", str(users)]
            common += ["--dim", str(args.dim), "--epochs", str(args.epochs)]
            common += ["--routes", str(args.routes), "--llms", str(args.llms)]
            lady = _run_worker("ladybug", [*common, "--folder", str(tmp)])
            restart = measure_start(
                f"ladybug:{tmp / 'g.lbug'}", tmp / "models", tmp / "indexes", args.dim, "restart"
            )
            lady |= {"restart_s": restart["ready_s"], "restart_peak_mb": restart["peak_rss_mb"]}
            rows.append(("ladybug", queries, users, gen_s, lady))
            print(f"done: ladybug {queries} {json.dumps(lady)}", file=sys.stderr, flush=True)
            if queries > args.neo4j_max:
                skipped.append(f"neo4j at {queries} queries: over --neo4j-max (time)")
                continue
            bulk = neo4j_bulk(file)
            with fresh_store_url("neo4j") as (url, user, password, data, pid):
                neo = _run_worker(
                    "neo4j", [*common, "--url", url, "--user", user, "--password", password]
                )
                neo["server_peak_rss_mb"] = server_peak_rss_mb(pid)
                neo["disk_mb"] = dir_size_mb(data)
            rows.append(("neo4j", queries, users, gen_s, neo | bulk))
            print(f"done: neo4j {queries} {json.dumps(neo | bulk)}", file=sys.stderr, flush=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    if rows:
        print_synthetic(rows, args)
    for line in skipped:
        print(f"skipped: {line}")
    if args.routerbench_users > 0:
        data_dir = args.data_dir / "routerbench"
        if not data_dir.is_dir():
            raise SystemExit(f"RouterBench data not found at {data_dir} (use --data-dir)")
        rb = run_routerbench(
            data_dir,
            users=args.routerbench_users,
            queries_per_user=args.queries_per_user,
            epochs=args.rb_epochs,
            embedding_cache=args.embedding_cache,
            batch_size=args.rb_batch_size,
            log=args.log,
            evaluate=not args.rb_skip_evaluate,
        )
        print("\n".join(report(rb)))


if __name__ == "__main__":
    main()
