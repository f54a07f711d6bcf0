"""The trained router, its predictions and evaluations written back, and the report."""

import dagster as dg

from dagster_project.assets.sources import write_metadata
from dagster_project.config import FewShotConfig, TrainingConfig
from dagster_project.partitions import users_partitions
from dagster_project.resources import (
    DeviceResource,
    EmbeddingModelResource,
    GraphStoreResource,
    ModelStoreResource,
)
from gnn.pipeline import ModelRef

__all__ = [
    "few_shot_evaluation",
    "general_evaluation",
    "route_snapshot",
    "router_report",
    "routing_predictions",
    "trained_model",
    "user_evaluation",
]


@dg.asset(group_name="model", kinds={"pytorch"})
def trained_model(
    training_subgraph: str,
    config: TrainingConfig,
    graph_store: GraphStoreResource,
    model_store: ModelStoreResource,
    device: DeviceResource,
) -> dg.Output[ModelRef]:
    """A versioned GNN checkpoint. Reuses the checkpoint of the same export and settings
    unless ``retrain`` (a re-train always makes a new version). Its RouterModel node is
    written by ``routing_predictions``, once its predictions are in the graph."""
    from gnn.pipeline import train_from_export
    from graphdb.integrity import interaction_counts

    with graph_store.open(read_only=True) as store:
        counts = interaction_counts(store)
    ref = train_from_export(
        training_subgraph,
        model_store.path(),
        seed=config.seed,
        config=config.router_config() | {"device": device.resolve()},
        retrain=config.retrain,
        graph_counts=counts,
        routed_top=config.routed_top,
    )
    metadata = {"version": ref.version, "reused": ref.reused, "checkpoint": ref.checkpoint}
    return dg.Output(ref, metadata=metadata)


@dg.asset(group_name="model", kinds={"python"})
def routing_predictions(
    trained_model: ModelRef, graph_store: GraphStoreResource
) -> dg.MaterializeResult:
    """ROUTED_TO edges: the top-k candidate LLMs (``routed_top`` of the training config; all
    when null) of each test (user, query), ranked, with the version, in batches; then the
    version's RouterModel node, which makes them visible (``gnn.writeback``)."""
    from gnn.pipeline import publish_predictions

    with graph_store.open() as store:
        written = publish_predictions(store, trained_model)
    return dg.MaterializeResult(
        metadata={"version": trained_model.version, **write_metadata(written)}
    )


@dg.asset(group_name="model", kinds={"python"}, deps=[routing_predictions])
def general_evaluation(
    trained_model: ModelRef, graph_store: GraphStoreResource
) -> dg.MaterializeResult:
    """EVALUATED edges (setting 'general'): each user's test metrics for the model version."""
    from gnn.pipeline import write_general_evaluation

    with graph_store.open() as store:
        written = write_general_evaluation(store, trained_model)
    return dg.MaterializeResult(
        metadata={"version": trained_model.version, **write_metadata({"EVALUATED": written})}
    )


@dg.asset(group_name="model", kinds={"pytorch"}, deps=[general_evaluation])
def few_shot_evaluation(
    trained_model: ModelRef,
    config: FewShotConfig,
    graph_store: GraphStoreResource,
    device: DeviceResource,
) -> dg.Output[dict]:
    """EVALUATED edges (settings 'new_user' / 'new_llm', shots k): held-out users onboarded
    with k decisions, a held-out LLM added with k outcomes, without retraining."""
    from gnn.fewshot import summarise
    from gnn.pipeline import few_shot_results, few_shot_skipped, write_few_shot_evaluation

    skipped = few_shot_skipped(trained_model, config.settings)
    runnable = [s for s in config.settings if s not in skipped]
    results = (
        few_shot_results(trained_model, runnable, shots=config.shots, device=device.resolve())
        if runnable
        else []
    )
    with graph_store.open() as store:
        written = write_few_shot_evaluation(store, trained_model, results)
    sections = {r.setting: {"runs": [r.summary()], "mean_std": summarise([r])} for r in results}
    metadata = {
        f"{r.setting} k={k} of trained": float(r.reward_fraction(k))
        for r in results
        for k in r.by_shots
    }
    notes = {f"{name} skipped": why for name, why in skipped.items()}
    return dg.Output(sections, metadata=metadata | notes | write_metadata({"EVALUATED": written}))


@dg.asset(
    group_name="model",
    kinds={"pytorch"},
    partitions_def=users_partitions,
    deps=[routing_predictions],
)
def user_evaluation(
    context: dg.AssetExecutionContext,
    trained_model: ModelRef,
    config: FewShotConfig,
    graph_store: GraphStoreResource,
    device: DeviceResource,
) -> dg.MaterializeResult:
    """One user's onboarding: the user held out of training, then routed with k of their
    decisions (EVALUATED 'new_user' per k), beside their general test metrics. Needs the
    version's RouterModel node (``routing_predictions``)."""
    from gnn.pipeline import (
        few_shot_results,
        require_recorded,
        user_metrics,
        write_few_shot_evaluation,
        write_user_evaluation,
    )

    with graph_store.open(read_only=True) as store:
        require_recorded(store, trained_model)  # before the held-out fits, not after
    user = context.partition_key
    metrics = user_metrics(trained_model, user)
    results = few_shot_results(
        trained_model, ["new_user"], shots=config.shots, users=[user], device=device.resolve()
    )
    with graph_store.open() as store:
        written = write_user_evaluation(store, trained_model, user)
        written = written + write_few_shot_evaluation(store, trained_model, results)
    values = metrics.as_dict() if metrics else {"n": 0}
    fractions = {f"new_user k={k} of trained": results[0].reward_fraction(k) for k in config.shots}
    return dg.MaterializeResult(
        metadata={
            "user": user,
            "version": trained_model.version,
            **values,
            **fractions,
            **write_metadata({"EVALUATED": written}),
        }
    )


@dg.asset(group_name="model", kinds={"python"}, deps=[general_evaluation])
def router_report(
    trained_model: ModelRef,
    few_shot_evaluation: dict,
    graph_store: GraphStoreResource,
    model_store: ModelStoreResource,
) -> dg.MaterializeResult:
    """A markdown report of the model version, read back from the graph, with the
    few-shot curves as PNG plots beside it."""
    from gnn.pipeline import compare_with_baseline
    from gnn.reports.model_card import router_report as render
    from gnn.reports.results import plot_fewshot

    folder = model_store.path("reports")
    with graph_store.open() as store:
        text = render(store, trained_model.version, quality=compare_with_baseline(trained_model))
    for setting, section in few_shot_evaluation.items():
        png = folder / f"{trained_model.version}-{setting}.png"
        plot_fewshot(section, f"{setting}: reward as a fraction of the trained model", png)
        text += f"\n![{setting}]({png.name})\n"
    path = folder / f"{trained_model.version}.md"
    path.write_text(text, encoding="utf-8")
    return dg.MaterializeResult(metadata={"path": str(path), "report": dg.MetadataValue.md(text)})


@dg.asset(group_name="model", kinds={"python"}, deps=[router_report])
def route_snapshot(
    trained_model: ModelRef,
    graph_store: GraphStoreResource,
    model_store: ModelStoreResource,
    embedding_model: EmbeddingModelResource,
) -> dg.MaterializeResult:
    """The route snapshot of the graph's latest model (``gnn.light``), as ``prouter train``
    writes it: the first ``prouter route`` after a (re)train starts without torch. Last
    of the run, since every write-back before it changes the store file (which outdates a
    snapshot). Where routes have no light path (Neo4j, another embedding model, a router
    other than the GNN) it writes nothing and says why (``skipped``)."""
    from gnn.light.refresh import snapshot_target, write_latest_snapshot
    from prcore.errors import ProuterError

    try:
        target = snapshot_target(
            graph_store.resolved_url(),
            model_store.path(),
            embedding_model=embedding_model.setting(),
        )
        with embedding_model.embedder("cpu") as embedder:
            version = write_latest_snapshot(
                lambda: graph_store.open(read_only=True), target, embedder
            )
    except ProuterError as exc:
        return dg.MaterializeResult(metadata={"skipped": str(exc)})
    if version != trained_model.version:
        dg.get_dagster_logger().warning(
            "route snapshot of %s, the graph's latest model, not of %s",
            version,
            trained_model.version,
        )
    return dg.MaterializeResult(metadata={"version": version, "path": str(target.path)})
