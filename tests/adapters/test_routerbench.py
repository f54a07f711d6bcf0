"""RouterBench adapter on the real subset: exact counts, each dirty case, both backends."""

from __future__ import annotations

import ast
import csv
from collections import Counter

import pytest

from workloads.adapters.base import load
from workloads.adapters.routerbench import load_routerbench

GPT35 = "gpt-3.5-turbo-1106"


@pytest.fixture(scope="module")
def merged(routerbench_dir):
    return load_routerbench(routerbench_dir)


def queries(result) -> dict[str, dict]:
    return {r.values["query_id"]: r.values for r in result.records if "query_text" in r.values}


def raw_rows(routerbench_dir, sample_id: str) -> list[dict]:
    csv.field_size_limit(1 << 30)
    rows = []
    for path in sorted(routerbench_dir.glob("arc_challenge_*.csv")):
        with path.open(newline="", encoding="utf-8") as fh:
            rows += [
                r | {"_file": path.name} for r in csv.DictReader(fh) if r["sample_id"] == sample_id
            ]
    return rows


def test_exact_counts_after_cleaning(merged):
    qs = queries(merged)
    assert len(qs) == 3164
    assert len(merged.records) == 3164 * 11
    assert Counter(q["split"] for q in qs.values()) == {"train": 2217, "test": 947}
    assert Counter(q["task_id"] for q in qs.values()) == {
        "arc-challenge": 1470,
        "mbpp": 427,
        "winogrande": 1267,
    }
    assert (
        "14 sample ids split over two rows: merged into one query each; 6 of them were in "
        "both train and test" in " ".join(merged.summary)
    )


def test_split_rows_are_merged_by_the_documented_rule(merged, routerbench_dir):
    sid = "arc-challenge.val.136"  # single-prompt row in test, gpt-3.5 row (doubled) in train
    rows = raw_rows(routerbench_dir, sid)
    assert len(rows) == 2
    single = next(r for r in rows if len(ast.literal_eval(r["prompt"])) == 1)
    doubled = next(r for r in rows if len(ast.literal_eval(r["prompt"])) == 2)
    assert single["_file"] == "arc_challenge_test.csv"
    assert doubled["_file"] == "arc_challenge_train.csv"
    assert doubled[GPT35] != "" and single[GPT35] == "" and single["claude-v1"] != ""
    outcomes = {r.values["llm_id"]: r.values for r in merged.records if r.values["query_id"] == sid}
    assert len(outcomes) == 11
    assert queries(merged)[sid]["split"] == "test"
    assert queries(merged)[sid]["query_text"] == ast.literal_eval(single["prompt"])[0]
    assert outcomes[GPT35]["performance"] == float(doubled[GPT35])
    assert outcomes[GPT35]["cost"] == float(single[f"{GPT35}|total_cost"])
    assert float(doubled[f"{GPT35}|total_cost"]) == pytest.approx(
        2 * outcomes[GPT35]["cost"], rel=0.05
    )
    assert outcomes["claude-v1"]["performance"] == float(single["claude-v1"])


def test_no_query_is_in_two_splits_and_no_score_is_missing(merged):
    splits: dict[str, set] = {}
    for r in merged.records:
        splits.setdefault(r.values["query_id"], set()).add(r.values.get("split"))
    assert all(len(s - {None}) == 1 for s in splits.values())
    assert all(r.values["performance"] in (0.0, 1.0) for r in merged.records)


def test_drop_mode_removes_the_split_ids(routerbench_dir):
    dropped = load_routerbench(routerbench_dir, split_rows="drop")
    assert len(queries(dropped)) == 3150
    assert not any(r.values["query_id"] == "arc-challenge.val.136" for r in dropped.records)


def test_responses_are_optional(routerbench_dir):
    result = load_routerbench(routerbench_dir, tasks=["mbpp"], responses=True)
    assert len(queries(result)) == 427
    assert all(r.values.get("response") for r in result.records[:50])
    assert not any(
        "response" in r.values for r in load_routerbench(routerbench_dir, tasks=["mbpp"]).records
    )


def test_ingest_into_the_graph_and_reingest_changes_nothing(store, merged):
    report = load(store, merged)
    assert report.records_rejected == 0
    counts = store.counts()
    assert (counts["Task"], counts["Query"], counts["LLM"], counts["ANSWERED_BY"]) == (
        3,
        3164,
        11,
        34804,
    )
    splits = store.read("MATCH (q:Query) RETURN q.split AS split, count(q) AS n").to_pylist()
    assert sorted((r["split"], r["n"]) for r in splits) == [("test", 947), ("train", 2217)]
    described = store.export_nodes("LLM", ["description"]).column("description").null_count
    assert described == 0
    again = load(store, merged)
    assert all(s.created == 0 and s.updated == 0 for s in again.written.values())
