"""Training the personalized GNN router, and the router that serves it.

Supervision is grouped per (user, query): for each training decision the
model computes the utility of every candidate LLM of that query from the
outcomes the user saw, with the decision's own message left out of the user's
state, and a softmax over the candidates (listwise) pulls the user's choice
up; where the user logged a reward for the choice, the utility of the chosen
LLM is fitted to it (squared error, ``reward_weight``). Candidates with the
same observed performance and a cost no lower count as the choice too (cost
breaks performance ties, as real and simulated users do). Auxiliary losses
fit the outcome heads to the training queries' performance and normalised
cost (costs are normalised with training-query ranges only). Where outcomes were
logged only for the LLMs users chose, the performance prior is the
latent-difficulty estimate (``gnn.priors.latent_difficulty_prior``) and the
performance head is not fitted to the logged outcomes (a biased sample: it
keeps the prior); what a choice implies about the others
(``gnn.priors.choice_bounds``: with 0/1 scores, a candidate the user passed over
for a dearer one failed) adds failure targets. Early stopping and checkpoint
selection use validation queries only (the decision loss plus the outcome
heads' loss on them); the test split is never touched here.

Routing uses each user's weight measured from their logged rewards
(``gnn.priors.implied_weights``) where there is one, else the learned one.

New LLMs: the outcome heads read each LLM's outcomes on similar training
queries (``gnn.graph.neighbour_outcomes``) and its description, never its
index. During training, an LLM's outcome messages are now and then rebuilt
from only a few random training queries (``new_llm_rate``), so the heads also
learn what to do with an LLM known from a handful of outcomes.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from gnn.data import RoutingData, Split
from gnn.graph import neighbour_outcomes, reference_outcomes
from gnn.model import PersonalizedRouterGNN
from gnn.priors import choice_bounds, implied_weights, latent_difficulty_prior, task_llm_prior
from gnn.routers.base import Router
from prcore.utility import normalise_cost

__all__ = ["GNNRouter", "NonPersonalizedGNNRouter", "Prediction", "TrainConfig", "resolve_device"]

log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class Prediction:
    """What the router expects for new queries: (B, L) arrays."""

    utility: np.ndarray  # the user's expected utility, higher is better
    performance: np.ndarray  # predicted probability of success / score
    cost: np.ndarray  # predicted cost, USD (de-normalised with the task's training range)


def resolve_device(device: str) -> torch.device:
    """``auto`` means CUDA when present, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def check_finite_loss(loss: torch.Tensor, epoch: int) -> None:
    """Stop training (no checkpoint is saved) when the loss is NaN or infinite."""
    if not bool(torch.isfinite(loss)):
        from prcore.errors import ProuterError

        raise ProuterError(
            f"training stopped at epoch {epoch}: the loss is {loss.item()} (not finite), so "
            "the graph holds out-of-range outcomes (performance outside [0, 1], absurd costs "
            "or rewards); fix them and train again (no model was saved)"
        )


def _choice_nll(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Listwise negative log-likelihood of a set-valued choice (softmax over candidates)."""
    return (scores.logsumexp(1) - scores.masked_fill(~targets, -1e9).logsumexp(1)).mean()


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

    # -- state ------------------------------------------------------------------
    def _prepare(
        self,
        data: RoutingData,
        split: Split,
        *,
        seen: np.ndarray | None = None,
        decisions: np.ndarray | None = None,
        pairs: np.ndarray | None = None,
        task_ids: list[str] | None = None,
    ) -> None:
        """Everything the network reads, for one split (no training).

        ``seen`` masks the queries whose outcomes users saw (default: all but
        test); ``decisions`` and ``pairs`` index the choices and pairwise judgements
        that describe users (default: the training ones); ``task_ids`` is the
        model's task order (default: the data's).
        """
        cfg = self.train_config
        self.device = dev = resolve_device(cfg.device)
        self.task_ids = list(task_ids or data.task_ids)
        self.llm_ids = list(data.llm_ids)
        position = {t: i for i, t in enumerate(self.task_ids)}
        missing = sorted(set(data.task_ids) - set(position))
        if missing:
            from prcore.errors import ProuterError

            raise ProuterError(f"tasks unknown to the model: {missing}; retrain to route them")
        task = np.array([position[t] for t in data.task_ids], dtype=np.int64)[data.query_task]
        self._train_ids = [data.query_ids[i] for i in np.flatnonzero(split.train)]
        self._val_ids = [data.query_ids[i] for i in np.flatnonzero(split.val)]
        self._task_cost_range = np.zeros((len(self.task_ids), 2))
        self._task_cost_range[[position[t] for t in data.task_ids]] = data.cost_range(split.train)
        cost_norm = np.nan_to_num(data.cost_norm(split.train), nan=0.0)
        self._query_emb = data.query_emb
        self._ref_perf, self._ref_cost = reference_outcomes(data, split.train, cost_norm)
        self._q_x = torch.tensor(data.query_emb, dtype=torch.float32, device=dev)
        self._q_task = torch.from_numpy(task).to(dev)
        self._set_prior()
        self._l_x = torch.tensor(data.llm_emb, dtype=torch.float32, device=dev)
        self._neigh = self._all_neighbours()
        self._available = torch.from_numpy(data.candidates()).to(dev)
        self._num_users = len(data.user_ids)
        seen = ~split.test if seen is None else seen
        self._seen_perf, self._seen_cost, self._seen_known = self._observed(data, seen, cost_norm)
        if decisions is None:
            decisions = np.flatnonzero(split.train[data.dec_query])
        if pairs is None:
            pairs = np.flatnonzero(split.train[data.pref_query])
        self._states: torch.Tensor | None = None  # see _cached_states
        *self._dec, self._cand = self._decisions(data, decisions, pairs)
        self._add_failures()
        self.model = PersonalizedRouterGNN(
            data.query_emb.shape[1],
            data.llm_emb.shape[1],
            data.num_llms,
            len(self.task_ids),
            hidden=cfg.hidden,
            dropout=cfg.dropout,
            personalized=self.personalized,
        ).to(dev)

    def _decisions(
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
                self._available[queries[: len(decisions)]],
                torch.from_numpy(pair_cand).to(self.device),
            ]
        )
        return users, queries, llms, rewards, cand

    def _neighbours(self, emb: np.ndarray, same: np.ndarray | None = None) -> torch.Tensor:
        """Outcome messages (B, L, 3) for query embeddings ``emb``; ``same[i]`` is the row
        of query i in the data (so it never hears its own outcomes), or -1."""
        nb = neighbour_outcomes(
            emb,
            self._query_emb,
            self._ref_perf,
            self._ref_cost,
            k=self.train_config.neighbours,
            same=same,
        )
        return torch.from_numpy(nb).to(self.device)

    def _all_neighbours(self) -> torch.Tensor:
        return self._neighbours(self._query_emb, np.arange(len(self._query_emb)))

    def _set_prior(self) -> None:
        """The per-(task, LLM) outcome prior of the training outcomes known now: their
        means, or where some of a task's training queries lack an LLM's outcome (logs
        hold only what was chosen), the latent-difficulty estimate of
        ``gnn.priors.latent_difficulty_prior`` (for every query of the task)."""
        task = self._q_task.cpu().numpy()
        per_query, per_task = task_llm_prior(
            self._ref_perf, self._ref_cost, task, len(self.task_ids)
        )
        known = ~np.isnan(self._ref_perf)
        rows = known.any(1)
        onehot = np.eye(len(self.task_ids), dtype=bool)[task[rows]]  # (R, T)
        missing = (onehot.T.astype(float) @ ~known[rows]) > 0  # (T, L)
        incomplete = missing & (per_task[..., 2] > 0)
        self._incomplete = bool(incomplete.any())
        if incomplete.any():
            fitted = latent_difficulty_prior(self._ref_perf, task, len(self.task_ids))
            per_task[..., 0] = np.where(incomplete, fitted, per_task[..., 0])
            per_query[..., 0] = np.where(incomplete[task], fitted[task], per_query[..., 0])
        self._task_prior = per_task
        self._prior = torch.from_numpy(per_query).to(self.device)

    def _logged_weights(self) -> torch.Tensor:
        """(U, 1) each user's weight measured from the rewards logged with the decisions
        the router knows (the mean over them of ``(r + C) / (P + C)``); NaN for users
        without a logged reward on an outcome the router may see, and for every user of a
        router without users."""
        if not self.personalized:
            return torch.full((self._num_users, 1), torch.nan, device=self.device)
        cached = getattr(self, "_weights_of", None)
        if cached is not None and cached[0] is self._dec:
            return cached[1]
        du, dq, dl, dr = (t.cpu().numpy() for t in self._dec)
        known = self._seen_known[dq, dl].cpu().numpy()
        perf = np.where(known, self._seen_perf[dq, dl].cpu().numpy(), np.nan)
        cost = np.where(known, self._seen_cost[dq, dl].cpu().numpy(), np.nan)
        total, count = implied_weights(du, perf, cost, dr.astype(float), self._num_users)
        weight = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        logged = torch.tensor(weight[:, None], dtype=torch.float32, device=self.device)
        self._weights_of = (self._dec, logged)  # until decisions are added (onboard)
        return logged

    def _failures(
        self, users: np.ndarray, queries: np.ndarray, llms: np.ndarray, perf: np.ndarray, cost
    ) -> tuple[np.ndarray, np.ndarray]:
        """(query, LLM) pairs whose outcome was not logged (NaN in ``perf``, (Q, L)) but a
        user's choice there shows was a failure (``gnn.priors.choice_bounds``, with the
        choosing user's logged weight, the chosen LLM's logged outcome and the others'
        costs where logged, else their prior): with 0/1 scores, a bound below 1 (0.95,
        for the estimated costs); with graded scores, a bound at or below 0. Only LLMs
        with training outcomes on the query's task count as candidates."""
        known = ~np.isnan(perf)
        none = np.zeros(0, dtype=np.int64)
        weight = self._logged_weights()[:, 0].cpu().numpy()[users]
        ok = known[queries, llms] & ~np.isnan(weight)
        if not ok.any() or known.all():
            return none, none
        dq, dl, weight = queries[ok], llms[ok], weight[ok]
        prior = self._prior.cpu().numpy()
        candidate_cost = np.where(known[dq], cost[dq], prior[dq, :, 1])
        bound = choice_bounds(weight, perf[dq, dl], cost[dq, dl], candidate_cost)
        limit = 0.95 if np.isin(perf[known], (0.0, 1.0)).all() else 0.0
        rows, cols = np.nonzero((bound < limit) & ~known[dq] & (prior[dq, :, 2] > 0))
        if len(rows) == 0:
            return none, none
        pairs = np.unique(np.stack([dq[rows], cols], 1), axis=0)
        return pairs[:, 0], pairs[:, 1]

    def _add_failures(self) -> None:
        """Training outcomes nobody logged that the training decisions show were failures
        join the reference outcomes (score 0, the prior's cost; ``self._inferred``), so
        the prior, the neighbours' messages and the training targets know them."""
        self._inferred = np.zeros(self._ref_perf.shape, dtype=bool)
        du, dq, dl, _ = (t.cpu().numpy() for t in self._dec)
        q, m = self._failures(du, dq, dl, self._ref_perf, self._ref_cost)
        if len(q) == 0:
            return
        self._inferred[q, m] = True
        self._ref_perf[q, m] = 0.0
        self._ref_cost[q, m] = self._prior.cpu().numpy()[q, m, 1]
        self._set_prior()
        self._neigh = self._all_neighbours()

    # -- fitting ----------------------------------------------------------------
    def _fit(self, data: RoutingData, split: Split) -> None:
        cfg = self.train_config
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        self._prepare(data, split)
        du, dq, dl, dr = self._dec
        cand = self._cand
        pq, pl, o_perf, oq, ol, o_cost = self._outcome_targets(
            self._ref_perf, self._ref_cost, self._inferred
        )
        v_out = self._val_outcomes(data, split)
        # Logged outcomes that are a biased sample (only what was chosen) would teach the
        # performance head their bias back: it then keeps the latent-difficulty prior.
        perf_weight = 0.0 if self._incomplete else 1.0
        tied = self._tied_with_choice(dq, dl, cand, self._seen_perf, self._seen_cost)
        val = self._decisions(
            data,
            np.flatnonzero(split.val[data.dec_query]),
            np.flatnonzero(split.val[data.pref_query]),
        )
        optim = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        best, best_key, waited = None, (-np.inf, -1.0), 0
        bar = tqdm(
            range(cfg.epochs),
            desc=f"train {self.name}",
            disable=not self.progress or None,
            leave=False,
        )
        for epoch in bar:
            started = time.perf_counter()
            self.model.train()
            neigh = self._few_shot_neighbours(rng) if rng.random() < cfg.new_llm_rate else None
            h_q, h_l, perf, cost = self._encode(neigh)
            aux = perf.sum() * 0.0  # a preference-only graph has no outcome to fit
            if len(pq):
                aux = aux + perf_weight * F.binary_cross_entropy_with_logits(perf[pq, pl], o_perf)
            if len(oq):
                aux = aux + F.mse_loss(cost[oq, ol], o_cost)
            seen_p, seen_c = self._filled(perf, cost)
            msgs = self.model.decision_messages(h_q, h_l, seen_p, seen_c, cand, dq, dl, dr)
            total, count = self.model.user_states(msgs, du, self._num_users)
            others = (count[du] - 1 + cfg.prior_decisions).clamp(min=1)
            h_u = (total[du] - msgs) / others  # leave the target's own decision out
            loss = (
                self._decision_loss(h_u, dq, dl, dr, cand, tied, seen_p, seen_c)
                + cfg.aux_weight * aux
            )
            check_finite_loss(loss, epoch)
            optim.zero_grad()
            loss.backward()
            optim.step()

            val_acc, val_loss, val_outcome = self._validate(*val, outcomes=v_out)
            self.history.append(
                {
                    "epoch": epoch,
                    "loss": loss.item(),
                    "val_accuracy": val_acc,
                    "val_loss": val_loss,
                    "val_outcome_loss": val_outcome,
                    "seconds": time.perf_counter() - started,
                }
            )
            bar.set_postfix(loss=f"{loss.item():.3f}", val_acc=f"{val_acc:.3f}")
            key = (-val_loss, val_acc)
            if key > best_key:
                best, best_key, waited = copy.deepcopy(self.model.state_dict()), key, 0
            else:
                waited += 1
                if waited >= cfg.patience:
                    break
        if best is not None:
            self.model.load_state_dict(best)
        self._states = None
        self.best_epoch = int(np.argmin([h["val_loss"] for h in self.history]))
        log.info("%s: best validation loss %.4f", self.name, -best_key[0])

    def _outcome_targets(
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

    def _val_outcomes(self, data: RoutingData, split: Split) -> tuple[torch.Tensor, ...]:
        """The validation outcomes as :meth:`_outcome_targets`, with the failures the
        validation decisions show (judged with the weights of the training decisions)."""
        known = split.val[:, None] & ~np.isnan(data.performance)
        perf = np.where(known, data.performance, np.nan)
        cost = np.where(known, np.nan_to_num(data.cost_norm(split.train), nan=0.0), np.nan)
        dec = np.flatnonzero(split.val[data.dec_query])
        q, m = self._failures(
            data.dec_user[dec], data.dec_query[dec], data.dec_llm[dec], perf, cost
        )
        inferred = np.zeros(perf.shape, dtype=bool)
        inferred[q, m] = True
        perf[q, m] = 0.0
        return self._outcome_targets(perf, cost, inferred)

    def _decision_loss(self, h_u, queries, llms, rewards, cand, tied, perf, cost) -> torch.Tensor:  # type: ignore[no-untyped-def]
        """Choice likelihood plus the logged rewards' squared error, both given the
        outcomes the users saw (``perf``, ``cost``: see :meth:`_filled`)."""
        utility = self.model.utility(h_u, perf[queries], cost[queries])
        scores = (self.model.temperature * utility).masked_fill(~cand, -1e9)
        loss = _choice_nll(scores, tied)
        logged = ~rewards.isnan()
        if logged.any():
            chosen = utility.gather(1, llms[:, None])[:, 0]
            error = (chosen - rewards)[logged]
            loss = loss + self.train_config.reward_weight * error.square().mean()
        return loss

    def _few_shot_neighbours(self, rng: np.random.Generator) -> torch.Tensor:
        """The outcome messages with one random LLM known from only a few training queries."""
        llm = int(rng.integers(self._ref_perf.shape[1]))
        answered = np.flatnonzero(~np.isnan(self._ref_perf[:, llm]))
        if len(answered) == 0:
            return self._neigh
        shots = rng.choice(
            answered,
            min(len(answered), int(rng.integers(1, self.train_config.new_llm_max_shots + 1))),
            replace=False,
        )
        same = np.full(len(self._query_emb), -1)
        same[shots] = np.arange(len(shots))
        column = neighbour_outcomes(
            self._query_emb,
            self._query_emb[shots],
            self._ref_perf[shots, llm : llm + 1],
            self._ref_cost[shots, llm : llm + 1],
            k=self.train_config.neighbours,
            same=same,
        )
        neigh = self._neigh.clone()
        neigh[:, llm] = torch.from_numpy(column[:, 0]).to(self.device)
        return neigh

    def _encode(self, neigh: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        h_q = self.model.encode_queries(self._q_x, self._q_task)
        h_l = self.model.encode_llms(self._l_x)
        neigh = self._neigh if neigh is None else neigh
        perf, cost = self.model.outcomes(h_q, h_l, neigh, self._prior)
        return h_q, h_l, perf, cost

    def _user_state(self, h_q, h_l):  # type: ignore[no-untyped-def]
        du, dq, dl, dr = self._dec
        seen_p, seen_c = self._filled(*self.model.outcomes(h_q, h_l, self._neigh, self._prior))
        msgs = self.model.decision_messages(h_q, h_l, seen_p, seen_c, self._cand, dq, dl, dr)
        total, count = self.model.user_states(msgs, du, self._num_users)
        return total / (count + self.train_config.prior_decisions).clamp(min=1)

    def _cached_states(self, h_l: torch.Tensor) -> torch.Tensor:
        """The users' states (eval mode), kept until decisions or outcomes change:
        serving answers many lookups per graph state."""
        if self._states is None:
            h_q = self.model.encode_queries(self._q_x, self._q_task)
            self._states = self._user_state(h_q, h_l)
        return self._states

    def _route_utility(self, h_u, perf, cost, weight=None):  # type: ignore[no-untyped-def]
        """Expected utility on queries with unknown outcomes: the predicted ones; ``weight``
        (B, 1) the users' weights measured from logged rewards (NaN: the learned one)."""
        return self.model.utility(h_u, torch.sigmoid(perf), cost, weight)

    def _tied_with_choice(self, queries, llms, cand, perf, cost) -> torch.Tensor:  # type: ignore[no-untyped-def]
        """(E, L) candidates as good as the choice: the same observed performance and a
        cost no lower. Cost breaks performance ties, so any of them explains the choice."""
        p, c = perf[queries], cost[queries]
        chosen_p = p.gather(1, llms[:, None])
        chosen_c = c.gather(1, llms[:, None])
        known = self._seen_known[queries]
        tied = (p == chosen_p) & (c >= chosen_c) & cand & known & known.gather(1, llms[:, None])
        return tied.scatter(1, llms[:, None], True)

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

    def _filled(self, perf: torch.Tensor, cost: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The outcomes users saw, and where none was logged (votes without outcomes:
        preference-only graphs) the predicted ones, so votes there train the heads."""
        return (
            torch.where(self._seen_known, self._seen_perf, torch.sigmoid(perf)),
            torch.where(self._seen_known, self._seen_cost, cost),
        )

    @torch.no_grad()
    def _validate(self, v_u, v_q, v_l, v_r, v_c, *, outcomes) -> tuple[float, float, float]:  # type: ignore[no-untyped-def]
        """Validation routing accuracy, the validation loss that selects checkpoints, and
        its outcome part.

        The loss is the decision loss (choice likelihood and logged rewards' error)
        on held-out queries given the outcomes the users saw there, plus the outcome
        heads' loss on the held-out outcomes (what routing by expected utility
        rests on). Accuracy is reported, not selected on: agreeing with realised
        choices favours cheap LLMs over the best expected reward.
        """
        self.model.eval()
        h_q, h_l, perf, cost = self._encode()
        p_q, p_l, o_perf, c_q, c_l, o_cost = outcomes
        outcome = 0.0
        if len(p_q):
            outcome = float(
                F.binary_cross_entropy_with_logits(perf[p_q, p_l], o_perf)
                + F.mse_loss(cost[c_q, c_l], o_cost)
            )
        if len(v_u) == 0:
            return 0.0, outcome, outcome
        h_u = self._user_state(h_q, h_l)
        weight = self._logged_weights()[v_u]
        routed = self._route_utility(h_u[v_u], perf[v_q], cost[v_q], weight)
        routed = routed.masked_fill(~v_c, -1e9)
        tied = self._tied_with_choice(v_q, v_l, v_c, self._seen_perf, self._seen_cost)
        filled = self._filled(perf, cost)
        loss = float(self._decision_loss(h_u[v_u], v_q, v_l, v_r, v_c, tied, *filled)) + outcome
        return float((routed.argmax(1) == v_l).float().mean()), loss, outcome

    @torch.no_grad()
    def preferences(self) -> np.ndarray:
        """(U,) each user's learned weight on quality against cost (``a_u``), from the
        decisions the router knows (the population prior for users without any)."""
        self.model.eval()
        states = self._cached_states(self.model.encode_llms(self._l_x))
        learned = self.model.preference(states)
        return (
            torch.where(self._logged_weights().isnan(), learned, self._logged_weights())[:, 0]
            .cpu()
            .numpy()
        )

    @torch.no_grad()
    def prior_preference(self) -> float:
        """The weight on quality of a user the router knows nothing about."""
        return float(self.model.preference(torch.zeros(1, self.model.hidden, device=self.device)))

    # -- onboarding without retraining -------------------------------------------
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
        du, dq, dl, dr = self._dec
        dev = self.device
        queries = torch.as_tensor(queries, device=dev)
        if rewards is None:
            rewards = np.full(len(queries), np.nan)
        self._dec = [
            torch.cat([du, torch.as_tensor(users, device=dev)]),
            torch.cat([dq, queries]),
            torch.cat([dl, torch.as_tensor(llms, device=dev)]),
            torch.cat([dr, torch.as_tensor(rewards, dtype=torch.float32, device=dev)]),
        ]
        shown = (
            self._available[queries]
            if candidates is None
            else torch.as_tensor(candidates, dtype=torch.bool, device=dev)
        )
        self._cand = torch.cat([self._cand, shown])
        self._states = None

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
        saved = self._dec, self._cand
        self.onboard(users, queries, llms, rewards, candidates)
        try:
            yield
        finally:
            self._dec, self._cand = saved
            self._states = None

    def add_outcomes(self, data: RoutingData, queries: np.ndarray, llm: int) -> None:
        """Make ``llm``'s outcomes on ``queries`` known to the router, without retraining
        (new-LLM onboarding); ``data`` must have the LLM's outcomes and description."""
        self._ref_perf[queries, llm] = data.performance[queries, llm]
        self._ref_cost[queries, llm] = normalise_cost(
            data.cost[queries][:, [llm]], self._q_task.cpu().numpy()[queries], self._task_cost_range
        )[:, 0]
        self._set_prior()
        self._l_x = torch.tensor(data.llm_emb, dtype=torch.float32, device=self.device)
        self._available = torch.from_numpy(data.candidates()).to(self.device)
        self._neigh = self._all_neighbours()
        self._states = None

    # -- serving ----------------------------------------------------------------
    @torch.no_grad()
    def score(self, data: RoutingData, users: np.ndarray, queries: np.ndarray) -> np.ndarray:
        self.model.eval()
        h_q, h_l, perf, cost = self._encode()
        h_u = self._user_state(h_q, h_l)
        weight = self._logged_weights()
        u = torch.as_tensor(users, device=self.device)
        q = torch.as_tensor(queries, device=self.device)
        out = []
        for start in range(0, len(u), 8192):
            s = slice(start, start + 8192)
            out.append(self._route_utility(h_u[u[s]], perf[q[s]], cost[q[s]], weight[u[s]]))
        return torch.cat(out).cpu().numpy() if out else np.zeros((0, data.num_llms))

    @torch.no_grad()
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
        cheap answer that may be right beats a dear one that is a little likelier right."""
        self.model.eval()
        h_q, h_l, perf, cost = self._encode()
        h_u = self._user_state(h_q, h_l)
        dev = self.device
        u, q, f, s = (torch.as_tensor(x, device=dev) for x in (users, queries, first, second))
        logged = self._logged_weights()[u]
        a = torch.where(logged.isnan(), self.model.preference(h_u[u]), logged)[:, 0]
        p_f, p_s = torch.sigmoid(perf[q, f]), torch.sigmoid(perf[q, s])
        cost_gap = (1 - a) * (cost[q, f] - cost[q, s])
        prob = torch.zeros_like(a)
        for x_f in (0.0, 1.0):
            for x_s in (0.0, 1.0):
                weight = (p_f if x_f else 1 - p_f) * (p_s if x_s else 1 - p_s)
                gap = a * (x_f - x_s) - cost_gap
                prob += weight * torch.sigmoid(self.model.temperature * gap)
        return (prob - 0.5).cpu().numpy()

    @torch.no_grad()
    def predict(self, query_emb: np.ndarray, tasks: list[str], users: np.ndarray) -> Prediction:
        """Expected utility, performance and cost of every LLM for new queries.

        ``query_emb`` (B, D) are embeddings of queries that need not be in the
        graph, ``tasks`` their task ids, ``users`` (B,) user rows of the data
        the router was prepared with, or -1 for a user it knows nothing about
        (then the utility uses the population prior, ``h_u = 0``).
        """
        self.model.eval()
        position = {t: i for i, t in enumerate(self.task_ids)}
        unknown = sorted({t for t in tasks if t not in position})
        if unknown:
            from prcore.errors import ProuterError

            raise ProuterError(f"unknown tasks {unknown}; the model knows {self.task_ids}")
        task = torch.tensor([position[t] for t in tasks], dtype=torch.long, device=self.device)
        x = torch.tensor(np.asarray(query_emb), dtype=torch.float32, device=self.device)
        h_q = self.model.encode_queries(x, task)
        h_l = self.model.encode_llms(self._l_x)
        prior = torch.from_numpy(self._task_prior[task.cpu().numpy()]).to(self.device)
        perf, cost = self.model.outcomes(h_q, h_l, self._neighbours(np.asarray(query_emb)), prior)
        states = self._cached_states(h_l)
        users_t = torch.as_tensor(np.asarray(users), dtype=torch.long, device=self.device)
        known = (users_t >= 0)[:, None]
        h_u = torch.where(known, states[users_t.clamp(min=0)], torch.zeros_like(h_q))
        weight = torch.where(known, self._logged_weights()[users_t.clamp(min=0)], torch.nan)
        utility = self._route_utility(h_u, perf, cost, weight).cpu().numpy()
        lo, hi = self._task_cost_range[task.cpu().numpy()].T
        usd = cost.cpu().numpy() * (hi - lo)[:, None] + lo[:, None]
        return Prediction(utility, torch.sigmoid(perf).cpu().numpy(), usd)

    # -- checkpoints ------------------------------------------------------------
    def config_dict(self) -> dict[str, object]:
        return asdict(self.train_config) | {"seed": self.seed, "router": self.name}

    def state(self) -> dict[str, object]:
        """What a checkpoint needs to rebuild this router on a graph (see :meth:`from_state`)."""
        return {
            "router": self.name,
            "config": self.config_dict(),
            "state_dict": self.model.state_dict(),
            "task_ids": self.task_ids,
            "llm_ids": self.llm_ids,
            "train_queries": self._train_ids,
            "val_queries": self._val_ids,
            "best_epoch": self.best_epoch,
        }

    @classmethod
    def from_state(
        cls,
        state: dict[str, object],
        data: RoutingData,
        *,
        device: str = "auto",
        serving: bool = True,
    ) -> GNNRouter:
        """Rebuild a trained router on ``data``.

        Its training queries (by id) give the outcome messages. For ``serving``
        (the graph now), every decision and judgement in ``data`` describes its
        user (users and decisions added since training count, without
        retraining) and every outcome may be seen; otherwise (``serving=False``,
        the data it was trained on) it is the router as it was after training,
        e.g. the reference of the few-shot settings.
        """
        config = dict(state["config"])  # type: ignore[arg-type]
        seed = int(config.pop("seed", 0))
        config.pop("router", None)
        router = cls(seed=seed, **(config | {"device": device}))
        ids = {q: i for i, q in enumerate(data.query_ids)}
        train = np.zeros(len(data.query_ids), dtype=bool)
        val = np.zeros_like(train)
        train[[ids[q] for q in state["train_queries"] if q in ids]] = True  # type: ignore[attr-defined]
        val[[ids[q] for q in state["val_queries"] if q in ids]] = True  # type: ignore[attr-defined]
        split = Split(train=train, val=val, test=~(train | val))
        router._set_cost_rank(data, split)
        everything = {
            "seen": np.ones_like(train),
            "decisions": np.arange(len(data.dec_user)),
            "pairs": np.arange(len(data.pref_user)),
        }
        router._prepare(
            data,
            split,
            **(everything if serving else {}),
            task_ids=list(state["task_ids"]),  # type: ignore[call-overload]
        )
        try:
            router.model.load_state_dict(state["state_dict"])  # type: ignore[arg-type]
        except RuntimeError as exc:
            from prcore.errors import ProuterError

            raise ProuterError(
                "the checkpoint's weights do not fit this version of the model (it was "
                f"trained by an older release); retrain it with `prouter train`: {exc}"
            ) from exc
        router._states = None
        router.best_epoch = int(state.get("best_epoch", -1))  # type: ignore[call-overload]
        return router


class NonPersonalizedGNNRouter(GNNRouter):
    """The same network and training, without users (GraphRouter-style)."""

    name = "gnn_nonpersonal"
    personalized = False
