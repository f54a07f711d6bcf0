"""The main job end to end on the embedded default: synthetic workload -> graph -> summary.

Later stages (training, routing, evaluation) join here as they are built.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from graphdb.ingest import ingest_files
from graphdb.store import GraphStore
from prouter.errors import ConfigError
from prouter.synthetic import generate

__all__ = ["run_demo", "write_canonical"]


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
    workdir: Path = Path("prouter-data"),
) -> None:
    """Generate, write, ingest, embed and summarise a synthetic workload."""
    t0 = time.perf_counter()
    workload = generate(n_queries=queries, n_users=users, n_llms=llms, seed=seed)
    path = workdir / f"synthetic-{queries}q-{users}u-{llms}l-seed{seed}.jsonl"
    n = write_canonical(workload.records(), path)
    click.echo(f"1. generated {n} canonical interaction records -> {path}")
    report = ingest_files(store, [path])
    click.echo(f"2. ingested into {store!r} ({time.perf_counter() - t0:.1f}s so far)")
    for line in report.lines():
        click.echo(f"   {line}")
    from prouter.embeddings import Embedder, embed_graph

    with Embedder(cache_path=workdir / "embedding-cache.sqlite") as embedder:
        embedded = embed_graph(store, embedder)
        click.echo(
            f"3. embedded texts with {embedder.model_id} ({embedder.dim}-d, offline): "
            + ", ".join(f"{label} {n}" for label, n in embedded.items())
            + f" ({embedder.misses} encoded, {embedder.hits} from the cache)"
        )
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
    for user in (workload.user_ids[0], workload.user_ids[-1]):
        shares = store.query("user_choice_share", user_id=user).to_pylist()[:3]
        top = ", ".join(f"{r['llm_id']} {r['share']:.0%}" for r in shares)
        click.echo(f"   {user}: {top}")
    click.echo(f"done in {time.perf_counter() - t0:.1f}s")
