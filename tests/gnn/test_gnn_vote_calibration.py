"""The GNN's own vote-probability calibration (temperatures and the weight of the per-task
Bradley-Terry prior): fitted on validation votes after training, saved in its checkpoint,
applied wherever it gives a preference probability."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from preference_support import ingest_mtbench

from gnn.data import load_routing_data, split_queries
from gnn.preference.base import votes_of
from gnn.preference.calibration import (
    PRIOR_WEIGHTS,
    VoteCalibration,
    fit_vote_calibration,
)
from gnn.preference.protocol import compare_on_preferences
from gnn.train import GNNRouter
from graphdb.store import open_store
from prcore.errors import ProuterError

FAST = {"epochs": 60, "patience": 30, "hidden": 16}


@pytest.fixture(scope="module")
def split_store(tmp_path_factory) -> str:
    """Half the judges rank strong > middle > weak, half the other way round: a judge the
    router knows nothing about is a coin flip. The store's URL."""
    tmp = tmp_path_factory.mktemp("votes")
    url = f"ladybug:{tmp / 'g.lbug'}"
    with open_store(url) as store:
        ingest_mtbench(store, tmp, n_questions=80, judges=8, contrarians=4)
    return url


@pytest.fixture(scope="module")
def split_voters(split_store):
    with open_store(split_store, read_only=True) as store:
        return load_routing_data(store)


def test_new_users_are_not_scored_worse_than_a_coin(split_voters):
    """Once 1.4 (over-confident: worse than the constant 1/2, log 2 = 0.693) at k = 0.
    Then 0.77 with the per-task prior weighted on the known voters' own validation votes:
    the known voters' leanings looked like the population's (hence the cross-fit)."""
    empty = np.zeros(0, dtype=np.int64)  # without ties: the calibration alone at work
    data = replace(split_voters, tie_user=empty, tie_query=empty, tie_a=empty, tie_b=empty)
    result = compare_on_preferences(data, ["gnn"], [0, 1], shots=(0,), configs={"gnn": FAST})
    for cold in result.by_user["gnn"][0]:
        assert cold.n > 0
        assert cold.log_loss < math.log(2) + 0.03, cold.log_loss


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def test_calibration_is_fitted_applied_and_survives_the_checkpoint(split_voters):
    data = split_voters
    split = split_queries(data, seed=0)
    router = GNNRouter(seed=0, **FAST).fit(data, split)
    cal = router.calibration
    assert cal.new > 1.0  # softens the over-confident guess for users it does not know
    assert cal.known >= 1.0  # never sharpens on a few validation votes
    prior = router.vote_prior  # per-task Bradley-Terry strengths of the training votes
    assert prior.shape == (len(router.task_ids), 3) and np.isfinite(prior).all()
    test = votes_of(data, split.test, choices=False)
    args = (test.user, test.query, test.win, test.lose)
    raw = np.clip(router.inference.pair_margin(*args) + 0.5, 1e-6, 1 - 1e-6)
    n = np.bincount(router.features.dec[0].cpu().numpy(), minlength=len(data.user_ids))
    w = n[test.user] / (n[test.user] + 5.0)
    t = np.exp(w * np.log(cal.known) + (1 - w) * np.log(cal.new))
    c = (1 - w) * cal.prior_new
    task = router.features.q_task.numpy()[test.query]
    gap = prior[task, test.win] - prior[task, test.lose]
    expected = _sigmoid(np.log(raw / (1 - raw)) / t + c * gap)
    got = router.pair_margin(data, *args) + 0.5
    assert np.allclose(got, expected, atol=1e-9)
    state = router.state()
    assert state["vote_temperature"] == cal.as_dict()
    again = GNNRouter.from_state(state, data, device="cpu", serving=False)
    assert again.calibration == cal and np.array_equal(again.vote_prior, prior)
    assert np.allclose(again.pair_margin(data, *args), got - 0.5, atol=1e-6)
    older = {k: v for k, v in state.items() if k not in ("vote_temperature", "vote_prior")}
    restored = GNNRouter.from_state(older, data, device="cpu")
    assert restored.calibration == VoteCalibration() and restored.vote_prior is None
    # Temperatures alone keep the ranking.
    router.calibration = VoteCalibration(known=cal.known, new=cal.new)
    assert np.array_equal(router.pair_margin(data, *args) > 0, raw > 0.5)


def test_the_prior_weight_is_chosen_by_validation_log_loss():
    rng = np.random.default_rng(0)
    margin = rng.uniform(0.5, 2.0, 400)  # the prior always favours the winner
    coin = np.full(400, 0.5)  # the router has no idea
    t, c = fit_vote_calibration(coin, margin)
    assert c == PRIOR_WEIGHTS[-1] and t == 1.0
    noise = margin * rng.choice([-1.0, 1.0], 400)  # the prior is a coin flip itself
    sure = np.full(400, 0.8)  # the router is right, a little timid
    t, c = fit_vote_calibration(sure, noise)
    assert c <= 0.1 and t == 1.0  # softening only: 0.8 stays (its best temperature < 1)
    assert fit_vote_calibration(np.zeros(0), np.zeros(0)) == (1.0, 0.0)


def test_a_consensus_of_voters_gives_the_prior_weight_for_new_users(tmp_path):
    """Every judge agrees (strong > middle > weak): what the others preferred is the best
    guess for a judge the router knows nothing about."""
    url = f"ladybug:{tmp_path / 'g.lbug'}"
    with open_store(url) as store:
        ingest_mtbench(store, tmp_path, n_questions=80, judges=8, contrarians=0)
    with open_store(url, read_only=True) as store:
        data = load_routing_data(store)
    router = GNNRouter(seed=0, **FAST).fit(data, split_queries(data, seed=0))
    assert router.calibration.prior_new > 0.0
    strong, weak = data.llm_ids.index("strong"), data.llm_ids.index("weak")
    assert (router.vote_prior[:, strong] > router.vote_prior[:, weak]).all()


@pytest.mark.parametrize(
    "bad",
    [
        [[0.0, 1.0]],  # not tasks x LLMs
        [[0.0, float("nan"), 1.0]] * 2,
        [[0.0, 1e9, 1.0]] * 2,
        "strong",
    ],
)
def test_bad_vote_priors_are_refused(split_voters, bad):
    data = split_voters
    router = GNNRouter(seed=0, epochs=1, hidden=8).fit(data, split_queries(data, seed=0))
    state = router.state() | {"vote_prior": bad}
    assert len(router.task_ids) == 2
    with pytest.raises(ProuterError, match="vote_prior"):
        GNNRouter.from_state(state, data, device="cpu")


@pytest.mark.parametrize(
    "bad",
    [
        {"known": 0.0, "new": 1.0},
        {"known": 1.0, "new": float("nan")},
        {"known": 1e9, "new": 1.0},
        {"known": "2", "new": 1.0},
        {"known": True, "new": 1.0},
        {"known": 1.0},
        {"known": 1.0, "new": 1.0, "prior_new": -0.1},
        {"known": 1.0, "new": 1.0, "prior_new": 2.0},
        {"known": 1.0, "new": 1.0, "prior_known": 0.5},
        {"known": 1.0, "new": 1.0, "other": 0.0},
        [1.0, 1.0],
        "hot",
    ],
)
def test_bad_temperatures_are_refused(bad):
    with pytest.raises(ProuterError, match=r"vote[_ ]temperature"):
        VoteCalibration.from_state(bad)


def test_one_temperature_per_user_by_how_well_it_is_known():
    cal = VoteCalibration(known=1.0, new=4.0)
    t = cal.temperatures(np.array([0, 5, 1000]), 5.0)
    assert t[0] == pytest.approx(4.0) and t[1] == pytest.approx(2.0) and t[2] < 1.01
    assert np.array_equal(VoteCalibration().apply(np.array([0.9, 0.2]), [0, 3], 5.0), [0.9, 0.2])


def test_cli_evaluate_scores_new_users_with_the_calibrated_probabilities(split_store):
    """`prouter evaluate` on a preference-only graph: the new-user curve's log-loss is the
    calibrated one (uncalibrated it was worse than a coin at k = 0)."""
    import json

    from click.testing import CliRunner

    from prouter.cli import cli

    args = ["--store", split_store, "evaluate", "--seeds", "0,1", "--epochs", "60"]
    result = CliRunner().invoke(cli, [*args, "--shots", "0", "--routers", "gnn", "--json"])
    assert result.exit_code == 0, result.output
    cold = json.loads(result.stdout)["pairwise"]["new_user"]["gnn"]["0"]
    assert len(cold) == 2 and all(run["n"] > 0 for run in cold)
    assert all(run["log_loss"] < math.log(2) + 0.03 for run in cold), cold
