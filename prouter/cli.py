"""The ``prouter`` command line.

Heavy libraries (torch, dagster, the database drivers) are imported inside the
commands that need them, so ``prouter --help`` stays fast.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from prouter.errors import ProuterError

if TYPE_CHECKING:
    from graphdb.store import GraphStore

DEFAULT_STORE = "ladybug:prouter-data/graph.lbug"


@dataclass
class Settings:
    """Where the graph lives; built once by the root group from options and env vars."""

    store: str
    username: str | None
    password: str | None
    database: str | None

    def open(self, *, read_only: bool = False) -> GraphStore:
        """Open the configured store, turning library errors into CLI errors."""
        from graphdb.store import open_store

        url = self.store
        if url == "neo4j":
            import os

            url = os.environ.get("NEO4J_URI", "")
            if not url:
                raise click.UsageError("--store neo4j needs NEO4J_URI to be set")
        try:
            return open_store(
                url,
                username=self.username,
                password=self.password,
                database=self.database,
                read_only=read_only,
            )
        except ProuterError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--store",
    envvar="PROUTER_STORE",
    default=DEFAULT_STORE,
    show_default=True,
    help="Graph store: 'ladybug:PATH' (embedded, default) or a Neo4j URI such as "
    "bolt://127.0.0.1:7687; 'neo4j' means $NEO4J_URI. Env: PROUTER_STORE.",
)
@click.option(
    "--neo4j-user",
    envvar="NEO4J_USERNAME",
    default="neo4j",
    show_default=True,
    help="Neo4j user. Env: NEO4J_USERNAME.",
)
@click.option(
    "--neo4j-password",
    envvar="NEO4J_PASSWORD",
    default=None,
    help="Neo4j password. Env: NEO4J_PASSWORD.",
)
@click.option(
    "--neo4j-database",
    envvar="NEO4J_DATABASE",
    default=None,
    help="Neo4j database name (server default if unset). Env: NEO4J_DATABASE.",
)
@click.pass_context
def cli(
    ctx: click.Context,
    store: str,
    neo4j_user: str,
    neo4j_password: str | None,
    neo4j_database: str | None,
) -> None:
    """PersonalizedRouter: route each user's queries to the LLM they would want.

    Interaction data lives in a property graph (embedded LadybugDB by default,
    or Neo4j); a graph neural network learns per-user routing from it.

    Example:

        prouter demo
    """
    ctx.obj = Settings(store, neo4j_user, neo4j_password, neo4j_database)


@cli.command()
@click.option("--queries", default=2_000, show_default=True, help="Synthetic queries to make.")
@click.option("--users", default=9, show_default=True, help="Simulated users.")
@click.option("--llms", default=10, show_default=True, help="Candidate LLMs.")
@click.option("--seed", default=0, show_default=True, help="Random seed.")
@click.pass_obj
def demo(settings: Settings, queries: int, users: int, llms: int, seed: int) -> None:
    """Run the main job end to end on a seeded synthetic workload.

    Generates a workload (LLMs with per-task skill and price, queries of
    varying difficulty, users with different cost/quality weights), writes it
    as a canonical interaction file, ingests it into the store, and prints
    what the graph holds. Re-running it converges to the same graph.

    Example:

        prouter demo --queries 500 --users 9
    """
    from prouter.demo import run_demo

    with settings.open() as store:
        _fail_on_domain_errors(run_demo, store, queries=queries, users=users, llms=llms, seed=seed)


@cli.group()
def ingest() -> None:
    """Load interaction data into the graph."""


@ingest.command("canonical")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--skip-invalid",
    is_flag=True,
    help="Load the valid records and write the rejected ones, with reasons, to --report. "
    "Without it one bad record rejects the whole input and nothing is written.",
)
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("rejected.jsonl"),
    show_default=True,
    help="Where --skip-invalid writes rejected records (JSONL).",
)
@click.pass_obj
def ingest_canonical(
    settings: Settings, files: tuple[Path, ...], skip_invalid: bool, report: Path
) -> None:
    """Ingest canonical interaction files (.csv, .jsonl, .parquet).

    The format is described in docs/canonical-format.md. Re-ingesting the
    same files changes nothing.

    Example:

        prouter ingest canonical interactions.csv --skip-invalid --report bad.jsonl
    """
    from graphdb.ingest import ingest_files

    with settings.open() as store:
        result = _fail_on_domain_errors(
            ingest_files, store, list(files), skip_invalid=skip_invalid, report_path=report
        )
    click.echo("\n".join(result.lines()))


@cli.group()
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
    from prouter.synthetic import generate as make

    try:
        workload = make(n_queries=queries, n_users=users, n_llms=llms, n_tasks=tasks, seed=seed)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    n = _fail_on_domain_errors(write_canonical, workload.records(), out)
    click.echo(f"wrote {n} records to {out}")


@cli.group()
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


@cli.group()
def neo4j() -> None:
    """Run a local Neo4j 5.26 Community server (for tests and local use).

    The server jars come from Maven Central (needs Java 17 and Maven); it
    listens on 127.0.0.1 only. Its files live in $PROUTER_NEO4J_HOME
    (default: .neo4j in the repository).
    """


@neo4j.command("start")
def neo4j_start() -> None:
    """Start the local server (or reuse a running one) and print its settings.

    Example:

        eval "$(prouter neo4j start)"   # sets NEO4J_URI, NEO4J_USERNAME, NEO4J_PASSWORD
    """
    from prouter import neo4j_local

    try:
        info = neo4j_local.start()
    except (RuntimeError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(neo4j_local.env_lines(info))


@neo4j.command("stop")
def neo4j_stop() -> None:
    """Stop the local server; leaves no process behind."""
    from prouter import neo4j_local

    click.echo("stopped" if neo4j_local.stop() else "no local Neo4j server was running")


@neo4j.command("status")
def neo4j_status() -> None:
    """Print the settings of the running local server, or exit 1 when none runs."""
    from prouter import neo4j_local

    info = neo4j_local.status()
    if info is None:
        click.echo("no local Neo4j server is running")
        sys.exit(1)
    click.echo(neo4j_local.env_lines(info))


def _fail_on_domain_errors(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    """Call ``fn``; a ProuterError becomes a clean CLI error (exit 1), not a traceback."""
    try:
        return fn(*args, **kwargs)
    except ProuterError as exc:
        raise click.ClickException(str(exc)) from exc


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="prouter")
