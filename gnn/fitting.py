"""Fitting the GNN router's network: the losses, validation, early stopping.

Supervision is grouped per (user, query): for each training decision the
model computes the utility of every candidate LLM of that query from the
outcomes the user saw, with the decision's own message left out of the user's
state, and a softmax over the candidates (listwise) pulls the user's choice
up; where the user logged a reward for the choice, the utility of the chosen
LLM is fitted to it (squared error, ``reward_weight``). Candidates with the
same observed performance and a cost no lower count as the choice too (cost
breaks performance ties, as real and simulated users do). Auxiliary losses
fit the outcome heads to the training queries' performance and normalised
cost. Where outcomes were logged only for the LLMs users chose, the performance
head is not fitted to the logged outcomes (a biased sample: it keeps the
latent-difficulty prior). Early stopping and checkpoint selection use
validation queries only (the decision loss plus the outcome heads' loss on
them); the test split is never touched here.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from gnn.data import RoutingData, Split
from gnn.features import RouterFeatures
from gnn.inference import RouterInference
from gnn.routers.base import training_decisions
from gnn.validation import validation_pairs
from gnn.weights import estimate_user_weights
from prcore.errors import ProuterError

__all__ = [
    "RESIDUAL_SCALES",
    "EarlyStopping",
    "FitResult",
    "TrainingTargets",
    "check_finite_loss",
    "choice_nll_terms",
    "fit_network",
    "outcome_loss",
    "select_residual_scale",
    "tie_nll_terms",
    "training_targets",
]

#: The residual scales tried on validation after training (largest first: ties keep more
#: of the network).
RESIDUAL_SCALES = (1.0, 0.75, 0.5, 0.25, 0.0)

log = logging.getLogger(__name__)


@dataclass
class FitResult:
    """What a fit leaves besides the weights: per-epoch figures and the chosen epoch."""

    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1


class EarlyStopping:
    """Per-epoch history, the weights of the best epoch (lowest validation loss, then
    highest validation accuracy) and patience: the bookkeeping every training loop shares."""

    def __init__(self, model: torch.nn.Module, patience: int, *, keep_initial: bool = False):
        self.model, self.patience = model, patience
        self.result = FitResult()
        self.best = copy.deepcopy(model.state_dict()) if keep_initial else None
        self.best_key: tuple[float, float] = (-np.inf, -1.0)
        self.waited = 0

    def improves(self, val_loss: float, val_acc: float) -> bool:
        """Whether these validation figures beat the best epoch so far."""
        return (-val_loss, val_acc) > self.best_key

    def update(
        self,
        epoch: int,
        loss: float,
        validation: tuple[float, float, float],
        started: float,
        improved: bool | None = None,
    ) -> bool:
        """Record an epoch (``validation``: accuracy, loss, outcome loss; ``improved``
        overrides :meth:`improves`, e.g. decided by another process); True to stop."""
        val_acc, val_loss, val_outcome = validation
        self.result.history.append(
            {
                "epoch": epoch,
                "loss": loss,
                "val_accuracy": val_acc,
                "val_loss": val_loss,
                "val_outcome_loss": val_outcome,
                "seconds": time.perf_counter() - started,
            }
        )
        if self.improves(val_loss, val_acc) if improved is None else improved:
            self.best, self.best_key, self.waited = (
                copy.deepcopy(self.model.state_dict()),
                (-val_loss, val_acc),
                0,
            )
            return False
        self.waited += 1
        return self.waited >= self.patience

    def finish(self, inference: RouterInference | None = None, label: str = "") -> FitResult:
        """Restore the best epoch's weights and say which epoch it was."""
        if self.best is not None:
            self.model.load_state_dict(self.best)
        if inference is not None:
            inference.invalidate()
        self.result.best_epoch = int(np.argmin([h["val_loss"] for h in self.result.history]))
        if label:
            log.info("%s: best validation loss %.4f", label, -self.best_key[0])
        return self.result


@dataclass(frozen=True)
class TrainingTargets:
    """What every training loop fits and validates on, from the features of one split."""

    outcomes: tuple[torch.Tensor, ...]  # RouterFeatures.outcome_targets of the training queries
    val_outcomes: tuple[torch.Tensor, ...]  # the same of the validation queries
    val: tuple[torch.Tensor, ...]  # validation decisions (RouterFeatures.decisions)
    # Logged outcomes that are a biased sample (only what was chosen) would teach the
    # performance head their bias back: it then keeps the latent-difficulty prior (0).
    perf_weight: float
    val_ties: tuple[torch.Tensor, ...] | None = None  # validation ties (RouterFeatures.tie_rows)


def training_targets(features: RouterFeatures, data: RoutingData, split: Split) -> TrainingTargets:
    """The :class:`TrainingTargets` of ``split``."""
    return TrainingTargets(
        outcomes=features.outcome_targets(features.ref_perf, features.ref_cost, features.inferred),
        val_outcomes=features.val_outcomes(data, split),
        val=features.decisions(
            data,
            np.flatnonzero(split.val[data.dec_query]),
            np.flatnonzero(split.val[data.pref_query]),
        ),
        perf_weight=0.0 if features.incomplete else 1.0,
        val_ties=features.tie_rows(data, split.val),
    )


def check_finite_loss(loss: torch.Tensor, epoch: int) -> None:
    """Stop training (no checkpoint is saved) when the loss is NaN or infinite."""
    if not bool(torch.isfinite(loss)):
        raise ProuterError(
            f"training stopped at epoch {epoch}: the loss is {loss.item()} (not finite), so "
            "the graph holds out-of-range outcomes (performance outside [0, 1], absurd costs "
            "or rewards); fix them and train again (no model was saved)"
        )


def choice_nll_terms(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per row, the listwise negative log-likelihood of a set-valued choice (softmax over
    the candidates ``scores``; the choice is any of ``targets``)."""
    return scores.logsumexp(1) - scores.masked_fill(~targets, -1e9).logsumexp(1)


def tie_nll_terms(
    inference: RouterInference,
    h_u: torch.Tensor,
    ties: tuple[torch.Tensor, ...],
    perf: torch.Tensor,
    cost: torch.Tensor,
) -> torch.Tensor:
    """Per tie (``RouterFeatures.tie_rows``; ``h_u`` its user's state), the negative
    log-likelihood of two half-weighted choices between its two LLMs: one wins with
    weight 1/2, the other with weight 1/2 (minimal at even odds)."""
    model = inference.model
    _, queries, a, b, cand = ties
    utility = model.utility(h_u, perf[queries], cost[queries])
    scores = (model.temperature * utility).masked_fill(~cand, -1e9)
    none = torch.zeros_like(cand)
    first = choice_nll_terms(scores, none.scatter(1, a[:, None], True))
    second = choice_nll_terms(scores, none.scatter(1, b[:, None], True))
    return 0.5 * (first + second)


def _choice_nll(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The mean of :func:`choice_nll_terms`."""
    return choice_nll_terms(scores, targets).mean()


def outcome_loss(
    perf: torch.Tensor, cost: torch.Tensor, outcomes: tuple[torch.Tensor, ...]
) -> float:
    """The outcome heads' loss on ``outcomes`` (``RouterFeatures.outcome_targets``): the
    performance logits' cross-entropy plus the cost's squared error; 0 without outcomes."""
    p_q, p_l, o_perf, c_q, c_l, o_cost = outcomes
    if not len(p_q):
        return 0.0
    return float(
        F.binary_cross_entropy_with_logits(perf[p_q, p_l], o_perf)
        + F.mse_loss(cost[c_q, c_l], o_cost)
    )


def decision_loss(
    inference: RouterInference,
    reward_weight: float,
    h_u: torch.Tensor,
    queries: torch.Tensor,
    llms: torch.Tensor,
    rewards: torch.Tensor,
    cand: torch.Tensor,
    tied: torch.Tensor,
    perf: torch.Tensor,
    cost: torch.Tensor,
    tie_nll: torch.Tensor | None = None,
) -> torch.Tensor:
    """Choice likelihood plus the logged rewards' squared error, both given the
    outcomes the users saw (``perf``, ``cost``: see ``RouterFeatures.filled``).
    ``tie_nll`` (:func:`tie_nll_terms`) join the choices' mean, one row per tie."""
    model = inference.model
    utility = model.utility(h_u, perf[queries], cost[queries])
    scores = (model.temperature * utility).masked_fill(~cand, -1e9)
    if tie_nll is None or not len(tie_nll):
        loss = _choice_nll(scores, tied)
    else:
        loss = torch.cat([choice_nll_terms(scores, tied), tie_nll]).mean()
    logged = ~rewards.isnan()
    if logged.any():
        chosen = utility.gather(1, llms[:, None])[:, 0]
        error = (chosen - rewards)[logged]
        loss = loss + reward_weight * error.square().mean()
    return loss


@torch.no_grad()
def validate(
    inference: RouterInference,
    reward_weight: float,
    val: tuple[torch.Tensor, ...],
    outcomes: tuple[torch.Tensor, ...],
    ties: tuple[torch.Tensor, ...] | None = None,
) -> tuple[float, float, float]:
    """Validation routing accuracy, the validation loss that selects checkpoints, and
    its outcome part (``ties``: validation ties, in the decision loss as in training).

    The loss is the decision loss (choice likelihood and logged rewards' error)
    on held-out queries given the outcomes the users saw there, plus the outcome
    heads' loss on the held-out outcomes (what routing by expected utility
    rests on). Accuracy is reported, not selected on: agreeing with realised
    choices favours cheap LLMs over the best expected reward.
    """
    model, features = inference.model, inference.features
    v_u, v_q, v_l, v_r, v_c = val
    model.eval()
    h_q, h_l, perf, cost = inference.encode()
    outcome = outcome_loss(perf, cost, outcomes)
    if len(v_u) == 0:
        return 0.0, outcome, outcome
    h_u = inference.user_states(h_q, h_l)
    weight = features.logged_weights()[v_u]
    routed = inference.route_utility(h_u[v_u], perf[v_q], cost[v_q], weight)
    routed = routed.masked_fill(~v_c, -1e9)
    tied = features.tied_with_choice(v_q, v_l, v_c)
    filled = features.filled(perf, cost)
    tie_nll = None
    if ties is not None and len(ties[0]):
        tie_nll = tie_nll_terms(inference, h_u[ties[0]], ties, *filled)
    loss = decision_loss(
        inference, reward_weight, h_u[v_u], v_q, v_l, v_r, v_c, tied, *filled, tie_nll=tie_nll
    )
    return float((routed.argmax(1) == v_l).float().mean()), float(loss) + outcome, outcome


def fit_network(
    inference: RouterInference,
    data: RoutingData,
    split: Split,
    cfg: Any,
    *,
    rng: np.random.Generator,
    name: str,
    progress: bool = False,
) -> FitResult:
    """Train ``inference.model`` on the training decisions and outcomes of its features
    (``cfg``: a :class:`gnn.train.TrainConfig`), keeping the weights of the epoch
    with the lowest validation loss; stop after ``cfg.patience`` epochs without
    improvement. With ``cfg.processes > 1`` the same training runs across processes
    (:func:`gnn.distributed.fit_distributed`); on large graphs (or with
    ``cfg.batch_size > 0``) in mini-batches (:func:`gnn.minibatch.fit_minibatch`)."""
    processes = int(getattr(cfg, "processes", 1))
    if processes > 1:
        from gnn.distributed import fit_distributed  # imports this module

        return fit_distributed(inference, data, split, cfg, rng=rng, processes=processes)
    from gnn.minibatch import batch_plan, fit_minibatch  # imports this module

    batch_size = batch_plan(inference, int(getattr(cfg, "batch_size", 0)))
    if batch_size:
        return fit_minibatch(
            inference,
            data,
            split,
            cfg,
            rng=rng,
            name=name,
            batch_size=batch_size,
            progress=progress,
        )
    model, features = inference.model, inference.features
    du, dq, dl, dr = features.dec
    cand = features.cand
    tu = features.ties[0]
    targets = training_targets(features, data, split)
    pq, pl, o_perf, oq, ol, o_cost = targets.outcomes
    tied = features.tied_with_choice(dq, dl, cand)
    optim = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    stopping = EarlyStopping(model, cfg.patience)
    bar = tqdm(range(cfg.epochs), desc=f"train {name}", disable=not progress or None, leave=False)
    for epoch in bar:
        started = time.perf_counter()
        model.train()
        few_shot = rng.random() < cfg.new_llm_rate
        neigh = features.few_shot_neighbours(rng, cfg.new_llm_max_shots) if few_shot else None
        h_q, h_l, perf, cost = inference.encode(neigh)
        aux = perf.sum() * 0.0  # a preference-only graph has no outcome to fit
        if len(pq):
            aux = aux + targets.perf_weight * F.binary_cross_entropy_with_logits(
                perf[pq, pl], o_perf
            )
        if len(oq):
            aux = aux + F.mse_loss(cost[oq, ol], o_cost)
        seen_p, seen_c = features.filled(perf, cost)
        msgs = model.decision_messages(h_q, h_l, seen_p, seen_c, cand, dq, dl, dr)
        total, count = model.user_states(msgs, du, features.num_users)
        others = (count[du] - 1 + cfg.prior_decisions).clamp(min=1)
        h_u = (total[du] - msgs) / others  # leave the target's own decision out
        tie_nll = None
        if len(tu):  # ties are not in the users' states: the whole state describes them
            h_t = total[tu] / (count[tu] + cfg.prior_decisions).clamp(min=1)
            tie_nll = tie_nll_terms(inference, h_t, features.ties, seen_p, seen_c)
        loss = (
            decision_loss(
                inference,
                cfg.reward_weight,
                h_u,
                dq,
                dl,
                dr,
                cand,
                tied,
                seen_p,
                seen_c,
                tie_nll=tie_nll,
            )
            + cfg.aux_weight * aux
        )
        check_finite_loss(loss, epoch)
        optim.zero_grad()
        loss.backward()
        optim.step()

        validation = validate(
            inference, cfg.reward_weight, targets.val, targets.val_outcomes, targets.val_ties
        )
        bar.set_postfix(loss=f"{loss.item():.3f}", val_acc=f"{validation[0]:.3f}")
        if stopping.update(epoch, loss.item(), validation, started):
            break
    return stopping.finish(inference, name)


def _within_one_se(gap: np.ndarray) -> bool:
    """Whether the mean of the paired differences ``gap`` (NaN: not comparable) is at
    most one standard error above 0."""
    gap = gap[~np.isnan(gap)]
    if len(gap) < 2:
        return len(gap) == 1 and float(gap[0]) <= 0
    return float(gap.mean()) <= float(gap.std(ddof=1)) / np.sqrt(len(gap))


def select_residual_scale(inference: RouterInference, data: RoutingData, split: Split) -> float:
    """Set and return the residual scale (:attr:`RouterInference.residual_scale`) chosen
    on validation (:mod:`gnn.validation`: the utility of the routed picks' observed
    outcomes under the users' weights from the shared estimator on training data); 1
    when there are no validation decisions to judge by.

    One-standard-error rule: the smallest scale (closest to the per-(task, LLM)
    prior) whose mean validation utility is within one standard error of the best
    scale's, the error of their paired per-decision difference. Where per-query
    outcomes are hard to predict from the query (noisy embeddings, graded scores),
    the network's correction of the prior flips choices between close LLMs at
    random; the prior alone routes like the per-(user, task) lookup.
    """
    cost_norm = data.cost_norm(split.train)
    weights = estimate_user_weights(
        data,
        training_decisions(data, split.train),
        cost_norm,
        judgements=np.flatnonzero(split.train[data.pref_query]),
    )
    pairs = validation_pairs(data, split, weights)
    inference.residual_scale = 1.0
    if len(pairs.queries) == 0 or (pairs.users < 0).any():
        return 1.0
    got = {}
    for scale in RESIDUAL_SCALES:
        inference.residual_scale = scale
        got[scale] = pairs.utilities(
            data, cost_norm, inference.score(pairs.users, pairs.queries, data.num_llms)
        )
    means = {s: float(np.nanmean(u)) if not np.isnan(u).all() else -np.inf for s, u in got.items()}
    best = max(RESIDUAL_SCALES, key=lambda s: means[s])  # ties: the first (largest) scale
    chosen = next((s for s in sorted(RESIDUAL_SCALES) if _within_one_se(got[best] - got[s])), best)
    inference.residual_scale = chosen
    inference.invalidate()
    log.info(
        "residual scale %.2f (validation utility %.4f; best %.2f: %.4f)",
        chosen,
        means[chosen],
        best,
        means[best],
    )
    return chosen
