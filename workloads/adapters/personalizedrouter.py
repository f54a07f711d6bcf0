"""The PersonalizedRouter query pool and LLM descriptions -> canonical records.

``unified_qa_data.csv`` holds 240 benchmark queries (60 each from Alpaca, GSM8K,
Multi-News and SQuAD) with a task description; ``LLM_Descriptions_v1.json`` /
``_v2.json`` describe two 10-model candidate pools with prices (USD per 1M
tokens). The files hold no per-LLM outcomes, so this adapter yields tasks,
queries and LLMs only; outcomes come from running the models, or from another
data set.

Queries have no id upstream: the id is ``<task_id>-<first 12 hex of
sha256(query)>``, so the three SQuAD questions that appear twice become one
query (counted in the summary as exact duplicates). Reference answers and
metric names are not part of the graph schema and are not loaded.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa

from prcore.errors import ValidationError
from workloads.adapters.base import AdapterResult

__all__ = ["load_personalizedrouter", "query_id"]

_POOLS = {"v1": "LLM_Descriptions_v1.json", "v2": "LLM_Descriptions_v2.json"}


def query_id(task_id: str, text: str) -> str:
    """Stable id of a query without one: task plus a hash of its text."""
    return f"{task_id}-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:12]}"


def load_personalizedrouter(data_dir: str | Path, *, llm_pool: str = "v1") -> AdapterResult:
    """Read the query pool and one LLM pool (``v1`` or ``v2``) from ``data_dir``."""
    data_dir = Path(data_dir)
    if llm_pool not in _POOLS:
        raise ValidationError(f"unknown LLM pool {llm_pool!r}; valid pools: {', '.join(_POOLS)}")
    queries_path, llm_path = data_dir / "unified_qa_data.csv", data_dir / _POOLS[llm_pool]
    for path in (queries_path, llm_path):
        if not path.is_file():
            raise ValidationError(f"missing file {path}")
    frame = pd.read_csv(queries_path, dtype=str, keep_default_na=False)
    needed = {"task_id", "query", "task_description"}
    if not needed <= set(frame.columns):
        raise ValidationError(
            f"{queries_path}: missing columns {sorted(needed - set(frame.columns))}"
        )
    result = AdapterResult(source=str(queries_path))
    for line, row in enumerate(frame.to_dict("records"), start=2):
        result.add(
            f"row {line - 1}",
            {
                "task_id": row["task_id"],
                "task_description": row["task_description"] or None,
                "query_id": query_id(row["task_id"], row["query"]),
                "query_text": row["query"],
            },
        )
    try:
        pool = json.loads(llm_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{llm_path}: invalid JSON: {exc}") from None
    result.llms = pa.table(
        {
            "id": list(pool),
            "description": [" ".join(v["feature"].split()) for v in pool.values()],
            "input_price": [float(v["input_price"]) for v in pool.values()],
            "output_price": [float(v["output_price"]) for v in pool.values()],
        }
    )
    distinct = len({r.values["query_id"] for r in result.records})
    result.summary = [
        f"read {queries_path.name}: {len(frame)} rows, {distinct} distinct queries "
        f"in {frame.task_id.nunique()} tasks",
        f"read {llm_path.name}: {len(pool)} LLMs with descriptions and prices",
    ]
    return result
