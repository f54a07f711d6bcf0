"""Small preference-only workloads (MT-Bench human-judgement format) for the tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from graphdb.store import GraphStore
from graphdb.tables import embedding_array
from workloads.adapters.base import load
from workloads.adapters.preferences import load_preferences

LLMS = ("strong", "middle", "weak")
CATEGORIES = ("math", "writing")


def write_mtbench(
    folder: Path,
    *,
    n_questions: int = 80,
    judges: int = 4,
    seed: int = 0,
    contrarians: int = 0,
    noise: float = 0.7,
) -> tuple[Path, Path]:
    """A question.jsonl and a human_judgments.jsonl where strong > middle > weak (with
    some noise and ties; for the first ``contrarians`` judges the other way round);
    returns their paths."""
    rng = np.random.default_rng(seed)
    questions = folder / "question.jsonl"
    votes = folder / "human_judgments.jsonl"
    with questions.open("w") as fh:
        for q in range(n_questions):
            row = {
                "question_id": 100 + q,
                "category": CATEGORIES[q % 2],
                "turns": [f"question {q} about {CATEGORIES[q % 2]}"],
            }
            fh.write(json.dumps(row) + "\n")
    skill = {"strong": 2.0, "middle": 1.0, "weak": 0.0}
    with votes.open("w") as fh:
        for q in range(n_questions):
            for j in range(judges):
                a, b = rng.choice(LLMS, 2, replace=False)
                sign = -1.0 if j < contrarians else 1.0
                gap = sign * (skill[a] - skill[b]) + rng.normal(0, noise)
                winner = "tie" if abs(gap) < 0.15 else ("model_a" if gap > 0 else "model_b")
                row = {
                    "question_id": 100 + q,
                    "judge": f"judge{j}",
                    "model_a": str(a),
                    "model_b": str(b),
                    "winner": winner,
                    "turn": 1,
                    "tstamp": 1_700_000_000 + 60 * (q * judges + j),
                }
                fh.write(json.dumps(row) + "\n")
    return questions, votes


def embed_stand_in(store: GraphStore, dim: int = 8, seed: int = 0) -> None:
    """Write deterministic stand-in embeddings on every Query (a category direction plus noise)."""
    table = store.export_nodes("Query", ["text"])
    ids, texts = table.column("id").to_pylist(), table.column("text").to_pylist()
    rng = np.random.default_rng(seed)
    rows = rng.normal(0, 0.3, size=(len(ids), dim))
    rows[:, 0] += [1.0 if "math" in (t or "") else -1.0 for t in texts]
    store.write_nodes("Query", {"id": ids, "embedding": embedding_array(rows)})


def ingest_mtbench(store: GraphStore, folder: Path, **kwargs) -> Path:
    """Write the files, ingest them (as `prouter ingest preferences` does) and embed."""
    questions, votes = write_mtbench(folder, **kwargs)
    load(store, load_preferences(votes, questions=questions))
    embed_stand_in(store)
    return votes
