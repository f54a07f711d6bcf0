"""Small helpers shared by the reliability tests: canonical records and files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from graphdb.store import GraphStore

ANSWER = {
    "task_id": "math",
    "query_id": "q1",
    "query_text": "What is 2+2?",
    "llm_id": "small",
    "performance": 1,
    "cost": 0.001,
}
OTHER = {
    "task_id": "math",
    "query_id": "q2",
    "query_text": "Is 7 prime?",
    "llm_id": "large",
    "performance": 0,
    "cost": 0.01,
}


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def is_empty(store: GraphStore) -> bool:
    return all(n == 0 for n in store.counts().values())
