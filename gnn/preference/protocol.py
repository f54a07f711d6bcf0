"""The evaluation protocol of preference data: by query, by user, and the new-user curve.

Per seed: one split by query (``split_queries``) and a held-out third of the
users (``split_users``), redrawn per seed. Every router is fitted once, on the
training queries' votes (and choices) of the other users, selected on
validation queries, and scored on the test queries' votes:

* **by query**: the known users' votes on test queries;
* **by user**: the held-out users' votes on test queries, first with nothing
  known about them (k = 0), then after onboarding k of their votes on
  non-test queries (the same nested draw for every router), without retraining.
* **paired against a reference** (global Bradley-Terry, ``bt``): every router's by-query
  accuracy and log-loss minus the reference's, vote by vote on the same votes, pooled
  over the seeds, with the standard error of that mean: whether a router wins or
  loses by more than the votes' noise.

Ties are never scored; they are counted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace

import numpy as np

from gnn.data import RoutingData, split_queries
from gnn.preference.base import PreferenceRouter, Votes, votes_of
from gnn.preference.metrics import (
    PairMetrics,
    pair_metrics,
    pair_probability,
    per_vote,
    score_votes,
    vote_outcomes,
)
from gnn.routers.base import Router
from prcore.values import finite_or_none

__all__ = [
    "DEFAULT_ROUTERS",
    "PreferenceComparison",
    "compare_on_preferences",
    "onboarded",
    "split_users",
    "without_users",
]

DEFAULT_ROUTERS = ("gnn", "gnn_nonpersonal", "bt", "bt_task", "bt_user", "mf_votes")
METRICS = ("accuracy", "log_loss", "brier")
REFERENCE = "bt"  # the paired comparison's reference: global Bradley-Terry


def split_users(data: RoutingData, *, seed: int, fraction: float = 1 / 3) -> np.ndarray:
    """(U,) mask of the held-out users: ``fraction`` of the users with votes (at least one,
    and never all), drawn with ``seed``."""
    voters = np.unique(np.concatenate([data.pref_user, data.dec_user]))
    held = np.zeros(len(data.user_ids), dtype=bool)
    if len(voters) < 2:
        return held
    n = min(max(1, round(fraction * len(voters))), len(voters) - 1)
    held[np.random.default_rng(seed + 7919).choice(voters, n, replace=False)] = True
    return held


def without_users(data: RoutingData, held: np.ndarray) -> RoutingData:
    """A copy without the votes, ties and choices of the ``held`` users."""
    keep = ~held[data.pref_user]
    tie_keep = ~held[data.tie_user] if len(data.tie_user) else np.ones(0, dtype=bool)
    return replace(
        data.with_decisions(~held[data.dec_user]),
        pref_user=data.pref_user[keep],
        pref_query=data.pref_query[keep],
        pref_win=data.pref_win[keep],
        pref_lose=data.pref_lose[keep],
        tie_query=data.tie_query[tie_keep] if len(data.tie_user) else data.tie_query,
        tie_user=data.tie_user[tie_keep],
        tie_a=data.tie_a[tie_keep] if len(data.tie_a) == len(data.tie_user) else data.tie_a[:0],
        tie_b=data.tie_b[tie_keep] if len(data.tie_b) == len(data.tie_user) else data.tie_b[:0],
    )


@contextmanager
def onboarded(router: Router, data: RoutingData, votes: Votes) -> Iterator[None]:
    """``router`` with these votes added to its users' states (no retraining)."""
    from gnn.train import GNNRouter

    if len(votes) == 0:
        context = nullcontext()
    elif isinstance(router, PreferenceRouter):
        context = router.onboarded_pairs(data, votes)
    elif isinstance(router, GNNRouter):
        candidates = np.zeros((len(votes), data.num_llms), dtype=bool)
        candidates[np.arange(len(votes)), votes.win] = True
        candidates[np.arange(len(votes)), votes.lose] = True
        context = router.onboarded(votes.user, votes.query, votes.win, candidates=candidates)
    else:
        context = nullcontext()
    with context:
        yield


def _ties(data: RoutingData, queries: np.ndarray, users: np.ndarray | None) -> int:
    mask = queries[data.tie_query]
    if users is not None and len(data.tie_user):
        mask &= users[data.tie_user]
    return int(mask.sum())


def _first_vote_index(votes: Votes, k: int, seed: int) -> np.ndarray:
    """Indices of each user's first ``k`` votes in a seeded order (nested in k)."""
    order = np.random.default_rng(seed + 104729).permutation(len(votes))
    users = votes.user[order]
    rank = np.zeros(len(votes), dtype=np.int64)
    for u in np.unique(users):
        mine = np.flatnonzero(users == u)
        rank[mine] = np.arange(len(mine))
    return order[rank < k]


@dataclass
class PreferenceComparison:
    """Per router: the by-query metrics per seed, and the by-user metrics per k and seed."""

    seeds: list[int]
    shots: list[int]
    by_query: dict[str, list[PairMetrics]] = field(default_factory=dict)
    by_user: dict[str, dict[int, list[PairMetrics]]] = field(default_factory=dict)
    #: Per router and seed, per by-query vote: (1 if ranked right, log-loss) (see per_vote).
    votes: dict[str, list[tuple[np.ndarray, np.ndarray]]] = field(default_factory=dict)

    def paired(self, reference: str = REFERENCE) -> dict[str, dict[str, tuple[float, float]]]:
        """Per router but ``reference``: its by-query accuracy and log-loss minus the
        reference's on the same votes, pooled over the seeds, as (mean, standard error);
        NaN where either gives no probabilities. Empty without the reference."""
        if reference not in self.votes:
            return {}
        ref = self.votes[reference]
        out = {}
        for name, runs in self.votes.items():
            if name == reference or len(runs) != len(ref):
                continue
            gaps = [[r[i] - b[i] for r, b in zip(runs, ref, strict=True)] for i in (0, 1)]
            out[name] = {
                "accuracy": _mean_se(np.concatenate(gaps[0])),
                "log_loss": _mean_se(np.concatenate(gaps[1])),
            }
        return out

    @staticmethod
    def _mean_std(runs: list[PairMetrics], metric: str) -> tuple[float, float]:
        values = np.array([getattr(m, metric) for m in runs], dtype=float)
        if np.isnan(values).all():
            return float("nan"), float("nan")
        return float(np.nanmean(values)), float(np.nanstd(values))

    def table(self) -> str:
        """The by-query table (sorted by accuracy) and the new-user accuracy curve."""
        head = (
            f"{'router':<18}" + "".join(f" {m:>15}" for m in METRICS) + f" {'votes':>7} {'ties':>6}"
        )
        lines = ["pairwise preferences, held-out queries (known users)", head, "-" * len(head)]
        rows = sorted(
            self.by_query.items(),
            key=lambda kv: -np.nan_to_num(self._mean_std(kv[1], "accuracy")[0], nan=-1.0),
        )
        for name, runs in rows:
            cells = "".join(_cell(*self._mean_std(runs, m)) for m in METRICS)
            lines.append(f"{name:<18}{cells} {runs[0].n:>7} {runs[0].ties:>6}")
        paired = self.paired()
        if paired:
            lines += [
                "",
                f"paired against {REFERENCE} (same votes, pooled over seeds): difference "
                "± standard error; accuracy > 0 and log-loss < 0 are better",
            ]
            head = f"{'router':<18} {'accuracy':>17} {'log_loss':>17}"
            lines += [head, "-" * len(head)]
            for name, diff in paired.items():
                cells = "".join(_signed(*diff[m]) for m in ("accuracy", "log_loss"))
                lines.append(f"{name:<18}{cells}".rstrip())
        if self.by_user:
            lines += ["", "new users (held out), accuracy / log-loss after k onboarded votes"]
            head = f"{'router':<18}" + "".join(f" {'k=' + str(k):>15}" for k in self.shots)
            lines += [head, "-" * len(head)]
            for name, curve in self.by_user.items():
                for metric in ("accuracy", "log_loss"):
                    cells = "".join(_cell(*self._mean_std(curve[k], metric)) for k in self.shots)
                    lines.append(f"{(name + ' ' + metric[:3]):<18}{cells}")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, object]:
        return {
            "seeds": self.seeds,
            "shots": self.shots,
            "by_query": {n: [m.as_dict() for m in runs] for n, runs in self.by_query.items()},
            f"paired_against_{REFERENCE}": {
                n: {m: finite_or_none(list(v)) for m, v in diff.items()}
                for n, diff in self.paired().items()
            },
            "new_user": {
                n: {str(k): [m.as_dict() for m in runs] for k, runs in curve.items()}
                for n, curve in self.by_user.items()
            },
        }


def _mean_se(values: np.ndarray) -> tuple[float, float]:
    values = values[~np.isnan(values)]
    if len(values) < 2:
        return float("nan"), float("nan")
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(len(values)))


def _signed(mean: float, se: float) -> str:
    if np.isnan(mean):
        return f" {'-':>17}"
    return f" {mean:>+9.4f}±{se:<7.4f}"


def _cell(mean: float, std: float) -> str:
    if np.isnan(mean):
        return f" {'-':>15}"
    return f" {mean:>8.4f}±{std:<6.4f}"


def compare_on_preferences(
    data: RoutingData,
    routers: Sequence[str],
    seeds: Sequence[int] = (0, 1, 2),
    *,
    shots: Sequence[int] = (0, 1, 3, 5, 10),
    held_out: float = 1 / 3,
    configs: dict[str, dict] | None = None,
    on_result: Callable[[str, int, PairMetrics], None] | None = None,
    calibrate: Sequence[str] = (),
) -> PreferenceComparison:
    """Fit and score every router on every seed (see the module docstring); each router
    in ``calibrate`` is also scored as ``NAME+T``, its probabilities temperature-scaled
    (gnn.preference.calibration; the temperature chosen on validation-query votes)."""
    from gnn.experiment import router_registry
    from prcore.errors import ConfigError, ProuterError

    if len(data.pref_user) == 0 and len(data.dec_user) == 0:
        raise ProuterError("no pairwise votes (PREFERRED) or choices (CHOSE) to evaluate on")
    registry = router_registry()
    unknown = [r for r in routers if r not in registry]
    if unknown:
        raise ConfigError(f"unknown routers {unknown}; valid routers: {', '.join(registry)}")
    result = PreferenceComparison(seeds=list(seeds), shots=list(shots))
    for seed in seeds:
        split = split_queries(data, seed=seed)
        held = split_users(data, seed=seed, fraction=held_out)
        train_data = without_users(data, held)
        known_test = votes_of(train_data, split.test, choices=False)
        all_test = votes_of(data, split.test, choices=False)
        new_test = all_test.take(np.flatnonzero(held[all_test.user]))
        pool = votes_of(data, ~split.test, choices=False)
        pool = pool.take(np.flatnonzero(held[pool.user]))
        for name in routers:
            router = registry[name](seed=seed, **(configs or {}).get(name, {}))
            router.fit(train_data, split)
            ties = _ties(data, split.test, ~held)
            if router.scores_pairs and len(known_test):
                outcomes = vote_outcomes(router, data, known_test)
                metrics = pair_metrics(*outcomes, ties)
                result.votes.setdefault(name, []).append(per_vote(*outcomes))
            else:
                metrics = score_votes(router, data, known_test, ties)
            result.by_query.setdefault(name, []).append(metrics)
            if name in calibrate:
                known_val = votes_of(train_data, split.val, choices=False)
                result.by_query.setdefault(f"{name}+T", []).append(
                    _calibrated(router, data, known_val, known_test, metrics.ties)
                )
            if on_result:
                on_result(name, seed, metrics)
            if not held.any():
                continue
            curve = result.by_user.setdefault(name, {})
            calibrated = result.by_user.setdefault(f"{name}+T", {}) if name in calibrate else None
            for k in shots:
                first = _first_vote_index(pool, k, seed)
                with onboarded(router, data, pool.take(first)):
                    scored = score_votes(router, data, new_test, _ties(data, split.test, held))
                    if calibrated is not None:
                        unused = np.setdiff1d(np.flatnonzero(split.val[pool.query]), first)
                        calibrated.setdefault(k, []).append(
                            _calibrated(router, data, pool.take(unused), new_test, scored.ties)
                        )
                curve.setdefault(k, []).append(scored)
    return result


def _calibrated(
    router: Router, data: RoutingData, val: Votes, test: Votes, ties: int
) -> PairMetrics:
    """``router``'s metrics on ``test`` with its probabilities temperature-scaled, the
    temperature fitted on ``val`` (gnn.preference.calibration)."""
    from gnn.preference.calibration import apply_temperature, fit_temperature

    val_prob = pair_probability(router, data, val, val.win, val.lose)
    prob = pair_probability(router, data, test, test.win, test.lose)
    if val_prob is None or prob is None or len(test) == 0:
        return score_votes(router, data, test, ties)
    calibrated = apply_temperature(prob, fit_temperature(val_prob))
    return pair_metrics(calibrated - 0.5, calibrated, ties)
