"""Shared fixtures: a store per backend (embedded LadybugDB, and the real Neo4j).

The Neo4j tests run against a real Neo4j 5.26 server that the project starts
itself (``neo4j_local``) in ``.neo4j-test/`` (or
``$PROUTER_TEST_NEO4J_HOME``, so parallel test runs can each have one), never against the server
a developer may have configured in ``NEO4J_URI`` (the tests wipe the database).
``PROUTER_TEST_NEO4J_URI`` (+ ``_USERNAME``/``_PASSWORD``) opts in to another
throwaway server. When no server can be had the Neo4j tests are skipped with
the reason, except when ``PROUTER_REQUIRE_NEO4J=1`` (CI), where they fail.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from graphdb.store import GraphStore, open_store

REPO = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("PROUTER_DATA_DIR", REPO.parent / "shared" / "data"))
# Approximate neighbour indexes are not kept between processes (by default they would be,
# in the repository's prouter-data/): tests/gnn/test_index_files.py keeps them in its own.
os.environ["PROUTER_NEIGHBOURS_INDEX_DIR"] = ""


@pytest.fixture(scope="session")
def neo4j_server() -> Iterator[dict[str, str]]:
    """Connection settings of a real, throwaway Neo4j server for this test session."""
    uri = os.environ.get("PROUTER_TEST_NEO4J_URI")
    if uri:
        yield {
            "uri": uri,
            "username": os.environ.get("PROUTER_TEST_NEO4J_USERNAME", "neo4j"),
            "password": os.environ.get("PROUTER_TEST_NEO4J_PASSWORD", ""),
        }
        return
    import neo4j_local

    home = Path(os.environ.get("PROUTER_TEST_NEO4J_HOME", REPO / ".neo4j-test"))
    try:
        info = neo4j_local.start(home=home)
    except (neo4j_local.Neo4jStartError, OSError) as exc:
        message = f"no real Neo4j server could be started: {exc}"
        if os.environ.get("PROUTER_REQUIRE_NEO4J") == "1":
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield {"uri": info.uri, "username": info.username, "password": info.password}
    finally:
        neo4j_local.stop(home=home)


def open_test_store(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> GraphStore:
    """An empty store of ``backend``: a fresh LadybugDB file, or the wiped test Neo4j."""
    if backend == "ladybug":
        return open_store(f"ladybug:{tmp_path / 'graph.lbug'}")
    server = request.getfixturevalue("neo4j_server")
    store = open_store(server["uri"], username=server["username"], password=server["password"])
    store.clear()
    return store


@pytest.fixture
def store_cli_args(request: pytest.FixtureRequest) -> Callable[[GraphStore], list[str]]:
    """Root options that point `prouter` at a test store: its LadybugDB file, or the test Neo4j."""

    def args(store: GraphStore) -> list[str]:
        if store.backend == "ladybug":
            return ["--store", f"ladybug:{store.path}"]
        server = request.getfixturevalue("neo4j_server")
        return [
            "--store",
            server["uri"],
            "--neo4j-user",
            server["username"],
            "--neo4j-password",
            server["password"],
        ]

    return args


@pytest.fixture(params=["ladybug", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GraphStore]:
    """An empty graph store, once per backend."""
    s = open_test_store(request.param, tmp_path, request)
    try:
        yield s
    finally:
        s.close()


def _public_data(name: str) -> Path:
    path = DATA_DIR / name
    if not path.is_dir():
        pytest.skip(
            f"public data set not found at {path}: set PROUTER_DATA_DIR to the folder "
            "holding routerbench/ and personalizedrouter/"
        )
    return path


@pytest.fixture(scope="session")
def routerbench_dir() -> Path:
    """The RouterBench subset (``$PROUTER_DATA_DIR/routerbench``)."""
    return _public_data("routerbench")


@pytest.fixture(scope="session")
def personalizedrouter_dir() -> Path:
    """The PersonalizedRouter query pool (``$PROUTER_DATA_DIR/personalizedrouter``)."""
    return _public_data("personalizedrouter")


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [f"prouter data dir: {DATA_DIR} ({'present' if DATA_DIR.exists() else 'absent'})"]
