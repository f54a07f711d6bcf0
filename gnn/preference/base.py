"""What preference routers share: the votes they learn from and the probability they predict.

A :class:`PreferenceRouter` predicts ``P(user prefers first over second on query)``
(:meth:`pair_probability`), learns from the pairwise votes of the training
queries (and from choices, read as the chosen LLM beating every other
candidate), and can take a new user's votes without retraining
(:meth:`onboarded_pairs`; routers that ignore users ignore them).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from gnn.data import RoutingData
from gnn.routers.base import Router

__all__ = [
    "DEFAULT_TIES",
    "TIE_OPTIONS",
    "BradleyTerryRouter",
    "PreferenceRouter",
    "Votes",
    "check_ties",
    "no_votes",
    "ties_of",
    "votes_of",
]

#: How Bradley-Terry baselines train on ties (gnn.preference.bradley_terry), or "off".
TIE_OPTIONS = ("davidson", "half", "off")
DEFAULT_TIES = "half"


@dataclass(frozen=True)
class Votes:
    """Non-tie pairwise votes: ``user`` preferred ``win`` over ``lose`` on ``query``."""

    user: np.ndarray
    query: np.ndarray
    win: np.ndarray
    lose: np.ndarray

    def __len__(self) -> int:
        return len(self.user)

    def take(self, idx: np.ndarray) -> Votes:
        return Votes(self.user[idx], self.query[idx], self.win[idx], self.lose[idx])


def votes_of(data: RoutingData, mask: np.ndarray, *, choices: bool = True) -> Votes:
    """The votes on the queries in ``mask``; with ``choices``, each choice as the chosen
    LLM beating every other candidate of its query (mixed graphs use both signals)."""
    p = np.flatnonzero(mask[data.pref_query])
    parts = [(data.pref_user[p], data.pref_query[p], data.pref_win[p], data.pref_lose[p])]
    if choices and len(data.dec_user):
        d = np.flatnonzero(mask[data.dec_query])
        cand = data.candidates(data.dec_query[d])
        cand[np.arange(len(d)), data.dec_llm[d]] = False
        row, other = np.nonzero(cand)
        dd = d[row]
        parts.append((data.dec_user[dd], data.dec_query[dd], data.dec_llm[dd], other))
    return Votes(*(np.concatenate(arrays).astype(np.int64) for arrays in zip(*parts, strict=True)))


def check_ties(ties: str) -> str:
    """``ties`` if it is one of :data:`TIE_OPTIONS`, else a ConfigError."""
    if ties not in TIE_OPTIONS:
        from prcore.errors import ConfigError

        raise ConfigError(f"ties must be one of {', '.join(TIE_OPTIONS)}; got {ties!r}")
    return ties


def no_votes() -> Votes:
    """An empty :class:`Votes`."""
    empty = np.zeros(0, dtype=np.int64)
    return Votes(empty, empty, empty, empty)


def ties_of(data: RoutingData, mask: np.ndarray) -> Votes:
    """The tie votes on the queries in ``mask``, as (user, query, one LLM, the other);
    none where the data keeps no tie pairs (e.g. a training-subgraph export)."""
    n = len(data.tie_query)
    if n == 0 or not len(data.tie_a) == len(data.tie_b) == len(data.tie_user) == n:
        return no_votes()
    t = np.flatnonzero(mask[data.tie_query])
    return Votes(
        *(a[t].astype(np.int64) for a in (data.tie_user, data.tie_query, data.tie_a, data.tie_b))
    )


class PreferenceRouter(Router):
    """A router that predicts pairwise preference probabilities (see the module docstring)."""

    def pair_probability(
        self,
        data: RoutingData,
        users: np.ndarray,
        queries: np.ndarray,
        first: np.ndarray,
        second: np.ndarray,
    ) -> np.ndarray:
        """(N,) P(users[i] prefers first[i] over second[i] on queries[i]); by default the
        logistic of the score difference (Bradley-Terry)."""
        margin = self.pair_margin(data, users, queries, first, second)
        return 1.0 / (1.0 + np.exp(-margin))

    @contextmanager
    def onboarded_pairs(self, data: RoutingData, votes: Votes) -> Iterator[None]:
        """Take these votes into account (new users) inside a ``with`` block."""
        yield


class BradleyTerryRouter(PreferenceRouter):
    """A Bradley-Terry baseline: its L2 weight (``l2``; None where the router chooses it on
    validation) and how ties train (``ties``: one of :data:`TIE_OPTIONS`)."""

    def __init__(
        self, seed: int = 0, *, l2: float | None = None, ties: str = DEFAULT_TIES, **config: object
    ) -> None:
        super().__init__(seed, l2=l2, ties=ties, **config)
        self.l2, self.ties = l2, check_ties(ties)

    def training_ties(self, data: RoutingData, mask: np.ndarray) -> Votes:
        """The tie votes of the queries in ``mask``, or none when ties are off."""
        return ties_of(data, mask) if self.ties != "off" else no_votes()
