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
