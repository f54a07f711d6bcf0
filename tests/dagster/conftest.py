"""Fixtures for the Dagster project: real stores, a persistent Dagster instance, a small run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from dagster_test_support import Backend

from graphdb.store import open_store


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    """A Dagster instance whose runs, partitions and asset values persist in ``tmp_path``."""
    home = tmp_path / "dagster-home"
    home.mkdir()
    with dg.DagsterInstance.local_temp(str(home)) as inst:
        yield inst


def _ladybug(tmp_path: Path) -> Backend:
    return Backend("ladybug", f"ladybug:{tmp_path / 'graph.lbug'}", None, None, tmp_path / "models")


@pytest.fixture(params=["ladybug", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """An empty graph store per backend: a new LadybugDB file, or the wiped test Neo4j."""
    if request.param == "ladybug":
        return _ladybug(tmp_path)
    server = request.getfixturevalue("neo4j_server")
    with open_store(
        server["uri"], username=server["username"], password=server["password"]
    ) as store:
        store.clear()
    return Backend(
        "neo4j", server["uri"], server["username"], server["password"], tmp_path / "models"
    )


@pytest.fixture
def ladybug(tmp_path: Path) -> Backend:
    """An empty embedded store only (for tests of logic that does not depend on the backend)."""
    return _ladybug(tmp_path)
