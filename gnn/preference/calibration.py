"""Calibration of pair probabilities on validation votes: a temperature, and a prior.

``p_T = sigmoid(logit(p) / T)``: ``T > 1`` softens over-confident probabilities,
``T < 1`` sharpens timid ones; the ranking (and so the accuracy) is unchanged.
``T`` is the grid value with the lowest log-loss on votes of validation queries
(:func:`fit_temperature`); the protocol (:mod:`gnn.preference.protocol`, with
``calibrate``) fits one for known users and one per k for onboarded new users,
on the held-out users' validation-query votes that were not onboarded.

The GNN router keeps its own :class:`VoteCalibration` (fitted after training,
saved in its checkpoint): a temperature for users it knows, and for users it
knows nothing about a temperature and the weight ``c`` of a prior margin (the
per-task Bradley-Terry strengths of the training votes,
:func:`fit_vote_calibration`): ``logit p = logit(p_router) / T + c * prior_margin``,
blended per user by how many decisions describe them. With ``c > 0`` the prior
can change the ranking of users the router knows little about.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gnn.preference.shrinkage import log_loss
from prcore.errors import ProuterError

__all__ = [
    "PRIOR_WEIGHTS",
    "TEMPERATURES",
    "VoteCalibration",
    "apply_temperature",
    "fit_temperature",
    "fit_vote_calibration",
]

#: Candidate temperatures: 0.25 to 64, evenly in log scale (8 a doubling). Up to 64: a
#: router's guess for users it knows nothing about can be all but a coin flip.
TEMPERATURES = tuple(float(t) for t in np.exp(np.linspace(np.log(0.25), np.log(64.0), 65)))
#: Candidate weights of the prior margin (0: the router's probability alone).
PRIOR_WEIGHTS = tuple(round(0.1 * i, 1) for i in range(16))


def apply_temperature(prob: np.ndarray, temperature: float | np.ndarray) -> np.ndarray:
    """``sigmoid(logit(prob) / temperature)`` (probabilities clipped away from 0 and 1;
    ``temperature`` one value or one per probability)."""
    t = np.asarray(temperature, dtype=float)
    if not np.all(t > 0):
        raise ValueError(f"temperature must be > 0, got {temperature}")
    return _stacked(prob, 0.0, t, 0.0)


def fit_temperature(prob: np.ndarray, *, lowest: float = TEMPERATURES[0]) -> float:
    """The temperature in :data:`TEMPERATURES` (those at least ``lowest``) that minimises
    the log-loss of validation votes whose winner was predicted with ``prob``; 1 without
    votes."""
    if len(prob) == 0:
        return 1.0
    grid = [t for t in TEMPERATURES if t >= lowest - 1e-12]
    return min(grid, key=lambda t: log_loss(apply_temperature(prob, t)))


def _stacked(
    prob: np.ndarray,
    prior_margin: np.ndarray | float,
    t: np.ndarray | float,
    c: np.ndarray | float,
) -> np.ndarray:
    """``sigmoid(logit(prob) / t + c * prior_margin)`` (``prob`` clipped away from 0 and 1)."""
    p = np.clip(np.asarray(prob, dtype=float), 1e-6, 1 - 1e-6)
    z = np.log(p / (1 - p)) / t + c * np.asarray(prior_margin, dtype=float)
    return 1.0 / (1.0 + np.exp(-z))


def fit_vote_calibration(
    prob: np.ndarray, prior_margin: np.ndarray, *, lowest: float = 1.0
) -> tuple[float, float]:
    """The (temperature, prior weight) on the grids :data:`TEMPERATURES` (those at least
    ``lowest``) x :data:`PRIOR_WEIGHTS` that minimise the log-loss of validation votes
    whose winner was predicted with ``prob`` and whose prior margin (winner minus loser)
    is ``prior_margin``; (1, 0) without votes. Ties on the log-loss keep the smallest
    prior weight, then the temperature nearest 1."""
    if len(prob) == 0:
        return 1.0, 0.0
    grid = [t for t in TEMPERATURES if t >= lowest - 1e-12]
    scored = [
        (log_loss(_stacked(prob, prior_margin, t, c)), c, abs(np.log(t)), t)
        for c in PRIOR_WEIGHTS
        for t in grid
    ]
    best = min(scored)
    return best[3], best[1]


def _check_number(name: str, value: object, low: float, high: float) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not low - 1e-9 <= value <= high + 1e-9
    ):
        raise ProuterError(f"vote temperature {name}={value!r} is not a number in [{low}, {high}]")


@dataclass(frozen=True)
class VoteCalibration:
    """A router's vote-probability calibration: temperatures ``known`` for users described
    by many decisions and ``new`` for users it knows nothing about, and the weight
    ``prior_new`` of a prior margin added to the logit for the latter. A user described
    by ``n`` decisions gets ``exp(w log known + (1 - w) log new)`` and
    ``(1 - w) prior_new`` with ``w = n / (n + prior)``, the weight the user's own
    decisions have in the router's state (``prior`` = its ``prior_decisions``)."""

    known: float = 1.0
    new: float = 1.0
    prior_new: float = 0.0

    def __post_init__(self) -> None:
        for name in ("known", "new"):
            _check_number(name, getattr(self, name), TEMPERATURES[0], TEMPERATURES[-1])
        _check_number("prior_new", self.prior_new, PRIOR_WEIGHTS[0], PRIOR_WEIGHTS[-1])

    @property
    def identity(self) -> bool:
        """Whether it leaves probabilities unchanged."""
        return self.known == self.new == 1.0 and self.prior_new == 0.0

    def _share(self, decisions: np.ndarray, prior: float) -> np.ndarray:
        n = np.asarray(decisions, dtype=float)
        return n / np.maximum(n + prior, 1e-12)

    def temperatures(self, decisions: np.ndarray, prior: float) -> np.ndarray:
        """(N,) the temperature of users described by ``decisions[i]`` decisions."""
        w = self._share(decisions, prior)
        return np.exp(w * np.log(self.known) + (1 - w) * np.log(self.new))

    def prior_weights(self, decisions: np.ndarray, prior: float) -> np.ndarray:
        """(N,) the prior margin's weight for users described by ``decisions[i]`` decisions."""
        return (1 - self._share(decisions, prior)) * self.prior_new

    def apply(
        self,
        prob: np.ndarray,
        decisions: np.ndarray,
        prior: float,
        prior_margin: np.ndarray | None = None,
    ) -> np.ndarray:
        """``prob`` calibrated for users described by ``decisions`` decisions each, with
        the prior margin of each pair (first minus second; None: no prior)."""
        if self.identity:
            return np.asarray(prob, dtype=float)
        margin = 0.0 if prior_margin is None else prior_margin
        t, c = self.temperatures(decisions, prior), self.prior_weights(decisions, prior)
        return _stacked(prob, margin, t, c)

    def as_dict(self) -> dict[str, float]:
        return {
            "known": float(self.known),
            "new": float(self.new),
            "prior_new": float(self.prior_new),
        }

    @classmethod
    def from_state(cls, value: object) -> VoteCalibration:
        """From a checkpoint's ``vote_temperature`` (None: an older checkpoint, 1 and 1;
        without ``prior_new``: a checkpoint before it, 0)."""
        if value is None:
            return cls()
        if (
            not isinstance(value, dict)
            or not {"known", "new"} <= set(value)
            or not set(value) <= {"known", "new", "prior_new"}
        ):
            raise ProuterError(
                f"the checkpoint's vote_temperature {str(value)[:80]!r} is not "
                "{'known': T, 'new': T, 'prior_new': c}"
            )
        return cls(**value)
