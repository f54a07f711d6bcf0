"""The prouter command line: help everywhere, light start-up, clean errors, the demo."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from prouter.cli import cli


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = [prefix]
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            out += all_commands(command, (*prefix, name))
        else:
            out.append((*prefix, name))
    return out


@pytest.mark.parametrize("path", all_commands(cli), ids=lambda p: " ".join(p) or "prouter")
def test_every_command_has_help_with_text(path):
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output
    command = cli
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    assert command.help, f"{' '.join(path)} has no help text"
    if not isinstance(command, click.Group) and path[0] != "neo4j":
        assert "Example:" in result.output, path


def test_help_imports_no_heavy_library():
    code = (
        "import sys; from prouter.cli import main; sys.argv=['prouter','--help']\n"
        "try: main()\nexcept SystemExit: pass\n"
        "print(sorted(m for m in ('torch','dagster','ladybug','neo4j','pandas','pyarrow','numpy') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_demo_runs_end_to_end_and_is_repeatable(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = f"ladybug:{tmp_path / 'g.lbug'}"
    args = ["--store", store, "demo", "--queries", "200", "--users", "4", "--epochs", "10"]
    from gnn.serving import RoutingService

    built = []
    init = RoutingService.__init__
    monkeypatch.setattr(
        RoutingService, "__init__", lambda self, *a, **kw: built.append(1) or init(self, *a, **kw)
    )
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert len(built) == 1  # the service that routed is the one snapshotted (not built again)
    assert re.search(r"ANSWERED_BY +created +2000 ", first.output)
    assert re.search(r"^ +Query +200$", first.output, re.MULTILINE)
    assert re.search(r"^7\. trained gnn-\S+ .*test reward 0\.\d+", first.output, re.MULTILINE)
    assert "8. prouter route --user user-0003" in first.output
    assert "8. prouter route --user someone-new" in first.output
    assert "population prior" in first.output
    # The demo writes the route snapshot (as `prouter train` does): the first route is light.
    assert "route snapshot written to" in first.output
    routed = CliRunner().invoke(
        cli, ["--store", store, "route", "-v", "--user", "user-0003", "Sort a list in Python"]
    )
    assert routed.exit_code == 0, routed.output
    assert "light path" in routed.stderr
    second = CliRunner().invoke(cli, args)
    assert re.search(r"ANSWERED_BY +created +0 +updated +0 +unchanged +2000", second.output)
    summary = CliRunner().invoke(cli, ["--store", store, "graph", "summary"])
    assert re.search(r"^CHOSE +200$", summary.output, re.MULTILINE)
    assert re.search(r"^RouterModel +2$", summary.output, re.MULTILINE)  # a version per run


def test_generate_then_ingest_then_bad_input_fails_cleanly(tmp_path):
    runner = CliRunner()
    store = f"ladybug:{tmp_path / 'g.lbug'}"
    data = tmp_path / "w.csv"
    result = runner.invoke(
        cli, ["generate", "synthetic", str(data), "--queries", "20", "--llms", "3"]
    )
    assert result.exit_code == 0 and "wrote 80 records" in result.output
    result = runner.invoke(cli, ["--store", store, "ingest", "canonical", str(data)])
    assert result.exit_code == 0, result.output
    assert "records read: 80, loaded: 80, rejected: 0" in result.output

    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        json.dumps(
            {"task_id": "t", "query_id": "new", "query_text": "q", "llm_id": "m", "cost": -1}
        )
        + "\n"
    )
    result = runner.invoke(cli, ["--store", store, "ingest", "canonical", str(bad)])
    assert result.exit_code == 1
    assert "Error: 1 of 1 records are invalid; nothing was written" in result.output
    assert "line 1, field 'cost': must be at least 0, got -1" in result.output
    assert "Traceback" not in result.output
    report = tmp_path / "r.jsonl"
    result = runner.invoke(
        cli,
        [
            "--store",
            store,
            "ingest",
            "canonical",
            str(bad),
            "--skip-invalid",
            "--report",
            str(report),
        ],
    )
    assert result.exit_code == 0 and "rejected: 1" in result.output
    assert json.loads(report.read_text())["location"] == "line 1"


def test_bad_store_and_bad_parameters_are_usage_errors(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["--store", "postgres://x", "graph", "summary"])
    assert result.exit_code == 1 and "valid backends: ladybug" in result.output
    result = runner.invoke(cli, ["generate", "synthetic", str(tmp_path / "w.csv"), "--tasks", "9"])
    assert result.exit_code == 2 and "n_tasks must be between 1 and 5" in result.output
    result = runner.invoke(cli, ["generate", "synthetic", str(tmp_path / "w.xlsx")])
    assert result.exit_code == 1 and "valid types: .csv, .jsonl, .parquet" in result.output
