"""`simulate cost-efficiency --observed chosen`: outcomes only where a user chose, as in
real logs; the data set's test queries keep theirs (evaluation only). Both backends."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner

from graphdb.ingest import write_tables
from graphdb.store import open_store
from prcore.errors import ConfigError
from prouter.cli import cli
from workloads.simulate import Outcomes, unobserved_outcomes


def tiny() -> Outcomes:
    return Outcomes(
        query_ids=["q1", "q2", "q3"],
        task_ids=["a", "a", "a"],
        llm_ids=["cheap", "mid", "pricey"],
        performance=np.array([[0.0, 1.0, 1.0], [1.0, np.nan, 1.0], [0.0, 0.0, 1.0]]),
        cost=np.array([[1.0, 3.0, 5.0], [1.0, np.nan, 5.0], [1.0, 2.0, 5.0]]),
    )


def test_unobserved_outcomes_by_hand():
    # q1: two users chose mid and pricey -> only cheap is hidden; q2: nobody decided ->
    # both of its outcomes go; q3 is a test query -> keeps all three.
    chosen = [("q1", "mid"), ("q1", "pricey"), ("q1", "mid"), ("q3", "pricey")]
    hidden = unobserved_outcomes(tiny(), chosen, test_queries={"q3"})
    assert hidden == [("q1", "cheap"), ("q2", "cheap"), ("q2", "pricey")]


def test_unobserved_outcomes_needs_a_test_split():
    with pytest.raises(ConfigError, match="test split"):
        unobserved_outcomes(tiny(), [("q1", "mid")], test_queries=set())


def _graph(store) -> None:
    """3 tasks-free queries of task t: q1, q2 train, q3 test; 3 LLMs, all outcomes."""
    perf = {"q1": [0.0, 1.0, 1.0], "q2": [1.0, 1.0, 1.0], "q3": [0.0, 0.0, 1.0]}
    llms = ["cheap", "mid", "pricey"]
    src, dst, p, c = [], [], [], []
    for q, row in perf.items():
        for llm, value, cost in zip(llms, row, [1.0, 3.0, 5.0], strict=True):
            src.append(q)
            dst.append(llm)
            p.append(value)
            c.append(cost)
    write_tables(
        store,
        {
            "Task": pa.table({"id": ["t"]}),
            "Query": pa.table({"id": list(perf), "split": ["train", "train", "test"]}),
            "LLM": pa.table({"id": llms}),
            "OF_TASK": pa.table({"src": list(perf), "dst": ["t"] * 3}),
            "ANSWERED_BY": pa.table({"src": src, "dst": dst, "performance": p, "cost": c}),
        },
    )


def _outcome_pairs(store) -> set[tuple[str, str]]:
    table = store.export_edges("ANSWERED_BY", [])
    return set(zip(table.column("src").to_pylist(), table.column("dst").to_pylist(), strict=True))


def _simulate(store, store_cli_args, *extra: str):
    """Run the CLI on ``store`` (closed first: LadybugDB has one writer) and reopen it."""
    _graph(store)
    args = [*store_cli_args(store), "simulate", "cost-efficiency", "--users", "2", *extra]
    store.close()
    result = CliRunner().invoke(cli, args)
    return result, open_store(
        args[1], username=_opt(args, "--neo4j-user"), password=_opt(args, "--neo4j-password")
    )


def _opt(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def test_cli_observed_chosen_removes_unchosen_outcomes(store, store_cli_args):
    result, store = _simulate(store, store_cli_args, "--observed", "chosen")
    assert result.exit_code == 0, result.output
    # alpha 0.2 picks cheap on q1 (0 vs mid 0.2 - 0.8 * 0.5) and q2; alpha 1.0 picks mid
    # on q1 (ties with pricey go to the cheaper) and cheap on q2.
    assert _outcome_pairs(store) == {
        ("q1", "cheap"),
        ("q1", "mid"),
        ("q2", "cheap"),
        ("q3", "cheap"),
        ("q3", "mid"),
        ("q3", "pricey"),
    }
    assert "removed 3 outcome (ANSWERED_BY) edges" in result.output
    assert "1 test queries keep all their outcomes" in result.output
    assert store.counts()["CHOSE"] == 6  # the decisions themselves are all written
    store.close()


def test_cli_observed_all_is_the_default(store, store_cli_args):
    result, store = _simulate(store, store_cli_args)
    assert result.exit_code == 0, result.output
    assert len(_outcome_pairs(store)) == 9
    assert "removed" not in result.output
    store.close()


def test_cli_observed_chosen_without_test_split_changes_nothing(tmp_path, store_cli_args):
    with open_store(f"ladybug:{tmp_path / 'g.lbug'}") as store:
        _graph(store)
        store.write_nodes("Query", pa.table({"id": ["q3"], "split": ["train"]}))
        args = [*store_cli_args(store), "simulate", "cost-efficiency", "--observed", "chosen"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0
    assert "test split" in result.output
    with open_store(f"ladybug:{tmp_path / 'g.lbug'}") as store:
        assert len(_outcome_pairs(store)) == 9
        assert store.counts()["CHOSE"] == 0
