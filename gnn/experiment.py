"""Compare routers on one data set over several seeds, the protocol's way.

For each seed: one split by query (``split_queries(seed)``), every router fitted
on its training part (validation for early stopping / selection), then
evaluated once on the test part. Reported: mean and standard deviation over
seeds of each metric, per router.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from gnn.data import RoutingData, Split, split_queries
from gnn.evaluate import Metrics, metrics_by_user, metrics_for_choices, with_pairwise
from gnn.routers.base import Router

__all__ = ["Comparison", "compare_routers", "router_registry"]


def router_registry() -> dict[str, type[Router]]:
    """Every router by name: the GNNs and the baselines."""
    from gnn.preference import PREFERENCE_ROUTERS
    from gnn.routers.baselines import BASELINES
    from gnn.train import GNNRouter, NonPersonalizedGNNRouter

    return {
        GNNRouter.name: GNNRouter,
        NonPersonalizedGNNRouter.name: NonPersonalizedGNNRouter,
        **BASELINES,
        **PREFERENCE_ROUTERS,
    }


@dataclass
class Comparison:
    """Per router, the test metrics of every seed."""

    seeds: list[int]
    runs: dict[str, list[Metrics]] = field(default_factory=dict)
    # router -> user id -> that user's test metrics, one per seed
    per_user: dict[str, dict[str, list[Metrics]]] = field(default_factory=dict)

    def user_summary(self) -> dict[str, dict[str, dict[str, float]]]:
        """router -> user -> metric -> mean over seeds (for per-user plots and tables)."""
        return {
            name: {
                user: {
                    metric: float(np.mean([getattr(m, metric) for m in runs]))
                    for metric in ("performance", "cost", "reward", "accuracy", "n")
                }
                for user, runs in users.items()
            }
            for name, users in self.per_user.items()
        }

    def summary(self) -> dict[str, dict[str, tuple[float, float]]]:
        """router -> metric -> (mean, std over seeds)."""
        out = {}
        for name, runs in self.runs.items():
            table = {}
            for metric in (
                "performance",
                "cost",
                "reward",
                "accuracy",
                "performance_of_oracle",
                "reward_of_oracle",
                "pairwise_accuracy",
            ):
                values = np.array([getattr(m, metric) for m in runs], dtype=float)
                table[metric] = (float(np.mean(values)), float(np.std(values)))
            out[name] = table
        return out

    def table(self) -> str:
        """A plain-text table sorted by mean reward (or pairwise accuracy without choices).

        Columns without a value for any router (no choices, or no pairwise
        judgements in the test part) are left out.
        """
        summary = self.summary()
        has = {
            metric: any(not np.isnan(m[metric][0]) for m in summary.values())
            for metric in ("reward", "pairwise_accuracy")
        }
        key = "reward" if has["reward"] else "pairwise_accuracy"
        rows = sorted(summary.items(), key=lambda kv: -np.nan_to_num(kv[1][key][0], nan=-np.inf))
        columns = [
            ("reward", "reward", "{:>8.4f}±{:<6.4f}", has["reward"]),
            ("reward_of_oracle", "of oracle", "{:>8.1%}±{:<6.1%}", has["reward"]),
            ("performance", "performance", "{:>8.4f}±{:<6.4f}", has["reward"]),
            ("cost", "cost $", "{:>10.6f}±{:<4.0e}", has["reward"]),
            ("accuracy", "accuracy", "{:>8.4f}±{:<6.4f}", has["reward"]),
            ("pairwise_accuracy", "pairwise acc.", "{:>8.4f}±{:<6.4f}", has["pairwise_accuracy"]),
        ]
        shown = [c for c in columns if c[3]]
        head = f"{'router':<22}" + "".join(f" {title:>15}" for _, title, _, _ in shown)
        lines = [head, "-" * len(head)]
        for name, m in rows:
            cells = "".join(" " + fmt.format(*m[metric]) for metric, _, fmt, _ in shown)
            lines.append(f"{name:<22}{cells}")
        return "\n".join(lines)


def compare_routers(
    data: RoutingData,
    routers: Sequence[str],
    seeds: Sequence[int] = (0, 1, 2),
    *,
    configs: dict[str, dict] | None = None,
    on_result: Callable[[str, int, Metrics], None] | None = None,
    on_fitted: Callable[[str, int, Split, Router], None] | None = None,
) -> Comparison:
    """Fit and test every router on every seed's split (see the module docstring).

    ``on_result`` sees each test result; ``on_fitted`` each fitted router and its
    split (e.g. to run the few-shot settings against it)."""
    registry = router_registry()
    unknown = [r for r in routers if r not in registry]
    if unknown:
        from prcore.errors import ConfigError

        raise ConfigError(f"unknown routers {unknown}; valid routers: {', '.join(registry)}")
    comparison = Comparison(seeds=list(seeds))
    for seed in seeds:
        split = split_queries(data, seed=seed)
        for name in routers:
            router = registry[name](seed=seed, **(configs or {}).get(name, {}))
            router.fit(data, split)
            idx = np.flatnonzero(split.test[data.dec_query])
            picks = router.route(data, data.dec_user[idx], data.dec_query[idx])
            metrics = with_pairwise(metrics_for_choices(data, idx, picks), router, data, split.test)
            comparison.runs.setdefault(name, []).append(metrics)
            mine = comparison.per_user.setdefault(name, {})
            for u, user_metrics in metrics_by_user(data, idx, picks).items():
                mine.setdefault(data.user_ids[u], []).append(user_metrics)
            if on_result:
                on_result(name, seed, metrics)
            if on_fitted:
                on_fitted(name, seed, split, router)
    return comparison
