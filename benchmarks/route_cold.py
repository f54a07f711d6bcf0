"""Cold `prouter route` wall time and peak memory: the light path against the full one.

Each run is a new `prouter route` process (warm page cache, cold interpreter) on a
small trained demo store (a synthetic workload of ``--queries`` queries embedded
with the bundled all-MiniLM-L6-v2, a GNN trained briefly), each with a new query
text (so the query is encoded, not read from the embedding cache). *full*: the
route snapshot is deleted first, so the process loads torch, the checkpoint and
the graph (and writes the snapshot again at the end); *light*: the snapshot is
current, so it routes from it with the numpy encoder and forward. Also times
`prouter --help` (the CLI's own imports). Prints the medians of wall time, CPU time
(user + system: close to the wall time an idle machine would give, the runs being
mostly single-threaded) and peak RSS, every run's wall time, and the load average
(the machine may be shared).

    ./dev bench route_cold                # builds the demo store in a temporary folder
    ./dev bench route_cold --runs 7 --workdir /tmp/route-cold   # keeps (and reuses) it
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import run_measured  # (also puts the repository on sys.path)

PROUTER = [sys.executable, "-c", "from prouter.cli import main; main()"]


def build_store(folder: Path, queries: int) -> None:
    """A small trained store in ``folder`` (g.lbug, models/, cache.sqlite)."""
    from gnn.pipeline import train_and_record
    from graphdb.ingest import write_tables
    from graphdb.store import open_store
    from workloads.embeddings import Embedder, embed_graph
    from workloads.synthetic import generate

    workload = generate(n_queries=queries, n_users=6, n_llms=5, users_per_query=2, seed=1)
    with (
        open_store(f"ladybug:{folder / 'g.lbug'}") as store,
        Embedder(cache_path=folder / "cache.sqlite") as embedder,
    ):
        write_tables(store, workload.tables())
        embed_graph(store, embedder, progress=False)
        train_and_record(
            store, seed=0, model_dir=folder / "models", config={"epochs": 40, "hidden": 32}
        )


def run(args: list[str]) -> tuple[tuple[float, float, float], str]:
    """((wall s, CPU s, peak RSS MiB), stderr) of one process."""
    stage = run_measured(" ".join(args[3:5]), args)
    if stage.returncode:
        raise SystemExit(f"{' '.join(args[3:])} failed ({stage.returncode}):\n{stage.stderr}")
    return (stage.seconds, stage.cpu_seconds, stage.peak_rss_mb), stage.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="processes per variant")
    parser.add_argument("--queries", type=int, default=400, help="queries of the demo store")
    parser.add_argument("--workdir", type=Path, help="keep the demo store here (reused)")
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build_only:
        build_store(args.workdir, args.queries)
        return
    folder = args.workdir or Path(tempfile.mkdtemp(prefix="route-cold-"))
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "models").is_dir():
        print(f"building the demo store in {folder} ...", file=sys.stderr)
        # In a child process: a parent that imported torch would inflate the children's
        # peak RSS (ru_maxrss counts what a forked child shares with its parent).
        build = [sys.executable, __file__, "--build-only", "--workdir", str(folder)]
        run([*build, "--queries", str(args.queries)])
    store = ["--store", f"ladybug:{folder / 'g.lbug'}"]
    route = [*store, "route", "--model-dir", str(folder / "models")]
    route += ["--cache", str(folder / "cache.sqlite"), "--verbose", "--user", "user-0001"]
    snapshots = folder / "models" / "route-snapshots"
    stamp = time.strftime("%H%M%S")
    load_before = os.getloadavg()
    results: dict[str, list[tuple[float, float, float]]] = {"help": [], "full": [], "light": []}
    for i in range(args.runs):
        results["help"].append(run([*PROUTER, "--help"])[0])
        shutil.rmtree(snapshots, ignore_errors=True)
        measured, err = run([*PROUTER, *route, f"How do I sort a list in Python? {stamp}-f{i}"])
        assert "full path" in err, err
        results["full"].append(measured)
        measured, err = run([*PROUTER, *route, f"How do I sort a list in Python? {stamp}-l{i}"])
        assert "light path" in err, err
        results["light"].append(measured)
    load_after = os.getloadavg()
    import importlib.util

    import numpy

    cached = Path(importlib.util.cache_from_source(numpy.__file__)).exists()
    print(f"cold processes, {args.runs} runs each, store {folder / 'g.lbug'}")
    print("wall: elapsed seconds; CPU: user + system seconds (about the wall time on an idle")
    print("machine: each run is mostly one thread); medians over the runs")
    print(f"{'variant':<20} {'wall s':>7} {'CPU s':>6} {'peak RSS MiB':>13}  wall s of each run")
    names = {"help": "prouter --help", "full": "route, full path", "light": "route, light path"}
    for key, label in names.items():
        wall, cpu, rss = (statistics.median(r[j] for r in results[key]) for j in range(3))
        runs = " ".join(f"{r[0]:.2f}" for r in results[key])
        print(f"{label:<20} {wall:>7.2f} {cpu:>6.2f} {rss:>13.0f}  {runs}")
    print(
        f"load average before {load_before[0]:.2f} / after {load_after[0]:.2f} "
        f"on {os.cpu_count()} CPUs"
    )
    if not cached:  # every import compiles its module again: much slower cold starts
        print(
            "note: the environment has no bytecode cache (PYTHONDONTWRITEBYTECODE?); "
            "`python -m compileall .venv/lib` first for figures a normal install gives"
        )


if __name__ == "__main__":
    main()
