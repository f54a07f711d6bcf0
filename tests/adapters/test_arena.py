"""Chatbot Arena battle records: votes with timestamps, ties, and bad records rejected."""

from __future__ import annotations

import json

import pytest

from prcore.errors import ValidationError
from workloads.adapters.base import load
from workloads.adapters.preferences import load_preferences


def battle(qid: str, winner: str, **extra) -> dict:
    """One Arena battle record (two user turns in the conversation)."""
    turns = [{"role": "user", "content": f"{qid} first"}, {"role": "assistant", "content": "ok"}]
    turns += [{"role": "user", "content": f"{qid} second"}]
    return {
        "question_id": qid,
        "model_a": "alpha",
        "model_b": "beta",
        "winner": winner,
        "judge": "arena_user_7",
        "conversation_a": turns,
        "conversation_b": turns,
        "turn": 2,
        "anony": True,
        "language": "English",
        "tstamp": 1682351591.1322,
    } | extra


def write(tmp_path, records) -> object:
    path = tmp_path / "arena.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_arena_battles_become_votes_with_their_timestamps(store, tmp_path):
    path = write(
        tmp_path,
        [battle("q1", "model_b"), battle("q2", "tie (bothbad)"), battle("q3", "tie", turn=1)],
    )
    load(store, load_preferences(path))
    edges = {p["query_id"]: p for p in store.export_edges("PREFERRED").to_pylist()}
    assert set(edges) == {"q1:turn2", "q2:turn2", "q3"}
    assert (edges["q1:turn2"]["src"], edges["q1:turn2"]["dst"]) == ("arena_user_7", "beta")
    assert edges["q1:turn2"]["over"] == "alpha" and not edges["q1:turn2"]["tie"]
    assert edges["q2:turn2"]["tie"] and edges["q3"]["tie"]
    assert edges["q1:turn2"]["ts"].startswith("2023-04-24T15:53:11")
    texts = {q["id"]: q["text"] for q in store.export_nodes("Query").to_pylist()}
    assert texts["q1:turn2"] == "q1 first\n\nq1 second" and texts["q3"] == "q3 first"


def test_bad_arena_records_are_rejected_with_file_line_and_field(store, tmp_path):
    path = write(
        tmp_path,
        [
            battle("q0", "model_b"),
            battle("q1", "model_a"),
            battle("q2", "model_c"),
            battle("q3", "model_a", tstamp="yesterday"),
            battle("q4", "model_a", model_b=None),
        ],
    )
    with pytest.raises(ValidationError) as info:
        load(store, load_preferences(path))
    message = str(info.value)
    assert "arena.jsonl" in message
    assert "line 3, field 'decision'" in message
    assert "line 4, field 'timestamp'" in message
    assert "line 5, field 'other_llm_id'" in message
    assert "line 1," not in message and "line 2," not in message
    assert store.counts()["PREFERRED"] == 0 and store.counts()["Query"] == 0


def test_a_bad_turn_rejects_the_file_naming_the_line(store, tmp_path):
    path = write(tmp_path, [battle("q1", "model_a"), battle("q2", "model_a", turn="two")])
    with pytest.raises(ValidationError, match=r"line 2, field 'turn': 'two' is not a positive"):
        load(store, load_preferences(path))
    assert store.counts()["PREFERRED"] == 0
