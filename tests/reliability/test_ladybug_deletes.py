"""Deleting a model version from LadybugDB goes through the same copy-and-swap as every
other write (docs/reliability.md): the live file is replaced whole, never edited in place.

Found by the batched write-back's review: ``delete_routed`` / ``delete_model`` (prune,
and the clean-up of an unfinished write-back) ran outside ``store.transaction()`` and
committed straight into the live file, where a kill during LadybugDB's checkpoint can
tear the graph (the upstream bug of ``test_ladybug_upstream.py``)."""

from __future__ import annotations

import pytest

from graphdb.store import open_store


def _store_with_versions(path):  # type: ignore[no-untyped-def]
    store = open_store(f"ladybug:{path}")
    store.write_nodes("User", [{"id": f"u{i}"} for i in range(3)])
    store.write_nodes("LLM", [{"id": "a"}, {"id": "b"}])
    store.write_nodes("RouterModel", [{"version": "v1"}, {"version": "v2"}])
    store.write_edges(
        "ROUTED_TO",
        [
            {"src": f"u{i}", "dst": llm, "query_id": f"q{i}", "model_version": v, "rank": r}
            for i in range(3)
            for v in ("v1", "v2")
            for r, llm in enumerate(("a", "b"), start=1)
        ],
    )
    store.write_edges(
        "EVALUATED",
        [{"src": v, "dst": "u0", "setting": "general", "shots": 0} for v in ("v1", "v2")],
    )
    return store


@pytest.mark.parametrize(
    "delete",
    [
        lambda store: store.delete_model("v1"),
        lambda store: store.delete_routed("v1"),
        lambda store: store.delete_routed("v1", above_rank=1),
    ],
    ids=["delete_model", "delete_routed", "delete_routed_above_rank"],
)
def test_deleting_a_version_replaces_the_live_file(tmp_path, delete):
    path = tmp_path / "g.lbug"
    store = _store_with_versions(path)
    try:
        before = path.stat().st_ino
        delete(store)
        assert path.stat().st_ino != before  # swapped in whole, not edited in place
        routed = store.export_edges("ROUTED_TO").to_pylist()
        assert {r["model_version"] for r in routed} >= {"v2"}
        assert all(r["model_version"] == "v2" or r["rank"] == 1 for r in routed)
    finally:
        store.close()
    with open_store(f"ladybug:{path}", read_only=True) as again:  # what was committed
        assert again.export_edges("ROUTED_TO").num_rows == len(routed)


# A large delete rebuilds ROUTED_TO with the edges it keeps instead of deleting edge by edge
# (LadybugDB searches the LLM's backward adjacency list for each deleted edge:
# docs/reliability.md). REBUILD_RATIO 0 forces the edge-by-edge path (these stores always
# keep the edges of v2), a large one the
# rebuild; both must leave the same graph.
PATHS = pytest.mark.parametrize("ratio", [0, 10**9], ids=["edge_by_edge", "rebuild"])


def _routed(store) -> list[dict]:  # type: ignore[no-untyped-def]
    rows = store.export_edges("ROUTED_TO").to_pylist()
    return sorted(rows, key=lambda r: tuple(str(v) for v in r.values()))


def _table_id(store) -> int:  # type: ignore[no-untyped-def]
    tables = store.read("CALL show_tables() RETURN name, id").to_pylist()
    return next(t["id"] for t in tables if t["name"] == "ROUTED_TO")


def _odd_edges(store) -> None:  # type: ignore[no-untyped-def]
    """Edges with a null rank (and score): ``above_rank`` must keep them."""
    store.write_edges(
        "ROUTED_TO",
        [
            {"src": "u0", "dst": "a", "query_id": "qn", "model_version": "v1", "score": 0.5},
            {"src": "u1", "dst": "b", "query_id": "qm", "model_version": "v2"},
        ],
    )


@PATHS
@pytest.mark.parametrize("above_rank", [None, 1])
def test_both_paths_delete_the_same_edges(tmp_path, monkeypatch, ratio, above_rank):
    from graphdb.backends import ladybug as backend

    monkeypatch.setattr(backend, "REBUILD_RATIO", ratio)
    store = _store_with_versions(tmp_path / "g.lbug")
    try:
        _odd_edges(store)
        before, table_id = _routed(store), _table_id(store)
        doomed = [
            r
            for r in before
            if r["model_version"] == "v1"
            and (above_rank is None or (r["rank"] is not None and r["rank"] > above_rank))
        ]
        assert store.delete_routed("v1", above_rank=above_rank) == len(doomed)
        assert _routed(store) == [r for r in before if r not in doomed]
        assert (_table_id(store) != table_id) == (ratio > 0)  # rebuilt, or not
        store.write_edges(  # the table still takes writes, keyed as before
            "ROUTED_TO", [{"src": "u2", "dst": "b", "query_id": "q9", "model_version": "v3"}]
        )
        assert len(_routed(store)) == len(before) - len(doomed) + 1
    finally:
        store.close()


@PATHS
def test_delete_model_counts_are_the_same_on_both_paths(tmp_path, monkeypatch, ratio):
    from graphdb.backends import ladybug as backend

    monkeypatch.setattr(backend, "REBUILD_RATIO", ratio)
    with _store_with_versions(tmp_path / "g.lbug") as store:
        assert store.delete_model("v1") == {"ROUTED_TO": 6, "EVALUATED": 1, "RouterModel": 1}
        assert store.delete_model("v1") == {"ROUTED_TO": 0, "EVALUATED": 0, "RouterModel": 0}
        assert {r["model_version"] for r in _routed(store)} == {"v2"}
    with open_store(f"ladybug:{tmp_path / 'g.lbug'}") as again:  # reopens, schema applied
        assert again.export_edges("ROUTED_TO").num_rows == 6


@PATHS
def test_a_failed_delete_leaves_the_graph_as_it_was(tmp_path, monkeypatch, ratio):
    from graphdb.backends import ladybug as backend
    from prcore.errors import StoreError

    monkeypatch.setattr(backend, "REBUILD_RATIO", ratio)
    path = tmp_path / "g.lbug"
    store = _store_with_versions(path)
    try:
        before, execute = _routed(store), store._execute

        def failing(cypher, params=None):  # type: ignore[no-untyped-def]
            if cypher.startswith("MATCH (m:RouterModel)"):  # after the ROUTED_TO delete
                raise StoreError("injected")
            return execute(cypher, params)

        monkeypatch.setattr(store, "_execute", failing)
        with pytest.raises(StoreError, match="injected"):
            store.delete_model("v1")
        monkeypatch.setattr(store, "_execute", execute)
        assert _routed(store) == before
    finally:
        store.close()
    with open_store(f"ladybug:{path}", read_only=True) as again:
        assert _routed(again) == before
