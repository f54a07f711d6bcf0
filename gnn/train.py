"""The personalized GNN router behind the :class:`~gnn.routers.base.Router` interface.

:class:`GNNRouter` puts four parts together, one module each:

- :mod:`gnn.features` -- what the network reads about a graph state
  (``RouterFeatures``: inputs, reference outcomes, prior, neighbours' messages,
  the decisions that describe users; onboarding changes it in place);
- :mod:`gnn.fitting` -- the losses, validation and early stopping;
  on large graphs in mini-batches (:mod:`gnn.minibatch`), or across processes
  (:mod:`gnn.distributed`, DistributedDataParallel);
- :mod:`gnn.inference` -- users' states, expected utilities, predictions;
- :mod:`gnn.router_state` -- what a checkpoint holds and how a router is rebuilt
  from it (files: :mod:`gnn.checkpoint`).

New LLMs: the outcome heads read each LLM's outcomes on similar training
queries (``gnn.graph.neighbour_outcomes``) and its description, never its
index. During training, an LLM's outcome messages are now and then rebuilt
from only a few random training queries (``new_llm_rate``), so the heads also
learn what to do with an LLM known from a handful of outcomes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from gnn.data import RoutingData, Split
from gnn.features import RouterFeatures, resolve_device
from gnn.fitting import fit_network, select_residual_scale
from gnn.inference import Prediction, RouterInference
from gnn.minibatch import inference_chunk
from gnn.model import PersonalizedRouterGNN
from gnn.preference.base import votes_of
from gnn.preference.calibration import VoteCalibration, fit_temperature, fit_vote_calibration
from gnn.preference.vote_prior import fit_vote_prior, unseen_margin
from gnn.preference.vote_prior import margin as prior_margin
from gnn.router_state import restore_router, router_state
from gnn.routers.base import Router

__all__ = ["GNNRouter", "NonPersonalizedGNNRouter", "Prediction", "TrainConfig", "resolve_device"]


@dataclass
class TrainConfig:
    """Hyper-parameters of the GNN router."""

    hidden: int = 64
    dropout: float = 0.1
    lr: float = 1e-2
    weight_decay: float = 1e-4
    epochs: int = 600
    patience: int = 50
    neighbours: int = 10
    aux_weight: float = 1.0
    # Weight of the squared error between the utility of a chosen LLM (from the outcomes the
    # user saw) and the reward the user logged for it, where one was logged.
    reward_weight: float = 1.0
    # A user's state is sum(messages) / (decisions + prior_decisions): a user known from a
    # few decisions stays near the population prior (state 0) instead of trusting them fully.
    prior_decisions: float = 5.0
    new_llm_rate: float = 0.5
    new_llm_max_shots: int = 20
    device: str = "auto"
    # Local processes training together with DistributedDataParallel (gnn.distributed):
    # 1 trains in this process.
    processes: int = 1
    # Training targets per step: -1 automatic (full batch on small graphs, mini-batches
    # above gnn.minibatch.FULL_BATCH_LIMIT), 0 full batch, N mini-batches of N targets.
    batch_size: int = -1
    # Mini-batches: at most this many decisions (sampled) form a user's state per step.
    state_sample: int = 64


class GNNRouter(Router):
    """The personalized heterogeneous GNN of :mod:`gnn.model` behind the Router interface."""

    name = "gnn"
    personalized = True

    def __init__(self, seed: int = 0, progress: bool = False, **config: object) -> None:
        super().__init__(seed, **config)
        self.train_config = TrainConfig(**config)  # type: ignore[arg-type]
        self.progress = progress
        self.history: list[dict[str, float]] = []
        self.best_epoch = -1
        self.calibration = VoteCalibration()  # vote-probability calibration (fit_calibration)
        #: (tasks, LLMs) per-task Bradley-Terry strengths of the training votes, the
        #: calibration's prior (None: no votes).
        self.vote_prior: np.ndarray | None = None

    def _prepare(self, data: RoutingData, split: Split, **graph: object) -> None:
        """Build the features of ``data`` (``graph``: see :class:`RouterFeatures`) and a
        fresh network over them (no training)."""
        cfg = self.train_config
        self.features = RouterFeatures(
            data,
            split,
            device=resolve_device(cfg.device),
            neighbours=cfg.neighbours,
            personalized=self.personalized,
            **graph,  # type: ignore[arg-type]
        )
        self.model = PersonalizedRouterGNN(
            data.query_emb.shape[1],
            data.llm_emb.shape[1],
            data.num_llms,
            len(self.features.task_ids),
            hidden=cfg.hidden,
            dropout=cfg.dropout,
            personalized=self.personalized,
        ).to(self.features.device)
        self.inference = RouterInference(self.model, self.features, cfg.prior_decisions)
        self.inference.chunk = inference_chunk(self.inference)  # large graphs only

    @property
    def task_ids(self) -> list[str]:
        return self.features.task_ids

    @property
    def llm_ids(self) -> list[str]:
        return self.features.llm_ids

    def fit(
        self, data: RoutingData, split: Split, *, messages: np.ndarray | None = None
    ) -> GNNRouter:
        """:meth:`Router.fit`; ``messages``: the neighbours' outcome messages of this split
        already computed with the configured ``neighbours`` (a training export's, see
        :class:`RouterFeatures`), so that they are not searched again."""
        self._set_cost_rank(data, split)
        self._fit(data, split, messages)
        return self

    def _fit(self, data: RoutingData, split: Split, messages: np.ndarray | None = None) -> None:
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        self._prepare(data, split, messages=messages)
        result = fit_network(
            self.inference,
            data,
            split,
            self.train_config,
            rng=rng,
            name=self.name,
            progress=self.progress,
        )
        self.history, self.best_epoch = result.history, result.best_epoch
        select_residual_scale(self.inference, data, split)
        self.fit_calibration(data, split)

    def fit_calibration(self, data: RoutingData, split: Split) -> VoteCalibration:
        """Fit and keep the vote-probability calibration (:class:`VoteCalibration`) on the
        non-tie votes of validation queries: the ``known`` temperature with the users'
        states as trained; the ``new`` temperature and the weight of the per-task
        Bradley-Terry prior (:attr:`vote_prior`, fitted on the training votes) with every
        state emptied (each voter as a user the router knows nothing about; see
        :mod:`gnn.preference.vote_prior`). Only
        softening (T >= 1): sharpening on a few validation votes would extrapolate their
        luck. Identity without validation votes.

        The prior is weighted for new users only: for known users, validation gave it
        weight that did not hold on test queries (pairwise accuracy 0.634 -> 0.629 in
        ``tests/gnn/test_pairwise_preferences.py``)."""
        val = votes_of(data, split.val, choices=False)
        self.calibration, self.vote_prior = VoteCalibration(), None
        if len(val) == 0:
            return self.calibration
        self.vote_prior = fit_vote_prior(data, split, self.task_ids, self.seed)
        args = (val.user, val.query, val.win, val.lose)
        known = fit_temperature(self.inference.pair_margin(*args) + 0.5, lowest=1.0)
        unseen = unseen_margin(data, split, self.task_ids, self._query_task(), val, self.seed)
        with self._nobody_known():
            new = fit_vote_calibration(self.inference.pair_margin(*args) + 0.5, unseen)
        self.calibration = VoteCalibration(known=known, new=new[0], prior_new=new[1])
        return self.calibration

    def _prior_margin(
        self, queries: np.ndarray, first: np.ndarray, second: np.ndarray
    ) -> np.ndarray | None:
        """(N,) :attr:`vote_prior`'s margin of ``first`` over ``second`` on each query's task;
        None without a vote prior."""
        if self.vote_prior is None:
            return None
        task = self._query_task()[np.asarray(queries)]
        return prior_margin(self.vote_prior, task, first, second)

    def _query_task(self) -> np.ndarray:
        return self.features.q_task.cpu().numpy()

    @contextmanager
    def _nobody_known(self) -> Iterator[None]:
        """Inside a ``with`` block, no decision describes any user (every state empty)."""
        saved = self.features.dec, self.features.cand
        self.features.dec = [t[:0] for t in saved[0]]
        self.features.cand = saved[1][:0]
        self.inference.invalidate()
        try:
            yield
        finally:
            self.features.dec, self.features.cand = saved
            self.inference.invalidate()

    # -- users ------------------------------------------------------------------
    def preferences(self) -> np.ndarray:
        """(U,) each user's learned weight on quality against cost (``a_u``), from the
        decisions the router knows (the population prior for users without any)."""
        return self.inference.preferences()

    def prior_preference(self) -> float:
        """The weight on quality of a user the router knows nothing about."""
        return self.inference.prior_preference()

    def onboard(
        self,
        users: np.ndarray,
        queries: np.ndarray,
        llms: np.ndarray,
        rewards: np.ndarray | None = None,
        candidates: np.ndarray | None = None,
    ) -> None:
        """Add decisions (and the rewards logged for them; NaN or None: none) to the
        users' states without retraining (new-user onboarding). ``candidates`` (E, L)
        are the LLMs each was made among (default: all available; two for a vote).

        The decisions' queries must be ones whose outcomes the router may see
        (not test queries)."""
        self.features.onboard(users, queries, llms, rewards, candidates)
        self.inference.invalidate()

    @contextmanager
    def onboarded(
        self,
        users: np.ndarray,
        queries: np.ndarray,
        llms: np.ndarray,
        rewards: np.ndarray | None = None,
        candidates: np.ndarray | None = None,
    ) -> Iterator[None]:
        """:meth:`onboard` these decisions for the duration of a ``with`` block."""
        saved = self.features.dec, self.features.cand
        self.onboard(users, queries, llms, rewards, candidates)
        try:
            yield
        finally:
            self.features.dec, self.features.cand = saved
            self.inference.invalidate()

    def add_outcomes(self, data: RoutingData, queries: np.ndarray, llm: int) -> None:
        """Make ``llm``'s outcomes on ``queries`` known to the router, without retraining
        (new-LLM onboarding); ``data`` must have the LLM's outcomes and description."""
        self.features.add_outcomes(data, queries, llm)
        self.inference.invalidate()

    # -- serving ----------------------------------------------------------------
    def score(self, data: RoutingData, users: np.ndarray, queries: np.ndarray) -> np.ndarray:
        return self.inference.score(users, queries, data.num_llms)

    def pair_margin(
        self,
        data: RoutingData,
        users: np.ndarray,
        queries: np.ndarray,
        first: np.ndarray,
        second: np.ndarray,
    ) -> np.ndarray:
        """P(users[i] prefers first[i] over second[i]) - 1/2 under the choice model the
        router was trained with (``sigmoid(beta * (U_first - U_second))`` on the outcomes
        the user sees), the unknown performances drawn as successes with their predicted
        probabilities. A judge compares the answers it got, not their expectations: a
        cheap answer that may be right beats a dear one that is a little likelier right.

        The probability is calibrated (:attr:`calibration`, per user by how many
        decisions describe it): a temperature, and the per-task Bradley-Terry prior
        of the training votes (:attr:`vote_prior`) where validation gave it weight."""
        margin = self.inference.pair_margin(users, queries, first, second)
        if self.calibration.identity:
            return margin
        du = self.features.dec[0].cpu().numpy()
        decisions = np.bincount(du, minlength=self.features.num_users)
        prob = self.calibration.apply(
            margin + 0.5,
            decisions[np.asarray(users)],
            self.train_config.prior_decisions,
            self._prior_margin(queries, first, second),
        )
        return prob - 0.5

    def predict(self, query_emb: np.ndarray, tasks: list[str], users: np.ndarray) -> Prediction:
        """Expected utility, performance and cost of every LLM for new queries.

        ``query_emb`` (B, D) are embeddings of queries that need not be in the
        graph, ``tasks`` their task ids, ``users`` (B,) user rows of the data
        the router was prepared with, or -1 for a user it knows nothing about
        (then the utility uses the population prior, ``h_u = 0``).
        """
        return self.inference.predict(query_emb, tasks, users)

    # -- checkpoints ------------------------------------------------------------
    def config_dict(self) -> dict[str, object]:
        return asdict(self.train_config) | {"seed": self.seed, "router": self.name}

    def state(self) -> dict[str, object]:
        """What a checkpoint needs to rebuild this router on a graph (see :meth:`from_state`)."""
        return router_state(self)

    @classmethod
    def from_state(
        cls,
        state: dict[str, object],
        data: RoutingData,
        *,
        device: str = "auto",
        serving: bool = True,
        exports: Path | None = None,
    ) -> GNNRouter:
        """Rebuild a trained router on ``data`` (see :func:`gnn.router_state.restore_router`)."""
        return restore_router(cls, state, data, device=device, serving=serving, exports=exports)


class NonPersonalizedGNNRouter(GNNRouter):
    """The same network and training, without users (GraphRouter-style)."""

    name = "gnn_nonpersonal"
    personalized = False
