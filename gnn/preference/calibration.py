"""Temperature calibration of pair probabilities, the temperature chosen on validation votes.

``p_T = sigmoid(logit(p) / T)``: ``T > 1`` softens over-confident probabilities,
``T < 1`` sharpens timid ones; the ranking (and so the accuracy) is unchanged.
``T`` is the grid value with the lowest log-loss on votes of validation queries
(:func:`fit_temperature`); the protocol (:mod:`gnn.preference.protocol`, with
``calibrate``) fits one for known users and one per k for onboarded new users,
on the held-out users' validation-query votes that were not onboarded.
"""

from __future__ import annotations

import numpy as np

from gnn.preference.shrinkage import log_loss

__all__ = ["TEMPERATURES", "apply_temperature", "fit_temperature"]

#: Candidate temperatures: 0.25 to 16, evenly in log scale.
TEMPERATURES = tuple(float(t) for t in np.exp(np.linspace(np.log(0.25), np.log(16.0), 49)))


def apply_temperature(prob: np.ndarray, temperature: float) -> np.ndarray:
    """``sigmoid(logit(prob) / temperature)`` (probabilities clipped away from 0 and 1)."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    p = np.clip(np.asarray(prob, dtype=float), 1e-6, 1 - 1e-6)
    return 1.0 / (1.0 + np.exp(-np.log(p / (1 - p)) / temperature))


def fit_temperature(prob: np.ndarray) -> float:
    """The temperature in :data:`TEMPERATURES` that minimises the log-loss of validation
    votes whose winner was predicted with ``prob``; 1 without votes."""
    if len(prob) == 0:
        return 1.0
    return min(TEMPERATURES, key=lambda t: log_loss(apply_temperature(prob, t)))
