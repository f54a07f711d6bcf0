"""A query sent again with another task is a conflict (issue #14 item 4).

The rule: a query belongs to one task, for good. A record naming a stored
query with another task is rejected like any conflict, naming its line and the
stored task, on both backends; the same query with its own task is fine.
"""

from __future__ import annotations

import pytest
from reliability_helpers import ANSWER, OTHER, write_jsonl

from graphdb.ingest import ingest_files
from prcore.errors import ValidationError


def test_stored_query_with_another_task_is_rejected(store, tmp_path):
    ingest_files(store, [write_jsonl(tmp_path / "a.jsonl", [ANSWER, OTHER])])
    moved = ANSWER | {"task_id": "trivia", "llm_id": "large"}
    second = write_jsonl(tmp_path / "b.jsonl", [OTHER | {"llm_id": "small"}, moved])
    with pytest.raises(ValidationError) as info:
        ingest_files(store, [second])
    assert (
        f"{second}, line 2, field 'task_id': query 'q1' belongs to task 'math' in the graph, "
        "not 'trivia'"
    ) in str(info.value)
    assert store.counts()["OF_TASK"] == 2
    assert store.counts()["ANSWERED_BY"] == 2

    report = ingest_files(store, [second], skip_invalid=True, report_path=tmp_path / "r.jsonl")
    assert (report.records_loaded, report.records_rejected) == (1, 1)
    of_task = store.export_edges("OF_TASK").to_pylist()
    assert sorted((e["src"], e["dst"]) for e in of_task) == [("q1", "math"), ("q2", "math")]


def test_stored_query_with_its_own_task_is_fine(store, tmp_path):
    ingest_files(store, [write_jsonl(tmp_path / "a.jsonl", [ANSWER])])
    again = write_jsonl(
        tmp_path / "b.jsonl",
        [
            {"task_id": "math", "query_id": "q1"}
            | {"llm_id": "large", "performance": 0, "cost": 0.02}
        ],
    )
    report = ingest_files(store, [again])
    assert report.records_rejected == 0
    assert store.counts()["OF_TASK"] == 1 and store.counts()["ANSWERED_BY"] == 2
