"""Wall time of a full Dagster materialisation, per asset and per asset check.

On an empty store: the whole pipeline (sources -> ingest -> simulated users ->
embeddings -> training subgraph -> trained model -> predictions -> evaluation ->
report, with the checks) in one in-process run, then a second run of the same
(idempotent: nothing written, the checkpoint reused). Step times come from the
runs' STEP_SUCCESS events.

Default workload: the RouterBench subset (``$PROUTER_DATA_DIR/routerbench``,
default ``../shared/data``) with the paper's 9 cost-efficiency users and the
real offline embedder; ``--synthetic`` runs a small synthetic workload with the
hashing stand-in embedder instead (a minute on 2 cores).

    ./dev bench dagster_materialize --synthetic
    ./dev bench dagster_materialize --backend neo4j --epochs 200
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from _common import REPO, fresh_store_url

DATA_DIR = Path(os.environ.get("PROUTER_DATA_DIR", REPO.parent / "shared" / "data"))
SYNTHETIC = {
    "synthetic_queries": 300,
    "synthetic_users": 9,
    "synthetic_llms": 6,
    "synthetic_users_per_query": 3,
}


def step_seconds(result) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Seconds per step (asset or check) of an in-process run, in execution order."""
    return {
        event.step_key: event.event_specific_data.duration_ms / 1000
        for event in result.all_events
        if event.event_type_value == "STEP_SUCCESS"
    }


def run(args: argparse.Namespace) -> None:
    import dagster as dg

    from dagster_project.assets import PIPELINE_ASSETS
    from dagster_project.checks import ALL_CHECKS
    from dagster_project.resources import (
        DeviceResource,
        GraphStoreResource,
        HashingEmbeddings,
        ModelStoreResource,
        SentenceTransformerEmbeddings,
    )

    if args.synthetic:
        sources = SYNTHETIC
        workload = "synthetic " + ", ".join(f"{k[10:]}={v}" for k, v in SYNTHETIC.items())
    else:
        routerbench = DATA_DIR / "routerbench"
        if not routerbench.is_dir():
            raise SystemExit(f"no RouterBench data in {routerbench}; use --synthetic")
        sources = {"routerbench_dir": str(routerbench), "synthetic_queries": 0}
        workload = f"RouterBench ({routerbench}) + 9 simulated users"
    work = Path(tempfile.mkdtemp(prefix="prouter-dagster-bench-"))
    embedding_model = (
        HashingEmbeddings()
        if args.synthetic
        else SentenceTransformerEmbeddings(
            cache_path=args.embedding_cache or str(work / "embedding-cache.sqlite")
        )
    )
    with fresh_store_url(args.backend) as (url, user, password, _, _):
        resources = {
            "graph_store": GraphStoreResource(
                url=url, username=user or None, password=password or None
            ),
            "model_store": ModelStoreResource(directory=str(work / "models")),
            "embedding_model": embedding_model,
            "device": DeviceResource(device=args.device),
        }
        run_config = {
            "ops": {
                "interaction_sources": {"config": sources},
                "simulated_users": {"config": {"users": 0 if args.synthetic else 9}},
                "trained_model": {"config": {"epochs": args.epochs}},
            }
        }
        (work / "home").mkdir()
        timings = []
        with dg.DagsterInstance.local_temp(str(work / "home")) as instance:
            for label in ("first run", "second run"):
                t0 = time.perf_counter()
                result = dg.materialize(
                    [*PIPELINE_ASSETS, *ALL_CHECKS],
                    run_config=run_config,
                    resources=resources,
                    instance=instance,
                    raise_on_error=False,
                )
                timings.append((label, time.perf_counter() - t0, step_seconds(result)))
                checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    print(
        f"workload: {workload}; backend {args.backend}; epochs {args.epochs}; device {args.device}"
    )
    print(f"checks passed (last run): {checks}")
    steps = list(timings[0][2])
    print(f"{'step':<42} " + " ".join(f"{label:>11}" for label, *_ in timings))
    for step in steps:
        print(f"{step:<42} " + " ".join(f"{t[2].get(step, float('nan')):>10.2f}s" for t in timings))
    print(
        f"{'run wall time (incl. Dagster overhead)':<42} "
        + " ".join(f"{t[1]:>10.2f}s" for t in timings)
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--synthetic", action="store_true", help="small synthetic workload, hashing embedder"
    )
    parser.add_argument("--backend", choices=["ladybug", "neo4j"], default="ladybug")
    parser.add_argument("--epochs", type=int, default=100, help="GNN epochs (default 100)")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    parser.add_argument(
        "--embedding-cache",
        help="An embedding cache (sqlite) to reuse; default: a fresh one (cold embedding)",
    )
    run(parser.parse_args())


if __name__ == "__main__":
    main()
