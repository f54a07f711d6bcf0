"""Pairwise preference logs (MT-Bench / Arena format) from a fixture the test writes."""

from __future__ import annotations

import json

import pytest

from prcore.errors import ValidationError
from workloads.adapters.base import load
from workloads.adapters.preferences import load_preferences

QUESTIONS = [
    {"question_id": 81, "category": "writing", "turns": ["Write a haiku.", "Now a limerick."]},
    {"question_id": 82, "category": "math", "turns": ["What is 17 * 3?"]},
]
VOTES = [
    {
        "question_id": 81,
        "judge": "author_0",
        "model_a": "gpt-4",
        "model_b": "vicuna",
        "winner": "model_a",
        "turn": 1,
        "tstamp": 1700000000,
    },
    {
        "question_id": 81,
        "judge": "author_0",
        "model_a": "gpt-4",
        "model_b": "vicuna",
        "winner": "model_b",
        "turn": 2,
    },
    {
        "question_id": 82,
        "judge": "author_1",
        "model_a": "claude",
        "model_b": "gpt-4",
        "winner": "tie",
    },
    {
        "question_id": 82,
        "judge": "author_2",
        "model_a": "claude",
        "model_b": "vicuna",
        "winner": "tie (bothbad)",
    },
    {
        "question_id": 82,
        "judge": "author_2",
        "model_a": "gpt-4",
        "model_b": "vicuna",
        "winner": "model_b",
    },
]


@pytest.fixture
def files(tmp_path):
    q = tmp_path / "question.jsonl"
    q.write_text("".join(json.dumps(x) + "\n" for x in QUESTIONS))
    v = tmp_path / "human_judgments.jsonl"
    v.write_text("".join(json.dumps(x) + "\n" for x in VOTES))
    return v, q


def test_votes_become_preferred_edges_with_ties_kept(store, files):
    votes, questions = files
    result = load_preferences(votes, questions=questions)
    assert result.summary == ["read human_judgments.jsonl: 5 votes (2 ties kept as ties)"]
    load(store, result)
    prefs = {
        (p["src"], p["dst"], p["query_id"], p["over"]): p
        for p in store.export_edges("PREFERRED").to_pylist()
    }
    assert set(prefs) == {
        ("author_0", "gpt-4", "81", "vicuna"),
        ("author_0", "vicuna", "81:turn2", "gpt-4"),
        ("author_1", "claude", "82", "gpt-4"),
        ("author_2", "claude", "82", "vicuna"),
        ("author_2", "vicuna", "82", "gpt-4"),
    }
    assert [k for k, p in prefs.items() if p["tie"]] == [
        ("author_1", "claude", "82", "gpt-4"),
        ("author_2", "claude", "82", "vicuna"),
    ]
    assert prefs[("author_0", "gpt-4", "81", "vicuna")]["ts"] == "2023-11-14T22:13:20Z"
    texts = {q["id"]: q["text"] for q in store.export_nodes("Query").to_pylist()}
    assert texts == {
        "81": "Write a haiku.",
        "81:turn2": "Write a haiku.\n\nNow a limerick.",
        "82": "What is 17 * 3?",
    }
    tasks = {(r["src"], r["dst"]) for r in store.export_edges("OF_TASK").to_pylist()}
    assert ("82", "math") in tasks
    counts = store.counts()
    assert (counts["User"], counts["LLM"], counts["ASKED"]) == (3, 3, 4)


def test_bad_votes_are_reported_with_their_line(store, files, tmp_path):
    votes, questions = files
    votes.write_text(
        votes.read_text()
        + json.dumps(
            {"question_id": 82, "judge": "x", "model_a": "a", "model_b": "b", "winner": "both"}
        )
        + "\n"
        + json.dumps(
            {"question_id": 99, "judge": "x", "model_a": "a", "model_b": "b", "winner": "model_a"}
        )
        + "\n"
    )
    result = load_preferences(votes, questions=questions)
    assert "1 votes with a winner that is not model_a / model_b / tie" in result.summary[1]
    with pytest.raises(ValidationError) as info:
        load(store, result)
    message = str(info.value)
    assert "line 6, field 'decision': 'both' is not one of chose, preferred, tie" in message
    assert "line 7, field 'query_id': unknown query '99'" in message
    assert store.counts()["PREFERRED"] == 0
    report = load(store, result, skip_invalid=True, report_path=tmp_path / "bad.jsonl")
    assert report.records_rejected == 2 and store.counts()["PREFERRED"] == 5


def test_arena_votes_take_the_question_from_the_conversation(tmp_path):
    vote = {
        "question_id": "abc",
        "judge": "arena_user_1",
        "model_a": "m1",
        "model_b": "m2",
        "winner": "model_a",
        "conversation_a": [
            {"role": "user", "content": "Hi there"},
            {"role": "assistant", "content": "Hello"},
        ],
    }
    path = tmp_path / "arena.json"
    path.write_text(json.dumps([vote]))
    record = load_preferences(path).records[0]
    assert record.location == "item 1"
    assert record.values["query_text"] == "Hi there"
    assert record.values["task_id"] == "preferences"


def test_an_llm_that_only_ever_loses_is_ingested(store, tmp_path):
    """Reported: MT-Bench ingest refused a model no judge ever preferred ("unknown LLM
    'weak'"), though the graph tables create it from other_llm_id."""
    q = tmp_path / "question.jsonl"
    q.write_text("".join(json.dumps(x) + "\n" for x in QUESTIONS))
    votes = [
        {"question_id": 81, "judge": "j", "model_a": "gpt-4", "model_b": "weak", "winner": w}
        for w in ("model_a",)
    ] + [
        {
            "question_id": 82,
            "judge": "j",
            "model_a": "weak",
            "model_b": "gpt-4",
            "winner": "model_b",
        }
    ]
    v = tmp_path / "human_judgments.jsonl"
    v.write_text("".join(json.dumps(x) + "\n" for x in votes))
    load(store, load_preferences(v, questions=q))
    assert {r["id"] for r in store.export_nodes("LLM").to_pylist()} == {"gpt-4", "weak"}
    losers = {p["over"] for p in store.export_edges("PREFERRED").to_pylist()}
    assert losers == {"weak"}
