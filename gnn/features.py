"""What the GNN router reads about one graph state, as tensors (no parameters, no training).

:class:`RouterFeatures` holds, for one split of a :class:`~gnn.data.RoutingData`:
the query and LLM inputs, the training outcomes the router may hear about (the
*reference* outcomes, with failures that choices imply added), the per-(task,
LLM) prior, the outcome messages from similar training queries, the outcomes
each user saw, and the decisions and pairwise judgements that describe users.
Onboarding (new users' decisions, a new LLM's outcomes) changes it in place,
without retraining.
"""

from __future__ import annotations

import logging
import threading

import numpy as np
import torch

from gnn.data import RoutingData, Split
from gnn.graph import OutcomeNeighbourhood, neighbour_outcomes, reference_outcomes
from gnn.priors import choice_bounds, implied_weights, latent_difficulty_prior, task_llm_prior
from prcore.errors import ProuterError
from prcore.utility import normalise_cost

__all__ = ["RouterFeatures", "resolve_device"]

log = logging.getLogger(__name__)


def resolve_device(device: str) -> torch.device:
    """``auto`` means CUDA when present, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class RouterFeatures:
    """The inputs of :class:`gnn.model.PersonalizedRouterGNN` for one graph state.

    ``seen`` masks the queries whose outcomes users saw (default: all but
    test); ``decisions`` and ``pairs`` index the choices and pairwise judgements
    that describe users (default: the training ones); ``task_ids`` is the
    model's task order (default: the data's); ``neighbours`` the number of
    similar training queries whose outcomes a query hears; ``messages`` their outcome
    messages (Q, L, 3), already computed for this split and ``neighbours`` (a training
    export's, :func:`gnn.graph.build_graph`), spare searching again (range-checked: bad
    ones are searched again, with a warning).
    """

    def __init__(
        self,
        data: RoutingData,
        split: Split,
        *,
        device: torch.device,
        neighbours: int,
        personalized: bool,
        seen: np.ndarray | None = None,
        decisions: np.ndarray | None = None,
        pairs: np.ndarray | None = None,
        task_ids: list[str] | None = None,
        messages: np.ndarray | None = None,
    ) -> None:
        self.device = dev = device
        self._standing_lock = threading.Lock()
        # The standing index of route-time neighbour lookups (built lazily; dropped by
        # all_neighbours whenever the reference outcomes change).
        self._standing: OutcomeNeighbourhood | None = None
        self.k = neighbours
        self.personalized = personalized
        self.task_ids = list(task_ids or data.task_ids)
        self.llm_ids = list(data.llm_ids)
        position = {t: i for i, t in enumerate(self.task_ids)}
        missing = sorted(set(data.task_ids) - set(position))
        if missing:
            raise ProuterError(f"tasks unknown to the model: {missing}; retrain to route them")
        task = np.array([position[t] for t in data.task_ids], dtype=np.int64)[data.query_task]
        self.train_ids = [data.query_ids[i] for i in np.flatnonzero(split.train)]
        self.val_ids = [data.query_ids[i] for i in np.flatnonzero(split.val)]
        self.task_cost_range = np.zeros((len(self.task_ids), 2))
        self.task_cost_range[[position[t] for t in data.task_ids]] = data.cost_range(split.train)
        # Normalised costs, unlogged ones estimated on partially logged queries (NaN: unknown).
        self.cost_estimate = data.cost_norm(split.train)
        cost_norm = np.nan_to_num(self.cost_estimate, nan=0.0)
        self.query_emb = data.query_emb
        self.ref_perf, self.ref_cost = reference_outcomes(data, split.train, cost_norm)
        self.q_x = torch.tensor(data.query_emb, dtype=torch.float32, device=dev)
        self.q_task = torch.from_numpy(task).to(dev)
        self.set_prior()
        self.l_x = torch.tensor(data.llm_emb, dtype=torch.float32, device=dev)
        given = None if messages is None else np.asarray(messages, dtype=np.float32)
        problem = None if given is None else _message_problem(given, self.ref_perf.shape)
        if problem:
            log.warning("the given neighbour messages are %s: searching again", problem)
        if given is None or problem:
            self.neigh = self.all_neighbours()
        else:
            self.neigh = torch.from_numpy(given).to(dev)
        self.available = torch.from_numpy(data.candidates()).to(dev)
        self.num_users = len(data.user_ids)
        seen = ~split.test if seen is None else seen
        self.seen_perf, self.seen_cost, self.seen_known = self._observed(data, seen, cost_norm)
        if decisions is None:
            decisions = np.flatnonzero(split.train[data.dec_query])
        if pairs is None:
            pairs = np.flatnonzero(split.train[data.pref_query])
        *self.dec, self.cand = self.decisions(data, decisions, pairs)
        self.ties = self.tie_rows(data, split.train)
        self._add_failures()

    def __getstate__(self) -> dict:
        """Pickled (DDP workers) without the lock and the standing index (rebuilt lazily)."""
        state = self.__dict__.copy()
        state.pop("_standing_lock")
        state["_standing"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._standing_lock = threading.Lock()
        # The standing index of route-time neighbour lookups (built lazily; dropped by
        # all_neighbours whenever the reference outcomes change).
        self._standing: OutcomeNeighbourhood | None = None

    # -- decisions and outcomes ----------------------------------------------------
    def decisions(
        self, data: RoutingData, decisions: np.ndarray, pairs: np.ndarray
    ) -> tuple[torch.Tensor, ...]:
        """(user, query, llm, logged reward, candidates (E, L)) of choices and non-tie
        pairwise judgements: a choice is among all available LLMs, a judgement between
        its two (and has no reward)."""
        n_llms = data.num_llms
        pair_cand = np.zeros((len(pairs), n_llms), dtype=bool)
        pair_cand[np.arange(len(pairs)), data.pref_win[pairs]] = True
        pair_cand[np.arange(len(pairs)), data.pref_lose[pairs]] = True
        arrays = (
            np.concatenate([data.dec_user[decisions], data.pref_user[pairs]]),
            np.concatenate([data.dec_query[decisions], data.pref_query[pairs]]),
            np.concatenate([data.dec_llm[decisions], data.pref_win[pairs]]),
        )
        users, queries, llms = (torch.from_numpy(a).to(self.device) for a in arrays)
        reward = np.concatenate([data.dec_reward[decisions], np.full(len(pairs), np.nan)])
        rewards = torch.tensor(reward, dtype=torch.float32, device=self.device)
        cand = torch.cat(
            [
                self.available[queries[: len(decisions)]],
                torch.from_numpy(pair_cand).to(self.device),
            ]
        )
        return users, queries, llms, rewards, cand

    def tie_rows(self, data: RoutingData, mask: np.ndarray) -> tuple[torch.Tensor, ...]:
        """(user, query, one LLM, the other, candidates (T, L): the two) of the tie
        judgements on the queries in ``mask`` (none where the data keeps no tie pairs);
        each trains as two half-weighted choices (``gnn.fitting.tie_nll_terms``)."""
        n = len(data.tie_query)
        if n and len(data.tie_a) == len(data.tie_b) == len(data.tie_user) == n:
            t = np.flatnonzero(mask[data.tie_query])
        else:
            t = np.zeros(0, dtype=np.int64)
        rows = (
            [
                torch.from_numpy(np.asarray(a[t], dtype=np.int64)).to(self.device)
                for a in (data.tie_user, data.tie_query, data.tie_a, data.tie_b)
            ]
            if len(t)
            else [torch.zeros(0, dtype=torch.long, device=self.device)] * 4
        )
        cand = torch.zeros((len(t), data.num_llms), dtype=torch.bool, device=self.device)
        ar = torch.arange(len(t), device=self.device)
        cand[ar, rows[2]] = True
        cand[ar, rows[3]] = True
        return (*rows, cand)

    def _observed(
        self, data: RoutingData, mask: np.ndarray, cost_norm: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Observed performance and normalised cost of the queries in ``mask`` (else 0),
        and where they are observed."""
        seen = mask[:, None] & ~np.isnan(data.performance)
        perf = np.where(seen, data.performance, 0.0)
        cost = np.where(seen, cost_norm, 0.0)
        return (
            torch.tensor(perf, dtype=torch.float32, device=self.device),
            torch.tensor(cost, dtype=torch.float32, device=self.device),
            torch.from_numpy(seen).to(self.device),
        )

    def filled(self, perf: torch.Tensor, cost: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The outcomes users saw, and where none was logged (votes without outcomes:
        preference-only graphs) the predicted ones (``perf`` logits, ``cost``), so votes
        there train the heads."""
        return (
            torch.where(self.seen_known, self.seen_perf, torch.sigmoid(perf)),
            torch.where(self.seen_known, self.seen_cost, cost),
        )

    def tied_with_choice(
        self, queries: torch.Tensor, llms: torch.Tensor, cand: torch.Tensor
    ) -> torch.Tensor:
        """(E, L) candidates as good as the choice: the same observed performance and a
        cost no lower. Cost breaks performance ties, so any of them explains the choice."""
        p, c = self.seen_perf[queries], self.seen_cost[queries]
        chosen_p = p.gather(1, llms[:, None])
        chosen_c = c.gather(1, llms[:, None])
        known = self.seen_known[queries]
        tied = (p == chosen_p) & (c >= chosen_c) & cand & known & known.gather(1, llms[:, None])
        return tied.scatter(1, llms[:, None], True)

    # -- neighbours and prior ---------------------------------------------------------
    def neighbours(self, emb: np.ndarray, same: np.ndarray | None = None) -> torch.Tensor:
        """Outcome messages (B, L, 3) for query embeddings ``emb``; ``same[i]`` is the row
        of query i in the data (so it never hears its own outcomes), or -1. New queries
        (no ``same``: route-time lookups) search a standing index of the reference
        outcomes, kept until they change."""
        if same is None:
            nb = self._standing_neighbourhood().messages(emb, k=self.k)
        else:
            nb = neighbour_outcomes(
                emb, self.query_emb, self.ref_perf, self.ref_cost, k=self.k, same=same
            )
        return torch.from_numpy(nb).to(self.device)

    def _standing_neighbourhood(self) -> OutcomeNeighbourhood:
        with self._standing_lock:  # serving threads look up at once
            if self._standing is None:
                self._standing = OutcomeNeighbourhood(self.query_emb, self.ref_perf, self.ref_cost)
            return self._standing

    def all_neighbours(self) -> torch.Tensor:
        """The outcome messages of every query of the data (the reference outcomes
        changed: the standing index of :meth:`neighbours` is dropped)."""
        self._standing = None
        return self.neighbours(self.query_emb, np.arange(len(self.query_emb)))

    def few_shot_neighbours(self, rng: np.random.Generator, max_shots: int) -> torch.Tensor:
        """The outcome messages with one random LLM known from only a few training queries."""
        llm = int(rng.integers(self.ref_perf.shape[1]))
        answered = np.flatnonzero(~np.isnan(self.ref_perf[:, llm]))
        if len(answered) == 0:
            return self.neigh
        shots = rng.choice(
            answered, min(len(answered), int(rng.integers(1, max_shots + 1))), replace=False
        )
        same = np.full(len(self.query_emb), -1)
        same[shots] = np.arange(len(shots))
        column = neighbour_outcomes(
            self.query_emb,
            self.query_emb[shots],
            self.ref_perf[shots, llm : llm + 1],
            self.ref_cost[shots, llm : llm + 1],
            k=self.k,
            same=same,
        )
        neigh = self.neigh.clone()
        neigh[:, llm] = torch.from_numpy(column[:, 0]).to(self.device)
        return neigh

    def set_prior(self) -> None:
        """The per-(task, LLM) outcome prior of the training outcomes known now: their
        means, or where some of a task's training queries lack an LLM's outcome (logs
        hold only what was chosen), the latent-difficulty estimate of
        ``gnn.priors.latent_difficulty_prior`` (for every query of the task)."""
        task = self.q_task.cpu().numpy()
        per_query, per_task = task_llm_prior(self.ref_perf, self.ref_cost, task, len(self.task_ids))
        known = ~np.isnan(self.ref_perf)
        rows = known.any(1)
        onehot = np.eye(len(self.task_ids), dtype=bool)[task[rows]]  # (R, T)
        missing = (onehot.T.astype(float) @ ~known[rows]) > 0  # (T, L)
        incomplete = missing & (per_task[..., 2] > 0)
        self.incomplete = bool(incomplete.any())
        if incomplete.any():
            fitted = latent_difficulty_prior(self.ref_perf, task, len(self.task_ids))
            per_task[..., 0] = np.where(incomplete, fitted, per_task[..., 0])
            per_query[..., 0] = np.where(incomplete[task], fitted[task], per_query[..., 0])
        self.task_prior = per_task
        self.prior = torch.from_numpy(per_query).to(self.device)

    # -- users' weights and what choices imply ---------------------------------------
    def logged_weights(self) -> torch.Tensor:
        """(U, 1) each user's weight measured from the rewards logged with the decisions
        known now (the mean over them of ``(r + C) / (P + C)``); for users without any
        decision, :meth:`population_weight`; NaN for users with decisions but no logged
        reward on an outcome the router may see (their learned weight counts), and for
        every user of a router without users."""
        if not self.personalized:
            return torch.full((self.num_users, 1), torch.nan, device=self.device)
        cached = getattr(self, "_weights_of", None)
        if cached is not None and cached[0] is self.dec:
            return cached[1]
        du, dq, dl, dr = (t.cpu().numpy() for t in self.dec)
        known = self.seen_known[dq, dl].cpu().numpy()
        perf = np.where(known, self.seen_perf[dq, dl].cpu().numpy(), np.nan)
        cost = np.where(known, self.seen_cost[dq, dl].cpu().numpy(), np.nan)
        total, count = implied_weights(du, perf, cost, dr.astype(float), self.num_users)
        weight = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        measured = weight[~np.isnan(weight)]
        population = float(measured.mean()) if len(measured) else np.nan
        # Users the router knows nothing about take the population's mean measured weight
        # (the shared estimator's prior, gnn.weights), not a learned guess.
        undecided = np.bincount(du, minlength=self.num_users)[: self.num_users] == 0
        weight = np.where(undecided, population, weight)
        logged = torch.tensor(weight[:, None], dtype=torch.float32, device=self.device)
        self._weights_of = (self.dec, logged, population)  # until decisions are added (onboard)
        return logged

    def population_weight(self) -> float:
        """The mean weight measured from logged rewards over the users that have one (NaN
        when none has, or for a router without users): the weight of an unknown user."""
        if not self.personalized:
            return float("nan")
        self.logged_weights()
        return self._weights_of[2]

    def failures(
        self,
        users: np.ndarray,
        queries: np.ndarray,
        llms: np.ndarray,
        perf: np.ndarray,
        cost: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(query, LLM) pairs whose outcome was not logged (NaN in ``perf``, (Q, L)) but a
        user's choice there shows was a failure (``gnn.priors.choice_bounds``, with the
        choosing user's logged weight, the chosen LLM's logged outcome and the others'
        costs where logged, else estimated (``RoutingData.completed_cost``), else their
        prior): with 0/1 scores, a bound below 1 (0.95,
        for the estimated costs); with graded scores, a bound at or below 0. Only LLMs
        with training outcomes on the query's task count as candidates."""
        known = ~np.isnan(perf)
        none = np.zeros(0, dtype=np.int64)
        weight = self.logged_weights()[:, 0].cpu().numpy()[users]
        ok = known[queries, llms] & ~np.isnan(weight)
        if not ok.any() or known.all():
            return none, none
        dq, dl, weight = queries[ok], llms[ok], weight[ok]
        prior = self.prior.cpu().numpy()
        estimate = np.where(
            np.isnan(self.cost_estimate[dq]), prior[dq, :, 1], self.cost_estimate[dq]
        )
        candidate_cost = np.where(known[dq], cost[dq], estimate)
        bound = choice_bounds(weight, perf[dq, dl], cost[dq, dl], candidate_cost)
        limit = 0.95 if np.isin(perf[known], (0.0, 1.0)).all() else 0.0
        rows, cols = np.nonzero((bound < limit) & ~known[dq] & (prior[dq, :, 2] > 0))
        if len(rows) == 0:
            return none, none
        pairs = np.unique(np.stack([dq[rows], cols], 1), axis=0)
        return pairs[:, 0], pairs[:, 1]

    def _add_failures(self) -> None:
        """Training outcomes nobody logged that the training decisions show were failures
        join the reference outcomes (score 0; the estimated cost, else the prior's;
        ``self.inferred``), so the prior, the neighbours' messages and the training
        targets know them."""
        self.inferred = np.zeros(self.ref_perf.shape, dtype=bool)
        du, dq, dl, _ = (t.cpu().numpy() for t in self.dec)
        q, m = self.failures(du, dq, dl, self.ref_perf, self.ref_cost)
        if len(q) == 0:
            return
        self.inferred[q, m] = True
        self.ref_perf[q, m] = 0.0
        estimate = self.cost_estimate[q, m]
        self.ref_cost[q, m] = np.where(
            np.isnan(estimate), self.prior.cpu().numpy()[q, m, 1], estimate
        )
        self.set_prior()
        self.neigh = self.all_neighbours()

    # -- training targets ---------------------------------------------------------------
    def outcome_targets(
        self, perf: np.ndarray, cost: np.ndarray, inferred: np.ndarray
    ) -> tuple[torch.Tensor, ...]:
        """(query, LLM, score) of the known outcomes in ``perf`` (Q, L; NaN: unknown) and
        (query, LLM, normalised cost) of those not ``inferred`` from choices."""
        dev = self.device
        p_q, p_l = np.nonzero(~np.isnan(perf))
        c_q, c_l = np.nonzero(~np.isnan(perf) & ~inferred)
        return (
            torch.from_numpy(p_q).to(dev),
            torch.from_numpy(p_l).to(dev),
            torch.tensor(perf[p_q, p_l], dtype=torch.float32, device=dev),
            torch.from_numpy(c_q).to(dev),
            torch.from_numpy(c_l).to(dev),
            torch.tensor(cost[c_q, c_l], dtype=torch.float32, device=dev),
        )

    def val_outcomes(self, data: RoutingData, split: Split) -> tuple[torch.Tensor, ...]:
        """The validation outcomes as :meth:`outcome_targets`, with the failures the
        validation decisions show (judged with the weights of the training decisions)."""
        known = split.val[:, None] & ~np.isnan(data.performance)
        perf = np.where(known, data.performance, np.nan)
        cost = np.where(known, np.nan_to_num(data.cost_norm(split.train), nan=0.0), np.nan)
        dec = np.flatnonzero(split.val[data.dec_query])
        q, m = self.failures(data.dec_user[dec], data.dec_query[dec], data.dec_llm[dec], perf, cost)
        inferred = np.zeros(perf.shape, dtype=bool)
        inferred[q, m] = True
        perf[q, m] = 0.0
        return self.outcome_targets(perf, cost, inferred)

    # -- onboarding without retraining ---------------------------------------------------
    def onboard(
        self,
        users: np.ndarray,
        queries: np.ndarray,
        llms: np.ndarray,
        rewards: np.ndarray | None = None,
        candidates: np.ndarray | None = None,
    ) -> None:
        """Add decisions (see :meth:`gnn.train.GNNRouter.onboard`)."""
        du, dq, dl, dr = self.dec
        dev = self.device
        queries = torch.as_tensor(queries, device=dev)
        if rewards is None:
            rewards = np.full(len(queries), np.nan)
        self.dec = [
            torch.cat([du, torch.as_tensor(users, device=dev)]),
            torch.cat([dq, queries]),
            torch.cat([dl, torch.as_tensor(llms, device=dev)]),
            torch.cat([dr, torch.as_tensor(rewards, dtype=torch.float32, device=dev)]),
        ]
        shown = (
            self.available[queries]
            if candidates is None
            else torch.as_tensor(candidates, dtype=torch.bool, device=dev)
        )
        self.cand = torch.cat([self.cand, shown])

    def add_outcomes(self, data: RoutingData, queries: np.ndarray, llm: int) -> None:
        """Make ``llm``'s outcomes on ``queries`` known (see
        :meth:`gnn.train.GNNRouter.add_outcomes`)."""
        self.ref_perf[queries, llm] = data.performance[queries, llm]
        self.ref_cost[queries, llm] = normalise_cost(
            data.cost[queries][:, [llm]], self.q_task.cpu().numpy()[queries], self.task_cost_range
        )[:, 0]
        self.set_prior()
        self.l_x = torch.tensor(data.llm_emb, dtype=torch.float32, device=self.device)
        self.available = torch.from_numpy(data.candidates()).to(self.device)
        self.neigh = self.all_neighbours()


def _message_problem(m: np.ndarray, shape: tuple[int, int]) -> str | None:
    """What is wrong with ``m`` as (queries, LLMs, 3) outcome messages (finite,
    performance in [0, 1], similarity in [-1, 1]), or None."""
    tol = 1e-4
    if m.shape != (*shape, 3):
        return f"of shape {m.shape}, not {(*shape, 3)}"
    if not np.isfinite(m).all():
        return "not finite"
    if (np.abs(m[..., 0] - 0.5) > 0.5 + tol).any() or (np.abs(m[..., 2]) > 1 + tol).any():
        return "out of range"
    return None
