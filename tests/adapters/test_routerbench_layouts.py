"""RouterBench-layout CSVs of other shapes (small fixtures): plain-string prompts, no
response columns, extra columns that are not models."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from prcore.errors import ValidationError
from workloads.adapters.routerbench import load_routerbench


def write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def row(sid: str, prompt: str, **extra) -> dict:
    return {
        "sample_id": sid,
        "prompt": prompt,
        "eval_name": "quiz",
        "m-a": 1.0,
        "m-a|total_cost": 0.001,
        "m-b": 0.0,
        "m-b|total_cost": 0.01,
        **extra,
    }


def queries(result) -> dict[str, dict]:
    return {r.values["query_id"]: r.values for r in result.records if "query_text" in r.values}


def test_plain_string_prompts_without_response_columns(tmp_path):
    write_csv(
        tmp_path / "quiz_train.csv",
        [
            row("1", "What is 2 + 2?"),
            row("2", "[not a list] but plain text, with a comma"),
            row("3", "['a list', 'of two turns']"),
            row("4", "42"),
        ],
    )
    write_csv(tmp_path / "quiz_test.csv", [row("5", "Name a prime.")])
    result = load_routerbench(tmp_path, responses=True)
    texts = {q: v["query_text"] for q, v in queries(result).items()}
    assert texts == {
        "1": "What is 2 + 2?",
        "2": "[not a list] but plain text, with a comma",
        "3": "a list\nof two turns",
        "4": "42",
        "5": "Name a prime.",
    }
    assert queries(result)["5"]["split"] == "test"
    assert len(result.records) == 10  # 5 queries x 2 models
    assert not any("response" in r.values for r in result.records)
    scores = {
        (r.values["query_id"], r.values["llm_id"]): r.values["performance"] for r in result.records
    }
    assert scores[("1", "m-a")] == pytest.approx(1.0)
    assert scores[("1", "m-b")] == pytest.approx(0.0)


def test_plain_string_responses_are_kept(tmp_path):
    write_csv(
        tmp_path / "quiz_train.csv",
        [row("1", "Q?", **{"m-a|model_response": "four", "m-b|model_response": "['five']"})],
    )
    result = load_routerbench(tmp_path, responses=True)
    responses = {r.values["llm_id"]: r.values["response"] for r in result.records}
    assert responses == {"m-a": "four", "m-b": "five"}


def test_columns_without_a_cost_are_not_models_and_are_reported(tmp_path):
    write_csv(tmp_path / "quiz_train.csv", [row("1", "Q?", category="math")])
    result = load_routerbench(tmp_path)
    assert {r.values["llm_id"] for r in result.records} == {"m-a", "m-b"}
    assert any("category" in line and "ignored" in line for line in result.summary)


def test_a_file_without_any_model_is_refused(tmp_path):
    write_csv(tmp_path / "quiz_train.csv", [{"sample_id": "1", "prompt": "Q?", "eval_name": "q"}])
    with pytest.raises(ValidationError, match="no model"):
        load_routerbench(tmp_path)
