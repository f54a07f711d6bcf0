"""`prouter serve`: the OpenAI-compatible routing gateway; `prouter keys`: its API keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from prouter.commands.common import Settings, domain_errors
from prouter.commands.route import service_options

__all__ = ["keys", "serve"]

DEFAULT_KEYS = Path("prouter-data/gateway-keys.json")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=8765, show_default=True, type=click.IntRange(0, 65535), help="0: any free."
)
@click.option(
    "--upstreams",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="JSON/TOML file: LLM id -> base_url, model, api_key_env, prices per 1k tokens.",
)
@click.option(
    "--keys",
    "keys_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_KEYS,
    show_default=True,
    help="API key file (`prouter keys create`); when it exists, every request needs a key.",
)
@click.option("--record/--no-record", default=True, show_default=True, help="Record traffic.")
@click.option(
    "--record-interval",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0.05, 60),
    help="Seconds between batched graph writes (what a hard crash can lose).",
)
@click.option(
    "--reload-interval",
    default=30.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds between checks for a newer trained model (0: only POST /admin/reload).",
)
@click.option(
    "--max-attempts",
    default=3,
    show_default=True,
    type=click.IntRange(1, 10),
    help="LLMs tried per request (fallback to the next-ranked on 5xx/timeout).",
)
@click.option(
    "--upstream-timeout", default=60.0, show_default=True, type=click.FloatRange(0.1), help="s."
)
@click.option(
    "--max-body", default=1 << 20, show_default=True, type=click.IntRange(1), help="Bytes."
)
@service_options
@click.pass_obj
def serve(
    settings: Settings,
    host: str,
    port: int,
    upstreams: Path | None,
    keys_file: Path,
    record: bool,
    record_interval: float,
    reload_interval: float,
    max_attempts: int,
    upstream_timeout: float,
    max_body: int,
    **service: Any,
) -> None:
    """Serve an OpenAI-compatible routing gateway that records what it serves.

    Loads the latest trained router (or --model) and the embedding model once,
    then, until SIGINT or SIGTERM (which flush the recorded traffic):

    \b
      POST /v1/chat/completions  model "prouter" routes (or "prouter:VERSION");
                                 an LLM id of --upstreams passes through
      GET  /v1/models            POST /route (as `prouter route --json`)
      POST /feedback             thumbs, rating, chosen, pairwise preference
      GET  /health, /metrics     POST /admin/reload (pick up a newer model)

    Every chat request is recorded in the graph (query, ASKED, ROUTED_TO with
    the model version, ANSWERED_BY with real tokens, cost, latency, status),
    written in batches off the request path. Exits 1 when no model has been
    trained yet.

    Example:

        prouter serve --port 8765 --upstreams upstreams.json
    """
    import logging

    from prouter.gateway.server import StoreAccess, build_gateway, run
    from prouter.gateway.upstreams import load_upstreams
    from workloads.embeddings import Embedder

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    ups = domain_errors(load_upstreams, upstreams) if upstreams else {}
    model = service.pop("embedding_model") or settings.embedding_model
    embedder = domain_errors(Embedder, model, cache_path=None)
    service.pop("cache")
    service["model_dir"] = service.get("model_dir") or settings.model_dir
    access = StoreAccess(lambda read_only: settings.open(read_only=read_only))
    gw = domain_errors(
        build_gateway,
        access,
        embedder,
        upstreams=ups,
        keys=keys_file,
        record=record,
        record_interval=record_interval,
        reload_interval=reload_interval,
        max_attempts=max_attempts,
        upstream_timeout=upstream_timeout,
        max_body=max_body,
        **service,
    )
    for warning in gw.router.service.warnings:
        click.echo(f"Warning: {warning}", err=True)
    if gw.keys is None and host not in ("127.0.0.1", "::1", "localhost"):
        click.echo(
            f"warning: no API key file ({keys_file}): anyone reaching {host} may use it", err=True
        )

    def ready(bound_host: str, bound_port: int) -> None:
        click.echo(
            f"serving model {gw.router.version} on http://{bound_host}:{bound_port} "
            f"({len(ups)} upstreams; POST /v1/chat/completions, /route); Ctrl-C to stop"
        )

    try:
        run(gw, host, port, ready)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    click.echo("stopped", err=True)


@click.group()
def keys() -> None:
    """API keys of `prouter serve` (only their hashes are stored).

    Example:

        prouter keys create --user u3
    """


_file_option = click.option(
    "--file",
    "path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_KEYS,
    show_default=True,
    help="The key file `prouter serve --keys` reads.",
)


@keys.command("create")
@click.option("--user", help="Bind the key to this user id (requests act as that user).")
@click.option("--admin", is_flag=True, help="May call /admin endpoints.")
@_file_option
def keys_create(user: str | None, admin: bool, path: Path) -> None:
    """Create a key; it is printed once (only its hash is stored).

    Example:

        prouter keys create --user u3
    """
    from prouter.gateway.keys import create_key

    secret, entry = domain_errors(create_key, path, user=user, admin=admin)
    click.echo(secret)
    click.echo(f"created {entry.id}" + (f" for user {user}" if user else ""), err=True)


@keys.command("list")
@_file_option
def keys_list(path: Path) -> None:
    """List keys: id, bound user, admin, created, revoked.

    Example:

        prouter keys list
    """
    from prouter.gateway.keys import list_keys

    for k in domain_errors(list_keys, path):
        state = f"revoked {k.revoked_at}" if k.revoked_at else "active"
        admin = " admin" if k.admin else ""
        click.echo(f"{k.id}  user={k.user or '-'}{admin}  created {k.created_at}  {state}")


@keys.command("revoke")
@click.argument("key_id")
@_file_option
def keys_revoke(key_id: str, path: Path) -> None:
    """Revoke a key by id (a running gateway refuses it from the next request).

    Example:

        prouter keys revoke key-1a2b3c4d
    """
    from prouter.gateway.keys import revoke_key

    entry = domain_errors(revoke_key, path, key_id)
    click.echo(f"revoked {entry.id}")
