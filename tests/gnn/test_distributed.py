"""DDP training across 2 CPU processes (gloo) trains the model one process trains, in full
batch and in mini-batches."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from gnn.distributed import shard
from gnn.train import GNNRouter, NonPersonalizedGNNRouter

SMALL = {"epochs": 4, "patience": 100, "hidden": 16}
# Mini-batches with sampled user states (4 decisions) and few-shot draws; no dropout (the
# ranks encode different queries, so their dropout masks cannot be the single process's).
BATCHED = SMALL | {"epochs": 3, "batch_size": 64, "state_sample": 4, "dropout": 0.0}


def test_shards_are_disjoint_and_cover_everything():
    parts = [shard(11, r, 3) for r in range(3)]
    assert sorted(np.concatenate(parts).tolist()) == list(range(11))
    assert {len(p) for p in parts} == {3, 4}


def _assert_same_training(ddp, single, data) -> None:  # type: ignore[no-untyped-def]
    """The DDP run trained the single-process model: losses, best epoch, weights, scores."""
    # Summation order differs between one process and two: up to 1.4e-4 relative measured
    # on a loss after 3 epochs of mini-batches.
    for key in ("loss", "val_loss", "val_outcome_loss"):
        np.testing.assert_allclose(
            [h[key] for h in ddp.history], [h[key] for h in single.history], rtol=5e-4, atol=1e-5
        )
    assert ddp.best_epoch == single.best_epoch
    got, want = ddp.model.state_dict(), single.model.state_dict()
    assert got.keys() == want.keys()
    # Adam normalises each gradient by its scale: where a gradient is ~0 (the outcome heads'
    # output starts at 0), summation-order noise moves a weight by up to ~lr per step.
    for name in want:
        np.testing.assert_allclose(got[name].numpy(), want[name].numpy(), atol=2e-2)
    users, queries = data.dec_user[:200], data.dec_query[:200]
    np.testing.assert_allclose(
        ddp.score(data, users, queries), single.score(data, users, queries), atol=2e-3
    )


@pytest.mark.parametrize("cls", [GNNRouter, NonPersonalizedGNNRouter])
def test_two_gloo_processes_match_single_process_full_batch(cls, routing_data, routing_split):
    torch.set_num_threads(1)
    single = cls(seed=0, device="cpu", **SMALL).fit(routing_data, routing_split)
    ddp = cls(seed=0, device="cpu", processes=2, **SMALL).fit(routing_data, routing_split)
    assert len(ddp.history) == len(single.history) == SMALL["epochs"]
    _assert_same_training(ddp, single, routing_data)
    want = single.model.state_dict()
    # Training moved the weights (the comparison is not between two untrained models).
    fresh = cls(seed=0, device="cpu", **(SMALL | {"epochs": 0}))
    fresh._prepare(routing_data, routing_split)
    moved = max(float((want[n] - fresh.model.state_dict()[n]).abs().max()) for n in want)
    assert moved > 1e-3


@pytest.mark.parametrize("cls", [GNNRouter, NonPersonalizedGNNRouter])
def test_two_gloo_processes_match_single_process_mini_batches(cls, routing_data, routing_split):
    """Each rank takes half of every step's batch (the same draws on every rank); the
    averaged gradients are the single-process mini-batch gradients."""
    torch.set_num_threads(1)
    single = cls(seed=0, device="cpu", **BATCHED).fit(routing_data, routing_split)
    ddp = cls(seed=0, device="cpu", processes=2, **BATCHED).fit(routing_data, routing_split)
    steps = len(routing_data.dec_user) // BATCHED["batch_size"]
    assert steps >= 3  # several steps per epoch, so the per-step sharding is exercised
    assert len(ddp.history) == len(single.history) == BATCHED["epochs"]
    _assert_same_training(ddp, single, routing_data)
    # The mini-batch loop ran (its losses differ from full-batch training's).
    full = cls(seed=0, device="cpu", **(BATCHED | {"batch_size": 0})).fit(
        routing_data, routing_split
    )
    assert abs(full.history[-1]["loss"] - single.history[-1]["loss"]) > 1e-4


def test_distributed_mini_batch_choice_is_logged(routing_data, routing_split, caplog):
    torch.set_num_threads(1)
    with caplog.at_level(logging.INFO, logger="gnn.minibatch"):
        GNNRouter(seed=0, device="cpu", processes=2, **(BATCHED | {"epochs": 1})).fit(
            routing_data, routing_split
        )
    assert "mini-batches of 64 targets (configured" in caplog.text
    assert "2 processes" in caplog.text
