"""The main job end to end on the embedded default.

Synthetic workload -> canonical file -> graph -> embeddings -> a look at the
graph -> train the GNN router (validation selection, test once) -> write its
predictions and evaluations back -> route a new query for a known and a new user.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from graphdb.ingest import ingest_files, write_stats_lines
from graphdb.store import GraphStore
from prcore.errors import ConfigError
from workloads.synthetic import generate

if TYPE_CHECKING:
    from gnn.serving import RoutingService

__all__ = ["WORKDIR", "run_demo", "write_canonical"]

WORKDIR = Path("prouter-data")  # the demo's files: canonical workload, models, cache


def write_canonical(records: Sequence[dict[str, Any]], path: Path) -> int:
    """Write canonical records as .csv, .jsonl or .parquet (by suffix); returns the count."""
    import pandas as pd

    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        with path.open("w", encoding="utf-8") as fh:
            for record in records:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    elif suffix == ".csv":
        pd.DataFrame.from_records(records).to_csv(path, index=False)
    elif suffix == ".parquet":
        pd.DataFrame.from_records(records).to_parquet(path, index=False)
    else:
        raise ConfigError(f"cannot write {suffix!r} files; valid types: .csv, .jsonl, .parquet")
    return len(records)


def run_demo(
    store: GraphStore,
    *,
    queries: int,
    users: int,
    llms: int,
    seed: int,
    epochs: int = 100,
    workdir: Path = WORKDIR,
) -> RoutingService:
    """Generate, ingest, embed, train, write back and route (see the module docstring);
    the routing service of the trained model (built from ``store`` after its last write)."""
    t0 = time.perf_counter()
    workload = generate(n_queries=queries, n_users=users, n_llms=llms, seed=seed)
    path = workdir / f"synthetic-{queries}q-{users}u-{llms}l-seed{seed}.jsonl"
    n = write_canonical(workload.records(), path)
    click.echo(f"1. generated {n} canonical interaction records -> {path}")
    report = ingest_files(store, [path])
    click.echo(f"2. ingested into {store!r} ({time.perf_counter() - t0:.1f}s so far)")
    for line in report.lines():
        click.echo(f"   {line}")
    from workloads.embeddings import Embedder, embed_graph

    with Embedder(cache_path=workdir / "embedding-cache.sqlite") as embedder:
        embedded = embed_graph(store, embedder)
        click.echo(
            f"3. embedded texts with {embedder.model_id} ({embedder.dim}-d, offline): "
            + ", ".join(f"{label} {n}" for label, n in embedded.items())
            + f" ({embedder.misses} encoded, {embedder.hits} from the cache)"
        )
        _graph_tour(store, workload.user_ids)
        service = _train_and_route(store, embedder, workload, workdir, epochs=epochs, seed=seed)
    click.echo(f"done in {time.perf_counter() - t0:.1f}s")
    return service


def _graph_tour(store: GraphStore, user_ids: Sequence[str]) -> None:
    click.echo("4. what the graph holds:")
    for name, count in store.counts().items():
        click.echo(f"   {name:<12} {count:>8}")
    click.echo("5. LLM outcomes on one task (named query 'llm_outcomes_by_task'):")
    outcomes = store.query("llm_outcomes_by_task").to_pylist()
    first_task = outcomes[0]["task_id"] if outcomes else None
    for row in outcomes:
        if row["task_id"] == first_task:
            click.echo(
                f"   {row['task_id']:<10} {row['llm_id']:<16} perf {row['mean_performance']:.3f}"
                f"  cost ${row['mean_cost']:.6f}  (n={row['n']})"
            )
    click.echo("6. what the cheapest-minded and the quality-minded user chose:")
    for user in (user_ids[0], user_ids[-1]):
        shares = store.query("user_choice_share", user_id=user).to_pylist()[:3]
        top = ", ".join(f"{r['llm_id']} {r['share']:.0%}" for r in shares)
        click.echo(f"   {user}: {top}")


def _train_and_route(
    store: GraphStore, embedder: Any, workload: Any, workdir: Path, *, epochs: int, seed: int
) -> RoutingService:
    from gnn.pipeline import train_and_record
    from gnn.serving import RoutingService
    from prouter.commands.route import format_result

    result = train_and_record(
        store, seed=seed, model_dir=workdir / "models", config={"epochs": epochs}
    )
    test = result.metrics["test"]
    click.echo(
        f"7. trained {result.version} ({result.checkpoint}): test reward {test['reward']:.4f} "
        f"({test['reward_of_oracle']:.1%} of the oracle), accuracy {test['accuracy']:.3f}"
    )
    for line in write_stats_lines(result.written):
        click.echo(f"   {line}")
    service = RoutingService(store, embedder, model_dir=workdir / "models")
    text = "Write a Python function that merges two sorted lists."
    for user in (workload.user_ids[-1], "someone-new"):
        click.echo(f"8. prouter route --user {user} {text!r}")
        for line in format_result(service.route(user, text), top=3):
            click.echo(f"   {line}")
    return service
