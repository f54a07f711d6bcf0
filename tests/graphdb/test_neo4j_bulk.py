"""The initial bulk load through `neo4j-admin database import full`, against the real
local server (stopped, imported, started again): the same graph as the UNWIND path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_canonical import write_jsonl
from test_chunked_ingest import SPREAD, TROUBLE
from test_ingest import graph_rows

from graphdb.ingest import ingest_files
from graphdb.schema import NODES, RELS
from graphdb.store import open_store
from prcore.errors import ConfigError, ValidationError
from prouter.bulk_load import bulk_load, local_server_for
from prouter.cli import cli
from prouter.demo import write_canonical
from workloads.synthetic import generate

pytestmark = pytest.mark.neo4j
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def local_home(neo4j_server) -> Path:
    if os.environ.get("PROUTER_TEST_NEO4J_URI"):
        pytest.skip("the bulk import needs the locally launched test server, not an outside one")
    home = Path(os.environ.get("PROUTER_TEST_NEO4J_HOME", REPO / ".neo4j-test"))
    assert local_server_for(neo4j_server["uri"], home) is not None
    return home


def _graph(store) -> dict[str, list[dict]]:
    out = {label: store.export_nodes(label).to_pylist() for label in NODES}
    out |= {rel: store.export_edges(rel).to_pylist() for rel in RELS}
    return out


def test_bulk_import_loads_the_same_graph_as_the_unwind_path(neo4j_server, local_home, tmp_path):
    path = tmp_path / "workload.jsonl"
    wl = generate(n_queries=60, n_users=3, n_llms=4, users_per_query=2, seed=3)
    records = wl.records()
    text = records[0]["query_text"] + '\nsecond line, with "quotes"; and a comma'
    for r in records:  # every record of that query carries the same text
        if r["query_id"] == records[0]["query_id"]:
            r["query_text"] = text
    write_canonical(records, path)
    with open_store(f"ladybug:{tmp_path / 'ref.lbug'}") as ref:
        ingest_files(ref, [path])
        expected = _graph(ref)
    auth = {"username": neo4j_server["username"], "password": neo4j_server["password"]}
    with open_store(neo4j_server["uri"], **auth) as store:
        store.clear()
    report = bulk_load([path], home=local_home)
    assert report.counts["Query"] == 60 and report.counts["ANSWERED_BY"] == 60 * 4
    with open_store(neo4j_server["uri"], **auth) as store:  # same URI after the restart
        assert _graph(store) == expected
        constraints = store.read("SHOW CONSTRAINTS YIELD name RETURN count(*) AS n")
        assert constraints.column("n")[0].as_py() > 0  # the schema was applied after import
    with pytest.raises(ConfigError, match="not empty"):
        bulk_load([path], home=local_home)
    # the CLI's --bulk falls back to UNWIND on a non-empty database (an idempotent re-run)
    env = {"NEO4J_URI": neo4j_server["uri"], "PROUTER_NEO4J_HOME": str(local_home)}
    env |= {"NEO4J_USERNAME": auth["username"], "NEO4J_PASSWORD": auth["password"]}
    out = CliRunner().invoke(
        cli, ["--store", "neo4j", "ingest", "canonical", str(path), "--bulk"], env=env
    )
    assert out.exit_code == 0, out.output
    assert "not empty; using UNWIND" in out.output
    with open_store(neo4j_server["uri"], **auth) as store:
        assert _graph(store) == expected
        store.clear()


def test_bulk_import_refuses_invalid_records_and_loads_nothing(neo4j_server, local_home, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"query_id": "q1"}\n', encoding="utf-8")
    auth = {"username": neo4j_server["username"], "password": neo4j_server["password"]}
    with open_store(neo4j_server["uri"], **auth) as store:
        store.clear()
    with pytest.raises(ValidationError, match="nothing was loaded"):
        bulk_load([path], home=local_home)
    with open_store(neo4j_server["uri"], **auth) as store:
        assert not any(store.counts().values())


@pytest.mark.parametrize("chunk_size", [1, 3])
def test_bulk_import_in_small_chunks_loads_what_the_unwind_ingest_loads(
    neo4j_server, local_home, tmp_path, chunk_size
):
    # SPREAD: values of one node, outcome or decision given by records in several chunks
    path = write_jsonl(tmp_path / "spread.jsonl", SPREAD)
    auth = {"username": neo4j_server["username"], "password": neo4j_server["password"]}
    with open_store(neo4j_server["uri"], **auth) as store:
        store.clear()
        ingest_files(store, [path])
        expected = graph_rows(store)
        store.clear()
    report = bulk_load([path], home=local_home, chunk_size=chunk_size)
    assert report.records == len(SPREAD)
    assert not list((local_home / "import").glob("bulk-*"))  # CSVs and spill removed
    with open_store(neo4j_server["uri"], **auth) as store:
        assert graph_rows(store) == expected
        assert expected["Query"] and expected["CHOSE"] and expected["PREFERRED"]
        store.clear()


def test_bulk_import_reports_the_problems_the_unwind_ingest_reports(
    neo4j_server, local_home, tmp_path
):
    path = write_jsonl(tmp_path / "trouble.jsonl", TROUBLE)
    auth = {"username": neo4j_server["username"], "password": neo4j_server["password"]}
    with open_store(neo4j_server["uri"], **auth) as store:
        store.clear()
        with pytest.raises(ValidationError) as unwind:
            ingest_files(store, [path])
    with pytest.raises(ValidationError, match="nothing was loaded") as bulk:
        bulk_load([path], home=local_home, chunk_size=3)
    assert [str(p) for p in bulk.value.problems] == [str(p) for p in unwind.value.problems]
    lines = str(unwind.value).splitlines()
    assert str(bulk.value).splitlines()[1:] == lines[1:]
    assert f"of {len(TROUBLE)} records are invalid" in str(bulk.value)
    assert not list((local_home / "import").glob("bulk-*"))
    with open_store(neo4j_server["uri"], **auth) as store:
        assert not any(store.counts().values())
