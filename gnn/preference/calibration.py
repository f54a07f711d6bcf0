"""Temperature calibration of pair probabilities, the temperature chosen on validation votes.

``p_T = sigmoid(logit(p) / T)``: ``T > 1`` softens over-confident probabilities,
``T < 1`` sharpens timid ones; the ranking (and so the accuracy) is unchanged.
``T`` is the grid value with the lowest log-loss on votes of validation queries
(:func:`fit_temperature`); the protocol (:mod:`gnn.preference.protocol`, with
``calibrate``) fits one for known users and one per k for onboarded new users,
on the held-out users' validation-query votes that were not onboarded.

The GNN router keeps its own :class:`VoteCalibration` (fitted after training,
saved in its checkpoint): one temperature for users it knows and one for users
it knows nothing about, blended per user by how many decisions describe them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gnn.preference.shrinkage import log_loss
from prcore.errors import ProuterError

__all__ = ["TEMPERATURES", "VoteCalibration", "apply_temperature", "fit_temperature"]

#: Candidate temperatures: 0.25 to 64, evenly in log scale (8 a doubling). Up to 64: a
#: router's guess for users it knows nothing about can be all but a coin flip.
TEMPERATURES = tuple(float(t) for t in np.exp(np.linspace(np.log(0.25), np.log(64.0), 65)))


def apply_temperature(prob: np.ndarray, temperature: float | np.ndarray) -> np.ndarray:
    """``sigmoid(logit(prob) / temperature)`` (probabilities clipped away from 0 and 1;
    ``temperature`` one value or one per probability)."""
    t = np.asarray(temperature, dtype=float)
    if not np.all(t > 0):
        raise ValueError(f"temperature must be > 0, got {temperature}")
    p = np.clip(np.asarray(prob, dtype=float), 1e-6, 1 - 1e-6)
    return 1.0 / (1.0 + np.exp(-np.log(p / (1 - p)) / t))


def fit_temperature(prob: np.ndarray, *, lowest: float = TEMPERATURES[0]) -> float:
    """The temperature in :data:`TEMPERATURES` (those at least ``lowest``) that minimises
    the log-loss of validation votes whose winner was predicted with ``prob``; 1 without
    votes."""
    if len(prob) == 0:
        return 1.0
    grid = [t for t in TEMPERATURES if t >= lowest - 1e-12]
    return min(grid, key=lambda t: log_loss(apply_temperature(prob, t)))


@dataclass(frozen=True)
class VoteCalibration:
    """A router's vote-probability temperatures: ``known`` for users described by many
    decisions, ``new`` for users it knows nothing about. A user described by ``n``
    decisions gets ``exp(w log known + (1 - w) log new)`` with ``w = n / (n + prior)``,
    the weight the user's own decisions have in the router's state
    (``prior`` = its ``prior_decisions``)."""

    known: float = 1.0
    new: float = 1.0

    def __post_init__(self) -> None:
        low, high = TEMPERATURES[0], TEMPERATURES[-1]
        for name in ("known", "new"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or not low - 1e-9 <= value <= high + 1e-9
            ):
                raise ProuterError(
                    f"vote temperature {name}={value!r} is not a number in [{low}, {high}]"
                )

    @property
    def identity(self) -> bool:
        """Whether it leaves probabilities unchanged."""
        return self.known == 1.0 and self.new == 1.0

    def temperatures(self, decisions: np.ndarray, prior: float) -> np.ndarray:
        """(N,) the temperature of users described by ``decisions[i]`` decisions."""
        n = np.asarray(decisions, dtype=float)
        w = n / np.maximum(n + prior, 1e-12)
        return np.exp(w * np.log(self.known) + (1 - w) * np.log(self.new))

    def apply(self, prob: np.ndarray, decisions: np.ndarray, prior: float) -> np.ndarray:
        """``prob`` calibrated for users described by ``decisions`` decisions each."""
        if self.identity:
            return np.asarray(prob, dtype=float)
        return apply_temperature(prob, self.temperatures(decisions, prior))

    def as_dict(self) -> dict[str, float]:
        return {"known": float(self.known), "new": float(self.new)}

    @classmethod
    def from_state(cls, value: object) -> VoteCalibration:
        """From a checkpoint's ``vote_temperature`` (None: an older checkpoint, 1 and 1)."""
        if value is None:
            return cls()
        if not isinstance(value, dict) or set(value) != {"known", "new"}:
            raise ProuterError(
                f"the checkpoint's vote_temperature {str(value)[:80]!r} is not "
                "{'known': T, 'new': T}"
            )
        return cls(known=value["known"], new=value["new"])
