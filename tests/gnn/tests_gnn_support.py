"""A small synthetic routing graph (workload + stand-in embeddings) in LadybugDB."""

from __future__ import annotations

import numpy as np

from graphdb.ingest import write_tables
from graphdb.store import open_store
from graphdb.tables import embedding_array
from workloads.synthetic import generate


def build_store(
    tmp_path,
    *,
    n_queries: int = 200,
    n_users: int = 3,
    n_llms: int = 4,
    users_per_query: int = 3,
    seed: int = 1,
    dim: int = 8,
) -> str:
    """Write a synthetic workload with embeddings into LadybugDB; return its store URL."""
    workload = generate(
        n_queries=n_queries,
        n_users=n_users,
        n_llms=n_llms,
        users_per_query=users_per_query,
        seed=seed,
    )
    tables = workload.tables(embedding_dim=dim)
    tables["LLM"] = tables["LLM"].append_column(
        "embedding", embedding_array(np.random.default_rng(seed).normal(size=(n_llms, dim)))
    )
    url = f"ladybug:{tmp_path / 'g.lbug'}"
    with open_store(url) as store:
        write_tables(store, tables)
    return url
