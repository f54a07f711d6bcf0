"""`prouter serve`: the routing service as a small local HTTP JSON API."""

from __future__ import annotations

from typing import Any

import click

from prouter.commands.common import Settings, domain_errors
from prouter.commands.route import open_service, service_options

__all__ = ["serve"]


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=8765, show_default=True, type=click.IntRange(0, 65535), help="0: any free."
)
@service_options
@click.pass_obj
def serve(settings: Settings, host: str, port: int, **service: Any) -> None:
    """Serve routing lookups over HTTP, keeping model, graph and embedder warm.

    Loads the latest trained router (or --model), the graph context and the
    embedding model once, then answers JSON requests until SIGINT or SIGTERM:

    \b
      GET  /health  model version, tasks, LLMs, graph sizes
      POST /route   {"user": "u3", "query": "text", "task": "math", "top": 3}
                    -> ranked LLMs and the explanation (as `prouter route --json`)

    Errors come back as {"error": ...} with status 400 (bad request, unknown
    task), 404 (unknown path) or 500. The graph is read at start-up; restart
    the server to see newer models or decisions. Exits 1 when no model has
    been trained yet.

    Example:

        prouter serve --port 8765
    """
    import logging

    from prouter.http_api import make_server, serve_until_signalled

    rs = open_service(settings, **service)
    domain_errors(rs.warm_up)
    try:
        server = make_server(rs, host, port)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    bound_host, bound_port = server.server_address[:2]

    def ready() -> None:
        click.echo(
            f"serving model {rs.version} on http://{bound_host}:{bound_port} "
            "(POST /route, GET /health); Ctrl-C to stop",
            err=False,
        )

    serve_until_signalled(server, on_ready=ready)
    click.echo("stopped", err=True)
