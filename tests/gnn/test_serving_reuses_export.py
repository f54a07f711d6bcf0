"""Serving right after training reads the neighbours' outcome messages from the export the
model was trained on, instead of searching every query's neighbours again.

Before, every ``RoutingService`` searched them again: at 1M queries that search took
about 15 minutes of a serving start, to recompute what the export already held.
The export is used only while the graph is the one it was exported from.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_route import StandInEmbedder, write_workload

from gnn.features import RouterFeatures
from gnn.pipeline import train_and_record
from gnn.serving import RoutingService
from graphdb.store import open_store

TRAIN = {"epochs": 3, "hidden": 8}


@pytest.fixture
def searches(monkeypatch):
    """How many times the messages of every query were searched (a spy; the search runs)."""
    calls = []
    search = RouterFeatures.all_neighbours

    def counted(self):  # type: ignore[no-untyped-def]
        calls.append(len(self.query_emb))
        return search(self)

    monkeypatch.setattr(RouterFeatures, "all_neighbours", counted)
    return calls


@pytest.fixture
def trained(tmp_path):
    store = open_store(f"ladybug:{tmp_path / 'g.lbug'}")
    write_workload(store)
    result = train_and_record(store, model_dir=tmp_path / "models", config=TRAIN)
    yield store, tmp_path / "models", result.version
    store.close()


def _service(store, models):  # type: ignore[no-untyped-def]
    return RoutingService(store, StandInEmbedder(store), model_dir=models)


def test_serving_reads_the_exports_messages_and_routes_the_same(trained, searches):
    store, models, _version = trained
    service = _service(store, models)
    assert searches == []
    reused = service.router.features.neigh.clone()
    searched = service.router.features.all_neighbours()  # what serving searched before
    torch.testing.assert_close(reused, searched, rtol=0, atol=1e-6)


def test_a_changed_graph_is_searched_again(trained, searches):
    store, models, _version = trained
    write_workload(store, seed=2)  # more queries and decisions than the export holds
    _service(store, models)
    assert searches == [len(store.node_ids("Query"))]


def test_a_misnamed_or_missing_export_is_searched_again(trained, searches):
    """The export is looked up by its fingerprint in the model folder's exports/: a
    fingerprint that is no hex digest (a path) is never followed; a deleted file is searched."""
    store, models, version = trained
    from gnn.checkpoint import checkpoint_path, load_file, save_file

    path = checkpoint_path(models, version)
    state = load_file(path)
    good = state["export"]["fingerprint"]
    state["export"]["fingerprint"] = "../" + good[3:]
    save_file(path, state, overwrite=True)
    _service(store, models)
    assert len(searches) == 1
    state["export"]["fingerprint"] = good
    save_file(path, state, overwrite=True)
    for export in (models / "exports").glob("*.pt"):
        export.unlink()
    service = _service(store, models)
    assert searches == [len(store.node_ids("Query"))] * 2
    assert np.isfinite(service.router.features.neigh.numpy()).all()
