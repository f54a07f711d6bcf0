"""Chunked ingest (graphdb.chunked): with tiny chunks, the same problems, counts and graph
as validating and writing all records at once, and nothing written on a late error."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_canonical import GOOD, write_csv, write_jsonl
from test_ingest import graph_rows

from graphdb.canonical import ChunkReader, read_records
from graphdb.ingest import ingest_files, ingest_records
from prcore.errors import ValidationError
from prouter.demo import write_canonical
from workloads.synthetic import generate

ASK = {"task_id": "math", "user_id": "ann", "llm_id": "small", "decision": "chose"}

# Records whose graph depends on values spread over many chunks: a query's text, a
# task's description and an LLM's price given late; one ASKED / CHOSE / PREFERRED edge
# named by records in several chunks, earliest timestamp last; exact duplicates.
SPREAD = [
    {"task_id": "math", "query_id": "q1", "llm_id": "small", "performance": 0.5},
    {"task_id": "math", "query_id": "q1", "llm_id": "large", "cost": 0.02},
    ASK | {"query_id": "q1", "timestamp": "2026-01-03T00:00:00Z"},
    {"task_id": "math", "query_id": "q2", "query_text": "Is 7 prime?", "llm_id": "small"},
    ASK | {"query_id": "q1", "reward": 0.25, "timestamp": "2026-01-05T00:00:00Z"},
    {"task_id": "math", "query_id": "q1", "query_text": "What is 2+2?", "split": "train"},
    {"task_id": "math", "query_id": "q1", "llm_id": "small", "cost": 0.001},
    {
        "task_id": "math",
        "query_id": "q2",
        "user_id": "bob",
        "llm_id": "large",
        "decision": "tie",
        "other_llm_id": "small",
        "timestamp": "2026-02-01T00:00:00Z",
    },
    {"task_id": "math", "query_id": "q1", "llm_id": "small", "performance": 0.5},
    {"task_id": "math", "task_description": "Arithmetic.", "query_id": "q2"},
    ASK | {"query_id": "q1", "timestamp": "2026-01-01T00:00:00Z"},
    {"task_id": "math", "query_id": "q2", "user_id": "bob", "timestamp": "2026-01-15T00:00:00Z"},
    {
        "task_id": "math",
        "query_id": "q2",
        "user_id": "bob",
        "user_alpha": 0.3,
        "llm_id": "large",
        "llm_input_price": 3.0,
        "decision": "tie",
        "other_llm_id": "small",
        "timestamp": "2026-01-20T00:00:00Z",
    },
    {"task_id": "math", "query_id": "q1", "llm_id": "large", "cost": 0.02},
]

# Every kind of cross-record problem, and records that depend on rejected ones.
TROUBLE = [
    GOOD[0],
    GOOD[0],  # an exact duplicate
    GOOD[1],
    GOOD[1] | {"performance": 0},  # conflicts with the record above
    {"task_id": "math", "query_id": "q9", "llm_id": "small", "performance": 1},  # no text
    GOOD[2] | {"other_llm_id": "ghost"},  # unknown LLM
    {"task_id": "qa", "query_id": "q3", "query_text": "Where?", "llm_id": "mid", "cost": -1},
    {"task_id": "qa", "query_id": "q3", "llm_id": "small", "performance": 1},  # orphaned
    GOOD[2] | {"user_id": "cid", "other_llm_id": "mid"},  # mid only in a rejected record
    GOOD[2],
    {"task_id": "math", "query_id": "q2", "query_text": "Is 7 prime? (again)"},  # conflict
    GOOD[1] | {"task_id": "code"},  # a query with two tasks
    {"task_id": "math", "query_id": "q4", "query_text": "x", "llm_id": "small", "cost": 0.1},
]


def _legacy(store, path: Path, **options):  # type: ignore[no-untyped-def]
    raws, problems = read_records(path)
    assert problems == []
    return ingest_records(store, raws, **options)


def _outcome(run, store, tmp_path: Path) -> dict:  # type: ignore[no-untyped-def]
    """Everything an ingest reports and writes: counts, problems, reject report, graph."""
    report_path = tmp_path / "rejected.jsonl"
    report_path.unlink(missing_ok=True)
    try:
        report = run(skip_invalid=True, report_path=report_path)
    finally:
        rows = graph_rows(store)
    try:
        run(skip_invalid=False)
        error = None
    except ValidationError as exc:
        error = (str(exc), [str(p) for p in exc.problems])
    out = {
        "counts": (
            report.records_read,
            report.records_loaded,
            report.records_rejected,
            report.duplicates_merged,
        ),
        "written": {k: (s.created, s.updated, s.unchanged) for k, s in report.written.items()},
        "rejected": report_path.read_text() if report_path.exists() else "",
        "error": error,
        "graph": rows,
    }
    store.clear()
    return out


@pytest.fixture(params=[1, 10**9], ids=["write-each-chunk", "write-once"])
def write_rows(request, monkeypatch):  # type: ignore[no-untyped-def]
    """Graph rows gathered before a write: one chunk's, or all."""
    monkeypatch.setattr("graphdb.chunked.WRITE_ROWS", request.param)


@pytest.mark.parametrize("records", [SPREAD, TROUBLE], ids=["spread", "trouble"])
@pytest.mark.parametrize("chunk_size", [1, 3])
def test_small_chunks_give_what_one_pass_gives(store, tmp_path, records, chunk_size, write_rows):
    path = write_jsonl(tmp_path / "in.jsonl", records)
    whole = _outcome(lambda **o: _legacy(store, path, **o), store, tmp_path)
    chunked = _outcome(
        lambda **o: ingest_files(store, [path], chunk_size=chunk_size, **o), store, tmp_path
    )
    assert chunked == whole
    assert whole["graph"]["Query"] and (whole["error"] is None) == (records is SPREAD)


def test_small_chunks_against_a_stored_graph(store, tmp_path, write_rows):
    first = write_jsonl(tmp_path / "a.jsonl", SPREAD[:7])
    later = [
        *SPREAD[7:],
        GOOD[1] | {"query_id": "q1", "task_id": "qa"},  # stored under math
        {"task_id": "math", "query_id": "q1", "llm_id": "mid", "performance": 0.1},
        GOOD[2] | {"other_llm_id": "large"},  # large is stored
    ]
    second = write_jsonl(tmp_path / "b.jsonl", later)
    outcomes = []
    for run in (
        lambda **o: _legacy(store, second, **o),
        lambda **o: ingest_files(store, [second], chunk_size=2, **o),
    ):
        _legacy(store, first)
        outcomes.append(_outcome(run, store, tmp_path))
    # Counts of stored nodes given new values only in a later chunk are their first chunk's.
    written = [o.pop("written") for o in outcomes]
    assert outcomes[0] == outcomes[1]
    assert written[0]["Query"] == written[1]["Query"] == (0, 0, 2)
    assert "belongs to task 'math' in the graph" in outcomes[0]["error"][0]


def test_synthetic_workload_in_chunks_of_three_gives_the_same_graph(store, tmp_path, write_rows):
    workload = generate(n_queries=25, n_users=4, n_llms=3, seed=7)
    path = tmp_path / "w.parquet"
    write_canonical(workload.records(), path)
    whole = _outcome(lambda **o: _legacy(store, path, **o), store, tmp_path)
    chunked = _outcome(lambda **o: ingest_files(store, [path], chunk_size=3, **o), store, tmp_path)
    assert chunked == whole
    assert whole["written"]["ANSWERED_BY"] == (25 * 3, 0, 0)


LATE_ERRORS = {
    "bad value": {"task_id": "math", "query_id": "q2", "llm_id": "large", "cost": -2},
    "conflict": {"task_id": "math", "query_id": "n0", "llm_id": "small", "performance": 0.5},
    "unknown query": {"task_id": "math", "query_id": "q77", "llm_id": "large", "cost": 1},
}


@pytest.mark.parametrize("late", LATE_ERRORS.values(), ids=LATE_ERRORS.keys())
def test_an_error_in_the_last_chunk_writes_nothing(store, tmp_path, late, write_rows):
    before = write_jsonl(tmp_path / "before.jsonl", GOOD)
    ingest_files(store, [before])
    counts = store.counts()
    many = [
        {"task_id": "math", "query_id": f"n{i}", "query_text": f"new {i}", "llm_id": "small"}
        | {"performance": 1.0}
        for i in range(30)
    ]
    path = write_jsonl(tmp_path / "in.jsonl", [*many, late])
    with pytest.raises(ValidationError) as info:
        ingest_files(store, [path], chunk_size=3)
    invalid = 2 if late is LATE_ERRORS["conflict"] else 1  # both sides of a conflict
    assert f"{invalid} of 31 records are invalid; nothing was written" in str(info.value)
    assert f"{path}, line 31, field " in str(info.value)
    assert store.counts() == counts


def test_a_bad_second_file_writes_nothing_of_the_first(store, tmp_path):
    good = write_jsonl(tmp_path / "good.jsonl", GOOD * 4)
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(GOOD[0]) + "\n{not json\n")
    with pytest.raises(ValidationError, match="line 2: invalid JSON"):
        ingest_files(store, [good, broken], chunk_size=2)
    assert all(n == 0 for n in store.counts().values())


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_chunk_reader_gives_the_records_of_read_records_in_chunks(tmp_path, suffix):
    records = [GOOD[i % 3] | {"query_id": f"q{i}"} for i in range(7)]
    path = tmp_path / f"in{suffix}"
    if suffix == ".jsonl":
        write_jsonl(path, records)
    elif suffix == ".csv":
        write_csv(path, records)
    else:
        names = list(dict.fromkeys(k for r in records for k in r))
        pq.write_table(pa.Table.from_pylist([{k: r.get(k) for k in names} for r in records]), path)
    reader = ChunkReader(path, chunk_size=3)
    chunks = list(reader)
    assert [len(c) for c in chunks] == [3, 3, 1]
    assert [r for c in chunks for r in c] == read_records(path)[0]
    assert reader.problems == [] and not reader.failed


def test_a_killed_ingest_s_temporary_folder_is_removed_by_the_next(tmp_path):
    import subprocess
    import sys

    from graphdb.ingest import SPILL_PREFIX, remove_stale_spills

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], text=True,
                          capture_output=True, check=True).stdout.strip()  # fmt: skip
    stale = tmp_path / f"{SPILL_PREFIX}{gone}-abc"
    live = tmp_path / f"{SPILL_PREFIX}{__import__('os').getpid()}-def"
    for folder in (stale, live):
        folder.mkdir()
        (folder / "spill.parquet").write_bytes(b"x")
    remove_stale_spills(tmp_path)
    assert not stale.exists() and live.exists()
