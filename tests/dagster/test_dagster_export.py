"""The training-subgraph export: filters by users and time window, and loads back exactly."""

from __future__ import annotations

import numpy as np
import pytest
from dagster_test_support import WORKLOAD
from torch_geometric.data import HeteroData

from dagster_project.resources import HashingEmbeddings
from gnn.export import SubgraphSpec, export_training_subgraph, load_training_subgraph
from prcore.errors import ConfigError
from workloads.embeddings import embed_graph
from workloads.sources import ingest_sources, read_synthetic
from workloads.synthetic import generate


def _args() -> dict:
    return {
        "n_queries": WORKLOAD["synthetic_queries"],
        "n_users": WORKLOAD["synthetic_users"],
        "n_llms": WORKLOAD["synthetic_llms"],
        "users_per_query": WORKLOAD["synthetic_users_per_query"],
    }


def test_export_filters_users_and_time_window_and_round_trips(ladybug, tmp_path):
    workload = generate(**_args())
    with ladybug.store() as store:
        ingest_sources(store, [read_synthetic(**_args())])
        with HashingEmbeddings().embedder("cpu") as embedder:
            embed_graph(store, embedder, progress=False)
        times = sorted(workload.asked_at)
        start, end = times[len(times) // 4], times[3 * len(times) // 4]
        spec = SubgraphSpec(users=("user-0000", "user-0002"), start=start, end=end, seed=3)
        exported = export_training_subgraph(store, tmp_path / "exports", spec)
        again = export_training_subgraph(store, tmp_path / "exports", spec)
        with pytest.raises(ConfigError, match="unknown users"):
            export_training_subgraph(store, tmp_path, SubgraphSpec(users=("nobody",)))

    users = np.asarray(workload.user_ids)[workload.asked_user]
    ts = np.asarray(workload.asked_at)
    keep = np.isin(users, spec.users) & (ts >= start) & (ts < end)
    assert exported.counts["decisions"] == int(keep.sum()) > 0
    assert exported.counts["users"] == 2
    assert again.path == exported.path and again.fingerprint == exported.fingerprint

    sub = load_training_subgraph(exported.path)
    assert isinstance(sub.graph, HeteroData)
    data = sub.data
    assert data.user_ids == ["user-0000", "user-0002"]
    got = sorted(
        (data.user_ids[u], data.query_ids[q], data.llm_ids[m])
        for u, q, m in zip(data.dec_user, data.dec_query, data.dec_llm, strict=True)
    )
    want = sorted(
        (workload.user_ids[u], workload.query_ids[q], workload.llm_ids[m])
        for u, q, m in zip(
            workload.asked_user[keep],
            workload.asked_query[keep],
            workload.chosen_llm[keep],
            strict=True,
        )
    )
    assert got == want
    assert sub.spec["seed"] == 3 and sub.fingerprint == exported.fingerprint
    # Masks partition the queries; the graph's decision edges are the training ones only.
    assert np.all(sub.split.train ^ sub.split.val ^ sub.split.test)
    chose = sub.graph["user", "chose", "llm"]
    assert chose.edge_index.shape[1] == int(sub.split.train[data.dec_query].sum())
