"""Training on an export reuses the neighbour messages the export computed (at 1M queries
the search of every query's nearest training queries took about a quarter of training)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from tests_gnn_support import build_store

from gnn.export import SubgraphSpec, export_training_subgraph, load_training_subgraph
from gnn.features import RouterFeatures
from gnn.pipeline import train_from_export
from gnn.train import GNNRouter
from graphdb.store import open_store

CONFIG = {"epochs": 3, "hidden": 16, "new_llm_rate": 0.0, "dropout": 0.0, "device": "cpu"}


@pytest.fixture
def export(tmp_path):
    with open_store(build_store(tmp_path)) as store:
        return export_training_subgraph(store, tmp_path / "exports", SubgraphSpec(neighbours=5))


def _count_searches(monkeypatch) -> list[int]:
    calls: list[int] = []
    original = RouterFeatures.all_neighbours

    def counting(self):
        calls.append(1)
        return original(self)

    monkeypatch.setattr(RouterFeatures, "all_neighbours", counting)
    return calls


def test_the_exports_messages_train_the_same_model_without_a_search(export, monkeypatch):
    sub = load_training_subgraph(export.path)
    messages = sub.graph["query"].neighbour_outcomes.numpy()
    searched = GNNRouter(seed=0, neighbours=5, **CONFIG).fit(sub.data, sub.split)
    calls = _count_searches(monkeypatch)
    reused = GNNRouter(seed=0, neighbours=5, **CONFIG).fit(sub.data, sub.split, messages=messages)
    assert calls == []
    torch.testing.assert_close(reused.features.neigh, searched.features.neigh)
    np.testing.assert_allclose(
        [h["val_loss"] for h in reused.history], [h["val_loss"] for h in searched.history]
    )


def test_train_from_export_reuses_its_messages_when_k_matches(export, tmp_path, monkeypatch):
    calls = _count_searches(monkeypatch)
    train_from_export(export.path, tmp_path / "models", config=CONFIG)
    assert calls == []  # the export's k (5)
    train_from_export(export.path, tmp_path / "models", config=CONFIG | {"neighbours": 7})
    assert calls == [1]  # another k: searched


@pytest.mark.parametrize("bad", ["nan", "shape", "range"])
def test_bad_messages_are_not_used_but_searched_again(export, bad, monkeypatch, caplog):
    """The export's messages are a cache read from a file: bad ones are searched again
    (with a warning), so a graph with an absurd outcome still stops training with the
    message that names the cause (tests/reliability/test_model_files.py)."""
    sub = load_training_subgraph(export.path)
    messages = sub.graph["query"].neighbour_outcomes.numpy().copy()
    if bad == "nan":
        messages[3, 1, 0] = np.nan
    elif bad == "shape":
        messages = messages[:, :-1]
    else:
        messages[0, 0, 2] = 7.0  # a similarity above 1
    calls = _count_searches(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="gnn.features"):
        router = GNNRouter(seed=0, neighbours=5, **CONFIG).fit(
            sub.data, sub.split, messages=messages
        )
    assert calls == [1]
    assert "neighbour messages" in caplog.text and "searching again" in caplog.text
    want = sub.graph["query"].neighbour_outcomes
    torch.testing.assert_close(router.features.neigh, want.to(router.features.neigh.dtype))
