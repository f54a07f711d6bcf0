"""RouterBench-format CSVs (as re-split by RouterDC) -> canonical records.

Each CSV row is one prompt with, per model, a 0/1 score column ``<model>``, a
``<model>|total_cost`` column (USD) and a ``<model>|model_response`` column;
``eval_name`` is the task and ``sample_id`` the prompt id; the file name
(``<task>_train.csv`` / ``<task>_test.csv``) is the split. Prompts and
responses are Python list literals (the turns, joined by newlines) or plain
strings; response columns are optional, and columns that are neither metadata
nor a model with a ``|total_cost`` column are ignored (and reported).

The public files are dirty; this adapter handles each case explicitly and says
what it did (``AdapterResult.summary``):

* **sample ids split over two rows** (14 ARC ids): one row holds only the
  gpt-3.5-turbo score and its prompt list repeats the prompt twice (its costs
  are doubled), the other holds the other 10 scores. ``merge`` (default) keeps
  one query with the single prompt as text, every model's score and response
  from the row that has the score, and the costs of the single-prompt row;
  ``drop`` removes these ids.
* **ids in both train and test** (6 of those): after merging the query exists
  once, in the split of its single-prompt row, so no prompt is in two splits.
* **missing scores** left after merging: that (query, model) outcome is dropped
  (the query keeps its other outcomes) and counted.
* **one prompt text under two sample ids**: kept as separate queries, counted
  (none in the shipped subset).
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from prcore.errors import ValidationError
from workloads.adapters.base import AdapterResult

__all__ = ["LLM_DESCRIPTIONS", "TASK_DESCRIPTIONS", "load_routerbench"]

TASK_DESCRIPTIONS = {
    "arc-challenge": "ARC-Challenge: grade-school science multiple-choice questions that need "
    "reasoning; answer with one letter.",
    "mbpp": "MBPP: short Python programming problems checked by unit tests.",
    "winogrande": "Winogrande: commonsense reasoning, choose the option that correctly fills "
    "the blank in a sentence.",
}

# Short descriptions of the 11 RouterBench models (for LLM embeddings); prices are not
# given by the data set, which records the USD cost of every answer instead.
LLM_DESCRIPTIONS = {
    "WizardLM/WizardLM-13B-V1.2": "WizardLM 13B v1.2: a 13-billion-parameter open model "
    "fine-tuned from Llama 2 on evolved instructions; small and cheap.",
    "claude-instant-v1": "Anthropic Claude Instant v1: a fast, low-cost proprietary chat model.",
    "claude-v1": "Anthropic Claude v1: a large proprietary chat model, strong at reasoning "
    "and writing; expensive.",
    "claude-v2": "Anthropic Claude 2: a large proprietary chat model with long context; expensive.",
    "gpt-3.5-turbo-1106": "OpenAI GPT-3.5 Turbo (November 2023): a fast, inexpensive "
    "proprietary chat model, good general ability.",
    "gpt-4-1106-preview": "OpenAI GPT-4 Turbo preview (November 2023): the strongest and most "
    "expensive model of the pool, best at reasoning and code.",
    "meta/code-llama-instruct-34b-chat": "Code Llama Instruct 34B: Meta's open 34-billion-"
    "parameter model specialised for programming.",
    "meta/llama-2-70b-chat": "Llama 2 Chat 70B: Meta's open 70-billion-parameter chat model.",
    "mistralai/mistral-7b-chat": "Mistral 7B Instruct: a 7-billion-parameter open model; very "
    "cheap.",
    "mistralai/mixtral-8x7b-chat": "Mixtral 8x7B Instruct: an open sparse mixture-of-experts "
    "model (47B total parameters), strong for its price.",
    "zero-one-ai/Yi-34B-Chat": "Yi 34B Chat: 01.AI's open 34-billion-parameter bilingual chat "
    "model.",
}

_META = {"sample_id", "prompt", "eval_name", "oracle_model_to_route_to"}


def _split_of(path: Path) -> str:
    stem = path.stem.lower()
    for split in ("train", "test", "val"):
        if stem.endswith(f"_{split}"):
            return split
    raise ValidationError(
        f"{path}: cannot tell the split from the file name "
        "(expected <task>_train.csv or <task>_test.csv)"
    )


def _turns(value: Any) -> list[str]:
    """A prompt or response cell as its turns: a Python list literal of strings, or one
    plain string (anything else that is not a list literal is taken as written)."""
    if not isinstance(value, str):
        return []
    if value.lstrip().startswith("["):
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            parsed = None
        if isinstance(parsed, list):
            return [str(x) for x in parsed]
    return [value]


def _read(paths: list[Path]) -> tuple[pd.DataFrame, list[str], list[str]]:
    """The rows of every file, the model columns and the other columns ignored."""
    frames = []
    for path in paths:
        frame = pd.read_csv(path, dtype={"sample_id": str})
        frame.insert(0, "_file", path.name)
        frame.insert(1, "_split", _split_of(path))
        frame.insert(2, "_line", range(2, len(frame) + 2))
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    missing = [c for c in ("sample_id", "prompt", "eval_name") if c not in table.columns]
    if missing:
        raise ValidationError(f"not RouterBench-format CSVs: missing columns {missing}")
    plain = [
        c
        for c in table.columns
        if "|" not in c and c not in _META and not c.startswith(("_", "Unnamed"))
    ]
    models = [c for c in plain if f"{c}|total_cost" in table.columns]
    if not models:
        raise ValidationError(
            "not RouterBench-format CSVs: no model (a score column <model> with a "
            "<model>|total_cost column)"
        )
    return table, models, [c for c in plain if c not in models]


def load_routerbench(
    data_dir: str | Path,
    *,
    tasks: list[str] | None = None,
    split_rows: str = "merge",
    responses: bool = False,
) -> AdapterResult:
    """Read ``<task>_{train,test}.csv`` files from ``data_dir`` into canonical records.

    ``tasks`` limits the file stems read (e.g. ``["mbpp"]``); ``responses``
    keeps the models' raw answers on the outcome edges (about 10 MB).
    """
    if split_rows not in ("merge", "drop"):
        raise ValidationError(f"split_rows must be 'merge' or 'drop', got {split_rows!r}")
    data_dir = Path(data_dir)
    paths = sorted(
        p for p in data_dir.glob("*.csv") if tasks is None or p.stem.rsplit("_", 1)[0] in tasks
    )
    if not paths:
        raise ValidationError(
            f"no RouterBench CSV files in {data_dir}" + (f" for tasks {tasks}" if tasks else "")
        )
    table, models, ignored = _read(paths)
    result = AdapterResult(source=str(data_dir))
    for path in paths:
        result.summary.append(f"read {path.name}: {(table._file == path.name).sum()} rows")
    if ignored:
        result.summary.append(
            f"ignored {len(ignored)} columns without a <column>|total_cost column "
            f"(not models): {', '.join(ignored)}"
        )

    counts = table.groupby("sample_id").size()
    split_ids = sorted(counts[counts > 1].index)
    both_splits = sorted(
        sid for sid in split_ids if table.loc[table.sample_id == sid, "_split"].nunique() > 1
    )
    if split_ids:
        verb = "merged into one query each" if split_rows == "merge" else "dropped"
        result.summary.append(
            f"{len(split_ids)} sample ids split over two rows: {verb}"
            + (
                f"; {len(both_splits)} of them were in both train and test "
                "(merged: kept in the split of the single-prompt row)"
                if both_splits
                else ""
            )
        )
    dropped_missing = 0
    described: set[str] = set()
    texts: Counter[tuple[str, str]] = Counter()
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in table.to_dict("records"):
        grouped.setdefault(row["sample_id"], []).append(row)
    for sid, rows in grouped.items():
        if len(rows) > 1 and split_rows == "drop":
            continue
        query = _merge(rows, models, responses)
        texts[(query["split"], query["text"])] += 1
        first = True
        for model in models:
            score, cost, response = query["outcomes"][model]
            if pd.isna(score):
                dropped_missing += 1
                continue
            record = {
                "task_id": query["task"],
                "query_id": sid,
                "llm_id": model,
                "performance": float(score),
                "cost": float(cost),
                "response": response if responses else None,
            }
            if first:
                record |= {
                    "query_text": query["text"],
                    "split": query["split"],
                    "task_description": TASK_DESCRIPTIONS.get(query["task"]),
                }
                first = False
            if model not in described:
                record["llm_description"] = LLM_DESCRIPTIONS.get(model)
                described.add(model)
            result.add(f"{query['where']} ({model})", record)
    if dropped_missing:
        result.summary.append(f"{dropped_missing} (query, model) outcomes without a score dropped")
    shared = sum(n - 1 for n in texts.values() if n > 1)
    if shared:
        result.summary.append(
            f"{shared} prompts share their exact text with another sample id "
            "(kept as separate queries)"
        )
    splits = Counter(r.values["split"] for r in result.records if "split" in r.values)
    result.summary.append(
        "queries by split: " + ", ".join(f"{k} {v}" for k, v in sorted(splits.items()))
    )
    return result


def _merge(rows: list[dict[str, Any]], models: list[str], responses: bool) -> dict[str, Any]:
    """One query from its row(s); see the module docstring for the merge rule."""
    parsed = [(row, _turns(row["prompt"])) for row in rows]
    # The canonical row is the one whose prompt list is not repeated.
    canonical, prompt = min(parsed, key=lambda item: len(item[1]))
    outcomes = {}
    for model in models:
        scored = [row for row, _ in parsed if pd.notna(row[model])]
        source = scored[0] if scored else canonical
        response = "\n".join(_turns(source.get(f"{model}|model_response"))) if responses else None
        outcomes[model] = (source[model], canonical[f"{model}|total_cost"], response or None)
    where = " + ".join(f"{row['_file']}, line {row['_line']}" for row, _ in parsed)
    return {
        "task": canonical["eval_name"],
        "split": canonical["_split"],
        "text": "\n".join(prompt),
        "outcomes": outcomes,
        "where": where,
    }
