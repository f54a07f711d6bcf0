"""`prouter train` and `prouter evaluate` end to end on a small graph in LadybugDB."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner
from tests_gnn_support import build_store

from gnn.checkpoint import load_checkpoint
from graphdb.store import open_store
from prouter.cli import cli


def test_train_saves_a_version_and_writes_back(tmp_path):
    url = build_store(tmp_path)
    result = CliRunner().invoke(
        cli, ["--store", url, "train", "--epochs", "15", "--model-dir", str(tmp_path / "models")]
    )
    assert result.exit_code == 0, result.output
    version = re.search(r"model (gnn-\S+) saved", result.output).group(1)
    checkpoint = load_checkpoint(tmp_path / "models", version)
    assert checkpoint["data"]["queries"] == 200 and checkpoint["config"]["epochs"] == 15
    training = checkpoint["training"]  # how long it took, for scale figures
    assert 1 <= len(training["epoch_seconds"]) <= 15
    assert 0 <= training["best_epoch"] < len(training["epoch_seconds"])
    assert 0 < sum(training["epoch_seconds"]) <= training["seconds"]
    with open_store(url) as store:
        models = store.export_nodes("RouterModel").to_pylist()
        routed = store.export_edges("ROUTED_TO").to_pylist()
        evaluated = store.export_edges("EVALUATED").to_pylist()
    assert [m["version"] for m in models] == [version]
    assert json.loads(models[0]["metrics"])["test"]["n"] == checkpoint["metrics"]["test"]["n"]
    n_test = checkpoint["metrics"]["test"]["n"]
    # the 3 best of 4 candidates per test pair by default (--routed-top)
    assert len(routed) == n_test * 3 and {r["model_version"] for r in routed} == {version}
    assert sorted({r["rank"] for r in routed}) == [1, 2, 3]
    assert {e["setting"] for e in evaluated} == {"general"}
    assert sum(e["n"] for e in evaluated) == n_test


def _refuse(constant: str) -> None:
    raise AssertionError(f"{constant} in JSON output")


def test_evaluate_prints_a_table_and_json(tmp_path):
    url = build_store(tmp_path)
    args = [
        "--store",
        url,
        "evaluate",
        "--routers",
        "random,cheapest,oracle,gnn",
        "--seeds",
        "0,1",
        "--epochs",
        "10",
    ]
    table = CliRunner().invoke(cli, args)
    assert table.exit_code == 0, table.output
    assert re.search(r"^oracle +0\.\d+±0\.\d+ +100\.0%", table.output, re.MULTILINE)
    as_json = CliRunner().invoke(cli, [*args, "--json"])
    summary = json.loads(as_json.stdout, parse_constant=_refuse)  # strict JSON: no NaN
    assert summary["seeds"] == [0, 1]
    # no pairwise judgements in this graph: the metric has no value, and says so with null
    assert summary["routers"]["gnn"]["pairwise_accuracy"] == [None, None]
    assert summary["routers"]["oracle"]["accuracy"] == [1.0, 0.0]
    bad = CliRunner().invoke(cli, ["--store", url, "evaluate", "--routers", "nope"])
    assert bad.exit_code == 1 and "valid routers: gnn" in bad.output


def test_train_writes_back_the_few_shot_evaluations_per_k(tmp_path):
    url = build_store(tmp_path)
    result = CliRunner().invoke(
        cli,
        [
            "--store",
            url,
            "train",
            "--epochs",
            "15",
            "--model-dir",
            str(tmp_path / "models"),
            "--few-shot",
            "new_user,new-llm",
            "--shots",
            "0,2",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "new_user: held out" in result.output and "k=2" in result.output
    version = re.search(r"model (gnn-\S+) saved", result.output).group(1)
    checkpoint = load_checkpoint(tmp_path / "models", version)
    with open_store(url) as store:
        evaluated = store.export_edges("EVALUATED").to_pylist()
        (model,) = store.export_nodes("RouterModel").to_pylist()
    by_setting: dict[tuple[str, int], list[dict]] = {}
    for e in evaluated:
        by_setting.setdefault((e["setting"], e["shots"]), []).append(e)
    assert set(by_setting) == {
        ("general", 0),
        ("new_user", 0),
        ("new_user", 2),
        ("new_llm", 0),
        ("new_llm", 2),
    }
    # The few-shot summaries are part of the RouterModel's metrics (JSON keys are strings).
    new_user = json.loads(model["metrics"])["new_user"]
    # One held-out user of three; its EVALUATED edge carries the reward the run measured.
    assert [e["dst"] for e in by_setting[("new_user", 2)]] == new_user["held_out"]
    assert by_setting[("new_user", 2)][0]["reward"] == pytest.approx(
        new_user["shots"]["2"]["reward"]
    )
    # The new-LLM setting routes every test decision again: all users, all test decisions.
    assert sum(e["n"] for e in by_setting[("new_llm", 2)]) == checkpoint["metrics"]["test"]["n"]
    bad = CliRunner().invoke(cli, ["--store", url, "train", "--few-shot", "nope"])
    assert bad.exit_code == 1 and "valid: new_user, new_llm" in bad.output


def test_evaluate_reports_the_few_shot_settings(tmp_path):
    url = build_store(tmp_path)
    args = ["--store", url, "evaluate", "--routers", "gnn", "--seeds", "0", "--epochs", "10"]
    result = CliRunner().invoke(cli, [*args, "--settings", "new_user,new_llm", "--shots", "0,3"])
    assert result.exit_code == 0, result.output
    assert "new_user: held out" in result.output and "new_llm: held out" in result.output
    with_baseline = [*args, "--routers", "gnn,best_llm_per_user_task", "--settings", "new_user"]
    as_json = json.loads(
        CliRunner().invoke(cli, [*with_baseline, "--shots", "0,3", "--json"]).stdout
    )
    assert "routers" not in as_json  # general not asked for
    assert set(as_json["new_user"]["mean_std"]) == {"0", "3"}
    assert as_json["new_user"]["runs"][0]["n"] > 0
    # The honest baseline given the same shots, next to the gnn's curve.
    lookup = as_json["new_user"]["baselines"]["best_llm_per_user_task"]
    assert set(lookup) == {"0", "3"} and 0 < lookup["3"]["of_oracle"][0] <= 1 + 1e-9
    run = as_json["new_user"]["runs"][0]["baselines"]["best_llm_per_user_task"]
    assert run["shots"]["3"]["reward"] == pytest.approx(lookup["3"]["reward"][0])
    bad = CliRunner().invoke(cli, [*args, "--settings", "new_user", "--routers", "mlp_imitate"])
    assert bad.exit_code == 2 and "need the gnn router" in bad.output


def test_evaluate_says_which_costs_it_estimated_on_chosen_only_logs(tmp_path):
    from workloads.simulate import fixed_test_queries, hide_unchosen_outcomes, load_outcomes

    url = build_store(tmp_path)
    with open_store(url) as store:
        hidden = hide_unchosen_outcomes(store, load_outcomes(store), fixed_test_queries(store))
    args = ["--store", url, "evaluate", "--routers", "cheapest,best_llm_per_user_task"]
    table = CliRunner().invoke(cli, [*args, "--seeds", "0"])
    assert table.exit_code == 0, table.output
    found = re.search(
        r"note: (\d+) of 200 queries have costs logged for some LLMs only", table.output
    )
    assert found and int(found.group(1)) > 0, table.output
    as_json = json.loads(CliRunner().invoke(cli, [*args, "--seeds", "0", "--json"]).stdout)
    partial = as_json["partial_costs"]
    assert partial["queries"] == int(found.group(1))
    assert 0 < partial["estimated"] <= hidden.removed
