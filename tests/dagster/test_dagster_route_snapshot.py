"""A Dagster (re)train leaves the route snapshot behind: the next `prouter route` is light."""

from __future__ import annotations

import json

import dagster as dg
from click.testing import CliRunner
from dagster_test_support import materialized, run_config

from dagster_project.assets import PIPELINE_ASSETS
from dagster_project.checks import ALL_CHECKS
from dagster_project.resources import SentenceTransformerEmbeddings
from gnn.light.snapshot import snapshot_path
from prouter.cli import cli


def test_the_first_route_after_a_dagster_training_run_takes_the_light_path(
    ladybug, instance, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # the route's default embedding cache lands here
    cache = tmp_path / "embedding-cache.sqlite"
    resources = ladybug.resources() | {
        "embedding_model": SentenceTransformerEmbeddings(cache_path=str(cache))
    }
    result = dg.materialize(
        [*PIPELINE_ASSETS, *ALL_CHECKS],
        run_config=run_config(),
        resources=resources,
        instance=instance,
    )
    version = materialized(result)["trained_model"]["version"]
    args = ["--store", ladybug.url, "route", "--model-dir", str(ladybug.model_dir), "-v"]
    routed = CliRunner().invoke(
        cli, [*args, "--cache", str(cache), "--json", "--user", "someone", "Sort a list"]
    )
    assert routed.exit_code == 0, routed.output
    assert "light path" in routed.stderr
    assert json.loads(routed.stdout)["model_version"] == version
    store_file = ladybug.url.removeprefix("ladybug:")
    meta = materialized(result)["route_snapshot"]
    assert meta == {"version": version, "path": str(snapshot_path(ladybug.model_dir, store_file))}
