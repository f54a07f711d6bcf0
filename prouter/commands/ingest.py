"""`prouter ingest`: canonical files and public data sets into the graph."""

from __future__ import annotations

from pathlib import Path

import click

from prouter.commands.common import Settings, comma_list, domain_errors


@click.group()
def ingest() -> None:
    """Load interaction data into the graph."""


def skip_invalid_options(fn):  # type: ignore[no-untyped-def]
    """The --skip-invalid / --report pair shared by every ingest command."""
    fn = click.option(
        "--report",
        type=click.Path(dir_okay=False, path_type=Path),
        default=Path("rejected.jsonl"),
        show_default=True,
        help="Where --skip-invalid writes rejected records with their reasons (JSONL); "
        "never one of the input files.",
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
@click.option(
    "--bulk",
    is_flag=True,
    help="Initial load through neo4j-admin database import, when the store is the local "
    "Neo4j server (`prouter neo4j start`) and its database is empty; the UNWIND path "
    "otherwise.",
)
@click.pass_obj
def ingest_canonical(
    settings: Settings, files: tuple[Path, ...], skip_invalid: bool, report: Path, bulk: bool
) -> None:
    """Ingest canonical interaction files (.csv, .jsonl, .parquet).

    The format is described in docs/canonical-format.md. Re-ingesting the
    same files changes nothing.

    Example:

    \b
        prouter ingest canonical interactions.csv --skip-invalid --report bad.jsonl
        prouter --store neo4j ingest canonical big.parquet --bulk
    """
    from graphdb.ingest import ingest_files

    if bulk and _bulk_possible(settings):
        from prouter.bulk_load import bulk_load

        click.echo("\n".join(domain_errors(bulk_load, list(files)).lines()))
        return

    with settings.open() as store:
        result = domain_errors(
            ingest_files, store, list(files), skip_invalid=skip_invalid, report_path=report
        )
    click.echo("\n".join(result.lines()))


def _bulk_possible(settings: Settings) -> bool:
    """Whether the store is the local Neo4j server with an empty database (else say why)."""
    from prouter.bulk_load import local_server_for

    url = domain_errors(settings.store_url)
    if local_server_for(url) is None:
        click.echo("--bulk: the store is not the local Neo4j server; using UNWIND", err=True)
        return False
    with settings.open(read_only=True) as store:
        if any(store.counts().values()):
            click.echo("--bulk: the database is not empty; using UNWIND", err=True)
            return False
    return True


def _ingest_adapter(  # type: ignore[no-untyped-def]
    settings: Settings, make, skip_invalid: bool, report: Path, inputs: list[Path]
) -> None:
    """Run an adapter, print its cleaning summary, then load and print what was written.

    ``inputs`` are the files the adapter reads: the report may not overwrite any.
    """
    from graphdb.ingest import check_report_path
    from workloads.adapters.base import load

    if skip_invalid:
        domain_errors(check_report_path, report, inputs)
    adapted = domain_errors(make)
    for line in adapted.summary:
        click.echo(line)
    with settings.open() as store:
        result = domain_errors(load, store, adapted, skip_invalid=skip_invalid, report_path=report)
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
    from workloads.adapters.routerbench import load_routerbench

    _ingest_adapter(
        settings,
        lambda: load_routerbench(
            data_dir, tasks=comma_list(tasks), split_rows=split_rows, responses=responses
        ),
        skip_invalid,
        report,
        sorted(data_dir.iterdir()),
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
    from workloads.adapters.personalizedrouter import load_personalizedrouter

    _ingest_adapter(
        settings,
        lambda: load_personalizedrouter(data_dir, llm_pool=llm_pool),
        False,
        Path("rejected.jsonl"),
        [],
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
    from workloads.adapters.preferences import load_preferences

    _ingest_adapter(
        settings,
        lambda: load_preferences(judgements, questions=questions, task=task),
        skip_invalid,
        report,
        [judgements, *([questions] if questions else [])],
    )
