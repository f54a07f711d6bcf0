"""Large updates on LadybugDB commit in batches on the private copy (docs/reliability.md).

Found by the 1M-query scale benchmark: writing the embeddings of freshly ingested
queries (NULL lists set to vectors) as one LadybugDB transaction costs a COMMIT that
grows with the square of the rows (100k rows: 101 s to commit against 9 s in batches
of 10,000). Batches commit on the private copy, so the live file still changes only
once, when the whole write is published."""

from __future__ import annotations

import numpy as np
import pytest

from graphdb.backends import ladybug as ladybug_backend
from graphdb.store import open_store
from graphdb.tables import embedding_array
from prcore.errors import StoreError


def _queries(path, n):  # type: ignore[no-untyped-def]
    store = open_store(f"ladybug:{path}")
    store.write_nodes("Query", [{"id": f"q{i}", "text": f"t{i}"} for i in range(n)])
    return store


def _vectors(n: int) -> np.ndarray:
    return np.arange(n * 4, dtype=np.float32).reshape(n, 4) / 7


def test_a_large_update_commits_in_batches_and_writes_every_row(tmp_path, monkeypatch):
    monkeypatch.setattr(ladybug_backend, "UPDATE_BATCH", 3)
    store = _queries(tmp_path / "g.lbug", 10)
    commits: list[int] = []
    real = store.commit_point
    monkeypatch.setattr(store, "commit_point", lambda: (commits.append(1), real())[1])
    try:
        ids = [f"q{i}" for i in range(10)]
        stats = store.write_nodes("Query", {"id": ids, "embedding": embedding_array(_vectors(10))})
        assert (stats.created, stats.updated) == (0, 10)
        assert len(commits) == 3  # between the 4 batches of 3, 3, 3 and 1 rows
    finally:
        store.close()
    with open_store(f"ladybug:{tmp_path / 'g.lbug'}", read_only=True) as again:
        got = {r["id"]: r["embedding"] for r in again.export_nodes("Query").to_pylist()}
    np.testing.assert_allclose([got[i] for i in ids], _vectors(10), rtol=1e-6)


def test_a_batched_update_that_fails_leaves_the_live_file_as_it_was(tmp_path, monkeypatch):
    monkeypatch.setattr(ladybug_backend, "UPDATE_BATCH", 3)
    store = _queries(tmp_path / "g.lbug", 10)
    real = store._execute
    sets: list[str] = []

    def fail_third(cypher, params=None):  # type: ignore[no-untyped-def]
        if cypher.startswith("LOAD FROM") and " SET " in cypher:
            sets.append(cypher)
            if len(sets) == 3:
                raise StoreError("LadybugDB: injected fault in the third batch")
        return real(cypher, params)

    monkeypatch.setattr(store, "_execute", fail_third)
    try:
        ids = [f"q{i}" for i in range(10)]
        with pytest.raises(StoreError, match="injected fault"):
            store.write_nodes("Query", {"id": ids, "embedding": embedding_array(_vectors(10))})
    finally:
        store.close()
    with open_store(f"ladybug:{tmp_path / 'g.lbug'}", read_only=True) as again:
        rows = again.export_nodes("Query").to_pylist()
    assert len(rows) == 10 and all(r["embedding"] is None for r in rows)
