"""`prouter route`: rank the LLMs for a user's query with the latest trained router."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from prouter.commands.common import Settings, domain_errors

if TYPE_CHECKING:
    from gnn.light.refresh import SnapshotTarget
    from gnn.serving import RouteResult, RoutingService

__all__ = [
    "format_result",
    "open_route_service",
    "open_service",
    "refresh_route_snapshot",
    "route",
    "service_options",
]

F = TypeVar("F", bound=Callable[..., Any])
BATCH_CHUNK = 64  # requests per embedding call and forward pass in batch mode

EXIT_STATUS = """
\b
Exit status:
  0  routed
  1  domain error: no model trained yet, unknown task, bad input
     file or request (one-line message, no traceback)
  2  usage error (bad or missing options)
"""


def service_options(fn: F) -> F:
    """The options that pick the model, the embedder and the device (route and serve)."""
    options = [
        click.option(
            "--model",
            "version",
            metavar="VERSION",
            help="Model version to use (default: the latest RouterModel in the graph).",
        ),
        click.option(
            "--model-dir",
            type=click.Path(file_okay=False, path_type=Path),
            default=None,
            help="Where `prouter train` saved the checkpoints (default: prouter-data/models). "
            "Env: PROUTER_MODEL_DIR.",
        ),
        click.option(
            "--embedding-model",
            default=None,
            help="Sentence-transformers model that embedded the graph (default: the bundled "
            "all-MiniLM-L6-v2, offline). "
            "Env: PROUTER_EMBEDDING_MODEL.",
        ),
        click.option(
            "--cache",
            type=click.Path(dir_okay=False, path_type=Path),
            default=Path("prouter-data/embedding-cache.sqlite"),
            show_default=True,
            help="Embedding cache (texts embedded before are not encoded again).",
        ),
        click.option("--device", default="cpu", show_default=True, help="cpu, cuda or auto."),
        click.option(
            "--similar",
            default=3,
            show_default=True,
            type=click.IntRange(0),
            help="Similar past queries listed in each explanation.",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def open_service(
    settings: Settings,
    *,
    version: str | None,
    model_dir: Path | None,
    embedding_model: str | None,
    cache: Path,
    device: str,
    similar: int,
) -> RoutingService:
    """Build the routing service from the store (closed again once read) and the embedder."""
    from gnn.serving import RoutingService
    from workloads.embeddings import Embedder

    embedder = domain_errors(
        Embedder, embedding_model or settings.embedding_model, cache_path=cache
    )
    with settings.open(read_only=True) as store:
        service = domain_errors(
            RoutingService,
            store,
            embedder,
            model_dir=model_dir or settings.model_dir,
            version=version,
            device=device,
            similar=similar,
        )
    for warning in service.warnings:
        click.echo(f"Warning: {warning}", err=True)
    return service


def open_route_service(
    settings: Settings, *, verbose: bool = False, **service: Any
) -> RoutingService:
    """The routing service of `prouter route`: from the route snapshot of an embedded
    store when it is current (``gnn.light``: no torch, a fast cold start), else the full
    one (:func:`open_service`), which then writes the snapshot for the next route."""
    import time

    from gnn.light.refresh import NoLightPath, snapshot_target
    from prcore.errors import ProuterError

    start = time.perf_counter()

    def note(message: str) -> None:
        if verbose:
            click.echo(f"route: {message} ({time.perf_counter() - start:.2f} s)", err=True)

    try:  # stamped here, before the store is read
        target = snapshot_target(
            domain_errors(settings.store_url),
            service["model_dir"] or settings.model_dir,
            embedding_model=service["embedding_model"] or settings.embedding_model,
            device=service["device"],
        )
    except NoLightPath as exc:
        target = None
        note(f"full path: {exc}")
    if target is not None:
        light = _light_service(settings, target, service, note)
        if light is not None:
            note(f"light path: snapshot {target.path}")
            for warning in light.warnings:
                click.echo(f"Warning: {warning}", err=True)
            return light
    rs = open_service(settings, **service)
    note("full path: service built")
    if target is not None:
        try:
            target.write(rs, latest=service["version"] is None)
            note(f"snapshot written: {target.path}")
        except (OSError, ValueError, ProuterError) as exc:
            note(f"no snapshot written: {exc}")
    return rs


def refresh_route_snapshot(
    settings: Settings, model_dir: Path, service: RoutingService | None = None
) -> Path | None:
    """Write the route snapshot of the configured embedded store's latest model (after
    `prouter train`), so that the next `prouter route` starts light; its path, or None
    where there is no light path (Neo4j, another embedding model, another router).
    ``service``: that model's full service, already built from the store, which must
    be closed by now (`prouter demo`): it is stamped now instead of read again."""
    from gnn.light.refresh import snapshot_target, write_latest_snapshot
    from prcore.errors import ProuterError
    from workloads.embeddings import Embedder

    try:
        target = snapshot_target(
            domain_errors(settings.store_url), model_dir, embedding_model=settings.embedding_model
        )
        if service is not None:
            return target.write(service, latest=True)
        embedder = Embedder(settings.embedding_model)
        write_latest_snapshot(lambda: settings.open(read_only=True), target, embedder)
    except (OSError, ValueError, ProuterError, click.ClickException):
        return None
    return target.path


def _light_service(
    settings: Settings,
    target: SnapshotTarget,
    service: dict[str, Any],
    note: Callable[[str], None],
) -> RoutingService | None:
    """The service of the target's snapshot when it is current, or None (and why, with
    --verbose)."""
    from gnn.light.snapshot import load_service
    from prcore.errors import ProuterError
    from workloads.embeddings import Embedder

    try:
        model = service["embedding_model"] or settings.embedding_model
        embedder = Embedder(model, cache_path=service["cache"], numpy_encoder=True)
        light = load_service(
            target.path,
            model_dir=target.model_dir,
            stamp=target.stamp,
            embedder=embedder,
            version=service["version"],
            similar=service["similar"],
        )
    except ProuterError as exc:
        note(f"full path: {exc}")
        return None
    return light


def _one_blas_thread(rs: RoutingService) -> AbstractContextManager[Any]:
    """One BLAS thread while the light path routes one query: its matrices are small,
    and BLAS threads only add start-up and, on a busy machine, contention (measured:
    about 1 s instead of 0.05 s per query under load)."""
    if not getattr(rs.router, "light", False):
        return nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="blas")


def _money(value: float | None) -> str:
    return "?" if value is None else f"${value:.6f}"


def _num(value: float | None) -> str:
    return "?" if value is None else f"{value:.3f}"


_COST_NOTES = {
    "estimated": "costs estimated from the LLMs' prices and the query's length "
    "(no logged costs for this task: votes only)",
    "unknown": "cost unknown (no logged costs for this task and not every LLM has a price): "
    "left out of the utility",
}


def format_result(result: RouteResult, top: int | None = None) -> list[str]:
    """Human-readable lines: the ranking, then the explanation."""
    head = f"user {result.user} · model {result.model_version} · task {result.task}"
    lines = [head + (" (inferred)" if result.task_inferred else "")]
    if result.explanation.task_note:
        lines.append(f"  {result.explanation.task_note}")
    lines.append(f"{'rank':>4}  {'llm':<24} {'utility':>8} {'performance':>11} {'cost':>12}")
    for r in result.ranking[:top] if top else result.ranking:
        lines.append(
            f"{r.rank:>4}  {r.llm_id:<24} {r.utility:>8.4f} {r.performance:>11.3f} "
            f"{_money(r.cost):>12}"
        )
    source = result.ranking[0].cost_source if result.ranking else "known"
    if source != "known":
        lines.append(_COST_NOTES[source])
    ex = result.explanation
    lines.append("")
    lines.append(ex.message)
    for p in ex.past_queries:
        choice = (
            f"chose {p.chosen_llm}: performance {_num(p.performance)}, cost {_money(p.cost)}"
            if p.chosen_llm
            else "no choice recorded"
        )
        choice += "".join(f"; preferred {win} over {lose}" for win, lose in p.preferred)
        text = (p.text or "")[:60]
        lines.append(f"  {p.similarity:.3f}  {p.query_id} [{p.task_id}] {text!r}  {choice}")
    for c in ex.prior_choices:
        users = ", ".join(c.users[:8]) + (", …" if len(c.users) > 8 else "")
        lines.append(f"  {c.llm_id:<24} {c.decisions:>4} decisions ({c.share:.0%}) by {users}")
    if ex.prior_queries:
        lines.append(f"  similar queries: {', '.join(ex.prior_queries)}")
    return lines


@click.command(epilog=EXIT_STATUS)
@click.argument("query", required=False)
@click.option("--user", "-u", help="Who asks (required unless every input record has a user).")
@click.option("--task", help="Task id of the query (default: inferred from similar queries).")
@click.option(
    "--top", default=5, show_default=True, type=click.IntRange(0), help="LLMs shown (0: all)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option(
    "--input",
    "input_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Batch mode: a .jsonl or .csv file of records with 'query' and optional "
    "'user' and 'task'.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Batch mode: write the results here as JSONL (default: stdout).",
)
@click.option(
    "--server",
    envvar="PROUTER_SERVER",
    metavar="URL",
    help="Ask a running `prouter serve` (e.g. http://127.0.0.1:8765; key from "
    "PROUTER_API_KEY); routes locally when it cannot be reached. Env: PROUTER_SERVER.",
)
@click.option(
    "--verbose",
    "-v",
    is_flag=True,
    help="Say on stderr which local path routed (the light snapshot or the full model) and why.",
)
@service_options
@click.pass_obj
def route(
    settings: Settings,
    query: str | None,
    user: str | None,
    task: str | None,
    top: int,
    as_json: bool,
    input_path: Path | None,
    output: Path | None,
    server: str | None,
    verbose: bool,
    **service: Any,
) -> None:
    """Rank the candidate LLMs for USER's QUERY with the latest trained router.

    Embeds the query, scores every LLM for this user (expected utility,
    performance and cost) and explains the ranking from the graph: the
    user's most similar past queries and what they chose there, or, for a
    new user, the known users' choices that the population prior reflects.
    With --input, routes every record of a JSONL or CSV file.

    On an embedded store, `prouter train` (and a local route that had to load
    the full model) writes a snapshot of what routing needs next to the
    checkpoints; routes read it instead of loading torch and the graph (a cold
    start of about a second) until the store changes.

    Example:

    \b
        prouter route --user u3 "What is 17% of 240?"
        prouter route --user u3 --task math --top 3 --json "What is 17% of 240?"
        prouter route --user u3 --input queries.jsonl --output routed.jsonl
        prouter route --server http://127.0.0.1:8765 --user u3 "What is 17% of 240?"
    """
    if (query is None) == (input_path is None):
        raise click.UsageError("give either a QUERY or --input FILE (not both)")
    if output is not None and input_path is None:
        raise click.UsageError("--output needs --input")
    if input_path is None and not user:
        raise click.UsageError("Missing option '--user'.")
    if input_path is not None:
        _route_file(settings, input_path, output, user, task, top, verbose, service)
        return
    if server:
        answer = _ask_server(server, user, query, task, top)  # type: ignore[arg-type]
        if answer is not None:
            if as_json:
                click.echo(json.dumps(answer, indent=2, ensure_ascii=False))
            else:
                click.echo("\n".join(format_result(_attrs(answer), None)))  # type: ignore[arg-type]
            return
    rs = open_route_service(settings, verbose=verbose, **service)
    with _one_blas_thread(rs):
        result = domain_errors(rs.route, user, query, task)
    if as_json:
        click.echo(
            json.dumps(result.to_dict(top or None), indent=2, ensure_ascii=False, allow_nan=False)
        )
    else:
        click.echo("\n".join(format_result(result, top or None)))


def _ask_server(
    server: str, user: str, query: str, task: str | None, top: int
) -> dict[str, Any] | None:
    """The gateway's answer to POST /route (None: not reachable, route locally)."""
    import os
    import urllib.error
    import urllib.request

    body = {"user": user, "query": query, "task": task, "top": top}
    request = urllib.request.Request(
        server.rstrip("/") + "/route",
        data=json.dumps({k: v for k, v in body.items() if v is not None}).encode(),
        headers={"Content-Type": "application/json"},
    )
    if os.environ.get("PROUTER_API_KEY"):
        request.add_header("Authorization", f"Bearer {os.environ['PROUTER_API_KEY']}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read())["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = f"status {exc.code}"
        raise click.ClickException(f"{server}: {message}") from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        click.echo(f"warning: {server} not reachable ({reason}); routing locally", err=True)
        return None


def _attrs(value: Any) -> Any:
    """JSON objects as attribute namespaces (what format_result reads)."""
    from types import SimpleNamespace

    if isinstance(value, dict):
        return SimpleNamespace(**{k: _attrs(v) for k, v in value.items()})
    if isinstance(value, list):
        return [_attrs(v) for v in value]
    return value


def _route_file(
    settings: Settings,
    path: Path,
    output: Path | None,
    user: str | None,
    task: str | None,
    top: int,
    verbose: bool,
    service: dict[str, Any],
) -> None:
    from tqdm.auto import tqdm

    from gnn.serving import RouteRequest
    from prouter.batch_io import read_requests, write_jsonl

    records = domain_errors(read_requests, path, user=user, task=task)
    rs = open_route_service(settings, verbose=verbose, **service)
    for n, _, _, what in records:  # fail before any work on an unknown task
        if what is not None and what not in rs.router.task_ids:
            raise click.ClickException(
                f"{path}:{n}: unknown task {what!r}; the model knows: "
                f"{', '.join(rs.router.task_ids)}"
            )
    out = output.open("w", encoding="utf-8") if output else sys.stdout
    try:
        with tqdm(total=len(records), desc="routing", unit="query", disable=None) as bar:
            for start in range(0, len(records), BATCH_CHUNK):
                chunk = records[start : start + BATCH_CHUNK]
                results = domain_errors(
                    rs.route_many, [RouteRequest(u, q, t) for _, u, q, t in chunk]
                )
                write_jsonl(
                    (
                        {"line": n} | r.to_dict(top or None)
                        for (n, *_), r in zip(chunk, results, strict=True)
                    ),
                    out,
                )
                bar.update(len(chunk))
    finally:
        if output:
            out.close()
    if output:
        click.echo(f"routed {len(records)} queries from {path} to {output}", err=True)
