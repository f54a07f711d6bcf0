"""A markdown report of one trained router version, read back from the graph.

Plots are not part of it yet (they will come from a plotting module); the
report lists what the graph holds about the version: its training data, its
validation and test metrics, and the per-user evaluations written back as
``EVALUATED`` edges.
"""

from __future__ import annotations

import json
from typing import Any

from graphdb.store import GraphStore

__all__ = ["router_report"]

_METRICS = ("n", "reward", "performance", "cost", "accuracy", "reward_of_oracle")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]


def router_report(store: GraphStore, version: str, *, quality: dict[str, Any] | None = None) -> str:
    """Markdown for RouterModel ``version`` (plus the baseline comparison, if given)."""
    model = store.read(
        "MATCH (m:RouterModel) WHERE m.version = $version "
        "RETURN m.created_at AS created_at, m.config AS config, m.metrics AS metrics",
        {"version": version},
    ).to_pylist()
    if not model:
        return f"# Router report\n\nNo RouterModel `{version}` in the graph.\n"
    config, metrics = json.loads(model[0]["config"]), json.loads(model[0]["metrics"])
    evaluations = store.read(
        "MATCH (m:RouterModel)-[e:EVALUATED]->(u:User) WHERE m.version = $version "
        "RETURN u.id AS user_id, e.setting AS setting, e.shots AS shots, e.n AS n, "
        "e.reward AS reward, e.performance AS performance, e.cost AS cost, "
        "e.accuracy AS accuracy ORDER BY setting, shots, user_id",
        {"version": version},
    ).to_pylist()
    data = config.get("data", {})
    lines = [
        f"# Router report: `{version}`",
        "",
        f"Created {model[0]['created_at']}; router `{config.get('router')}`, seed "
        f"{config.get('seed')}, device `{config.get('device')}`; trained on "
        f"{data.get('queries')} queries, {data.get('llms')} LLMs, {data.get('users')} users, "
        f"{data.get('decisions')} decisions (export `{str(config.get('export'))[:16]}`).",
        "",
        "## Metrics (selection on validation, test scored once)",
        "",
        *_table(
            ["split", *_METRICS],
            [[part, *(metrics[part].get(k) for k in _METRICS)] for part in metrics],
        ),
    ]
    if quality:
        verdict = "beats" if quality["passed"] else "does NOT beat"
        lines += [
            "",
            f"Validation {quality['metric']}: {_fmt(quality['model'])}, which {verdict} "
            f"`{quality['baseline']}` ({_fmt(quality['baseline_value'])}).",
        ]
    lines += ["", "## Per-user evaluation (EVALUATED edges)", ""]
    if evaluations:
        keys = ["user_id", "setting", "shots", "n", "reward", "performance", "cost", "accuracy"]
        lines += _table(keys, [[row[k] for k in keys] for row in evaluations])
    else:
        lines.append("No evaluation written back yet.")
    return "\n".join(lines) + "\n"
