"""The GNN's correction of the per-(task, LLM) prior is scaled on validation, and the scale
travels with its checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gnn.data import RoutingData, Split
from gnn.fitting import RESIDUAL_SCALES, select_residual_scale
from gnn.routers.base import training_decisions
from gnn.train import GNNRouter
from gnn.validation import ValidationPairs, validation_pairs
from gnn.weights import estimate_user_weights
from prcore.errors import ProuterError

FAST = {"epochs": 30, "patience": 10, "hidden": 32}


@pytest.fixture(scope="module")
def trained(routing_data, routing_split):
    return GNNRouter(seed=0, **FAST).fit(routing_data, routing_split)


def _validation_utilities(router: GNNRouter, data: RoutingData, split: Split) -> dict:
    """Per validation decision, the utility of the routed pick at each scale."""
    cost_norm = data.cost_norm(split.train)
    weights = estimate_user_weights(data, training_decisions(data, split.train), cost_norm)
    pairs = validation_pairs(data, split, weights)
    saved = router.inference.residual_scale
    out = {}
    try:
        for scale in RESIDUAL_SCALES:
            router.inference.residual_scale = scale
            scores = router.inference.score(pairs.users, pairs.queries, data.num_llms)
            out[scale] = pairs.utilities(data, cost_norm, scores)
    finally:
        router.inference.residual_scale = saved
    return out


def test_the_chosen_scale_is_the_smallest_within_one_standard_error(
    trained, routing_data, routing_split
):
    chosen = trained.inference.residual_scale
    got = _validation_utilities(trained, routing_data, routing_split)
    best = max(RESIDUAL_SCALES, key=lambda s: np.nanmean(got[s]))

    def one_se_below(scale: float) -> bool:
        gap = got[best] - got[scale]
        gap = gap[~np.isnan(gap)]
        return gap.mean() > gap.std(ddof=1) / np.sqrt(len(gap))

    assert chosen in RESIDUAL_SCALES and not one_se_below(chosen)
    assert all(one_se_below(s) for s in RESIDUAL_SCALES if s < chosen)


def test_scale_zero_routes_on_the_prior_alone(trained):
    inference, features = trained.inference, trained.features
    saved = inference.residual_scale
    inference.residual_scale = 0.0
    try:
        with torch.no_grad():
            _, _, perf, cost = inference.encode()
    finally:
        inference.residual_scale = saved
    prior = features.prior.cpu().numpy()
    np.testing.assert_allclose(
        torch.sigmoid(perf).numpy(), prior[..., 0].clip(0.02, 0.98), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(cost.numpy(), prior[..., 1], rtol=1e-5, atol=1e-6)


def test_a_noisy_correction_is_shrunk_towards_the_prior(routing_data, routing_split):
    """Scramble the performance head (large random output weights): its per-query noise
    only flips choices, and validation picks a smaller scale than 1."""
    router = GNNRouter(seed=0, **FAST).fit(routing_data, routing_split)
    with torch.no_grad():
        last = router.model.perf_head[-1]
        last.weight.copy_(
            torch.randn(last.weight.shape, generator=torch.Generator().manual_seed(0)) * 50
        )
    assert select_residual_scale(router.inference, routing_data, routing_split) < 1.0


def test_the_scale_travels_with_the_checkpoint(trained, routing_data):
    state = trained.state()
    state["residual_scale"] = 0.25
    restored = GNNRouter.from_state(state, routing_data, device="cpu")
    assert restored.inference.residual_scale == 0.25
    older = {k: v for k, v in state.items() if k != "residual_scale"}
    assert GNNRouter.from_state(older, routing_data, device="cpu").inference.residual_scale == 1.0
    for bad in (1.5, -0.1, float("nan"), "1"):
        with pytest.raises(ProuterError, match="residual_scale"):
            GNNRouter.from_state(state | {"residual_scale": bad}, routing_data, device="cpu")


def test_validation_utility_by_hand(routing_data):
    """Two pairs, two LLMs: the pick is the best score among observed outcomes, valued at
    the pair's weight with the observed outcome."""
    data = routing_data
    q = np.array([0, 1])
    pairs = ValidationPairs(users=np.array([0, 1]), queries=q, alpha=np.array([1.0, 0.0]))
    cost_norm = np.zeros_like(data.cost)
    cost_norm[1, :2] = [0.3, 0.7]
    scores = np.full((2, data.num_llms), -1.0)
    scores[0, 1] = 5.0  # pair 0 picks LLM 1: utility = 1.0 * perf[0, 1]
    scores[1, 0] = 5.0  # pair 1 picks LLM 0: utility = -(1 - 0) * 0.3
    expected = (data.performance[0, 1] + -0.3) / 2
    assert pairs.utility_of(data, cost_norm, scores) == pytest.approx(expected)
