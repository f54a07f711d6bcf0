"""Mini-batch training: exact where nothing is sampled, learns, bounded choice logged."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from tests_gnn_support import build_store

from gnn import minibatch
from gnn.data import load_routing_data, split_queries
from gnn.evaluate import evaluate
from gnn.fitting import validate
from gnn.minibatch import _Batches, _step_loss, batch_plan, validate_chunked
from gnn.train import GNNRouter
from graphdb.store import open_store

EXACT = {"hidden": 16, "dropout": 0.0, "new_llm_rate": 0.0, "patience": 100}


def _prepared(data, split, **config):
    router = GNNRouter(seed=0, device="cpu", **config)
    torch.manual_seed(0)
    router._prepare(data, split)
    return router


def test_one_batch_of_everything_is_the_full_batch_loss(routing_data, routing_split):
    """With every target in the batch and every decision in the users' states, a step's
    loss is full-batch training's first loss (same initial weights)."""
    full = GNNRouter(seed=0, device="cpu", epochs=1, batch_size=0, **EXACT)
    full.fit(routing_data, routing_split)
    router = _prepared(routing_data, routing_split, state_sample=10**6, **EXACT)
    f = router.features
    targets = f.outcome_targets(f.ref_perf, f.ref_cost, f.inferred)
    batches = _Batches(router.inference, targets)
    router.model.train()
    loss = _step_loss(
        router.inference,
        router.train_config,
        batches,
        targets,
        0.0 if f.incomplete else 1.0,
        np.arange(len(batches.du)),
        batches.queries,
        np.random.default_rng(0),
    )
    assert float(loss.detach()) == pytest.approx(full.history[0]["loss"], rel=1e-5)


def test_sampled_states_are_capped_distinct_and_whole_below_the_cap(routing_data, routing_split):
    router = _prepared(routing_data, routing_split, **EXACT)
    f = router.features
    batches = _Batches(router.inference, f.outcome_targets(f.ref_perf, f.ref_cost, f.inferred))
    users = np.array([0, 3, 5])
    state = batches.state_sample(users, 7, np.random.default_rng(0))
    assert len(np.unique(state)) == len(state)
    assert set(batches.du[state]) == set(users.tolist())
    assert (np.bincount(batches.du[state])[users] == 7).all()  # each has more than 7
    whole = batches.state_sample(users, 10**6, np.random.default_rng(0))
    assert sorted(whole.tolist()) == sorted(np.flatnonzero(np.isin(batches.du, users)).tolist())


def test_chunked_validation_matches_full_validation(routing_data, routing_split, monkeypatch):
    router = GNNRouter(seed=0, device="cpu", epochs=5, hidden=16).fit(routing_data, routing_split)
    f = router.features
    val = f.decisions(
        routing_data,
        np.flatnonzero(routing_split.val[routing_data.dec_query]),
        np.flatnonzero(routing_split.val[routing_data.pref_query]),
    )
    v_out = f.val_outcomes(routing_data, routing_split)
    want = validate(router.inference, 1.0, val, v_out)
    monkeypatch.setattr(minibatch, "_CHUNK", 97)  # many chunks, a ragged last one
    got = validate_chunked(router.inference, 1.0, val, v_out)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert router.inference.chunk is None  # restored: small graphs score all at once
    # Scoring in chunks (large graphs) gives the scores and users' weights of one pass.
    users, queries = routing_data.dec_user[:300], routing_data.dec_query[:300]
    scores, prefs = router.score(routing_data, users, queries), router.preferences()
    router.inference.chunk = 97
    router.inference.invalidate()
    np.testing.assert_allclose(
        router.score(routing_data, users, queries), scores, rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(router.preferences(), prefs, rtol=1e-5, atol=1e-6)


def test_minibatch_training_learns(routing_data, routing_split, caplog):
    from gnn.routers.baselines import RandomRouter

    with caplog.at_level(logging.INFO, logger="gnn.minibatch"):
        router = GNNRouter(
            seed=0, epochs=10, patience=20, hidden=32, batch_size=256, state_sample=8
        ).fit(routing_data, routing_split)
    assert "mini-batches of 256 targets (configured" in caplog.text
    rand = RandomRouter(seed=0).fit(routing_data, routing_split)
    ours = evaluate(router, routing_data, routing_split, "test")
    assert ours.reward > evaluate(rand, routing_data, routing_split, "test").reward + 0.05
    assert router.best_epoch == int(np.argmin([h["val_loss"] for h in router.history]))


def test_a_step_reads_states_bounded_by_its_batch_not_by_the_users(tmp_path):
    """Batches are drawn by windows of users: the states a step reads (up to
    ``state_sample`` decisions of each user its targets belong to) stay within
    3 x batch + 2 x state_sample, whatever the number of users. Drawn at random, 16
    targets of 300 users touched ~16 users with 8 sampled decisions each."""
    spec = {"n_queries": 400, "n_users": 300, "n_llms": 6, "users_per_query": 9, "dim": 16}
    with open_store(build_store(tmp_path, seed=0, **spec)) as store:
        data = load_routing_data(store)
    batch, cap = 16, 8
    router = GNNRouter(seed=0, device="cpu", epochs=1, batch_size=batch, state_sample=cap, **EXACT)
    read: list[tuple[int, int]] = []  # (users, state decisions) per step
    original = _Batches.state_sample

    def counting(self, users, cap, rng):
        state = original(self, users, cap, rng)
        read.append((len(users), len(state)))
        return state

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_Batches, "state_sample", counting)
        router.fit(data, split_queries(data, seed=0))
    assert len(read) == -(-len(router.features.dec[0]) // batch)  # one per step
    assert max(states for _, states in read) <= 3 * batch + 2 * cap
    assert np.mean([users for users, _ in read]) >= batch / cap  # not one user a step


def test_automatic_choice_by_graph_size(routing_data, routing_split, monkeypatch, caplog):
    """Full batch on small graphs; above, batches of AUTO_BATCH queries' worth of
    decisions, up to MAX_AUTO_BATCH: where many users decide on the same queries
    (RouterBench with 1,000 simulated users: ~1,000 training decisions a query) a step
    encodes nearly every query whatever its batch, so small batches only add steps."""
    router = _prepared(routing_data, routing_split, **EXACT)
    queries = router.features.dec[1].numpy()
    assert len(queries) == 9 * len(np.unique(queries))  # 9 users ask every query
    with caplog.at_level(logging.INFO, logger="gnn.minibatch"):
        assert batch_plan(router.inference, -1) == 0
        assert "full batch (automatic" in caplog.text
        monkeypatch.setattr(minibatch, "FULL_BATCH_LIMIT", 100)
        monkeypatch.setattr(minibatch, "AUTO_BATCH", 128)
        assert batch_plan(router.inference, -1) == 128 * 9
        assert f"mini-batches of {128 * 9} targets (automatic" in caplog.text
    monkeypatch.setattr(minibatch, "MAX_AUTO_BATCH", 300)
    assert batch_plan(router.inference, -1) == 300
    assert batch_plan(router.inference, 0) == 0
    assert batch_plan(router.inference, 200) == 200  # configured: as given
    assert batch_plan(router.inference, 10**9) == 0  # a batch of everything is the full batch
