"""A small synthetic routing graph in a real LadybugDB store, as RoutingData."""

from __future__ import annotations

import pytest
from tests_gnn_support import build_store

from gnn.data import RoutingData, load_routing_data, split_queries
from graphdb.store import open_store


def build_routing_data(tmp_path, **kwargs) -> RoutingData:
    """9 users x 400 queries x 6 LLMs (every user asks every query) as RoutingData."""
    defaults = {
        "n_queries": 400,
        "n_users": 9,
        "n_llms": 6,
        "users_per_query": 9,
        "seed": 0,
        "dim": 16,
    }
    with open_store(build_store(tmp_path, **(defaults | kwargs))) as store:
        return load_routing_data(store)


@pytest.fixture(scope="session")
def routing_data(tmp_path_factory) -> RoutingData:
    return build_routing_data(tmp_path_factory.mktemp("routing"))


@pytest.fixture(scope="session")
def routing_split(routing_data):
    return split_queries(routing_data, seed=0)
