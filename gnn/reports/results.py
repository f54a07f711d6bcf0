"""A Markdown report with PNG plots from the JSON of ``prouter evaluate --json``.

Plots (matplotlib, Agg canvas, no display needed):

* ``cost_quality.png``: the cost-quality plane (RouterBench style; x = mean
  cost in USD, y = mean performance), one panel for all users and one per
  user, each router and baseline a point, and the frontier: the upper-left
  convex hull of the non-dominated points (the oracle is one of them);
* ``user_rewards.png``: mean test reward per user, one bar per router;
* ``new_user.png`` / ``new_llm.png``: reward as a fraction of the fully
  trained router over the k onboarding shots, mean ± std over seeds.

Only what ``results.json`` holds is plotted; a missing section is skipped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prcore.errors import ProuterError

__all__ = ["FEWSHOT_SETTINGS", "Report", "frontier", "load_results", "write_report"]

#: Few-shot sections of results.json: (title, accepted keys).
FEWSHOT_SETTINGS = {
    "new_user": ("New users", ("new-user", "new_user")),
    "new_llm": ("A new LLM", ("new-llm", "new_llm")),
}
MAX_USERS_PLOTTED = 12
ORACLE = "oracle"


@dataclass
class Report:
    """What :func:`write_report` wrote."""

    markdown: Path
    images: list[Path] = field(default_factory=list)


def load_results(path: Path) -> dict[str, Any]:
    """Read and check a ``prouter evaluate --json`` file (ProuterError when unusable)."""
    try:
        results = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProuterError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProuterError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(results, dict):
        raise ProuterError(f"{path} is not a JSON object (expected `prouter evaluate --json`)")
    has_fewshot = any(_fewshot(results, s) for s in FEWSHOT_SETTINGS)
    if "routers" not in results and not has_fewshot:
        raise ProuterError(
            f"{path} has neither 'routers' nor a few-shot section "
            f"(keys: {sorted(results)}); write it with `prouter evaluate --json`"
        )
    for name, metrics in results.get("routers", {}).items():
        missing = {"performance", "cost", "reward"} - set(metrics)
        if missing:
            raise ProuterError(f"{path}: router {name!r} lacks {sorted(missing)}")
    return results


def _fewshot(results: dict[str, Any], setting: str) -> dict[str, Any] | None:
    for key in FEWSHOT_SETTINGS[setting][1]:
        if isinstance(results.get(key), dict) and results[key].get("mean_std"):
            return results[key]
    return None


def frontier(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the cost-quality frontier, by increasing cost.

    The non-dominated points (no other point is at most as costly and at least
    as good, one of them strictly), reduced to their upper convex hull: the
    best performance reachable at each cost by mixing two routers.
    """
    finite = [i for i, (c, p) in enumerate(points) if math.isfinite(c) and math.isfinite(p)]
    order = sorted(finite, key=lambda i: (points[i][0], -points[i][1]))
    kept: list[int] = []
    for i in order:  # non-dominated: performance strictly rises with cost
        if not kept or points[i][1] > points[kept[-1]][1]:
            kept.append(i)
    hull: list[int] = []
    for i in kept:  # upper hull (monotone chain, clockwise turns only)
        while len(hull) >= 2:
            (x1, y1), (x2, y2), (x3, y3) = points[hull[-2]], points[hull[-1]], points[i]
            if (x2 - x1) * (y3 - y1) - (y2 - y1) * (x3 - x1) >= 0:
                hull.pop()
            else:
                break
        hull.append(i)
    return hull


# -- plots ---------------------------------------------------------------------------
def _figure(width: float, height: float):  # type: ignore[no-untyped-def]
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _colours(names: Sequence[str]) -> dict[str, Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab20"]
    return {name: cmap(i % 20) for i, name in enumerate(names)}


def _plane(ax, title: str, points: dict[str, tuple[float, float]], colours) -> list[str]:  # type: ignore[no-untyped-def]
    names = list(points)
    xy = [points[n] for n in names]
    for name, (c, p) in points.items():
        marker = "*" if name == ORACLE else "o"
        colour = "black" if name == ORACLE else colours[name]
        ax.scatter(c, p, s=140 if name == ORACLE else 50, marker=marker, color=colour)
        ax.annotate(name, (c, p), textcoords="offset points", xytext=(4, 3), fontsize=7)
    hull = frontier(xy)
    if len(hull) >= 2:
        ax.plot([xy[i][0] for i in hull], [xy[i][1] for i in hull], "--", color="grey", lw=1)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("mean cost (USD)", fontsize=8)
    ax.set_ylabel("mean performance", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    return [names[i] for i in hull]


def _users(results: dict[str, Any]) -> list[str]:
    per_user = results.get("per_user") or {}
    return sorted({u for users in per_user.values() for u in users})[:MAX_USERS_PLOTTED]


def plot_cost_quality(results: dict[str, Any], path: Path) -> dict[str, list[str]]:
    """The cost-quality planes; returns the frontier routers per panel."""
    routers = results["routers"]
    colours = _colours(list(routers))
    users = _users(results)
    panels = 1 + len(users)
    cols = min(3, panels)
    rows = math.ceil(panels / cols)
    fig = _figure(4.2 * cols, 3.4 * rows)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    fronts = {
        "all users": _plane(
            axes[0],
            "all users",
            {n: (m["cost"][0], m["performance"][0]) for n, m in routers.items()},
            colours,
        )
    }
    per_user = results.get("per_user") or {}
    for ax, user in zip(axes[1:], users, strict=False):
        points = {
            n: (per_user[n][user]["cost"], per_user[n][user]["performance"])
            for n in routers
            if user in per_user.get(n, {})
        }
        fronts[user] = _plane(ax, user, points, colours)
    for ax in axes[panels:]:
        ax.set_visible(False)
    fig.savefig(path, format="png")
    return fronts


def plot_user_rewards(results: dict[str, Any], path: Path) -> None:
    """Grouped bars: each user's mean test reward under each router."""
    import numpy as np

    per_user = results["per_user"]
    routers = [n for n in results.get("routers", per_user) if n in per_user]
    users = _users(results)
    colours = _colours(list(results.get("routers", per_user)))
    fig = _figure(max(6.0, 0.18 * len(routers) * len(users) + 2), 4.2)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(routers))
    x = np.arange(len(users))
    for j, name in enumerate(routers):
        values = [per_user[name].get(u, {}).get("reward", np.nan) for u in users]
        ax.bar(x + (j - (len(routers) - 1) / 2) * width, values, width, label=name,
               color=colours[name])  # fmt: skip
    ax.set_xticks(x, users, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("mean test reward")
    ax.axhline(0, color="black", lw=0.6)
    ax.legend(fontsize=7, ncols=min(4, len(routers)), loc="best")
    ax.grid(axis="y", alpha=0.3)
    fig.savefig(path, format="png")


def plot_fewshot(section: dict[str, Any], title: str, path: Path) -> None:
    """Reward as a fraction of the trained router (and of the oracle) over k, ± std."""
    shots = sorted(section["mean_std"], key=int)
    ks = [int(k) for k in shots]
    fig = _figure(5.5, 3.6)
    ax = fig.add_subplot()
    for metric, label in (("of_trained", "of trained"), ("of_oracle", "of oracle")):
        mean = [section["mean_std"][k][metric][0] for k in shots]
        std = [section["mean_std"][k][metric][1] for k in shots]
        ax.errorbar(ks, mean, yerr=std, marker="o", capsize=3, label=f"reward {label}")
    for name, by_k in section.get("baselines", {}).items():  # same shots, of their own oracle
        mean = [by_k[k]["of_oracle"][0] for k in shots if k in by_k]
        ax.plot(ks[: len(mean)], mean, ls=":", marker=".", label=f"{name} of oracle")
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_xticks(ks)
    ax.set_xlabel("k (onboarding shots)")
    ax.set_ylabel("fraction")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.savefig(path, format="png")


# -- markdown ------------------------------------------------------------------------
def _pm(pair: Sequence[float], fmt: str) -> str:
    mean, std = pair
    return f"{mean:{fmt}} ± {std:{fmt}}"


def _router_table(routers: dict[str, Any]) -> list[str]:
    lines = [
        "| router | reward | reward of oracle | performance | cost (USD) | accuracy |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, m in sorted(routers.items(), key=lambda kv: -kv[1]["reward"][0]):
        lines.append(
            f"| {name} | {_pm(m['reward'], '.4f')} | "
            + (_pm(m["reward_of_oracle"], ".1%") if "reward_of_oracle" in m else "–")
            + f" | {_pm(m['performance'], '.4f')} | {_pm(m['cost'], '.6f')} | "
            + (_pm(m["accuracy"], ".4f") if "accuracy" in m else "–")
            + " |"
        )
    return lines


def _user_table(results: dict[str, Any]) -> list[str]:
    per_user = results["per_user"]
    routers = [n for n in results.get("routers", per_user) if n in per_user]
    users = _users(results)
    lines = ["| user | " + " | ".join(routers) + " |", "|---|" + "---:|" * len(routers)]
    for u in users:
        cells = [per_user[n].get(u, {}).get("reward") for n in routers]
        lines.append(
            f"| {u} | " + " | ".join("–" if c is None else f"{c:.4f}" for c in cells) + " |"
        )
    return lines


def _fewshot_table(section: dict[str, Any]) -> list[str]:
    lines = [
        "| k | reward | of trained | of oracle | accuracy |",
        "|---:|---:|---:|---:|---:|",
    ]
    for k in sorted(section["mean_std"], key=int):
        m = section["mean_std"][k]
        lines.append(
            f"| {k} | {_pm(m['reward'], '.4f')} | {_pm(m['of_trained'], '.1%')} | "
            f"{_pm(m['of_oracle'], '.1%')} | {_pm(m['accuracy'], '.4f')} |"
        )
    baselines = section.get("baselines", {})
    if baselines:
        shots = sorted(section["mean_std"], key=int)
        lines += [
            "",
            "Baselines given the same k decisions: reward (of oracle).",
            "",
            "| router | " + " | ".join(f"k={k}" for k in shots) + " |",
            "|---|" + "---:|" * len(shots),
        ]
        for name, by_k in baselines.items():
            cells = [
                f"{by_k[k]['reward'][0]:.4f} ({by_k[k]['of_oracle'][0]:.1%})" if k in by_k else "–"
                for k in shots
            ]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def write_report(results: dict[str, Any], out_dir: Path) -> Report:
    """Write ``report.md`` and its PNG plots into ``out_dir`` (created)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = Report(out_dir / "report.md")
    data = results.get("data", {})
    seeds = ", ".join(str(s) for s in results.get("seeds", []))
    md = ["# Router evaluation report", ""]
    if data:
        md.append(
            f"Data: {data.get('queries', '?')} queries, {data.get('llms', '?')} LLMs, "
            f"{data.get('users', '?')} users, {data.get('decisions', '?')} decisions. "
            f"Test metrics, mean ± std over seeds {seeds}."
        )
        md.append("")
    if "routers" in results:
        md += ["## Routers", "", *_router_table(results["routers"]), ""]
        image = out_dir / "cost_quality.png"
        fronts = plot_cost_quality(results, image)
        report.images.append(image)
        md += [
            "## Cost–quality plane",
            "",
            "Each router is a point (x = mean cost, y = mean performance); the dashed line is "
            "the frontier (upper-left convex hull of the non-dominated points, RouterBench style).",
            "",
            f"![cost-quality plane]({image.name})",
            "",
            "Frontier, all users: " + ", ".join(fronts["all users"]) + ".",
            "",
        ]
    if results.get("per_user"):
        image = out_dir / "user_rewards.png"
        plot_user_rewards(results, image)
        report.images.append(image)
        md += [
            "## Reward per user",
            "",
            f"![reward per user]({image.name})",
            "",
            *_user_table(results),
            "",
        ]
    for setting, (title, _) in FEWSHOT_SETTINGS.items():
        section = _fewshot(results, setting)
        if section is None:
            continue
        image = out_dir / f"{setting}.png"
        plot_fewshot(section, f"{title}: reward over k shots", image)
        report.images.append(image)
        md += [
            f"## {title}",
            "",
            "Reward after onboarding with k interactions, without retraining, as a fraction "
            "of the router trained with them (and of the oracle).",
            "",
            f"![{title}]({image.name})",
            "",
            *_fewshot_table(section),
            "",
        ]
    report.markdown.write_text("\n".join(md), encoding="utf-8")
    return report
