"""Few-shot settings: new users and new LLMs added to a trained router without retraining.

**New users.** Some users are held out of training entirely (their decisions
are removed; their nodes stay, empty). The router trained without them then
onboards each held-out user with k of their decisions on non-test queries
and the rewards logged with them (``GNNRouter.onboard``: the user's state is
the shrunk mean of its decision messages, no weights change) and routes their
test queries. The reference is the router trained *with* them (same split,
same seed) on the same test decisions.

**New LLMs.** One LLM is held out of training: its outcomes are hidden, and a
decision for it is re-made among the other LLMs for simulated users (whose
rule is known: best reward under their alpha) and removed for the others
(dropping them all would leave only the decisions where the LLM lost, and
teach the router that users avoid cheap good answers). It is then added with
its description and k outcomes on training queries (``GNNRouter.add_outcomes``)
and every test decision is routed over all LLMs again, against the router
trained with it.

Shots are nested (the k=3 shots contain the k=1 shot) and drawn with the seed.

**Baselines given the same shots.** :func:`new_user_baselines` adds, to a
new-user result, the predict-then-optimise baselines
(:class:`~gnn.routers.baselines.outcomes.OutcomeRouter`) onboarded with the
same k decisions: their outcome models unchanged (they never read decisions),
the held-out users' weights estimated by the shared estimator from those k
decisions alone (the population prior of the other users at k = 0). Their
reference is the same baseline fitted with every user.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from gnn.data import RoutingData, Split
from gnn.evaluate import Metrics, metrics_for_choices
from gnn.routers.baselines.outcomes import OutcomeRouter
from gnn.train import GNNRouter
from prcore.utility import best_llm

__all__ = [
    "DEFAULT_SHOTS",
    "SETTINGS",
    "FewShotResult",
    "check_settings",
    "held_out_users",
    "most_chosen_llm",
    "new_llm_evaluation",
    "new_user_baselines",
    "new_user_evaluation",
    "run_setting",
    "summarise",
    "summarise_baselines",
    "table",
    "unavailable_settings",
]

DEFAULT_SHOTS = (0, 1, 3, 5, 10)


@dataclass
class FewShotResult:
    """Metrics per number of shots, and of the router trained with the held-out entities."""

    setting: str  # "new_user" or "new_llm"
    held_out: list[str]  # user ids, or the one LLM id
    idx: np.ndarray  # the evaluated decisions (rows of the data's decision arrays)
    reference: Metrics
    reference_picks: np.ndarray
    by_shots: dict[int, Metrics] = field(default_factory=dict)
    picks: dict[int, np.ndarray] = field(default_factory=dict)
    dropped_decisions: int = 0  # decisions removed from training for the held-out entities
    # new_user: the onboarding decisions (rows of the decision arrays) per k
    shot_decisions: dict[int, np.ndarray] = field(default_factory=dict)
    # baseline name -> metrics per k with the same shots, and trained with every user
    baselines: dict[str, dict[int, Metrics]] = field(default_factory=dict)
    baseline_reference: dict[str, Metrics] = field(default_factory=dict)

    def reward_fraction(self, shots: int) -> float:
        """Reward with ``shots`` as a fraction of the router trained with them."""
        return self.by_shots[shots].reward / self.reference.reward

    def baseline_fraction(self, name: str, shots: int) -> float:
        """Baseline ``name``'s reward with ``shots`` as a fraction of it trained with them."""
        return self.baselines[name][shots].reward / self.baseline_reference[name].reward

    def to_plain(self) -> dict[str, object]:
        """Tensors and plain values only, for a weights-only file (see :meth:`from_plain`)."""
        import torch

        def tensor(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a))

        return {
            "setting": self.setting,
            "held_out": list(self.held_out),
            "idx": tensor(self.idx),
            "reference": self.reference.as_dict(),
            "reference_picks": tensor(self.reference_picks),
            "by_shots": {int(k): m.as_dict() for k, m in self.by_shots.items()},
            "picks": {int(k): tensor(v) for k, v in self.picks.items()},
            "dropped_decisions": int(self.dropped_decisions),
            "shot_decisions": {int(k): tensor(v) for k, v in self.shot_decisions.items()},
            "baselines": {
                name: {int(k): m.as_dict() for k, m in by_k.items()}
                for name, by_k in self.baselines.items()
            },
            "baseline_reference": {n: m.as_dict() for n, m in self.baseline_reference.items()},
        }

    @classmethod
    def from_plain(cls, plain: dict[str, Any]) -> FewShotResult:
        """The result that :meth:`to_plain` wrote."""
        return cls(
            setting=str(plain["setting"]),
            held_out=[str(h) for h in plain["held_out"]],
            idx=plain["idx"].numpy(),
            reference=Metrics(**plain["reference"]),
            reference_picks=plain["reference_picks"].numpy(),
            by_shots={int(k): Metrics(**m) for k, m in plain["by_shots"].items()},
            picks={int(k): v.numpy() for k, v in plain["picks"].items()},
            dropped_decisions=int(plain["dropped_decisions"]),
            shot_decisions={int(k): v.numpy() for k, v in plain.get("shot_decisions", {}).items()},
            baselines={
                str(name): {int(k): Metrics(**m) for k, m in by_k.items()}
                for name, by_k in plain.get("baselines", {}).items()
            },
            baseline_reference={
                str(n): Metrics(**m) for n, m in plain.get("baseline_reference", {}).items()
            },
        )

    def summary(self) -> dict[str, object]:
        """JSON-ready: per shots, reward, its fraction of the reference, and of the oracle
        (and the same for each baseline given the same shots, under ``baselines``)."""
        out: dict[str, object] = {
            "setting": self.setting,
            "held_out": self.held_out,
            "n": len(self.idx),
            "dropped_decisions": self.dropped_decisions,
            "reference_reward": self.reference.reward,
            "shots": {
                k: {
                    "reward": m.reward,
                    "of_trained": self.reward_fraction(k),
                    "of_oracle": m.reward_of_oracle,
                    "accuracy": m.accuracy,
                }
                for k, m in self.by_shots.items()
            },
        }
        if self.baselines:
            out["baselines"] = {
                name: {
                    "reference_reward": self.baseline_reference[name].reward,
                    "shots": {
                        k: {
                            "reward": m.reward,
                            "of_trained": self.baseline_fraction(name, k),
                            "of_oracle": m.reward_of_oracle,
                            "accuracy": m.accuracy,
                        }
                        for k, m in by_k.items()
                    },
                }
                for name, by_k in self.baselines.items()
            }
        return out


def held_out_users(data: RoutingData, *, seed: int, fraction: float = 1 / 3) -> np.ndarray:
    """A seeded draw of ``fraction`` of the users with decisions (at least one, never all)."""
    active = np.unique(data.dec_user)
    n = min(max(1, round(fraction * len(active))), len(active) - 1)
    if n < 1:
        from prcore.errors import ProuterError

        raise ProuterError("the new-user setting needs at least two users with decisions")
    return np.sort(np.random.default_rng(seed).choice(active, n, replace=False))


def most_chosen_llm(data: RoutingData, split: Split) -> int:
    """The LLM chosen most often on training queries (the new LLM that matters most)."""
    train = split.train[data.dec_query]
    return int(np.bincount(data.dec_llm[train], minlength=data.num_llms).argmax())


def _without_decisions(data: RoutingData, drop: np.ndarray, drop_pairs: np.ndarray) -> RoutingData:
    """``data`` without the decisions ``drop`` and the judgements ``drop_pairs`` (masks)."""
    keep_pairs = ~drop_pairs
    return dataclasses.replace(
        data.with_decisions(~drop),
        pref_user=data.pref_user[keep_pairs],
        pref_query=data.pref_query[keep_pairs],
        pref_win=data.pref_win[keep_pairs],
        pref_lose=data.pref_lose[keep_pairs],
    )


def _without_llm(data: RoutingData, llm: int) -> RoutingData:
    """``data`` as if ``llm`` did not exist (see the module docstring)."""

    performance, cost = data.performance.copy(), data.cost.copy()
    performance[:, llm] = cost[:, llm] = np.nan
    view = dataclasses.replace(data, performance=performance, cost=cost)
    chose = np.flatnonzero(data.dec_llm == llm)
    simulated = ~np.isnan(data.user_alpha[data.dec_user[chose]])
    redo = chose[simulated]
    reward = view.reward(data.dec_user[redo], data.dec_query[redo])
    dec_llm, dec_reward = data.dec_llm.copy(), data.dec_reward.copy()
    dec_llm[redo] = best_llm(reward, cost[data.dec_query[redo]])
    dec_reward[redo] = reward[np.arange(len(redo)), dec_llm[redo]]
    pairs_with = (data.pref_win == llm) | (data.pref_lose == llm)
    drop = np.zeros(len(dec_llm), dtype=bool)
    drop[chose[~simulated]] = True
    remade = dataclasses.replace(view, dec_llm=dec_llm, dec_reward=dec_reward)
    return _without_decisions(remade, drop, pairs_with)


def _retrain(reference: GNNRouter, data: RoutingData, split: Split) -> GNNRouter:
    """A router like ``reference`` (class, seed, config) fitted on ``data``."""
    config = asdict(reference.train_config)
    return type(reference)(seed=reference.seed, progress=reference.progress, **config).fit(
        data, split
    )


def new_user_evaluation(
    data: RoutingData,
    split: Split,
    reference: GNNRouter,
    users: np.ndarray,
    *,
    shots: Sequence[int] = DEFAULT_SHOTS,
    seed: int = 0,
) -> FewShotResult:
    """Onboard held-out ``users`` with k decisions each; see the module docstring.

    ``reference`` is a GNN router fitted on ``data``/``split`` with every user;
    the router without them is fitted with its class, seed and config.
    """
    held = np.isin(data.dec_user, users)
    router = _retrain(
        reference, _without_decisions(data, held, np.isin(data.pref_user, users)), split
    )
    idx = np.flatnonzero(held & split.test[data.dec_query])
    ref_picks = reference.route(data, data.dec_user[idx], data.dec_query[idx])
    result = FewShotResult(
        "new_user",
        [data.user_ids[u] for u in users],
        idx,
        metrics_for_choices(data, idx, ref_picks),
        ref_picks,
        dropped_decisions=int(held.sum()),
    )
    rng = np.random.default_rng(seed)
    # Each user's candidate shots: their decisions on queries the router may see, shuffled once.
    pools = {
        u: rng.permutation(np.flatnonzero((data.dec_user == u) & ~split.test[data.dec_query]))
        for u in users
    }
    for k in sorted(shots):
        chosen = np.concatenate([pool[:k] for pool in pools.values()]).astype(np.int64)
        with router.onboarded(
            data.dec_user[chosen],
            data.dec_query[chosen],
            data.dec_llm[chosen],
            data.dec_reward[chosen],
        ):
            picks = router.route(data, data.dec_user[idx], data.dec_query[idx])
        result.picks[k] = picks
        result.by_shots[k] = metrics_for_choices(data, idx, picks)
        result.shot_decisions[k] = chosen
    return result


def new_user_baselines(
    result: FewShotResult, data: RoutingData, split: Split, routers: dict[str, OutcomeRouter]
) -> FewShotResult:
    """Add to a new-user ``result`` each fitted outcome router (fitted on ``data``/``split``
    with every user) onboarded with the same shots; see the module docstring."""
    users = np.array([data.user_ids.index(u) for u in result.held_out], dtype=np.int64)
    view = _without_decisions(data, np.isin(data.dec_user, users), np.isin(data.pref_user, users))
    queries, idx_users = data.dec_query[result.idx], data.dec_user[result.idx]
    for name, router in routers.items():
        reference = router.route(data, idx_users, queries)
        result.baseline_reference[name] = metrics_for_choices(data, result.idx, reference)
        without = router.reestimated(view, split)
        by_k = result.baselines.setdefault(name, {})
        for k, chosen in sorted(result.shot_decisions.items()):
            with without.onboarded(data, split, chosen):
                picks = without.route(data, idx_users, queries)
            by_k[k] = metrics_for_choices(data, result.idx, picks)
    return result


def new_llm_evaluation(
    data: RoutingData,
    split: Split,
    reference: GNNRouter,
    llm: int,
    *,
    shots: Sequence[int] = DEFAULT_SHOTS,
    seed: int = 0,
) -> FewShotResult:
    """Add held-out ``llm`` with k outcomes on training queries; see the module docstring."""
    view = _without_llm(data, llm)
    dropped = len(data.dec_user) - len(view.dec_user)
    router = _retrain(reference, view, split)
    idx = np.flatnonzero(split.test[data.dec_query])
    ref_picks = reference.route(data, data.dec_user[idx], data.dec_query[idx])
    result = FewShotResult(
        "new_llm",
        [data.llm_ids[llm]],
        idx,
        metrics_for_choices(data, idx, ref_picks),
        ref_picks,
        dropped_decisions=dropped,
    )
    pool = np.random.default_rng(seed).permutation(
        np.flatnonzero(split.train & ~np.isnan(data.performance[:, llm]))
    )
    added = 0
    for k in sorted(shots):
        router.add_outcomes(data, pool[added:k], llm)  # nested: add only the new shots
        added = max(added, k)
        picks = router.route(data, data.dec_user[idx], data.dec_query[idx])
        result.picks[k] = picks
        result.by_shots[k] = metrics_for_choices(data, idx, picks)
    return result


SETTINGS = ("new_user", "new_llm")


def unavailable_settings(data: RoutingData, names: Sequence[str]) -> dict[str, str]:
    """The settings in ``names`` that ``data`` cannot evaluate, and why: both score routed
    decisions (CHOSE) on test queries, so a preference-only graph (votes, no decisions)
    has neither; its new-user curve is the pairwise one (``prouter evaluate``)."""
    why = {}
    if len(np.unique(data.dec_user)) < 2:
        why["new_user"] = (
            "needs at least two users with decisions (CHOSE); votes-only graphs: see the "
            "pairwise new-user curve of `prouter evaluate`"
        )
    if len(data.dec_user) == 0 or np.isnan(data.performance).all():
        why["new_llm"] = "needs decisions (CHOSE) and outcomes (ANSWERED_BY)"
    return {name: why[name] for name in names if name in why}


def check_settings(names: Sequence[str]) -> None:
    """Raise a ConfigError naming the valid few-shot settings if one is unknown."""
    unknown = sorted(set(names) - set(SETTINGS))
    if unknown:
        from prcore.errors import ConfigError

        raise ConfigError(f"unknown few-shot settings {unknown}; valid: {', '.join(SETTINGS)}")


def run_setting(
    name: str,
    data: RoutingData,
    split: Split,
    reference: GNNRouter,
    *,
    shots: Sequence[int] = DEFAULT_SHOTS,
    seed: int = 0,
    held_out_fraction: float = 1 / 3,
    llm_id: str | None = None,
) -> FewShotResult:
    """Run few-shot setting ``name`` against ``reference``: ``new_user`` holds out a
    seeded ``held_out_fraction`` of the users; ``new_llm`` holds out ``llm_id``
    (default: the most chosen LLM)."""
    check_settings([name])
    if name == "new_user":
        users = held_out_users(data, seed=seed, fraction=held_out_fraction)
        return new_user_evaluation(data, split, reference, users, shots=shots, seed=seed)
    if llm_id is not None and llm_id not in data.llm_ids:
        from prcore.errors import ConfigError

        raise ConfigError(f"{llm_id!r} is not an LLM of the graph ({', '.join(data.llm_ids)})")
    llm = data.llm_ids.index(llm_id) if llm_id else most_chosen_llm(data, split)
    return new_llm_evaluation(data, split, reference, llm, shots=shots, seed=seed)


def summarise(results: Sequence[FewShotResult]) -> dict[int, dict[str, tuple[float, float]]]:
    """Per shots: (mean, std) over runs (seeds) of reward, fraction of trained, of oracle."""
    out: dict[int, dict[str, tuple[float, float]]] = {}
    for k in sorted(results[0].by_shots):
        values = {
            "reward": [r.by_shots[k].reward for r in results],
            "of_trained": [r.reward_fraction(k) for r in results],
            "of_oracle": [r.by_shots[k].reward_of_oracle for r in results],
            "accuracy": [r.by_shots[k].accuracy for r in results],
        }
        out[k] = {m: (float(np.mean(v)), float(np.std(v))) for m, v in values.items()}
    return out


def summarise_baselines(
    results: Sequence[FewShotResult],
) -> dict[str, dict[int, dict[str, tuple[float, float]]]]:
    """Baseline -> shots -> (mean, std) over runs of reward, of its trained self, of oracle."""
    out: dict[str, dict[int, dict[str, tuple[float, float]]]] = {}
    for name in results[0].baselines if results else []:
        for k in sorted(results[0].baselines[name]):
            values = {
                "reward": [r.baselines[name][k].reward for r in results],
                "of_trained": [r.baseline_fraction(name, k) for r in results],
                "of_oracle": [r.baselines[name][k].reward_of_oracle for r in results],
            }
            out.setdefault(name, {})[k] = {
                m: (float(np.mean(v)), float(np.std(v))) for m, v in values.items()
            }
    return out


def table(results: Sequence[FewShotResult]) -> str:
    """A plain-text table of :func:`summarise` with the trained reference's reward."""
    ref = [r.reference.reward for r in results]
    head = f"{'shots k':>7} {'reward':>15} {'of trained':>15} {'of oracle':>15} {'accuracy':>15}"
    lines = [
        f"{results[0].setting}: held out {', '.join(results[0].held_out)}"
        + (" (seed 0; redrawn per seed)" if results[0].setting == "new_user" else "")
        + f"; trained with them: reward {np.mean(ref):.4f}±{np.std(ref):.4f}",
        head,
        "-" * len(head),
    ]
    for k, m in summarise(results).items():
        lines.append(
            f"{k:>7} {m['reward'][0]:>8.4f}±{m['reward'][1]:<6.4f} "
            f"{m['of_trained'][0]:>8.1%}±{m['of_trained'][1]:<6.1%}"
            f"{m['of_oracle'][0]:>8.1%}±{m['of_oracle'][1]:<6.1%}"
            f"{m['accuracy'][0]:>8.4f}±{m['accuracy'][1]:<6.4f}"
        )
    baselines = summarise_baselines(results)
    if baselines:
        ks = sorted(next(iter(baselines.values())))
        head = f"{'given the same k':<24}" + "".join(f" {'k=' + str(k):>17}" for k in ks)
        lines += ["", "reward (of its trained self) of the baselines", head, "-" * len(head)]
        for name, by_k in baselines.items():
            cells = "".join(
                f" {by_k[k]['reward'][0]:>8.4f} ({by_k[k]['of_trained'][0]:>6.1%})" for k in ks
            )
            lines.append(f"{name:<24}{cells}")
    return "\n".join(lines)
