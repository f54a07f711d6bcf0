"""The ``prouter`` command line: the root group and its settings.

Each command group lives in ``prouter/commands/``. Heavy libraries (torch,
sentence-transformers, the database drivers) are imported inside the commands
that need them, so ``prouter --help`` stays fast.
"""

from __future__ import annotations

import click

from prcore.settings import (
    DEFAULT_NEIGHBOURS_APPROX_FROM,
    DEFAULT_NEIGHBOURS_INDEX_DIR,
    DEFAULT_STORE,
)
from prouter.commands import (
    cypher,
    data,
    ingest,
    models,
    neo4j,
    report,
    route,
    router,
    serve,
    simulate,
)
from prouter.commands.common import Settings, domain_errors

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--store",
    help="Graph store: 'ladybug:PATH' (embedded) or a Neo4j URI such as "
    f"bolt://127.0.0.1:7687; 'neo4j' means $NEO4J_URI. Default: {DEFAULT_STORE}. "
    "Env: PROUTER_STORE.",
)
@click.option(
    "--neo4j-user",
    help="Neo4j user (default: neo4j). Env: NEO4J_USERNAME.",
)
@click.option(
    "--neo4j-password",
    help="Neo4j password. Env: NEO4J_PASSWORD.",
)
@click.option(
    "--neo4j-database",
    help="Neo4j database name (server default if unset). Env: NEO4J_DATABASE.",
)
@click.option(
    "--neighbours",
    type=click.Choice(["auto", "exact", "approx"]),
    help="Query-query nearest-neighbour search: exact, approximate (HNSW), or auto "
    f"(approximate from {DEFAULT_NEIGHBOURS_APPROX_FROM:,} base rows; default). "
    "Approximate indexes are kept for the next process in PROUTER_NEIGHBOURS_INDEX_DIR "
    f"(default {DEFAULT_NEIGHBOURS_INDEX_DIR}; empty: none). "
    "Env: PROUTER_NEIGHBOURS, PROUTER_NEIGHBOURS_APPROX_FROM.",
)
@click.pass_context
def cli(
    ctx: click.Context,
    store: str | None,
    neo4j_user: str | None,
    neo4j_password: str | None,
    neo4j_database: str | None,
    neighbours: str | None,
) -> None:
    """PersonalizedRouter: route each user's queries to the LLM they would want.

    Interaction data lives in a property graph (embedded LadybugDB by default,
    or Neo4j); a graph neural network learns per-user routing from it.

    Example:

        prouter demo
    """
    ctx.obj = domain_errors(
        Settings.load,
        store=store,
        neo4j_username=neo4j_user,
        neo4j_password=neo4j_password,
        neo4j_database=neo4j_database,
        neighbours=neighbours,
    )
    from gnn import neighbours as search

    search.configure(
        ctx.obj.neighbours,
        ctx.obj.neighbours_approx_from,
        index_dir=ctx.obj.neighbours_index_dir,
    )


cli.add_command(data.demo)
cli.add_command(ingest.ingest)
cli.add_command(data.embed)
cli.add_command(simulate.simulate)
cli.add_command(router.train)
cli.add_command(router.evaluate)
cli.add_command(data.generate)
cli.add_command(data.graph)
cli.add_command(neo4j.neo4j)
cli.add_command(cypher.cypher)
cli.add_command(route.route)
cli.add_command(serve.serve)
cli.add_command(serve.keys)
cli.add_command(report.report)
cli.add_command(models.models)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="prouter")
