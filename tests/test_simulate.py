"""Multi-cost-efficiency simulation: the reward formula by hand, tie-breaks, seeds, real data."""

from __future__ import annotations

import numpy as np
import pytest

from graphdb.ingest import write_tables
from prcore.errors import ConfigError
from prcore.utility import best_llm, task_min_max
from workloads.adapters.base import load
from workloads.adapters.routerbench import load_routerbench
from workloads.simulate import (
    Outcomes,
    draw_alphas,
    load_outcomes,
    simulate_cost_efficiency,
)


def tiny() -> Outcomes:
    # Task "a": costs 1..5 -> normalised (c - 1) / 4; task "b": costs 10, 20, 30.
    return Outcomes(
        query_ids=["q1", "q2", "q3"],
        task_ids=["a", "a", "b"],
        llm_ids=["cheap", "mid", "pricey"],
        performance=np.array([[0.0, 1.0, 1.0], [1.0, 1.0, 1.0], [0.2, 0.5, 0.9]]),
        cost=np.array([[1.0, 3.0, 5.0], [1.0, 2.0, 5.0], [10.0, 20.0, 30.0]]),
    )


def test_reward_formula_by_hand():
    tables = simulate_cost_efficiency(tiny(), n_users=2, alphas="grid")
    chose = tables["CHOSE"].to_pylist()
    by_user = {(r["src"], r["query_id"]): r for r in chose}
    # alpha = 0.2, q1: cheap 0.2*0 - 0.8*0 = 0, mid 0.2 - 0.8*0.5 = -0.2, pricey 0.2 - 0.8
    assert by_user[("ce-user-0", "q1")]["dst"] == "cheap"
    assert by_user[("ce-user-0", "q1")]["reward"] == pytest.approx(0.0)
    # alpha = 1.0: q1 mid and pricey tie at 1.0 -> the cheaper (mid) wins
    assert by_user[("ce-user-1", "q1")]["dst"] == "mid"
    assert by_user[("ce-user-1", "q1")]["reward"] == pytest.approx(1.0)
    # alpha = 0.2, q3 (task b): cheap 0.04 - 0 = 0.04, mid 0.1 - 0.4 = -0.3, pricey 0.18 - 0.8
    assert by_user[("ce-user-0", "q3")]["dst"] == "cheap"
    assert by_user[("ce-user-0", "q3")]["reward"] == pytest.approx(0.04)
    # alpha = 1.0 on q3: the best performance wins
    assert by_user[("ce-user-1", "q3")]["dst"] == "pricey"
    assert tables["User"].to_pylist() == [
        {"id": "ce-user-0", "alpha": 0.2},
        {"id": "ce-user-1", "alpha": 1.0},
    ]


def test_min_max_is_per_task_and_ties_prefer_cheaper_then_first():
    norm = task_min_max(tiny().cost, np.array([0, 0, 1]))
    assert norm[:2].tolist() == [[0.0, 0.5, 1.0], [0.0, 0.25, 1.0]]
    assert norm[2].tolist() == [0.0, 0.5, 1.0]
    reward = np.array([[0.5, 0.5, 0.5], [np.nan, 0.1, 0.1]])
    cost = np.array([[2.0, 1.0, 1.0], [0.0, 3.0, 3.0]])
    assert best_llm(reward, cost).tolist() == [1, 1]


def test_seeded_and_reproducible_with_noise_and_sampling():
    kwargs = {"n_users": 20, "alphas": "beta:2,2", "noise": 0.3, "queries_per_user": 2, "seed": 4}
    a = simulate_cost_efficiency(tiny(), **kwargs)
    b = simulate_cost_efficiency(tiny(), **kwargs)
    c = simulate_cost_efficiency(tiny(), **(kwargs | {"seed": 5}))
    assert a["CHOSE"].equals(b["CHOSE"]) and a["User"].equals(b["User"])
    assert not a["User"].equals(c["User"])
    assert a["CHOSE"].num_rows == 40
    assert draw_alphas(1000, "uniform", 1).std() > 0.25
    with pytest.raises(ConfigError, match="valid: grid, uniform, beta:A,B"):
        draw_alphas(3, "normal")


def test_on_routerbench_in_the_graph(store, routerbench_dir):
    load(store, load_routerbench(routerbench_dir))
    outcomes = load_outcomes(store)
    assert outcomes.performance.shape == (3164, 11)
    assert not np.isnan(outcomes.performance).any()
    tables = simulate_cost_efficiency(outcomes, n_users=9)
    assert tables["User"].column("alpha").to_pylist() == pytest.approx(
        [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    )
    written = write_tables(store, tables)
    assert written["CHOSE"].created == 9 * 3164
    # Recompute a few choices from scratch, straight from the formula.
    norm = task_min_max(outcomes.cost, outcomes.task_index)
    chose = {(r["src"], r["query_id"]): r for r in store.export_edges("CHOSE").to_pylist()}
    for user, alpha in (("ce-user-0", 0.2), ("ce-user-8", 1.0)):
        for q in (0, 1000, 3163):
            reward = alpha * outcomes.performance[q] - (1 - alpha) * norm[q]
            best = np.flatnonzero(np.isclose(reward, reward.max()))
            expected = outcomes.llm_ids[best[np.argmin(outcomes.cost[q, best])]]
            edge = chose[(user, outcomes.query_ids[q])]
            assert edge["dst"] == expected and edge["reward"] == pytest.approx(reward.max())
    again = write_tables(store, simulate_cost_efficiency(outcomes, n_users=9))
    assert again["CHOSE"].unchanged == 9 * 3164


def test_pairwise_judgements_follow_each_users_reward():
    from workloads.simulate import simulate_preferences

    outcomes = tiny()
    tables = simulate_preferences(outcomes, n_users=2, pairs_per_query=3, seed=0)
    judged = tables["PREFERRED"].to_pylist()
    assert judged and {r["src"] for r in judged} == {"pref-user-0", "pref-user-1"}
    alpha = {"pref-user-0": 0.2, "pref-user-1": 1.0}
    norm = task_min_max(outcomes.cost, outcomes.task_index)
    q_row = {q: i for i, q in enumerate(outcomes.query_ids)}
    l_col = {m: j for j, m in enumerate(outcomes.llm_ids)}
    for r in judged:
        a, i = alpha[r["src"]], q_row[r["query_id"]]
        reward = a * outcomes.performance[i] - (1 - a) * norm[i]
        win, lose = reward[l_col[r["dst"]]], reward[l_col[r["over"]]]
        assert (win == pytest.approx(lose)) if r["tie"] else win > lose
    # alpha = 1 on q2 (all performances 1.0): every pair it judged there is a tie.
    q2 = [r for r in judged if r["src"] == "pref-user-1" and r["query_id"] == "q2"]
    assert q2 and all(r["tie"] for r in q2)
    assert (
        tables["PREFERRED"]
        == simulate_preferences(outcomes, n_users=2, pairs_per_query=3)["PREFERRED"]
    )
    with pytest.raises(ConfigError):
        simulate_preferences(outcomes, pairs_per_query=0)


def test_simulate_commands_write_users_and_their_decisions(tmp_path):
    from click.testing import CliRunner

    from graphdb.store import open_store
    from prouter.cli import cli

    runner = CliRunner()
    store = f"ladybug:{tmp_path / 'g.lbug'}"
    data = tmp_path / "w.jsonl"
    assert (
        runner.invoke(cli, ["generate", "synthetic", str(data), "--queries", "30"]).exit_code == 0
    )
    assert runner.invoke(cli, ["--store", store, "ingest", "canonical", str(data)]).exit_code == 0
    chose = runner.invoke(cli, ["--store", store, "simulate", "cost-efficiency", "--users", "3"])
    assert chose.exit_code == 0 and "3 users on 30 queries" in chose.output, chose.output
    judged = runner.invoke(
        cli, ["--store", store, "simulate", "preferences", "--users", "2", "--pairs", "2"]
    )
    assert judged.exit_code == 0, judged.output
    with open_store(store) as s:
        preferred = s.export_edges("PREFERRED", ["tie"]).to_pylist()
        users = set(s.node_ids("User"))
    assert {"ce-user-0", "ce-user-2", "pref-user-0", "pref-user-1"} <= users
    ties = sum(r["tie"] for r in preferred)
    assert f"judged {len(preferred)} pairs ({ties} ties)" in judged.output
    bad = runner.invoke(cli, ["--store", store, "simulate", "preferences", "--pairs", "0"])
    assert bad.exit_code == 1 and "pairs_per_query" in bad.output
