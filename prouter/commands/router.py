"""`prouter train` and `prouter evaluate`: the GNN router and its comparison table."""

from __future__ import annotations

import json
from pathlib import Path

import click

from prouter.commands.common import Settings, comma_list, domain_errors, echo_written


@click.command()
@click.option("--seed", default=0, show_default=True, help="Seed of the split and the model.")
@click.option("--epochs", default=600, show_default=True, help="Most training epochs.")
@click.option("--hidden", default=64, show_default=True, help="Hidden size.")
@click.option(
    "--device", default="auto", show_default=True, help="auto (CUDA when present), cpu or cuda."
)
@click.option("--tasks", help="Comma-separated task ids to train on (default: all).")
@click.option(
    "--model-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where checkpoints are saved (default: prouter-data/models). Env: PROUTER_MODEL_DIR.",
)
@click.option(
    "--write-back/--no-write-back",
    default=True,
    show_default=True,
    help="Write the RouterModel node, test predictions and evaluations to the graph.",
)
@click.option(
    "--routed-top",
    default="3",
    show_default=True,
    callback=lambda _ctx, _param, value: parse_routed_top(value),
    help="ROUTED_TO edges written per test (user, query): the K best-ranked candidates, or 'all'.",
)
@click.option(
    "--few-shot",
    help="Also evaluate these few-shot settings (comma-separated: new_user, new_llm) and "
    "write them back as EVALUATED edges per user and k.",
)
@click.option(
    "--shots", default="0,1,3,5,10", show_default=True, help="k values of the few-shot settings."
)
@click.option(
    "--processes",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Local processes training together (DistributedDataParallel: gloo on CPU, "
    "NCCL on GPUs, one per process).",
)
@click.option(
    "--batch-size",
    default=-1,
    show_default=True,
    type=click.IntRange(min=-1),
    help="Training decisions per step: -1 automatic (full batch on small graphs, "
    "mini-batches on large ones; the choice is printed), 0 full batch.",
)
@click.pass_obj
def train(
    settings: Settings,
    seed: int,
    epochs: int,
    hidden: int,
    device: str,
    processes: int,
    batch_size: int,
    tasks: str | None,
    model_dir: Path | None,
    write_back: bool,
    routed_top: int | None,
    few_shot: str | None,
    shots: str,
) -> None:
    """Train the personalized GNN router; select on validation, test once.

    Saves a versioned checkpoint (config, data snapshot, metrics) and, by
    default, writes back its test predictions (ROUTED_TO, in batches) and then
    records it as a RouterModel node with its per-user evaluation (EVALUATED);
    the version is visible once its RouterModel exists. With --few-shot, also
    the new-user / new-LLM evaluations per k.

    Example:

    \b
        prouter train --seed 0 --device auto
        prouter train --few-shot new_user,new_llm --shots 0,1,3,5,10
        prouter train --routed-top all
        prouter train --processes 2 --batch-size 0
    """
    from gnn.pipeline import train_and_record

    _echo_batch_choice()

    with settings.open() as store:
        result = domain_errors(
            train_and_record,
            store,
            seed=seed,
            tasks=comma_list(tasks),
            model_dir=model_dir or settings.model_dir,
            write_back=write_back,
            config={
                "epochs": epochs,
                "hidden": hidden,
                "device": device,
                "processes": processes,
                "batch_size": batch_size,
            },
            few_shot=[s.replace("-", "_") for s in comma_list(few_shot) or []],
            shots=[int(k) for k in shots.split(",")],
            routed_top=routed_top,
        )
    click.echo(f"model {result.version} saved to {result.checkpoint}")
    for part, metrics in result.metrics.items():
        if "shots" in metrics:  # a few-shot setting
            click.echo(
                f"  {part}: held out {', '.join(metrics['held_out'])}; reward of trained "
                + "  ".join(f"k={k} {m['of_trained']:.1%}" for k, m in metrics["shots"].items())
            )
            continue
        click.echo(
            f"  {part:<5} "
            + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k != "n")
            + f"  (n={metrics['n']})"
        )
    if result.written:
        echo_written(result.written)
    if write_back:  # the first `prouter route` of this model then starts light
        from prouter.commands.route import refresh_route_snapshot

        snapshot = refresh_route_snapshot(settings, model_dir or settings.model_dir)
        if snapshot is not None:
            click.echo(f"route snapshot written to {snapshot}")


def _echo_batch_choice() -> None:
    """Print the full-batch / mini-batch choice of :func:`gnn.minibatch.batch_plan`."""
    import logging

    class Echo(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            click.echo(record.getMessage(), err=True)

    logger = logging.getLogger("gnn.minibatch")
    if not any(isinstance(h, Echo) for h in logger.handlers):
        logger.addHandler(Echo(logging.INFO))
        logger.setLevel(logging.INFO)


SETTINGS = ("general", "new_user", "new_llm", "pairwise")


def parse_routed_top(value: str) -> int | None:
    """``--routed-top``: a positive integer, or 'all' (None)."""
    if value.strip().lower() == "all":
        return None
    try:
        k = int(value)
    except ValueError:
        k = 0
    if k < 1:
        raise click.BadParameter(f"{value!r}: a positive integer or 'all'")
    return k


@click.command()
@click.option(
    "--routers",
    default="all",
    show_default=True,
    help="Comma-separated router names, or 'all' (gnn, gnn_nonpersonal and baselines).",
)
@click.option("--seeds", default="0,1,2", show_default=True, help="Comma-separated seeds.")
@click.option("--tasks", help="Comma-separated task ids (default: all).")
@click.option("--epochs", default=600, show_default=True, help="Most epochs of the GNNs.")
@click.option(
    "--settings",
    "settings_",
    default="auto",
    show_default=True,
    help="Comma-separated: general (the comparison table), new_user (held-out users "
    "onboarded with k decisions), new_llm (a held-out LLM added with k outcomes), "
    "pairwise (votes: accuracy, log-loss, Brier by query and by user, and held-out users "
    "onboarded with k votes). auto: general where there are choices, pairwise where "
    "there are votes. The few-shot settings need the gnn router; new_user also onboards "
    "the *_outcomes and best_llm_* baselines among --routers with the same k decisions.",
)
@click.option(
    "--shots", default="0,1,3,5,10", show_default=True, help="k values of the few-shot settings."
)
@click.option(
    "--held-out-users",
    default=1 / 3,
    show_default=True,
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    help="Fraction of users held out in the new-user setting (redrawn per seed).",
)
@click.option(
    "--new-llm", help="LLM id held out in the new-llm setting (default: the most chosen one)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.pass_obj
def evaluate(
    settings: Settings,
    routers: str,
    seeds: str,
    tasks: str | None,
    epochs: int,
    settings_: str,
    shots: str,
    held_out_users: float,
    new_llm: str | None,
    as_json: bool,
) -> None:
    """Compare the GNN router with the baselines on the same splits and metrics.

    Each seed gives one split by query (a data set's own test split is kept);
    every router is fitted on its training part, selected on validation and
    evaluated once on the test part. Prints mean ± std over seeds. The
    few-shot settings reuse each seed's fitted gnn as the "trained with them"
    reference and report each k's reward as a fraction of it; new_user also
    reports the predict-then-optimise baselines given the same k decisions.

    Example:

    \b
        prouter evaluate --routers gnn,logistic_outcomes,best_llm_per_user_task --seeds 0,1,2
        prouter evaluate --routers gnn --settings new_user,new_llm --shots 0,1,3,5,10
        prouter evaluate --settings pairwise --routers gnn,gnn_nonpersonal,bt,bt_user
    """
    from gnn.cost_estimate import query_text_chars
    from gnn.data import load_routing_data
    from gnn.experiment import compare_routers, router_registry
    from gnn.fewshot import new_user_baselines, run_setting
    from gnn.routers.baselines import OUTCOME_BASELINES

    wanted = [s.replace("-", "_") for s in comma_list(settings_) or ["auto"]]
    bad = [s for s in wanted if s not in (*SETTINGS, "auto")]
    if bad:
        raise click.BadParameter(
            f"{bad}; valid settings: {', '.join(SETTINGS)}", param_hint="--settings"
        )
    names = list(router_registry()) if routers == "all" else comma_list(routers) or []
    if set(wanted) - {"general", "pairwise", "auto"} and "gnn" not in names:
        raise click.BadParameter(
            "the few-shot settings need the gnn router", param_hint="--routers"
        )
    seed_list = [int(s) for s in seeds.split(",")]
    shot_list = [int(k) for k in shots.split(",")]
    with settings.open(read_only=True) as store:
        data = domain_errors(load_routing_data, store, tasks=comma_list(tasks))
        chars = query_text_chars(store, data)
    if "auto" in wanted:
        wanted = [s for s in wanted if s != "auto"]
        wanted += ["general"] * bool(len(data.dec_user))
        wanted += ["pairwise"] * bool(len(data.pref_user) + len(data.tie_query))
    pairwise = None
    if "pairwise" in wanted:
        pairwise = _pairwise(data, routers, names, seed_list, shot_list, held_out_users, epochs)
        wanted.remove("pairwise")
        if not wanted:
            _print_results(data, seed_list, None, {}, as_json, pairwise, chars)
            return
    fewshot: dict[str, list] = {s: [] for s in wanted if s != "general"}

    def progress(name: str, seed: int, metrics) -> None:  # type: ignore[no-untyped-def]
        pairs = f" pairwise accuracy {metrics.pairwise_accuracy:.4f}" if metrics.pairwise_n else ""
        click.echo(f"  seed {seed} {name:<22} test reward {metrics.reward:.4f}{pairs}", err=True)

    # Each seed's fitted outcome baselines, to onboard new users with the gnn's shots.
    outcome_routers: dict[int, dict] = {}

    def few_shot(name: str, seed: int, split, router) -> None:  # type: ignore[no-untyped-def]
        if name in OUTCOME_BASELINES and "new_user" in fewshot:
            outcome_routers.setdefault(seed, {})[name] = router
        if name != "gnn":
            return
        for setting, results in fewshot.items():
            results.append(
                domain_errors(
                    run_setting,
                    setting,
                    data,
                    split,
                    router,
                    shots=shot_list,
                    seed=seed,
                    held_out_fraction=held_out_users,
                    llm_id=new_llm,
                )
            )
        splits[seed] = split

    splits: dict[int, object] = {}
    gnn_config = {"epochs": epochs, "progress": True}  # bars on stderr, when it is a terminal
    run_names = (
        names if "general" in wanted else ["gnn", *(n for n in names if n in OUTCOME_BASELINES)]
    )
    comparison = domain_errors(
        compare_routers,
        data,
        run_names,
        seed_list,
        on_result=progress,
        on_fitted=few_shot if fewshot else None,
        configs={"gnn": gnn_config, "gnn_nonpersonal": gnn_config},
    )
    if "new_user" in fewshot:  # one result per seed, in seed order
        for seed, result in zip(seed_list, fewshot["new_user"], strict=True):
            new_user_baselines(result, data, splits[seed], outcome_routers.get(seed, {}))
    _print_results(
        data,
        seed_list,
        comparison if "general" in wanted else None,
        fewshot,
        as_json,
        pairwise,
        chars,
    )


def _pairwise(data, routers, names, seeds, shots, held_out, epochs):  # type: ignore[no-untyped-def]
    """The pairwise-preference protocol (gnn.preference.protocol), with progress lines."""
    from gnn.preference.protocol import DEFAULT_ROUTERS, compare_on_preferences

    def progress(name: str, seed: int, metrics) -> None:  # type: ignore[no-untyped-def]
        click.echo(
            f"  seed {seed} {name:<22} held-out votes: accuracy {metrics.accuracy:.4f} "
            f"({metrics.n} votes, {metrics.ties} ties)",
            err=True,
        )

    chosen = list(DEFAULT_ROUTERS) if routers == "all" else names
    gnn_config = {"epochs": epochs, "progress": True}
    return domain_errors(
        compare_on_preferences,
        data,
        chosen,
        seeds,
        shots=shots,
        held_out=held_out,
        configs={"gnn": gnn_config, "gnn_nonpersonal": gnn_config},
        on_result=progress,
    )


def _cost_note(data, chars) -> tuple[str | None, dict | None]:  # type: ignore[no-untyped-def]
    """Where the graph has votes but no outcomes: what the costs are (not) based on
    (gnn.cost_estimate), as a note and as JSON."""
    import numpy as np

    from gnn.cost_estimate import estimate_costs

    no_outcome = ~(~np.isnan(data.performance)).any(axis=1)
    if not no_outcome.any():
        return None, None
    est = estimate_costs(data, chars)
    note = (
        f"note: {int(no_outcome.sum())} of {len(data.query_ids)} queries have votes but no "
        "outcomes (ANSWERED_BY): their quality is learned from the votes alone and cost is "
        "left out of the pairwise scores (votes already reflect it); "
        + est.note()
        + ("; `prouter route` uses the estimated costs" if est.counts()["estimated"] else "")
    )
    return note, {"counts": est.counts(), "estimated_by": est.methods()}


def _partial_cost_note(data) -> tuple[str | None, dict | None]:  # type: ignore[no-untyped-def]
    """Where logs hold the served LLM's outcome only: how many costs were estimated
    (gnn.cost_completion), as a note and as JSON."""
    from gnn.cost_completion import partial_rows

    queries, missing = partial_rows(data.cost)
    if not queries:
        return None, None
    note = (
        f"note: {queries} of {len(data.query_ids)} queries have costs logged for some LLMs "
        f"only; the {missing} unlogged costs are estimated (log cost = query size + LLM "
        "rate, fitted on each split's training queries) for the cost scale, normalised "
        "costs and what choices imply; scores use logged costs only"
    )
    return note, {"queries": queries, "estimated": missing}


def _print_results(
    data, seeds, comparison, fewshot, as_json: bool, pairwise=None, chars=None
) -> None:  # type: ignore[no-untyped-def]
    from gnn.fewshot import summarise, summarise_baselines, table

    if as_json:
        out: dict[str, object] = {
            "seeds": seeds,
            "data": {
                "queries": len(data.query_ids),
                "llms": data.num_llms,
                "users": len(data.user_ids),
                "decisions": len(data.dec_user),
                "votes": len(data.pref_user),
                "ties": len(data.tie_query),
            },
        }
        if pairwise is not None:
            out["pairwise"] = pairwise.as_dict()
            out["note"], out["costs"] = _cost_note(data, chars)
        _, partial = _partial_cost_note(data)
        if partial is not None:
            out["partial_costs"] = partial
        if comparison is not None:
            out["routers"] = comparison.summary()
            out["per_user"] = comparison.user_summary()
        for setting, results in fewshot.items():
            out[setting] = {
                "runs": [r.summary() for r in results],
                "mean_std": summarise(results),
            }
            if results and results[0].baselines:
                out[setting]["baselines"] = summarise_baselines(results)
        from prcore.values import finite_or_none  # numpy: not for `prouter --help`

        click.echo(json.dumps(finite_or_none(out), indent=2, allow_nan=False))
        return
    click.echo(
        f"{len(data.query_ids)} queries, {data.num_llms} LLMs, {len(data.user_ids)} "
        f"users; test metrics, mean±std over seeds {seeds}"
    )
    if comparison is not None:
        click.echo(comparison.table())
    partial_note, _ = _partial_cost_note(data)
    if partial_note:
        click.echo(partial_note)
    if pairwise is not None:
        note, _ = _cost_note(data, chars)
        if note:
            click.echo(note)
        click.echo(pairwise.table())
    for results in fewshot.values():
        click.echo("")
        click.echo(table(results))
