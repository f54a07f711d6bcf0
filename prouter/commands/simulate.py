"""`prouter simulate`: the paper's two user simulations, pairwise judges and voters."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from prouter.commands.common import Settings, comma_list, domain_errors, echo_written


@click.group()
def simulate() -> None:
    """Simulate users on the outcomes in the graph (the paper's two strategies)."""


def _simulated_user_options(fn: Callable[..., None]) -> Callable[..., None]:
    """The options both reward-driven simulations share."""
    options = [
        click.option("--users", default=9, show_default=True, help="Number of simulated users."),
        click.option(
            "--alphas",
            default="grid",
            show_default=True,
            help="User quality weights: grid (0.2..1.0 evenly, the paper's), uniform, beta:A,B.",
        ),
        click.option(
            "--noise",
            default=0.0,
            show_default=True,
            help="Std of the noise on the performance a user perceives when deciding.",
        ),
        click.option(
            "--queries-per-user",
            type=int,
            default=None,
            help="Queries each user sees, drawn at random (default: all).",
        ),
        click.option("--seed", default=0, show_default=True, help="Random seed."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@simulate.command("cost-efficiency")
@_simulated_user_options
@click.option(
    "--observed",
    type=click.Choice(["all", "chosen"]),
    default="all",
    show_default=True,
    help="Outcomes left in the graph: all, or (as in real logs) only those of LLMs some "
    "user chose, outside the data set's test split (whose outcomes score routers).",
)
@click.pass_obj
def simulate_cost_efficiency(
    settings: Settings,
    users: int,
    alphas: str,
    noise: float,
    queries_per_user: int | None,
    seed: int,
    observed: str,
) -> None:
    """Add users who choose by alpha * performance - (1 - alpha) * normalised cost.

    Costs are min-max normalised within each task; ties go to the cheaper LLM.
    Each user's best LLM per query becomes a CHOSE edge carrying its reward.
    With --observed chosen, the ANSWERED_BY edges of LLMs nobody chose are then
    deleted on every query outside the data set's test split (needs one).

    Example:

    \b
        prouter simulate cost-efficiency --users 9
        prouter simulate cost-efficiency --users 1000 --queries-per-user 30 --observed chosen
    """
    from graphdb.ingest import write_tables
    from workloads.simulate import (
        fixed_test_queries,
        hide_unchosen_outcomes,
        load_outcomes,
        require_test_split,
    )
    from workloads.simulate import simulate_cost_efficiency as simulate_users

    hidden = None
    with settings.open() as store:
        outcomes = domain_errors(load_outcomes, store)
        test = fixed_test_queries(store) if observed == "chosen" else set()
        if observed == "chosen":
            domain_errors(require_test_split, test)  # before anything is written
        tables = domain_errors(
            simulate_users,
            outcomes,
            n_users=users,
            alphas=alphas,
            noise=noise,
            queries_per_user=queries_per_user,
            seed=seed,
        )
        with store.transaction():
            written = domain_errors(write_tables, store, tables)
            if observed == "chosen":
                hidden = domain_errors(hide_unchosen_outcomes, store, outcomes, test)
    click.echo(f"{users} users on {len(outcomes.query_ids)} queries x {len(outcomes.llm_ids)} LLMs")
    echo_written(written)
    if hidden is not None:
        click.echo(
            f"observed chosen: removed {hidden.removed} outcome (ANSWERED_BY) edges of LLMs "
            f"nobody chose; {hidden.test_queries} test queries keep all their outcomes "
            "(used only to score routers)"
        )


@simulate.command("preferences")
@_simulated_user_options
@click.option("--pairs", default=2, show_default=True, help="Pairs of LLMs judged per query.")
@click.pass_obj
def simulate_preferences(
    settings: Settings,
    users: int,
    alphas: str,
    pairs: int,
    noise: float,
    queries_per_user: int | None,
    seed: int,
) -> None:
    """Add users who judge pairs of answers by the cost-efficiency reward.

    Each judgement becomes a PREFERRED edge (winner, over the loser, tie when
    the two rewards are equal); users are named pref-user-N.

    Example:

        prouter simulate preferences --users 9 --pairs 3 --noise 0.1
    """
    from graphdb.ingest import write_tables
    from workloads.simulate import load_outcomes
    from workloads.simulate import simulate_preferences as simulate_judges

    with settings.open() as store:
        outcomes = domain_errors(load_outcomes, store)
        tables = domain_errors(
            simulate_judges,
            outcomes,
            n_users=users,
            alphas=alphas,
            pairs_per_query=pairs,
            noise=noise,
            queries_per_user=queries_per_user,
            seed=seed,
        )
        written = domain_errors(write_tables, store, tables)
    ties = sum(tables["PREFERRED"].column("tie").to_pylist())
    click.echo(
        f"{users} users judged {tables['PREFERRED'].num_rows} pairs ({ties} ties) on "
        f"{len(outcomes.query_ids)} queries x {len(outcomes.llm_ids)} LLMs"
    )
    echo_written(written)


@simulate.command("votes")
@click.option("--users", default=30, show_default=True, help="Number of simulated voters.")
@click.option(
    "--queries-per-user",
    type=click.IntRange(min=1),
    default=150,
    show_default=True,
    help="Queries each voter judges, drawn at random (all when more than there are).",
)
@click.option("--pairs", default=2, show_default=True, help="LLM pairs judged per query.")
@click.option(
    "--spread",
    default=2.0,
    show_default=True,
    help="How much voters' quality weights differ per task (0: all alike; 2.5: strongly).",
)
@click.option(
    "--centre", default=0.7, show_default=True, help="Typical weight on quality (0 < c < 1)."
)
@click.option(
    "--noise", default=0.1, show_default=True, help="Std of the noise on perceived performance."
)
@click.option(
    "--tie-margin",
    default=0.0,
    show_default=True,
    help="Rewards this close are ties (0: only equal rewards).",
)
@click.option("--prefix", default="voter-", show_default=True, help="Voter id prefix.")
@click.option("--seed", default=0, show_default=True, help="Random seed.")
@click.pass_obj
def simulate_votes(
    settings: Settings,
    users: int,
    queries_per_user: int,
    pairs: int,
    spread: float,
    centre: float,
    noise: float,
    tie_margin: float,
    prefix: str,
    seed: int,
) -> None:
    """Add voters whose quality-vs-cost weight differs per task, judging pairs of LLMs.

    Voter u's weight on task t is sigmoid(logit(centre) + spread * z[u, t]),
    z ~ N(0, 1); shown two LLMs' outcomes on a query they prefer the higher
    weight * (performance + noise) - (1 - weight) * normalised cost. Each vote
    is a PREFERRED edge with a timestamp; ties (rewards within --tie-margin) are
    kept as tie edges. The graph needs outcomes (ANSWERED_BY) to simulate on;
    see experiments/preference_dev.py for graphs that keep only the votes.

    Example:

        prouter simulate votes --users 30 --queries-per-user 150 --spread 2.5 --seed 0
    """
    from graphdb.ingest import write_tables
    from workloads.simulate import load_outcomes
    from workloads.task_preferences import simulate_task_preferences

    with settings.open() as store:
        outcomes = domain_errors(load_outcomes, store)
        tables = domain_errors(
            simulate_task_preferences,
            outcomes,
            n_users=users,
            spread=spread,
            centre=centre,
            pairs_per_query=pairs,
            queries_per_user=queries_per_user,
            noise=noise,
            seed=seed,
            user_prefix=prefix,
            tie_margin=tie_margin,
        )
        written = domain_errors(write_tables, store, tables)
    ties = sum(tables["PREFERRED"].column("tie").to_pylist())
    click.echo(
        f"{users} voters cast {tables['PREFERRED'].num_rows} votes ({ties} ties) on "
        f"{len(outcomes.query_ids)} queries x {len(outcomes.llm_ids)} LLMs"
    )
    echo_written(written)


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
    from workloads.judge import (
        JudgeClient,
        decisions_to_records,
        judge_choices,
        load_judge_items,
        write_failures,
    )
    from workloads.personas import PERSONAS, get_persona

    chosen = (
        PERSONAS
        if personas == "all"
        else tuple(domain_errors(get_persona, p) for p in comma_list(personas) or [])
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
        result = domain_errors(ingest_records, store, records)
    click.echo(
        f"{len(items)} queries x {len(chosen)} personas: {len(decisions)} decisions, "
        f"{len(failed)} failures"
    )
    if failed:
        write_failures(failed, failures)
        click.echo(f"failures with raw replies: {failures}")
    click.echo("\n".join(result.lines()))
