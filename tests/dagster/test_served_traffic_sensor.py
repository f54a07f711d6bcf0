"""The served-traffic retrain sensor, on a real embedded store the gateway's recorder wrote."""

from __future__ import annotations

import json
from contextlib import contextmanager
from datetime import UTC, datetime

import dagster as dg
import pytest
from test_route import TRAIN, write_workload

from dagster_project.resources import GraphStoreResource
from dagster_project.sensors import served_traffic_sensor
from gnn.pipeline import train_and_record
from graphdb.store import open_store
from prcore.errors import ConfigError
from prouter.gateway.recorder import Attempt, Choice, Outcome, Preference, Recorder, Served


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _served(user: str, qid: str, llm: str, rid: str) -> Served:
    return Served(
        ts=_now(),
        user=user,
        query_id=qid,
        text=f"served {qid}",
        task="math",
        embedding=[0.1] * 16,
        attempts=[Attempt(llm, "ok", 5.0, 3, 4, 0.001, "an answer", rid)],
    )


@pytest.fixture
def trained(tmp_path):  # type: ignore[no-untyped-def]
    """(store url, model dir, latest version) of a small trained LadybugDB graph."""
    url = f"ladybug:{tmp_path / 'g.lbug'}"
    with open_store(url) as store:
        write_workload(store)
        version = train_and_record(store, seed=0, model_dir=tmp_path / "m", config=TRAIN).version
    return url, tmp_path / "m", version


def _record(url: str, *events) -> None:  # type: ignore[no-untyped-def]
    @contextmanager
    def opened():  # type: ignore[no-untyped-def]
        with open_store(url) as store:
            yield store

    recorder = Recorder(opened, interval=60)
    for event in events:
        recorder.submit(event)
    recorder.close()
    assert recorder.written == len(events)


def _evaluate(url: str, cursor: str | None):  # type: ignore[no-untyped-def]
    """(result, cursor after) of one sensor evaluation."""
    context = dg.build_sensor_context(
        cursor=cursor, resources={"graph_store": GraphStoreResource(url=url)}
    )
    result = served_traffic_sensor(context)
    if isinstance(result, dg.SensorResult) and result.cursor is not None:
        return result, result.cursor
    return result, context.cursor


def test_served_traffic_requests_one_retrain_per_model(trained, monkeypatch):
    url, model_dir, version = trained
    monkeypatch.setenv("PROUTER_SERVED_RETRAIN_THRESHOLD", "4")
    with open_store(url, read_only=True) as store:
        llm_a, llm_b = store.node_ids("LLM")[:2]
    result, cursor = _evaluate(url, None)
    assert isinstance(result, dg.SkipReason)
    assert result.skip_message.startswith("0 served queries, 0 choices/preferences and 0 ")
    assert json.loads(cursor) == {"version": version, "rated": 0, "requested": False}

    # two served answers to one user's query, one thumbs up, one choice: 3 < 4
    _record(
        url,
        _served("ann", "gw-q1", llm_a, "chatcmpl-1"),
        _served("ann", "gw-q1", llm_b, "chatcmpl-2"),
        Outcome("gw-q1", llm_a, 1.0),
        Choice("ann", llm_a, "gw-q1", _now()),
    )
    result, cursor = _evaluate(url, cursor)
    assert isinstance(result, dg.SkipReason) and "(3 < 4)" in result.skip_message
    _record(url, Preference("ann", llm_a, "gw-q1", llm_b, False, _now()))
    result, cursor = _evaluate(url, cursor)
    assert isinstance(result, dg.SensorResult)
    (request,) = result.run_requests
    assert request.run_key == f"served:{version}"
    assert request.tags == {"served": "1", "feedback": "3"}  # one (user, query) served
    assert served_traffic_sensor.job_name == "retrain_job"
    assert json.loads(cursor)["requested"] is True

    _record(url, _served("bob", "gw-q2", llm_a, "chatcmpl-3"))  # more traffic: asked once
    result, cursor = _evaluate(url, cursor)
    assert isinstance(result, dg.SkipReason) and "waiting for its new model" in (
        result.skip_message or ""
    )

    # the retrain's new model: counting starts again from it
    with open_store(url) as store:
        newer = train_and_record(store, seed=1, model_dir=model_dir, config=TRAIN).version
    result, cursor = _evaluate(url, cursor)
    assert isinstance(result, dg.SkipReason)
    assert result.skip_message.startswith("0 served queries, 0 choices/preferences")
    assert json.loads(cursor) == {"version": newer, "rated": 1, "requested": False}


def test_a_bad_threshold_is_refused_in_one_line(trained, monkeypatch):
    url, _, _ = trained
    monkeypatch.setenv("PROUTER_SERVED_RETRAIN_THRESHOLD", "many")
    with pytest.raises(ConfigError, match="positive integer"):
        _evaluate(url, None)
