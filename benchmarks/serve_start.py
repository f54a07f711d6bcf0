"""How long a new serving process takes to be ready on a trained store, and its peak RSS:
cold (no saved neighbour index: it builds them) against a restart (it reads the ones the
cold start saved, ``gnn.index_files``).

Each start is a new process that opens the store read-only, builds the
``RoutingService`` of the latest model (restores the router: the neighbours' outcome
messages of every query, read from the model's export in ``MODEL_DIR/exports`` while the
graph is the one exported, else searched; the task-inference index), warms it up (the
standing index of route-time lookups) and routes one query. Query texts are embedded
by a deterministic stand-in of the store's embedding dimension (the startup is what is
measured, not the encoder). Prints wall time, peak RSS and the indexes built / read.

    ./dev bench serve_start --store ladybug:/path/g.lbug --model-dir /path/models
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from _common import run_measured  # (also puts the repository on sys.path)


def child(args: argparse.Namespace) -> None:
    """One start, in this process; prints its figures as JSON."""
    from scale import HashEmbedder

    from gnn import neighbours
    from gnn.serving import RoutingService
    from graphdb.store import open_store

    neighbours.configure(index_dir=args.index_dir)
    started = time.perf_counter()
    store = open_store(args.store, read_only=True)
    service = RoutingService(
        store, HashEmbedder(args.dim), model_dir=args.model_dir, version=args.version
    )
    ready = time.perf_counter() - started
    service.warm_up()
    user = store.node_ids("User")[0]
    service.route(user, "a first query after the start")
    total = time.perf_counter() - started
    store.close()
    print(json.dumps({"service_s": ready, "ready_s": total}))


def measure_start(
    store: str, model_dir: Path, index_dir: Path, dim: int, name: str, version: str | None = None
) -> dict:
    """One start in a new process (:func:`child`): its figures, peak RSS and the
    indexes it built and read; raises SystemExit when it fails."""
    command = [sys.executable, __file__, "--child", "--store", store, "--dim", str(dim)]
    command += ["--model-dir", str(model_dir), "--index-dir", str(index_dir)]
    if version:
        command += ["--version", version]
    stage = run_measured(name, command)
    if stage.returncode != 0:
        raise SystemExit(f"{name} failed ({stage.returncode}):\n{stage.stderr[-3000:]}")
    figures = json.loads(stage.stdout.strip().splitlines()[-1])
    return figures | {
        "peak_rss_mb": stage.peak_rss_mb,
        "built": stage.stderr.count("building the index"),
        "read": stage.stderr.count("read the saved index"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", required=True, help="a trained store, e.g. ladybug:g.lbug")
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument(
        "--dim", type=int, default=32, help="the store's embedding dimension (32: scale's)"
    )
    parser.add_argument("--version", help="the model version (default: the graph's latest)")
    parser.add_argument("--restarts", type=int, default=1, help="starts after the cold one")
    parser.add_argument("--index-dir", help=argparse.SUPPRESS)  # the child's
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="prouter-serve-start-") as tmp:
        for i in range(1 + args.restarts):
            name = "cold" if i == 0 else f"restart {i}"
            figures = measure_start(
                args.store, args.model_dir, Path(tmp), args.dim, name, args.version
            )
            rows.append((name, figures))
            print(f"done: {name} {rows[-1][1]['ready_s']:.1f} s", file=sys.stderr, flush=True)
    print(f"serving start on {args.store} (model dir {args.model_dir})")
    print(
        f"{'start':<10} {'service s':>10} {'ready s':>8} {'peak MiB':>9} {'built':>6} {'read':>5}"
    )
    for name, f in rows:
        print(
            f"{name:<10} {f['service_s']:>10.1f} {f['ready_s']:>8.1f} {f['peak_rss_mb']:>9.0f} "
            f"{f['built']:>6} {f['read']:>5}"
        )


if __name__ == "__main__":
    main()
