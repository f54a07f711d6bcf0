"""`prouter cypher run` only reads the graph (issue #14, item 9), on both backends.

Each statement kind that a read-only store still lets through (files written or
read, extensions, administration, procedures) is refused with a one-line error;
the graph is unchanged, no file is written, and a tripwire file's access time
shows that no file is even read. Every library query still passes.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from graphdb.queries import coerce_param, load_queries
from graphdb.readonly import ReadOnlyQueryError, check_read_only, plan_operators
from graphdb.store import GraphStore, open_store
from prouter.cli import cli

REFUSED = "Error: refused: `prouter cypher run` only reads the graph"


def fill(store: GraphStore) -> None:
    store.write_nodes("User", [{"id": "u1"}, {"id": "u2"}])
    store.write_nodes("LLM", [{"id": "a"}])


def snapshot(store: GraphStore) -> tuple[object, ...]:
    return (store.counts(), sorted(store.node_ids("User")))


class Tripwire:
    """A small CSV file whose access time (set a day before its modification time, so
    that even ``relatime`` mounts update it) shows whether anything read it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.write_text("a,b\n1,2\n")
        mtime = path.stat().st_mtime
        os.utime(path, (mtime - 86_400, mtime))
        self.atime = path.stat().st_atime

    def was_read(self) -> bool:
        return self.path.stat().st_atime != self.atime


def tripwire(path: Path) -> Tripwire:
    """A :class:`Tripwire` at ``path``; skips when this filesystem keeps no access times."""
    probe = Tripwire(path.with_name("probe.csv"))
    probe.path.read_bytes()
    if not probe.was_read():
        pytest.skip("this filesystem does not record access times (noatime)")
    probe.path.unlink()
    return Tripwire(path)


COMMON = [
    "CREATE (u:User {id: 'x'}) RETURN u.id",
    "MERGE (u:User {id: 'x'})",
    "MATCH (u:User) RETURN u.id; MATCH (u:User) DETACH DELETE u",
    "EXPLAIN MATCH (u:User) RETURN u.id",
    "PROFILE MATCH (u:User) RETURN u.id",
    "CALL { MATCH (u:User) RETURN u.id AS id } RETURN id",
    "",
]
LADYBUG = [
    "COPY (MATCH (u:User) RETURN u.id) TO '{tmp}/out.csv'",
    "EXPORT DATABASE '{tmp}/export'",
    "IMPORT DATABASE '{tmp}/export'",
    "LOAD FROM '{wire}' RETURN *",
    "LOAD FROM '/etc/passwd' (header=false, delim=':', file_format='csv') RETURN *",
    "MATCH (u:User) WITH u LOAD FROM '{wire}' RETURN *",
    "UNWIND [1] AS x LOAD WITH HEADERS (a STRING) FROM '{wire}' RETURN *",
    "LOAD EXTENSION '{tmp}/x.so'",
    "INSTALL json",
    "CHECKPOINT",
    "ATTACH '{tmp}/other.lbug' AS other (dbtype lbug)",
    "USE other",
    "CALL show_tables() RETURN *",
    "MATCH (u:User) CALL show_tables() RETURN *",
    "CALL threads = 1",
    "BEGIN TRANSACTION",
    "// a comment\nCHECKPOINT",
]
NEO4J = [
    "SHOW TRANSACTIONS",
    "TERMINATE TRANSACTIONS 'neo4j-transaction-1'",
    "SHOW PROCEDURES",
    "CALL db.clearQueryCaches()",
    "CALL db.labels() YIELD label RETURN label",
    "MATCH (u:User) CALL db.labels() YIELD label RETURN label",
    "LOAD CSV FROM 'file://{wire}' AS row RETURN row",
    "MATCH (u:User) WITH u LOAD CSV FROM 'file:///etc/passwd' AS row RETURN row",
    "CYPHER runtime=slotted MATCH (u:User) RETURN u.id",
    "USE system SHOW DATABASES",
    "SHOW DATABASES",
]


def test_refused_statement_kinds_change_nothing_and_touch_no_file(store, tmp_path, store_cli_args):
    fill(store)
    before = snapshot(store)
    files = tmp_path / "files"
    files.mkdir()
    wire_path = files / "tripwire.csv"
    statements = COMMON + (LADYBUG if store.backend == "ladybug" else NEO4J)
    wire = tripwire(wire_path)
    for template in statements:
        statement = template.replace("{tmp}", str(files)).replace("{wire}", str(wire_path))
        result = CliRunner().invoke(cli, [*store_cli_args(store), "cypher", "run", "-q", statement])
        assert result.exit_code == 1, (statement, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(REFUSED), (statement, result.output)
        assert "Traceback" not in result.output
        with pytest.raises(ReadOnlyQueryError):
            check_read_only(store, statement, {})
    assert not wire.was_read(), "a refused statement read a file"
    assert sorted(p.name for p in files.iterdir()) == ["tripwire.csv"]  # nothing written
    assert snapshot(store) == before


def test_the_tripwire_catches_a_database_reading_the_file(tmp_path):
    """The control: without the check, LadybugDB reads the file just to plan a LOAD FROM
    (and the plan allow-list would still refuse its READ_CSV_PARALLEL)."""
    url = f"ladybug:{tmp_path / 'g.lbug'}"
    with open_store(url) as store:
        fill(store)
    wire_path = tmp_path / "tripwire.csv"
    wire = tripwire(wire_path)
    with open_store(url, read_only=True) as store:
        found = plan_operators(store, f"LOAD FROM '{wire_path}' RETURN *", {})
    assert "FUNCTION:READ_CSV_PARALLEL" in found
    assert wire.was_read()


def test_the_plan_allow_list_refuses_what_the_statement_check_cannot_see(store):
    """The database's plan is checked too: a table function or procedure is refused
    even if it got past the statement check."""
    fill(store)
    if store.backend == "ladybug":
        found = plan_operators(store, "CALL show_tables() RETURN *", {})
        assert "FUNCTION:SHOW_TABLES" in found
    else:
        found = plan_operators(store, "CALL db.labels() YIELD label RETURN label", {})
        assert "ProcedureCall" in found
    reads = plan_operators(store, "MATCH (u:User) WHERE u.id = $id RETURN u.id AS id", {"id": "u1"})
    assert reads and not {"FUNCTION:SHOW_TABLES", "ProcedureCall"} & reads


SAMPLE = {"str": "u1", "int": "3", "float": "0.5", "bool": "true"}


@pytest.mark.parametrize(
    "statement",
    [
        "MATCH (u:User) RETURN u.id AS id ORDER BY id LIMIT 1",
        "OPTIONAL MATCH (u:User)-[c:CHOSE]->(l:LLM) RETURN count(c) AS n",
        "UNWIND $ids AS id MATCH (u:User) WHERE u.id = id RETURN u.id AS id",
        "WITH 1 AS one RETURN one",
        "RETURN 1 AS one",
        "MATCH (u:User) RETURN u.id AS call, 'LOAD FROM x' AS text // CALL db.x()",
        "MATCH (u:User) RETURN u.id AS id UNION MATCH (l:LLM) RETURN l.id AS id",
        "MATCH (u:User) WHERE EXISTS { MATCH (u)-[:CHOSE]->(:LLM) } RETURN u.id AS id",
    ],
)
def test_plain_graph_reads_pass(store, statement):
    fill(store)
    check_read_only(store, statement, {"ids": ["u1"]})


def test_every_library_query_passes(store):
    fill(store)
    for query in load_queries().values():
        params = {}
        for name, type_ in query.params.items():
            scalar = type_.removeprefix("list").strip("[]") or "str"
            text = SAMPLE[scalar] if scalar == type_ else f"{SAMPLE[scalar]},{SAMPLE[scalar]}"
            params[name] = coerce_param(name, type_, text)
        check_read_only(store, query.text, params)
