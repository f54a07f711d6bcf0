"""`prouter neo4j`: a local Neo4j server for tests and development."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from prouter.commands.common import domain_errors


@click.group()
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
    import neo4j_local

    try:
        info = neo4j_local.start()
    except (RuntimeError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(neo4j_local.env_lines(info))


@neo4j.command("stop")
def neo4j_stop() -> None:
    """Stop the local server; leaves no process behind."""
    import neo4j_local

    click.echo("stopped" if neo4j_local.stop() else "no local Neo4j server was running")


@neo4j.command("status")
def neo4j_status() -> None:
    """Print the settings of the running local server, or exit 1 when none runs."""
    import neo4j_local

    info = neo4j_local.status()
    if info is None:
        click.echo("no local Neo4j server is running")
        sys.exit(1)
    click.echo(neo4j_local.env_lines(info))


@neo4j.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
def neo4j_import(files: tuple[Path, ...]) -> None:
    """Bulk-load canonical files into the local server's empty database.

    Validates the files as `prouter ingest canonical` does (all or nothing),
    then stops the server, runs `neo4j-admin database import full` of the same
    Neo4j distribution, starts it again (same port and password) and applies
    the schema. Refuses a database that already holds data.

    Example:

    \b
        prouter neo4j start
        prouter neo4j import interactions.parquet
    """
    from prouter.bulk_load import bulk_load

    report = domain_errors(bulk_load, list(files))
    click.echo("\n".join(report.lines()))
