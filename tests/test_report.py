"""`prouter report`: plots and Markdown from a real `prouter evaluate --json` run."""

from __future__ import annotations

import json
import struct

import pytest
from click.testing import CliRunner
from test_route import write_workload

from gnn.reports.results import frontier
from graphdb.store import open_store
from prouter.cli import cli
from prouter.commands.router import SETTINGS

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """(width, height) of a PNG file, checking its signature and header chunk."""
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR", path
    return struct.unpack(">II", head[16:24])


@pytest.fixture(scope="module")
def results_file(tmp_path_factory):
    """results.json of a small real evaluation: 5 routers, 2 seeds, both few-shot settings."""
    tmp = tmp_path_factory.mktemp("report")
    url = f"ladybug:{tmp / 'g.lbug'}"
    with open_store(url) as store:
        write_workload(store)
    routers = "gnn,oracle,cheapest,random,best_llm_per_user_task"
    args = f"evaluate --routers {routers} --seeds 0,1 --epochs 15 --shots 0,1,3"
    result = CliRunner().invoke(
        cli, ["--store", url, *args.split(), "--settings", ",".join(SETTINGS), "--json"]
    )
    assert result.exit_code == 0, result.output
    path = tmp / "results.json"
    path.write_text(result.output[result.output.index("{") :])
    return path


def test_report_writes_valid_plots_and_markdown_with_the_numbers(results_file, tmp_path):
    results = json.loads(results_file.read_text())
    out = tmp_path / "report"
    result = CliRunner().invoke(cli, ["report", "--results", str(results_file), "--out", str(out)])
    assert result.exit_code == 0, result.output
    names = ["cost_quality.png", "user_rewards.png", "new_user.png", "new_llm.png"]
    assert result.output.strip() == f"wrote {out / 'report.md'} with {len(names)} plots"
    for name in names:
        width, height = png_size(out / name)
        assert width >= 300 and height >= 200
    md = (out / "report.md").read_text()
    for name in names:
        assert f"]({name})" in md
    assert "4 users, " in md and "seeds 0, 1" in md
    for router, m in results["routers"].items():
        mean, std = m["reward"]
        assert f"| {router} | {mean:.4f} ± {std:.4f} |" in md
    per_user = results["per_user"]["gnn"]
    user = sorted(per_user)[0]
    assert f"| {user} | {per_user[user]['reward']:.4f} |" in md
    fewshot = next(results[k] for k in ("new_user", "new-user") if k in results)
    reward, of_trained = fewshot["mean_std"]["3"]["reward"], fewshot["mean_std"]["3"]["of_trained"]
    assert f"| 3 | {reward[0]:.4f} ± {reward[1]:.4f} | {of_trained[0]:.1%} ± " in md
    # The honest baseline given the same shots, in the same section.
    lookup = fewshot["baselines"]["best_llm_per_user_task"]
    section = md.split("Baselines given the same k decisions")[1]
    row = next(ln for ln in section.splitlines() if ln.startswith("| best_llm_per_user_task | "))
    assert row.endswith(f" {lookup['3']['reward'][0]:.4f} ({lookup['3']['of_oracle'][0]:.1%}) |")
    # The oracle is never dominated: it is on the all-users frontier.
    assert "Frontier, all users: " in md
    frontier_line = next(line for line in md.splitlines() if line.startswith("Frontier"))
    assert "oracle" in frontier_line


def test_a_fewshot_only_results_file_gets_only_its_curve(results_file, tmp_path):
    results = json.loads(results_file.read_text())
    key = next(k for k in ("new_user", "new-user") if k in results)
    only = tmp_path / "only.json"
    only.write_text(json.dumps({"seeds": [0, 1], key: results[key]}))
    result = CliRunner().invoke(cli, ["report", "--results", str(only), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["new_user.png"]
    assert "## Routers" not in (tmp_path / "report.md").read_text()


def test_bad_results_files_exit_1_with_a_message(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    empty = tmp_path / "empty.json"
    empty.write_text('{"seeds": [0]}')
    for path, message in [
        (bad, "is not valid JSON"),
        (empty, "has neither 'routers' nor a few-shot section"),
        (tmp_path / "missing.json", "cannot read"),
    ]:
        result = CliRunner().invoke(cli, ["report", "--results", str(path)])
        assert result.exit_code == 1 and message in result.output, result.output
        assert "Traceback" not in result.output


def test_frontier_is_the_upper_left_hull_of_the_non_dominated_points():
    points = [
        (1.0, 0.40),  # 0 cheapest: on it
        (2.0, 0.45),  # 1 non-dominated but under the chord from 0 to 3
        (3.0, 0.80),  # 2 on it
        (4.0, 0.70),  # 3 dominated by 2
        (5.0, 0.85),  # 4 on it (best performance)
        (0.5, float("nan")),  # ignored
    ]
    assert frontier(points) == [0, 2, 4]
    assert frontier([(1.0, 0.5)]) == [0]
    assert frontier([(1.0, 0.5), (1.0, 0.9), (0.5, 0.9)]) == [2]
