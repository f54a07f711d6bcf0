"""``--skip-invalid --report`` never overwrites an input (issue #14 item 6)."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner
from reliability_helpers import ANSWER, OTHER, is_empty, write_jsonl

from graphdb.ingest import ingest_files
from prcore.errors import ConfigError
from prouter.cli import cli


@pytest.mark.parametrize("spelling", ["same", "relative", "symlink", "hardlink"])
def test_report_pointing_at_an_input_is_refused(store, tmp_path, spelling, monkeypatch):
    path = write_jsonl(tmp_path / "in.jsonl", [OTHER, ANSWER | {"cost": -1}])
    before = path.read_bytes()
    monkeypatch.chdir(tmp_path)
    report = {
        "same": path,
        "relative": tmp_path / "sub" / ".." / "in.jsonl",
        "symlink": tmp_path / "link.jsonl",
        "hardlink": tmp_path / "hard.jsonl",
    }[spelling]
    (tmp_path / "sub").mkdir()
    if spelling == "symlink":
        report.symlink_to(path)
    if spelling == "hardlink":
        os.link(path, report)
    with pytest.raises(ConfigError, match="is one of the input files"):
        ingest_files(store, [path], skip_invalid=True, report_path=report)
    assert path.read_bytes() == before
    assert is_empty(store)


def test_cli_refuses_and_keeps_the_input(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [OTHER, ANSWER | {"cost": -1}])
    before = path.read_bytes()
    store = f"ladybug:{tmp_path / 'g.lbug'}"
    args = ["--store", store, "ingest", "canonical", str(path), "--skip-invalid"]
    result = CliRunner().invoke(cli, [*args, "--report", str(path)])
    assert result.exit_code == 1
    assert f"Error: the report {str(path)!r} is one of the input files" in result.output
    assert "Traceback" not in result.output
    assert path.read_bytes() == before
    ok = CliRunner().invoke(cli, [*args, "--report", str(tmp_path / "r.jsonl")])
    assert ok.exit_code == 0 and "rejected: 1" in ok.output


def test_preferences_report_pointing_at_the_judgements_is_refused(tmp_path):
    judgements = tmp_path / "votes.jsonl"
    judgements.write_text(
        '{"question_id": 1, "judge": "j", "model_a": "a", "model_b": "b", "winner": "model_a"}\n'
    )
    before = judgements.read_bytes()
    store = f"ladybug:{tmp_path / 'g.lbug'}"
    args = ["--store", store, "ingest", "preferences", str(judgements), "--skip-invalid"]
    result = CliRunner().invoke(cli, [*args, "--report", str(judgements)])
    assert result.exit_code == 1 and "is one of the input files" in result.output
    assert judgements.read_bytes() == before
