"""CSV and JSON details (issue #14 item 11): BOM, extra cells, file line numbers,
duplicate headers and keys, NUL and padded ids, empty files."""

from __future__ import annotations

import json

import pytest
from reliability_helpers import ANSWER, OTHER, is_empty, write_jsonl

from graphdb.canonical import read_records, validate
from graphdb.ingest import ingest_files
from prcore.errors import ValidationError

HEADER = "task_id,query_id,query_text,llm_id,performance,cost"
ROW1 = "math,q1,What is 2+2?,small,1,0.001"
ROW2 = "math,q2,Is 7 prime?,large,0,0.01"


def test_utf8_bom_is_not_part_of_the_first_column(store, tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(("\ufeff" + "\n".join([HEADER, ROW1, ROW2]) + "\n").encode("utf-8"))
    report = ingest_files(store, [path])
    assert report.records_loaded == 2
    assert sorted(store.node_ids("Task")) == ["math"]


def test_jsonl_with_a_bom_reads_too(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(("\ufeff" + json.dumps(ANSWER) + "\n").encode("utf-8"))
    records, problems = read_records(path)
    assert problems == [] and records[0].values["task_id"] == "math"


def test_first_data_row_is_file_line_two(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("\n".join([HEADER, ROW1.replace(",1,", ",-1,"), ROW2]) + "\n")
    problems = [str(p) for p in validate(read_records(path)[0]).problems]
    assert problems == [f"{path}, line 2, field 'performance': must be at least 0, got -1"]


def test_blank_lines_do_not_shift_the_line_numbers(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("\n".join([HEADER, "", ROW2, "", "", ROW1.replace(",1,", ",9,")]) + "\n")
    problems = [str(p) for p in validate(read_records(path)[0]).problems]
    assert problems == [f"{path}, line 6, field 'performance': must be at most 1, got 9"]


def test_a_row_with_extra_cells_is_rejected_by_its_line_only(store, tmp_path):
    path = tmp_path / "extra.csv"
    path.write_text("\n".join([HEADER, ROW1, ROW2 + ",surplus"]) + "\n")
    with pytest.raises(ValidationError) as info:
        ingest_files(store, [path])
    message = str(info.value)
    assert f"{path}, line 3: 7 cells but the header has 6 columns" in message
    assert "unknown columns" not in message
    assert is_empty(store)
    report = ingest_files(store, [path], skip_invalid=True, report_path=tmp_path / "r.jsonl")
    assert (report.records_loaded, report.records_rejected) == (1, 1)
    assert store.node_ids("Query") == ["q1"]


def test_duplicate_csv_header_rejects_the_file(store, tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("\n".join([HEADER + ",cost", ROW1 + ",5"]) + "\n")
    with pytest.raises(ValidationError) as info:
        ingest_files(store, [path], skip_invalid=True)
    assert f"{path}, line 1: duplicate column 'cost' (columns 6 and 7)" in str(info.value)
    assert is_empty(store)


def test_duplicate_json_key_rejects_the_input_naming_the_line(store, tmp_path):
    path = tmp_path / "dup.jsonl"
    dup = json.dumps(ANSWER)[:-1] + ', "cost": 5}'
    path.write_text(json.dumps(OTHER) + "\n" + dup + "\n")
    with pytest.raises(ValidationError) as info:
        ingest_files(store, [path])
    assert f"{path}, line 2: duplicate key 'cost'" in str(info.value)
    assert is_empty(store)


@pytest.mark.parametrize("field", ["task_id", "query_id", "llm_id", "user_id"])
@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("u\x001", "contains a NUL character"),
        (" u1", "has leading or trailing whitespace"),
        ("u1 ", "has leading or trailing whitespace"),
        ("u1\t", "has leading or trailing whitespace"),
    ],
    ids=["nul", "leading-space", "trailing-space", "trailing-tab"],
)
def test_nul_and_padded_ids_are_rejected(store, tmp_path, field, bad, message):
    path = write_jsonl(tmp_path / "in.jsonl", [OTHER, ANSWER | {field: bad}])
    with pytest.raises(ValidationError) as info:
        ingest_files(store, [path])
    assert f"{path}, line 2, field {field!r}: {message}" in str(info.value)
    assert is_empty(store)


def test_nul_in_text_is_rejected(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [ANSWER | {"query_text": "a\x00b"}])
    problems = [str(p) for p in validate(read_records(path)[0]).problems]
    assert problems == [f"{path}, line 1, field 'query_text': contains a NUL character"]


@pytest.mark.parametrize(
    ("name", "content"),
    [("e.csv", ""), ("h.csv", HEADER + "\n"), ("e.jsonl", ""), ("b.jsonl", "\n  \n")],
    ids=["empty-csv", "header-only-csv", "empty-jsonl", "blank-jsonl"],
)
def test_a_file_without_records_is_an_error(store, tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ValidationError) as info:
        ingest_files(store, [path], skip_invalid=True)
    assert f"{path}: no records in the file" in str(info.value)
    assert is_empty(store)
