"""Absurd numbers are rejected with their line, never stored (issue #14 item 5).

``performance: 1e300`` (also 5, -3) and ``cost: 1e308`` used to be accepted;
after training every route showed NaN. Performance is in [0, 1], a reward in
[-1, 1], costs and prices finite, >= 0 and below a sane bound.
"""

from __future__ import annotations

import json

import pytest
from reliability_helpers import ANSWER, OTHER, is_empty, write_jsonl

from graphdb.canonical import MAX_COST_USD, MAX_PRICE_USD, MAX_TOKENS
from graphdb.ingest import ingest_files
from prcore.errors import ValidationError

CHOICE = {"user_id": "ann", "decision": "chose"}

ABSURD = [
    ({"performance": 1e300}, "performance", "must be at most 1, got 1e+300"),
    ({"performance": 5}, "performance", "must be at most 1, got 5"),
    ({"performance": -3}, "performance", "must be at least 0, got -3"),
    ({"performance": 1.0001}, "performance", "must be at most 1"),
    ({"cost": 1e308}, "cost", f"must be at most {MAX_COST_USD:g}, got 1e+308"),
    ({"cost": MAX_COST_USD * 2}, "cost", f"must be at most {MAX_COST_USD:g}"),
    ({"cost": "inf"}, "cost", "is infinite"),
    ({"cost": "-inf"}, "cost", "is infinite"),
    ({"llm_input_price": 1e300}, "llm_input_price", f"must be at most {MAX_PRICE_USD:g}"),
    ({"llm_output_price": -1}, "llm_output_price", "must be at least 0"),
    ({"output_tokens": MAX_TOKENS + 1}, "output_tokens", f"must be at most {MAX_TOKENS:g}"),
    (CHOICE | {"reward": 2.5}, "reward", "must be at most 1, got 2.5"),
    (CHOICE | {"reward": -1e300}, "reward", "must be at least -1"),
]


@pytest.mark.parametrize(("change", "field", "message"), ABSURD, ids=lambda v: repr(v)[:40])
def test_absurd_value_rejects_the_input_and_names_line_and_field(
    store, tmp_path, change, field, message
):
    path = write_jsonl(tmp_path / "in.jsonl", [OTHER, ANSWER | change])
    with pytest.raises(ValidationError) as info:
        ingest_files(store, [path])
    assert f"{path}, line 2, field {field!r}: {message}" in str(info.value)
    assert is_empty(store)


@pytest.mark.parametrize(("change", "field", "message"), ABSURD[:5], ids=lambda v: repr(v)[:40])
def test_skip_invalid_loads_the_rest_and_stores_no_absurd_value(
    store, tmp_path, change, field, message
):
    path = write_jsonl(tmp_path / "in.jsonl", [OTHER, ANSWER | change])
    report = ingest_files(store, [path], skip_invalid=True, report_path=tmp_path / "r.jsonl")
    assert (report.records_loaded, report.records_rejected) == (1, 1)
    stored = store.export_edges("ANSWERED_BY", ["performance", "cost"]).to_pylist()
    assert stored == [{"src": "q2", "dst": "large", "performance": 0.0, "cost": 0.01}]
    (line,) = (tmp_path / "r.jsonl").read_text().splitlines()
    assert json.loads(line)["problems"][0]["field"] == field


def test_boundaries_are_accepted(store, tmp_path):
    records = [
        ANSWER | {"performance": 0, "cost": 0, "input_tokens": 0},
        ANSWER | {"llm_id": "big", "performance": 1, "cost": MAX_COST_USD},
        OTHER | CHOICE | {"reward": -1},
        OTHER | CHOICE | {"llm_id": "small", "performance": 1, "reward": 1},
    ]
    path = write_jsonl(tmp_path / "in.jsonl", records)
    report = ingest_files(store, [path])
    assert report.records_rejected == 0
    assert store.counts()["ANSWERED_BY"] == 4
