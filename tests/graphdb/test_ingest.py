"""Ingest end to end: synthetic workloads, bulk tables vs canonical records, crash recovery."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest

from graphdb.canonical import RawRecord
from graphdb.ingest import ingest_files, ingest_records, write_tables
from graphdb.schema import NODES, RELS
from graphdb.store import open_store
from prouter.demo import write_canonical
from workloads.synthetic import generate


def graph_rows(store) -> dict[str, list]:  # type: ignore[no-untyped-def]
    out = {label: store.export_nodes(label).to_pylist() for label in NODES}
    out |= {name: store.export_edges(name).to_pylist() for name in RELS}
    return {k: sorted(v, key=lambda r: repr(sorted(r.items()))) for k, v in out.items()}


def test_canonical_records_and_bulk_tables_give_the_same_graph(store, tmp_path):
    workload = generate(n_queries=120, n_users=5, n_llms=4, seed=3)
    raws = [RawRecord("synthetic", f"record {i}", r) for i, r in enumerate(workload.records())]
    report = ingest_records(store, raws)
    assert report.records_rejected == 0
    assert report.written["ANSWERED_BY"].created == 120 * 4
    with open_store(f"ladybug:{tmp_path / 'bulk.lbug'}") as bulk:
        write_tables(bulk, workload.tables())
        assert graph_rows(bulk) == graph_rows(store)


def test_ladybug_transaction_rolls_back_a_failed_ingest(tmp_path):
    workload = generate(n_queries=30, n_users=3, n_llms=3, seed=1)
    tables = workload.tables()
    chose = tables["CHOSE"]
    dst = chose.column("dst").to_pylist()
    tables["CHOSE"] = chose.set_column(1, "dst", pa.array([*dst[:-1], "ghost"]))
    with open_store(f"ladybug:{tmp_path / 'g.lbug'}") as store:
        with pytest.raises(Exception, match="unknown LLM ids"):
            write_tables(store, tables)
        assert all(n == 0 for n in store.counts().values())


_LOADER = """
import logging, sys
from graphdb.ingest import ingest_files
from graphdb.store import open_store
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
store = open_store(sys.argv[1], username=sys.argv[2] or None, password=sys.argv[3] or None)
if len(sys.argv) > 5:
    store.batch_size = int(sys.argv[5])
ingest_files(store, [sys.argv[4]])
print("finished", flush=True)
"""


def _url_and_auth(store, request) -> tuple[str, str, str]:  # type: ignore[no-untyped-def]
    if store.backend == "ladybug":
        return f"ladybug:{store.path}", "", ""
    server = request.getfixturevalue("neo4j_server")
    return server["uri"], server["username"], server["password"]


@pytest.mark.slow
def test_rerun_after_a_killed_ingest_converges(store, tmp_path, request):
    workload = generate(n_queries=1_500, n_users=9, n_llms=10, seed=5)
    path = tmp_path / "workload.jsonl"
    write_canonical(workload.records(), path)
    url, user, password = _url_and_auth(store, request)
    if store.backend == "ladybug":
        store.close()  # one process at a time holds the database file
    cmd = [sys.executable, "-c", _LOADER, url, user, password, str(path), "500"]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    killed_during = None
    for line in proc.stderr:  # type: ignore[union-attr]
        if line.startswith("writing ANSWERED_BY"):
            # Neo4j writes ANSWERED_BY in 30 batches: let a few of them commit first.
            time.sleep(0.3 if store.backend == "neo4j" else 0)
            proc.send_signal(signal.SIGKILL)
            killed_during = line.strip()
            break
    out, _ = proc.communicate(timeout=120)
    assert killed_during and "finished" not in out, "the loader finished before it was killed"
    assert proc.returncode == -signal.SIGKILL

    with open_store(url, username=user or None, password=password or None) as after_kill:
        partial = after_kill.counts()
        if after_kill.backend == "ladybug":  # one transaction: all or nothing
            assert all(n == 0 for n in partial.values()), partial
        else:  # committed batches survive, and only whole batches
            assert partial["ANSWERED_BY"] % 500 == 0 and partial["ANSWERED_BY"] < 15_000
        ingest_files(after_kill, [path])
        ingest_files(after_kill, [path])
        recovered = graph_rows(after_kill)
    with open_store(f"ladybug:{tmp_path / 'clean.lbug'}") as clean:
        ingest_files(clean, [path])
        assert recovered == graph_rows(clean)
    assert len(recovered["ANSWERED_BY"]) == 15_000
