"""Pairwise human judgements (MT-Bench human judgements, Chatbot Arena votes) -> records.

A judgement file (JSONL, JSON list or CSV) has one vote per row:
``question_id``, ``judge`` (the user), ``model_a``, ``model_b`` and ``winner``
in ``model_a`` / ``model_b`` / ``tie`` (Arena's ``tie (bothbad)`` is a tie too),
and optionally ``turn`` (MT-Bench: 1 or 2; Arena: the number of user turns)
and ``tstamp`` (Unix seconds, kept as the edge's ``ts``). Chatbot Arena battle
records (``model_a``, ``model_b``, ``winner`` incl. ``tie (bothbad)``,
``judge``, ``conversation_a/b``, ``turn``, ``language``, ``tstamp``) are read
the same way (``language`` and ``conversation_b`` are not stored).
Question texts come from a questions file (MT-Bench ``question.jsonl``:
``question_id``, ``category``, ``turns``), or from the vote itself (Arena's
``conversation_a``: the user messages).

Each vote becomes a ``preferred`` record (winner over loser) or a ``tie``
record (``model_a`` tied with ``model_b``) from the judge, on the query
``<question_id>`` (turn 1) or ``<question_id>:turn<k>``, in the task named by
the question's category (default ``preferences``). A vote with an unknown
winner value or a question without any text is reported with its line and
left to the canonical validation to reject (with the file, line and field);
a ``turn`` that is not a positive integer rejects the file, naming its lines.
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from prcore.errors import ValidationError
from workloads.adapters.base import AdapterResult

__all__ = ["load_preferences"]

_WINNERS = {"model_a": "a", "model_b": "b", "tie": "tie", "tie (bothbad)": "tie"}


def _rows(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(location, row) pairs from a JSONL, JSON-list or CSV file."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            with path.open(newline="", encoding="utf-8") as fh:
                reader = csv.DictReader(fh)
                return [(f"line {reader.line_num}", row) for row in reader]
        text = path.read_text(encoding="utf-8")
        if suffix == ".json":
            return [(f"item {i}", row) for i, row in enumerate(json.loads(text), start=1)]
        if suffix in (".jsonl", ".ndjson"):
            return [
                (f"line {i}", json.loads(line))
                for i, line in enumerate(text.splitlines(), start=1)
                if line.strip()
            ]
    except (OSError, ValueError) as exc:
        raise ValidationError(f"{path}: cannot read: {exc}") from None
    raise ValidationError(f"{path}: unsupported file type {suffix!r}; valid: .jsonl .json .csv")


def _questions(path: Path | None) -> dict[str, dict[str, Any]]:
    if path is None:
        return {}
    out = {}
    for where, row in _rows(path):
        if "question_id" not in row:
            raise ValidationError(f"{path}, {where}: no question_id")
        turns = row.get("turns") or [row.get("text") or row.get("prompt") or ""]
        if isinstance(turns, str):
            turns = [turns]
        out[str(row["question_id"])] = {"category": row.get("category"), "turns": turns}
    return out


def _user_turns(conversation: Any) -> list[str]:
    if isinstance(conversation, str):
        try:
            conversation = json.loads(conversation)
        except ValueError:
            return []
    if not isinstance(conversation, list):
        return []
    return [
        m.get("content", "")
        for m in conversation
        if isinstance(m, dict) and m.get("role") == "user"
    ]


def load_preferences(
    judgements: str | Path, *, questions: str | Path | None = None, task: str = "preferences"
) -> AdapterResult:
    """Read a judgement file (and optionally its questions) into canonical records."""
    judgements = Path(judgements)
    texts = _questions(Path(questions) if questions else None)
    result = AdapterResult(source=str(judgements))
    votes = ties = 0
    unknown_winner: list[str] = []
    bad_turn: list[str] = []
    models: set[str] = set()
    for where, row in _rows(judgements):
        qid = str(row.get("question_id", "")).strip()
        turn = _turn(row.get("turn"))
        if turn is None:
            bad_turn.append(f"{where}, field 'turn': {row.get('turn')!r} is not a positive integer")
            turn = 1
        question = texts.get(qid, {})
        turns = question.get("turns") or _user_turns(row.get("conversation_a"))
        text = "\n\n".join(turns[:turn]) if len(turns) >= turn else None
        winner = _WINNERS.get(str(row.get("winner", "")).strip().lower())
        a, b = row.get("model_a"), row.get("model_b")
        models.update(m for m in (a, b) if isinstance(m, str) and m.strip())
        if winner is None:
            unknown_winner.append(f"{where}: {row.get('winner')!r}")
        record = {
            "task_id": question.get("category") or task,
            "query_id": qid if turn == 1 else f"{qid}:turn{turn}",
            "query_text": text,
            "user_id": row.get("judge"),
            "llm_id": b if winner == "b" else a,
            "other_llm_id": a if winner == "b" else b,
            "decision": {"a": "preferred", "b": "preferred", "tie": "tie"}.get(
                winner or "", str(row.get("winner"))
            ),
            "timestamp": _timestamp(row.get("tstamp")),
        }
        result.add(where, record)
        votes += 1
        ties += winner == "tie"
    # Every model a vote names is an LLM of the log, also one no judge ever preferred.
    result.llms = pa.table({"id": pa.array(sorted(models), pa.string())})
    result.summary.append(f"read {judgements.name}: {votes} votes ({ties} ties kept as ties)")
    if unknown_winner:
        result.summary.append(
            f"{len(unknown_winner)} votes with a winner that is not model_a / model_b / tie "
            f"(rejected by validation), e.g. {unknown_winner[:3]}"
        )
    if bad_turn:
        raise ValidationError(f"{judgements}: " + "; ".join(bad_turn) + " (nothing written)")
    return result


def _turn(value: Any) -> int | None:
    """The vote's turn (1 when absent), or None when it is not a positive integer."""
    if value in (None, ""):
        return 1
    try:
        turn = int(value)
    except (TypeError, ValueError):
        return None
    return turn if turn >= 1 and turn == float(value) else None


def _timestamp(value: Any) -> str | None:
    if value in (None, ""):
        return None
    try:
        return datetime.fromtimestamp(float(value), tz=UTC).isoformat().replace("+00:00", "Z")
    except (TypeError, ValueError):
        return str(value)
