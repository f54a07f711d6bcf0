"""Two ingests of the same file at once into one Neo4j graph converge to one ingest's graph.

Issue #14 item 2: the write path looked up the stored edges, then CREATEd the
missing ones, so two writers that both looked before either wrote both created
every edge (ANSWERED_BY 31,500 instead of 16,500). Each writer here gets its
own driver; a barrier before every edge creation makes both look up first, the
interleaving that duplicated edges, so the test reproduces it every time.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from graphdb.ingest import ingest_files
from graphdb.schema import RELS
from graphdb.store import GraphStore, open_store
from prouter.demo import write_canonical
from workloads.synthetic import generate

pytestmark = pytest.mark.neo4j


def _open(server: dict[str, str]) -> GraphStore:
    return open_store(server["uri"], username=server["username"], password=server["password"])


def _ingest_at_once(server: dict[str, str], path: Path, *, lockstep: bool) -> list[object]:
    """Two threads, each with its own driver, ingest ``path``; returns their results."""
    barrier = threading.Barrier(2, timeout=120)
    results: list[object] = [None, None]

    def work(i: int) -> None:
        store = _open(server)
        store.batch_size = 200  # several batches per edge type: more interleaving
        if lockstep:
            create = store._create_edges

            def after_both_looked(rt, rows):  # type: ignore[no-untyped-def]
                barrier.wait()  # both writers have looked up the stored edges
                create(rt, rows)

            store._create_edges = after_both_looked  # type: ignore[method-assign]
        else:
            barrier.wait()
        try:
            results[i] = ingest_files(store, [path])
        except Exception as exc:  # reported by the assertion below
            results[i] = exc
            barrier.abort()
        finally:
            store.close()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a concurrent ingest hung"
    return results


@pytest.mark.parametrize("lockstep", [True, False], ids=["both-look-first", "free-running"])
def test_two_concurrent_ingests_give_the_graph_of_one(neo4j_server, tmp_path, lockstep):
    workload = generate(n_queries=300, n_users=6, n_llms=5, seed=11)
    path = tmp_path / "w.jsonl"
    write_canonical(workload.records(), path)
    with open_store(f"ladybug:{tmp_path / 'one.lbug'}") as one:
        ingest_files(one, [path])
        expected = one.counts()
    assert expected["ANSWERED_BY"] == 300 * 5 and expected["OF_TASK"] == 300

    with _open(neo4j_server) as store:
        store.clear()
    results = _ingest_at_once(neo4j_server, path, lockstep=lockstep)
    assert not [r for r in results if isinstance(r, Exception)], results

    with _open(neo4j_server) as store:
        assert store.counts() == expected
        again = ingest_files(store, [path])
    for name in RELS:
        stats = again.written.get(name)
        if stats is not None:
            assert stats.created == stats.updated == 0, (name, stats)
            assert stats.unchanged == expected[name], (name, stats)
