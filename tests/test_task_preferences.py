"""Simulated voters with per-task trade-offs (workloads.task_preferences) and their CLI."""

from __future__ import annotations

import re

import numpy as np
import pytest

from prcore.errors import ConfigError
from prcore.utility import task_min_max, utility
from workloads.simulate import Outcomes
from workloads.task_preferences import simulate_task_preferences


def outcomes(n_queries: int = 40, seed: int = 0) -> Outcomes:
    rng = np.random.default_rng(seed)
    return Outcomes(
        [f"q{i:02d}" for i in range(n_queries)],
        ["code" if i % 2 else "chat" for i in range(n_queries)],
        ["big", "mid", "small"],
        rng.uniform(0, 1, (n_queries, 3)),
        np.tile([3.0, 2.0, 1.0], (n_queries, 1)) * rng.uniform(0.5, 1.5, (n_queries, 1)),
    )


def test_votes_follow_the_reward_and_close_rewards_are_ties():
    """spread 0, no noise: every voter has weight ``centre`` everywhere, so each vote is
    the higher ``centre * performance - (1 - centre) * cost_norm``; within the tie margin
    it is a tie."""
    out = outcomes()
    margin = 0.05
    tables = simulate_task_preferences(
        out, n_users=3, spread=0.0, noise=0.0, centre=0.6, queries_per_user=20, tie_margin=margin
    )
    norm = task_min_max(out.cost, out.task_index)
    reward = utility(0.6, out.performance, norm)
    q_row = {q: i for i, q in enumerate(out.query_ids)}
    col = {m: j for j, m in enumerate(out.llm_ids)}
    votes = tables["PREFERRED"].to_pylist()
    assert len(votes) > 3 * 20  # 2 pairs per query, fewer when the two draws coincide
    ties = 0
    for v in votes:
        r = reward[q_row[v["query_id"]]]
        gap = r[col[v["dst"]]] - r[col[v["over"]]]
        if v["tie"]:
            ties += 1
            assert abs(gap) <= margin + 1e-12
        else:
            assert gap > margin
    assert ties > 0
    assert sorted({v["src"] for v in votes}) == ["voter-0", "voter-1", "voter-2"]
    without = simulate_task_preferences(
        out, n_users=3, spread=0.0, noise=0.0, centre=0.6, queries_per_user=20
    )["PREFERRED"]
    assert sum(without.column("tie").to_pylist()) < ties  # margin 0: only exact ties
    # The tie margin changes labels, never the draws: same pairs in the same order.
    assert without.column("query_id") == tables["PREFERRED"].column("query_id")


def test_same_seed_same_votes_and_bad_settings_are_config_errors():
    out = outcomes()
    a = simulate_task_preferences(out, n_users=4, spread=2.0, queries_per_user=10, seed=3)
    b = simulate_task_preferences(out, n_users=4, spread=2.0, queries_per_user=10, seed=3)
    c = simulate_task_preferences(out, n_users=4, spread=2.0, queries_per_user=10, seed=4)
    assert a["PREFERRED"] == b["PREFERRED"] and a["PREFERRED"] != c["PREFERRED"]
    for bad in ({"spread": -1.0}, {"tie_margin": -0.1}, {"centre": 1.0}, {"pairs_per_query": 0}):
        with pytest.raises(ConfigError):
            simulate_task_preferences(out, **bad)


def test_simulate_votes_command_writes_preferred_edges_with_ties(tmp_path):
    from click.testing import CliRunner

    from graphdb.store import open_store
    from prouter.cli import cli

    runner = CliRunner()
    store = f"ladybug:{tmp_path / 'g.lbug'}"
    data = tmp_path / "w.jsonl"
    assert (
        runner.invoke(cli, ["generate", "synthetic", str(data), "--queries", "40"]).exit_code == 0
    )
    assert runner.invoke(cli, ["--store", store, "ingest", "canonical", str(data)]).exit_code == 0
    helped = runner.invoke(cli, ["simulate", "votes", "--help"])
    assert helped.exit_code == 0 and "Example:" in helped.output
    args = ["--store", store, "simulate", "votes", "--users", "5", "--queries-per-user", "20"]
    voted = runner.invoke(cli, [*args, "--spread", "2.5", "--tie-margin", "0.02", "--seed", "1"])
    assert voted.exit_code == 0, voted.output
    with open_store(store) as s:
        preferred = s.export_edges("PREFERRED", ["tie", "ts"]).to_pylist()
        users = set(s.node_ids("User"))
    assert {f"voter-{u}" for u in range(5)} <= users
    ties = sum(r["tie"] for r in preferred)
    assert 0 < ties < len(preferred) and all(r["ts"] for r in preferred)
    assert f"5 voters cast {len(preferred)} votes ({ties} ties)" in voted.output
    again = runner.invoke(cli, [*args, "--spread", "2.5", "--tie-margin", "0.02", "--seed", "1"])
    assert again.exit_code == 0, again.output
    assert re.search(r"PREFERRED +created +0 ", again.output), again.output  # idempotent
    bad = runner.invoke(cli, [*args, "--spread", "-1"])
    assert bad.exit_code == 1 and "spread" in bad.output and "Traceback" not in bad.output
