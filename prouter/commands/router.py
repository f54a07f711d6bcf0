"""`prouter train` and `prouter evaluate`: the GNN router and its comparison table."""

from __future__ import annotations

import json
from pathlib import Path

import click

from prouter.commands.common import Settings, comma_list, domain_errors, echo_written


@click.command()
@click.option("--seed", default=0, show_default=True, help="Seed of the split and the model.")
@click.option("--epochs", default=300, show_default=True, help="Most training epochs.")
@click.option("--hidden", default=64, show_default=True, help="Hidden size.")
@click.option(
    "--device", default="auto", show_default=True, help="auto (CUDA when present), cpu or cuda."
)
@click.option("--tasks", help="Comma-separated task ids to train on (default: all).")
@click.option(
    "--model-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("prouter-data/models"),
    show_default=True,
    help="Where checkpoints are saved.",
)
@click.option(
    "--write-back/--no-write-back",
    default=True,
    show_default=True,
    help="Write the RouterModel node, test predictions and evaluations to the graph.",
)
@click.pass_obj
def train(
    settings: Settings,
    seed: int,
    epochs: int,
    hidden: int,
    device: str,
    tasks: str | None,
    model_dir: Path,
    write_back: bool,
) -> None:
    """Train the personalized GNN router; select on validation, test once.

    Saves a versioned checkpoint (config, data snapshot, metrics) and, by
    default, records it as a RouterModel node with its test predictions
    (ROUTED_TO) and per-user evaluation (EVALUATED).

    Example:

        prouter train --seed 0 --device auto
    """
    from gnn.service import train_and_record

    with settings.open() as store:
        result = domain_errors(
            train_and_record,
            store,
            seed=seed,
            tasks=comma_list(tasks),
            model_dir=model_dir,
            write_back=write_back,
            config={"epochs": epochs, "hidden": hidden, "device": device},
        )
    click.echo(f"model {result.version} saved to {result.checkpoint}")
    for part, metrics in result.metrics.items():
        click.echo(
            f"  {part:<5} "
            + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k != "n")
            + f"  (n={metrics['n']})"
        )
    if result.written:
        echo_written(result.written)


@click.command()
@click.option(
    "--routers",
    default="all",
    show_default=True,
    help="Comma-separated router names, or 'all' (gnn, gnn_nonpersonal and baselines).",
)
@click.option("--seeds", default="0,1,2", show_default=True, help="Comma-separated seeds.")
@click.option("--tasks", help="Comma-separated task ids (default: all).")
@click.option("--epochs", default=300, show_default=True, help="Most epochs of the GNNs.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_obj
def evaluate(
    settings: Settings, routers: str, seeds: str, tasks: str | None, epochs: int, as_json: bool
) -> None:
    """Compare the GNN router with the baselines on the same splits and metrics.

    Each seed gives one split by query (a data set's own test split is kept);
    every router is fitted on its training part, selected on validation and
    evaluated once on the test part. Prints mean ± std over seeds.

    Example:

        prouter evaluate --routers gnn,mlp,knn,best_single_user --seeds 0,1,2
    """
    from gnn.data import load_routing_data
    from gnn.experiment import compare_routers, router_registry

    names = list(router_registry()) if routers == "all" else comma_list(routers) or []
    seed_list = [int(s) for s in seeds.split(",")]
    with settings.open(read_only=True) as store:
        data = domain_errors(load_routing_data, store, tasks=comma_list(tasks))

    def progress(name: str, seed: int, metrics) -> None:  # type: ignore[no-untyped-def]
        if not as_json:
            click.echo(f"  seed {seed} {name:<22} test reward {metrics.reward:.4f}", err=True)

    gnn_config = {"epochs": epochs}
    comparison = domain_errors(
        compare_routers,
        data,
        names,
        seed_list,
        on_result=progress,
        configs={"gnn": gnn_config, "gnn_nonpersonal": gnn_config},
    )
    if as_json:
        click.echo(json.dumps({"seeds": seed_list, "routers": comparison.summary()}, indent=2))
    else:
        click.echo(
            f"{len(data.query_ids)} queries, {data.num_llms} LLMs, {len(data.user_ids)} "
            f"users; test metrics, mean±std over seeds {seed_list}"
        )
        click.echo(comparison.table())
