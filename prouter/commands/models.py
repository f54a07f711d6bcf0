"""`prouter models list` / `prouter models prune`: the trained versions and their retention."""

from __future__ import annotations

import json
from pathlib import Path

import click

from prouter.commands.common import Settings, domain_errors

__all__ = ["models"]

_MODEL_DIR = click.option(
    "--model-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where `prouter train` saved the checkpoints (default: prouter-data/models). "
    "Env: PROUTER_MODEL_DIR.",
)


@click.group()
def models() -> None:
    """List trained model versions, prune old ones."""


@models.command("list")
@_MODEL_DIR
@click.option("--json", "as_json", is_flag=True, help="Print the versions as JSON.")
@click.pass_obj
def list_(settings: Settings, model_dir: Path | None, as_json: bool) -> None:
    """Every model version in the graph or the model folder, newest first, with its
    ROUTED_TO / EVALUATED edge counts and files.

    Example:

    \b
        prouter models list
    """
    from gnn.retention import list_models

    with settings.open(read_only=True) as store:
        entries = domain_errors(list_models, store, model_dir or settings.model_dir)
    if as_json:
        click.echo(json.dumps([e.as_dict() for e in entries], indent=2))
        return
    if not entries:
        click.echo("no model versions")
    for e in entries:
        where = ("graph" if e.in_graph else "") + (
            ("+" if e.in_graph else "") + "checkpoint" if e.checkpoint else ""
        )
        where = where or "edges only"
        if e.orphaned:
            where += " (unfinished write-back: prune removes its edges)"
        click.echo(
            f"{e.version}  {e.created_at or '-'}  {where}  "
            f"ROUTED_TO {e.routed}  EVALUATED {e.evaluated}  few-shot caches {len(e.caches)}"
        )


@models.command()
@_MODEL_DIR
@click.option(
    "--keep",
    type=click.IntRange(min=1),
    required=True,
    help="How many of the newest versions to keep (at least 1).",
)
@click.option("--dry-run", is_flag=True, help="Print what would be removed; change nothing.")
@click.pass_obj
def prune(settings: Settings, model_dir: Path | None, keep: int, dry_run: bool) -> None:
    """Remove all but the KEEP newest model versions: their ROUTED_TO and EVALUATED
    edges, RouterModel nodes, checkpoints and few-shot caches. The latest RouterModel
    (the one serving uses) is never removed. The ROUTED_TO edges of unfinished
    write-backs (a version without a RouterModel node, e.g. `prouter train`
    interrupted while writing back) are always removed.

    Example:

    \b
        prouter models prune --keep 3 --dry-run
        prouter models prune --keep 3
    """
    from gnn.retention import prune_models

    with settings.open(read_only=dry_run) as store:
        report = domain_errors(
            prune_models, store, model_dir or settings.model_dir, keep=keep, dry_run=dry_run
        )
    verb = "would remove" if dry_run else "removed"
    click.echo(f"kept {len(report.kept)} versions; {verb} {len(report.removed)}")
    for version in report.removed:
        click.echo(f"  {version}")
    if report.orphaned:
        n = len(report.orphaned)
        click.echo(
            f"{verb} the {sum(report.orphaned.values())} ROUTED_TO edges of {n} unfinished "
            f"write-back{'s' if n != 1 else ''} (no RouterModel node): "
            + ", ".join(report.orphaned)
        )
    click.echo("  " + "  ".join(f"{k} {v}" for k, v in report.deleted.items()))
