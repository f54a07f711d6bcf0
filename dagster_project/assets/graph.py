"""Embeddings of the graph's texts and the exported training subgraph."""

import dagster as dg

from dagster_project.assets.sources import simulated_users
from dagster_project.config import SubgraphConfig
from dagster_project.resources import (
    DeviceResource,
    EmbeddingModelResource,
    GraphStoreResource,
    ModelStoreResource,
)

__all__ = ["embeddings", "training_subgraph"]


@dg.asset(group_name="graph", kinds={"python"}, deps=[simulated_users])
def embeddings(
    graph_store: GraphStoreResource, embedding_model: EmbeddingModelResource, device: DeviceResource
) -> dg.MaterializeResult:
    """Embeddings of query texts, task and LLM descriptions (only nodes that lack one);
    tasks and LLMs without a description are embedded from their id (``inferred``)."""
    from workloads.embeddings import embed_graph

    with graph_store.open() as store, embedding_model.embedder(device.resolve()) as embedder:
        written = embed_graph(store, embedder, progress=False)
    return dg.MaterializeResult(
        metadata={
            "model": embedder.model_id,
            "created": sum(written.values()),
            **written,
            "inferred": sum(len(ids) for ids in written.inferred.values()),
        }
    )


@dg.asset(group_name="graph", kinds={"pytorch"}, deps=[embeddings])
def training_subgraph(
    config: SubgraphConfig, graph_store: GraphStoreResource, model_store: ModelStoreResource
) -> dg.Output[str]:
    """The training subgraph (tasks, users, time window) as a PyG HeteroData file, split by
    query (the file name carries a content fingerprint)."""
    from gnn.export import SubgraphSpec, export_training_subgraph

    spec = SubgraphSpec(
        tasks=tuple(config.tasks) if config.tasks else None,
        users=tuple(config.users) if config.users else None,
        start=config.start,
        end=config.end,
        seed=config.seed,
        neighbours=config.neighbours,
    )
    with graph_store.open() as store:
        exported = export_training_subgraph(store, model_store.path("exports"), spec)
    metadata = {"path": str(exported.path), "fingerprint": exported.fingerprint, **exported.counts}
    return dg.Output(str(exported.path), metadata=metadata)
