"""Temperature calibration of pair probabilities (chosen on validation votes)."""

from __future__ import annotations

import numpy as np
import pytest
from preference_support import ingest_mtbench

from gnn.data import load_routing_data
from gnn.preference.calibration import apply_temperature, fit_temperature
from gnn.preference.protocol import compare_on_preferences


def test_an_over_confident_model_gets_a_temperature_above_one():
    """Votes drawn with P(winner) = sigmoid(z) but predicted as sigmoid(3 z): the fitted
    temperature undoes the factor 3 (within the grid's step and the sampling noise)."""
    rng = np.random.default_rng(0)
    z = rng.normal(0, 1.0, 20000)
    first_wins = rng.uniform(size=z.size) < 1 / (1 + np.exp(-z))
    predicted = 1 / (1 + np.exp(-3 * z))
    prob_of_winner = np.where(first_wins, predicted, 1 - predicted)
    t = fit_temperature(prob_of_winner)
    assert t == pytest.approx(3.0, rel=0.15)
    calibrated = apply_temperature(prob_of_winner, t)
    assert np.array_equal(calibrated > 0.5, prob_of_winner > 0.5)  # the ranking is kept
    assert -np.mean(np.log(calibrated)) < -np.mean(np.log(prob_of_winner))
    assert fit_temperature(np.zeros(0)) == 1.0
    with pytest.raises(ValueError):
        apply_temperature(prob_of_winner, 0.0)


def test_protocol_scores_a_calibrated_twin(tmp_path):
    from graphdb.store import open_store

    with open_store(f"ladybug:{tmp_path / 'g.lbug'}") as store:
        ingest_mtbench(store, tmp_path, n_questions=80, judges=6)
        data = load_routing_data(store)
    result = compare_on_preferences(data, ["bt_user"], [0, 1], shots=(0, 3), calibrate=["bt_user"])
    assert set(result.by_query) == {"bt_user", "bt_user+T"}
    assert set(result.by_user["bt_user+T"]) == {0, 3}
    for plain, cal in zip(result.by_query["bt_user"], result.by_query["bt_user+T"], strict=True):
        assert cal.accuracy == plain.accuracy and cal.n == plain.n and cal.ties == plain.ties
        assert np.isfinite(cal.log_loss) and cal.log_loss != plain.log_loss
    for k in (0, 3):
        for plain, cal in zip(
            result.by_user["bt_user"][k], result.by_user["bt_user+T"][k], strict=True
        ):
            assert cal.accuracy == plain.accuracy and np.isfinite(cal.log_loss)
