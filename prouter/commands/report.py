"""`prouter report`: a Markdown report with plots from `prouter evaluate --json`."""

from __future__ import annotations

from pathlib import Path

import click

from prouter.commands.common import domain_errors

__all__ = ["report"]


@click.command()
@click.option(
    "--results",
    "results_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="JSON written by `prouter evaluate --json`.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("report"),
    show_default=True,
    help="Folder for report.md and its PNG plots (created).",
)
def report(results_path: Path, out: Path) -> None:
    """Write report.md with plots from an evaluation's JSON results.

    Plots the cost-quality plane per user (each router and baseline a
    point, with the frontier), the reward per user and router, and the
    new-user / new-LLM curves over k when the results have them.

    Example:

    \b
        prouter evaluate --settings general,new_user --json > results.json
        prouter report --results results.json --out report/
    """
    from gnn.reports.results import load_results, write_report

    results = domain_errors(load_results, results_path)
    written = domain_errors(write_report, results, out)
    click.echo(f"wrote {written.markdown} with {len(written.images)} plots")
