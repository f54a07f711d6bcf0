"""A RouterBench-layout set of another shape, made from the shared RouterBench subset,
to check that ingest does not depend on RouterBench's quirks.

Reads ``SRC/*.csv`` (never changed) and writes the same rows to ``DST``: prompts as
plain strings (multi-turn prompts, e.g. the 14 split ARC rows, stay list literals),
no ``|model_response`` columns, an extra non-model column, and LLM and task ids that
have no shipped description (so ``prouter embed`` infers them from the ids).

Example::

    python experiments/reshape_routerbench.py ../shared/data/routerbench /tmp/reshaped
    prouter --store ladybug:/tmp/r.lbug ingest routerbench /tmp/reshaped
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pandas as pd

ORGS = {
    "WizardLM/": "wizardlm/",
    "claude": "anthropic/claude",
    "gpt": "openai/gpt",
    "meta/": "meta-llama/",
    "mistralai/": "mistral-ai/",
    "zero-one-ai/": "01-ai/",
}
TASKS = {
    "arc-challenge": "arc_challenge_science",
    "mbpp": "python_basic_problems",
    "winogrande": "commonsense_fill_blank",
}
META = {"sample_id", "prompt", "eval_name", "oracle_model_to_route_to"}


def rename(column: str) -> str:
    """``<model>[|suffix]`` with the model id given an ``org/`` of its own."""
    model, sep, rest = column.partition("|")
    for prefix, new in ORGS.items():
        if model.startswith(prefix):
            return new + model[len(prefix) :] + sep + rest
    return column


def plain(prompt: str) -> str:
    """A one-turn list literal as its plain string; longer lists stay as they are."""
    turns = ast.literal_eval(prompt)
    return str(turns[0]) if isinstance(turns, list) and len(turns) == 1 else prompt


def main(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for path in sorted(src.glob("*.csv")):
        frame = pd.read_csv(path, dtype={"sample_id": str})
        frame["prompt"] = frame["prompt"].map(plain)
        frame = frame.drop(columns=[c for c in frame.columns if c.endswith("|model_response")])
        keep = [c for c in frame.columns if c in META or c.startswith("Unnamed")]
        frame = frame.rename(columns={c: rename(c) for c in frame.columns if c not in keep})
        frame["eval_name"] = frame["eval_name"].map(lambda t: TASKS.get(t, t))
        frame["source_benchmark"] = "routerbench"
        frame.to_csv(dst / path.name, index=False)
        print(f"{path.name}: {len(frame)} rows")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
