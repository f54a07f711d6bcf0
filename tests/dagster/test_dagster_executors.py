"""The executor chosen by PROUTER_DAGSTER_EXECUTOR (in-process by default)."""

from __future__ import annotations

import dagster as dg
import pytest

from dagster_project.definitions import build_definitions
from dagster_project.executors import executor_from_env, step_concurrency
from prcore.errors import ConfigError


def test_in_process_by_default(monkeypatch):
    monkeypatch.delenv("PROUTER_DAGSTER_EXECUTOR", raising=False)
    assert executor_from_env() is dg.in_process_executor


def test_multiprocess_with_a_bound_and_one_step_at_a_time_on_ladybug(monkeypatch):
    monkeypatch.setenv("PROUTER_DAGSTER_EXECUTOR", "multiprocess")
    monkeypatch.setenv("PROUTER_DAGSTER_MAX_CONCURRENT", "3")
    monkeypatch.setenv("PROUTER_STORE", "neo4j://db.example:7687")
    assert executor_from_env().name == "multiprocess" and step_concurrency() == 3
    monkeypatch.setenv("PROUTER_STORE", "ladybug:/tmp/g.lbug")
    assert step_concurrency() == 1
    defs = build_definitions(executor=executor_from_env())
    assert defs.resolve_job_def("pipeline_job").executor_def.name == "multiprocess"


@pytest.mark.parametrize(
    ("name", "value"),
    [("PROUTER_DAGSTER_EXECUTOR", "celery"), ("PROUTER_DAGSTER_MAX_CONCURRENT", "-2")],
)
def test_bad_settings_are_clear_errors(monkeypatch, name, value):
    monkeypatch.setenv("PROUTER_DAGSTER_EXECUTOR", "multiprocess")
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        executor_from_env()
