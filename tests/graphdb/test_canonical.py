"""Canonical format: readers, every bad-input case (message + nothing written), skip mode."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from graphdb.canonical import MAX_TEXT_CHARS, RawRecord, read_records, validate
from graphdb.ingest import ingest_files
from prcore.errors import ValidationError

GOOD = [
    {
        "task_id": "math",
        "query_id": "q1",
        "query_text": "What is 2+2?",
        "llm_id": "small",
        "performance": 1,
        "cost": 0.001,
        "user_id": "ann",
        "decision": "chose",
        "reward": 0.5,
    },
    {"task_id": "math", "query_id": "q1", "llm_id": "large", "performance": 1, "cost": 0.01},
    {
        "task_id": "math",
        "query_id": "q2",
        "query_text": "Is 7 prime?",
        "llm_id": "small",
        "performance": 0,
        "cost": 0.001,
        "user_id": "bob",
        "decision": "preferred",
        "other_llm_id": "large",
    },
]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def write_csv(path: Path, records: list[dict]) -> Path:
    import csv

    names = list(dict.fromkeys(k for r in records for k in r))
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=names)
        writer.writeheader()
        writer.writerows(records)
    return path


def raw(values: dict, n: int = 1) -> RawRecord:
    return RawRecord("t.jsonl", f"line {n}", values)


BAD_CASES = [
    ({"query_id": "q1", "query_text": "x"}, "task_id", "missing required field"),
    (GOOD[0] | {"performance": "high"}, "performance", "expected a number, got 'high'"),
    (GOOD[0] | {"performance": float("nan")}, "performance", "is NaN"),
    (GOOD[0] | {"performance": "NaN"}, "performance", "is NaN"),
    (GOOD[0] | {"cost": -0.5}, "cost", "must be at least 0, got -0.5"),
    (GOOD[0] | {"input_tokens": 2.5}, "input_tokens", "expected a whole number"),
    (GOOD[0] | {"user_alpha": 1.5}, "user_alpha", "must be at most 1, got 1.5"),
    (GOOD[0] | {"query_id": ["q1"]}, "query_id", "expected a string, got list"),
    (GOOD[0] | {"query_text": "x" * (MAX_TEXT_CHARS + 1)}, "query_text", "too long"),
    (GOOD[0] | {"user_id": "u" * 600}, "user_id", "too long: 600 characters (at most 512)"),
    (GOOD[0] | {"decision": "liked"}, "decision", "'liked' is not one of chose, preferred, tie"),
    (GOOD[0] | {"timestamp": "yesterday"}, "timestamp", "not an ISO 8601 timestamp"),
    (
        {k: v for k, v in GOOD[2].items() if k != "other_llm_id"},
        "other_llm_id",
        "a 'preferred' decision needs other_llm_id",
    ),
    (
        {k: v for k, v in GOOD[0].items() if k != "user_id"},
        "user_id",
        "a 'chose' decision needs user_id",
    ),
    ({k: v for k, v in GOOD[1].items() if k != "llm_id"}, "performance", "given without llm_id"),
    (GOOD[2] | {"other_llm_id": "small"}, "other_llm_id", "is the same LLM as llm_id"),
]


@pytest.mark.parametrize(("record", "field", "message"), BAD_CASES)
def test_bad_record_is_reported_with_location_and_field(record, field, message):
    result = validate([raw(GOOD[1] | {"query_text": "t"}, 1), raw(record, 7)])
    problems = [str(p) for p in result.problems]
    assert any(
        p.startswith(f"t.jsonl, line 7, field {field!r}: ") and message in p for p in problems
    ), problems


def test_conflicting_duplicates_are_both_rejected_and_exact_ones_merged():
    records = [
        raw(GOOD[0], 1),
        raw(GOOD[0], 2),
        raw(GOOD[1], 3),
        raw(GOOD[1] | {"performance": 0}, 4),
    ]
    result = validate(records)
    assert result.duplicates == 1
    assert [r.location for r, _ in result.rejected] == ["line 3", "line 4"]
    message = str(result.rejected[1][1][0])
    assert "conflicts with t.jsonl, line 3 for query_id='q1', llm_id='large'" in message
    assert "0 vs 1" in message


def test_query_with_two_tasks_conflicts():
    result = validate([raw(GOOD[0], 1), raw(GOOD[1] | {"task_id": "qa"}, 2)])
    assert any("field 'task_id': conflicts with" in str(p) for p in result.problems)


def test_unknown_references_are_rejected_unless_the_graph_has_them():
    orphan = {"task_id": "math", "query_id": "q9", "llm_id": "small", "performance": 1}
    pref = GOOD[2] | {"other_llm_id": "ghost"}
    result = validate([raw(orphan, 1), raw(pref, 2)])
    assert "unknown query 'q9'" in str(result.problems[0])
    assert "unknown LLM 'ghost'" in str(result.problems[1])
    assert validate([raw(orphan, 1)], known_queries=["q9"]).problems == []


def test_rejecting_a_record_rejects_those_that_relied_on_it():
    defines = GOOD[0] | {"cost": -1}
    relies = GOOD[1]
    result = validate([raw(defines, 1), raw(relies, 2)])
    assert [r.location for r, _ in result.rejected] == ["line 1", "line 2"]
    assert result.records == []


def test_three_formats_read_the_same(tmp_path):
    jsonl = write_jsonl(tmp_path / "a.jsonl", GOOD)
    csv_path = write_csv(tmp_path / "a.csv", GOOD)
    parquet = tmp_path / "a.parquet"
    pq.write_table(
        pa.Table.from_pylist([{**{k: None for k in GOOD[2]}, **r} for r in GOOD]), parquet
    )
    parsed = [validate(read_records(p)[0]).records for p in (jsonl, csv_path, parquet)]
    assert parsed[0] == parsed[1] == parsed[2]
    assert parsed[0][0]["performance"] == 1.0 and parsed[0][0]["reward"] == 0.5


def test_csv_locations_count_physical_lines(tmp_path):
    records = [GOOD[0] | {"query_text": "line one\nline two\nline three"}, GOOD[1] | {"cost": -1}]
    path = write_csv(tmp_path / "m.csv", records)
    result = validate(read_records(path)[0])
    assert str(result.problems[0]).startswith(f"{path}, line 5, field 'cost'")


def test_file_level_problems(tmp_path):
    assert "unsupported file type '.xlsx'" in str(read_records(tmp_path / "a.xlsx")[1][0])
    assert "no such file" in str(read_records(tmp_path / "missing.csv")[1][0])
    path = write_jsonl(tmp_path / "u.jsonl", [GOOD[1] | {"perfromance": 1}])
    assert "unknown columns ['perfromance']" in str(read_records(path)[1][0])
    path = tmp_path / "broken.jsonl"
    path.write_text(json.dumps(GOOD[0]) + "\n{not json\n")
    assert str(read_records(path)[1][0]).startswith(f"{path}, line 2: invalid JSON")


def test_default_rejects_whole_file_and_writes_nothing(store, tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [*GOOD, GOOD[1] | {"llm_id": "x", "cost": -2}])
    with pytest.raises(ValidationError) as info:
        ingest_files(store, [path])
    assert "1 of 4 records are invalid; nothing was written" in str(info.value)
    assert f"{path}, line 4, field 'cost': must be at least 0, got -2" in str(info.value)
    assert len(info.value.problems) == 1
    assert all(n == 0 for n in store.counts().values())


def test_unreadable_file_rejects_all_inputs(store, tmp_path):
    good = write_jsonl(tmp_path / "good.jsonl", GOOD)
    with pytest.raises(ValidationError, match="no such file"):
        ingest_files(store, [good, tmp_path / "missing.jsonl"], skip_invalid=True)
    assert all(n == 0 for n in store.counts().values())


def test_skip_invalid_loads_the_rest_and_reports_rejections(store, tmp_path):
    bad = GOOD[1] | {"llm_id": "x", "cost": -2}
    path = write_jsonl(tmp_path / "in.jsonl", [*GOOD, bad, GOOD[0]])
    report_path = tmp_path / "rejected.jsonl"
    report = ingest_files(store, [path], skip_invalid=True, report_path=report_path)
    assert (report.records_read, report.records_loaded, report.records_rejected) == (5, 4, 1)
    assert report.duplicates_merged == 1
    rejected = [json.loads(line) for line in report_path.read_text().splitlines()]
    assert rejected == [
        {
            "source": str(path),
            "location": "line 4",
            "problems": [{"field": "cost", "message": "must be at least 0, got -2"}],
            "record": bad,
        }
    ]
    counts = store.counts()
    assert (counts["Query"], counts["LLM"], counts["ANSWERED_BY"]) == (2, 2, 3)
    assert (counts["CHOSE"], counts["PREFERRED"], counts["ASKED"]) == (1, 1, 2)


def test_reingest_converges_and_referencing_known_queries_works(store, tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", GOOD)
    ingest_files(store, [path])
    before = store.counts()
    again = ingest_files(store, [path])
    assert all(s.created == 0 and s.updated == 0 for s in again.written.values())
    assert store.counts() == before
    later = write_jsonl(
        tmp_path / "later.jsonl",
        [
            {
                "task_id": "math",
                "query_id": "q2",
                "llm_id": "large",
                "performance": 1,
                "cost": 0.02,
            },
            {
                "task_id": "math",
                "query_id": "q1",
                "user_id": "cid",
                "llm_id": "large",
                "decision": "tie",
                "other_llm_id": "small",
                "timestamp": "2026-03-01T10:00:00+02:00",
            },
        ],
    )
    ingest_files(store, [later])
    prefs = store.export_edges("PREFERRED").to_pylist()
    tie = next(p for p in prefs if p["src"] == "cid")
    assert tie == {
        "src": "cid",
        "dst": "large",
        "query_id": "q1",
        "over": "small",
        "tie": True,
        "ts": "2026-03-01T08:00:00Z",
    }
    assert store.counts()["ANSWERED_BY"] == 4
