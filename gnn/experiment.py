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

from gnn.data import RoutingData, split_queries
from gnn.evaluate import Metrics, evaluate
from gnn.routers.base import Router

__all__ = ["Comparison", "compare_routers", "router_registry"]


def router_registry() -> dict[str, type[Router]]:
    """Every router by name: the GNNs and the baselines."""
    from gnn.routers.baselines import BASELINES
    from gnn.train import GNNRouter, NonPersonalizedGNNRouter

    return {
        GNNRouter.name: GNNRouter,
        NonPersonalizedGNNRouter.name: NonPersonalizedGNNRouter,
        **BASELINES,
    }


@dataclass
class Comparison:
    """Per router, the test metrics of every seed."""

    seeds: list[int]
    runs: dict[str, list[Metrics]] = field(default_factory=dict)

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
            ):
                values = np.array([getattr(m, metric) for m in runs], dtype=float)
                table[metric] = (float(np.mean(values)), float(np.std(values)))
            out[name] = table
        return out

    def table(self) -> str:
        """A plain-text table sorted by mean reward."""
        rows = sorted(self.summary().items(), key=lambda kv: -np.nan_to_num(kv[1]["reward"][0]))
        head = (
            f"{'router':<22} {'reward':>15} {'of oracle':>15} {'performance':>15} "
            f"{'cost $':>12} {'accuracy':>15}"
        )
        lines = [head, "-" * len(head)]
        for name, m in rows:
            lines.append(
                f"{name:<22} {m['reward'][0]:>8.4f}±{m['reward'][1]:<6.4f} "
                f"{m['reward_of_oracle'][0]:>8.1%}±{m['reward_of_oracle'][1]:<6.1%}"
                f"{m['performance'][0]:>8.4f}±{m['performance'][1]:<6.4f} "
                f"{m['cost'][0]:>12.6f} {m['accuracy'][0]:>8.4f}±{m['accuracy'][1]:<6.4f}"
            )
        return "\n".join(lines)


def compare_routers(
    data: RoutingData,
    routers: Sequence[str],
    seeds: Sequence[int] = (0, 1, 2),
    *,
    configs: dict[str, dict] | None = None,
    on_result: Callable[[str, int, Metrics], None] | None = None,
) -> Comparison:
    """Fit and test every router on every seed's split (see the module docstring)."""
    registry = router_registry()
    unknown = [r for r in routers if r not in registry]
    if unknown:
        from prouter.errors import ConfigError

        raise ConfigError(f"unknown routers {unknown}; valid routers: {', '.join(registry)}")
    comparison = Comparison(seeds=list(seeds))
    for seed in seeds:
        split = split_queries(data, seed=seed)
        for name in routers:
            router = registry[name](seed=seed, **(configs or {}).get(name, {}))
            router.fit(data, split)
            metrics = evaluate(router, data, split, "test")
            comparison.runs.setdefault(name, []).append(metrics)
            if on_result:
                on_result(name, seed, metrics)
    return comparison
