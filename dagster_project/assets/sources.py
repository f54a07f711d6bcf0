"""Raw interaction sources and their ingest into the graph."""

from typing import TYPE_CHECKING

import dagster as dg

from dagster_project.config import IngestConfig, SimulationConfig, SourcesConfig
from dagster_project.resources import GraphStoreResource, ModelStoreResource
from graphdb.store import WriteStats

if TYPE_CHECKING:
    from workloads.adapters.base import AdapterResult

__all__ = ["graph_ingest", "interaction_sources", "simulated_users", "write_metadata"]


def write_metadata(written: dict[str, WriteStats]) -> dict[str, int]:
    """Created / updated / unchanged counts per node or edge type, as flat metadata."""
    out = {"created": sum(s.created for s in written.values())}
    out["updated"] = sum(s.updated for s in written.values())
    for name, stats in written.items():
        out |= {f"{name} created": stats.created, f"{name} updated": stats.updated}
    return out


def _read_sources(config: SourcesConfig) -> list["AdapterResult"]:
    from workloads.adapters.personalizedrouter import load_personalizedrouter
    from workloads.adapters.preferences import load_preferences
    from workloads.adapters.routerbench import load_routerbench
    from workloads.sources import read_canonical, read_synthetic

    sources = []
    if config.synthetic_queries:
        sources.append(
            read_synthetic(
                n_queries=config.synthetic_queries,
                n_users=config.synthetic_users,
                n_llms=config.synthetic_llms,
                users_per_query=config.synthetic_users_per_query,
                seed=config.synthetic_seed,
            )
        )
    if config.canonical_files:
        sources.append(read_canonical(config.canonical_files))
    if config.routerbench_dir:
        sources.append(load_routerbench(config.routerbench_dir, tasks=config.routerbench_tasks))
    if config.personalizedrouter_dir:
        sources.append(
            load_personalizedrouter(config.personalizedrouter_dir, llm_pool=config.llm_pool)
        )
    if config.preferences_file:
        sources.append(
            load_preferences(config.preferences_file, questions=config.preferences_questions)
        )
    return sources


@dg.asset(group_name="ingest", kinds={"python"})
def interaction_sources(config: SourcesConfig) -> dg.Output[list]:
    """Canonical interaction records from canonical files, public data sets and the synthetic
    workload (cleaned by the adapters; not yet validated against the graph)."""
    sources = _read_sources(config)
    metadata = {s.source: len(s.records) for s in sources}
    notes = [line for s in sources for line in s.summary]
    return dg.Output(
        sources,
        metadata={
            "Number of records": sum(metadata.values()),
            **metadata,
            "summary": dg.MetadataValue.md("\n".join(f"- {n}" for n in notes)),
        },
    )


@dg.asset(group_name="ingest", kinds={"python"})
def graph_ingest(
    interaction_sources: list,
    config: IngestConfig,
    graph_store: GraphStoreResource,
    model_store: ModelStoreResource,
) -> dg.MaterializeResult:
    """The sources validated and upserted into the graph (idempotent: a re-run changes nothing)."""
    from workloads.sources import ingest_sources

    with graph_store.open() as store:
        written = ingest_sources(
            store,
            interaction_sources,
            skip_invalid=config.skip_invalid,
            report_dir=model_store.path("rejected"),
        )
    return dg.MaterializeResult(metadata=write_metadata(written))


@dg.asset(group_name="ingest", kinds={"python"}, deps=[graph_ingest])
def simulated_users(
    config: SimulationConfig, graph_store: GraphStoreResource
) -> dg.MaterializeResult:
    """Cost-efficiency users (the paper's simulation) choosing on the graph's outcomes."""
    from graphdb.ingest import write_tables
    from workloads.simulate import load_outcomes, simulate_cost_efficiency

    if not config.users:
        return dg.MaterializeResult(metadata={"users": 0})
    with graph_store.open() as store:
        tables = simulate_cost_efficiency(
            load_outcomes(store),
            n_users=config.users,
            alphas=config.alphas,
            noise=config.noise,
            queries_per_user=config.queries_per_user,
            seed=config.seed,
        )
        written = write_tables(store, tables)
    return dg.MaterializeResult(metadata={"users": config.users, **write_metadata(written)})
