"""A small trained model to write back: a synthetic workload (4 LLMs) and helpers."""

from __future__ import annotations

import numpy as np

from gnn.pipeline import ModelRef
from graphdb.ingest import write_tables
from graphdb.store import GraphStore
from graphdb.tables import embedding_array
from workloads.synthetic import generate

TRAIN = {"epochs": 2, "hidden": 8}
N_LLMS = 4


def fill(store: GraphStore, seed: int = 1) -> None:
    """A small synthetic workload (4 LLMs) with stand-in embeddings."""
    wl = generate(n_queries=80, n_users=3, n_llms=N_LLMS, users_per_query=2, seed=seed)
    tables = wl.tables(embedding_dim=8)
    tables["LLM"] = tables["LLM"].append_column(
        "embedding", embedding_array(np.random.default_rng(seed).normal(size=(N_LLMS, 8)))
    )
    write_tables(store, tables)


def routed(store: GraphStore, version: str) -> list[dict]:
    """The ROUTED_TO edges of ``version`` (user, query, rank), whatever readers may see."""
    return store.read(
        "MATCH (u:User)-[r:ROUTED_TO]->(:LLM) WHERE r.model_version = $v "
        "RETURN u.id AS user_id, r.query_id AS query_id, r.rank AS rank",
        {"v": version},
    ).to_pylist()


def with_k(ref: ModelRef, k: int | None) -> ModelRef:
    return ModelRef(ref.version, ref.checkpoint, ref.export, routed_top=k)
