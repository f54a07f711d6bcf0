"""Batch routing files: read route requests from JSONL or CSV, write results as JSONL."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from prcore.errors import ProuterError

__all__ = ["FORMATS", "read_requests", "write_jsonl"]

FORMATS = (".jsonl", ".csv")


def _records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) of a .jsonl or .csv file; blank JSONL lines are skipped."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ProuterError(f"{path}: unsupported input format {suffix!r}; use one of {FORMATS}")
    try:
        with path.open(newline="", encoding="utf-8") as f:
            if suffix == ".csv":
                reader = csv.DictReader(f)
                if not reader.fieldnames or "query" not in reader.fieldnames:
                    raise ProuterError(f"{path}: the CSV header needs a 'query' column")
                for n, row in enumerate(reader, start=2):
                    yield n, {k: (v if v != "" else None) for k, v in row.items()}
                return
            for n, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ProuterError(f"{path}:{n}: not valid JSON ({exc.msg})") from None
                if not isinstance(record, dict):
                    raise ProuterError(f"{path}:{n}: a record must be a JSON object")
                yield n, record
    except OSError as exc:
        raise ProuterError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ProuterError(f"{path}: not UTF-8 text") from None


def read_requests(
    path: Path, *, user: str | None = None, task: str | None = None
) -> list[tuple[int, str, str, str | None]]:
    """(line, user, query, task) per record of ``path``.

    Each record has ``query`` (text) and optionally ``user`` and ``task``;
    ``user`` / ``task`` given here fill the records that lack them. A record
    without a query or a user raises :class:`ProuterError` naming its line.
    """
    out = []
    for n, record in _records(Path(path)):
        query = record.get("query")
        if not isinstance(query, str) or not query.strip():
            raise ProuterError(f"{path}:{n}: 'query' is missing or not a non-empty string")
        who = record.get("user") or user
        if not isinstance(who, str) or not who.strip():
            raise ProuterError(f"{path}:{n}: no 'user' in the record and no --user given")
        what = record.get("task") or task
        if what is not None and not isinstance(what, str):
            raise ProuterError(f"{path}:{n}: 'task' must be a string")
        out.append((n, who, query, what))
    if not out:
        raise ProuterError(f"{path}: no records")
    return out


def write_jsonl(records: Iterable[dict[str, Any]], out: IO[str]) -> int:
    """Write one JSON object per line; returns how many."""
    n = 0
    for record in records:
        out.write(json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n")
        n += 1
    return n
