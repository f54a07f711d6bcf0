"""The canonical interaction format: fields, readers (CSV, JSONL, Parquet) and validation.

One record is one observation about a query. Every record names the query and
its task; it may also name the user who asked, an LLM with its outcome on the
query (performance, cost, tokens, response), and a user decision about that
LLM (``chose``, ``preferred`` over another LLM, or a ``tie`` with it). The
full field reference is :data:`FIELDS` and ``docs/canonical-format.md``.

Validation never guesses: every problem names the file, the line (CSV, JSONL)
or row (Parquet), the field and what is wrong, and callers decide whether one
problem rejects the whole input (the default) or only its record.
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prcore.errors import ValidationError

__all__ = [
    "CONSISTENT",
    "DECISIONS",
    "FIELDS",
    "MAX_COST_USD",
    "MAX_ID_CHARS",
    "MAX_PRICE_USD",
    "MAX_TEXT_CHARS",
    "MAX_TOKENS",
    "ChunkReader",
    "Field",
    "Problem",
    "RawRecord",
    "Validated",
    "check_record",
    "conflicts",
    "problem_lines",
    "read_records",
    "reference_problems",
    "refuse_invalid",
    "validate",
]

MAX_ID_CHARS = 512
MAX_TEXT_CHARS = 200_000
# Sanity bounds: a value beyond these is a unit mix-up or garbage, never a real outcome.
MAX_COST_USD = 1_000.0  # one answer
MAX_PRICE_USD = 10_000.0  # per 1M tokens
MAX_TOKENS = 1_000_000_000  # one prompt or answer
TIMESTAMP_YEARS = (1970, 2200)
DECISIONS = ("chose", "preferred", "tie")
EXTRA_CELLS = "__extra_cells__"  # a CSV row longer than its header: (cells, columns)
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Field:
    """One field of the canonical format."""

    name: str
    kind: str  # "id", "text", "float", "int", "choice", "timestamp"
    required: bool = False
    doc: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()


FIELDS: dict[str, Field] = {
    f.name: f
    for f in (
        Field("task_id", "id", True, "task (benchmark, product area) the query belongs to"),
        Field("query_id", "id", True, "stable id of the query; one task per query"),
        Field("query_text", "text", False, "the prompt; needed once per new query"),
        Field("task_description", "text", False, "prose description of the task"),
        Field("split", "choice", False, "dataset split of the query", choices=SPLITS),
        Field("user_id", "id", False, "who asked; required with a decision"),
        Field("user_alpha", "float", False, "user's quality weight in [0, 1]", 0.0, 1.0),
        Field("llm_id", "id", False, "the LLM this record is about"),
        Field("llm_description", "text", False, "prose description of the LLM"),
        Field("llm_input_price", "float", False, "USD per 1M input tokens", 0.0, MAX_PRICE_USD),
        Field("llm_output_price", "float", False, "USD per 1M output tokens", 0.0, MAX_PRICE_USD),
        Field("performance", "float", False, "quality of the answer in [0, 1]", 0.0, 1.0),
        Field("cost", "float", False, "USD cost of the LLM's answer", 0.0, MAX_COST_USD),
        Field("input_tokens", "int", False, "prompt tokens", 0, MAX_TOKENS),
        Field("output_tokens", "int", False, "completion tokens", 0, MAX_TOKENS),
        Field("response", "text", False, "the LLM's answer"),
        Field("decision", "choice", False, "user decision about llm_id", choices=DECISIONS),
        Field("other_llm_id", "id", False, "the LLM that llm_id was preferred over / tied with"),
        Field("reward", "float", False, "the user's reward for a 'chose' decision", -1.0, 1.0),
        Field("timestamp", "timestamp", False, "ISO 8601 time of the interaction (UTC if naive)"),
    )
}

# Fields that only make sense with an LLM, and with a decision.
_NEEDS_LLM = (
    "llm_description",
    "llm_input_price",
    "llm_output_price",
    "performance",
    "cost",
    "input_tokens",
    "output_tokens",
    "response",
    "decision",
)
_OUTCOME = ("performance", "cost", "input_tokens", "output_tokens", "response")


@dataclass(frozen=True)
class RawRecord:
    """One record as read: where it came from and its raw values."""

    source: str
    location: str  # "line 12" or "row 5"
    values: dict[str, Any]


@dataclass(frozen=True)
class Problem:
    """One reason a record (or a whole file) cannot be loaded."""

    source: str
    location: str
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.source}, {self.location}" if self.location else self.source
        return (
            f"{where}, field {self.field!r}: {self.message}"
            if self.field
            else f"{where}: {self.message}"
        )


@dataclass
class Validated:
    """The outcome of validation: clean records, rejected ones, and what was merged."""

    records: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[tuple[RawRecord, list[Problem]]] = field(default_factory=list)
    file_problems: list[Problem] = field(default_factory=list)
    duplicates: int = 0

    @property
    def problems(self) -> list[Problem]:
        return self.file_problems + [p for _, ps in self.rejected for p in ps]


# -- readers -------------------------------------------------------------------
_READABLE = (".csv", ".jsonl", ".ndjson", ".parquet")
_READ_ERRORS = (OSError, UnicodeDecodeError, csv.Error, ValueError)


def read_records(path: str | Path) -> tuple[list[RawRecord], list[Problem]]:
    """Read a canonical file (``.csv``, ``.jsonl``/``.ndjson``, ``.parquet``).

    Returns the records and file-level problems (unreadable file, unknown
    columns, malformed JSON lines).
    """
    records: list[RawRecord] = []
    reader = ChunkReader(path, chunk_size=1 << 62)
    for chunk in reader:
        records.extend(chunk)
    return ([] if reader.failed else records), reader.problems


class ChunkReader:
    """A canonical file read ``chunk_size`` records at a time (lists of :class:`RawRecord`).

    After the iteration ``problems`` holds the file-level problems, in the order
    :func:`read_records` gives them; ``failed`` says the file could not be read at
    all (its records are then not to be used).
    """

    def __init__(self, path: str | Path, *, chunk_size: int) -> None:
        self.path = Path(path)
        self.chunk_size = max(1, int(chunk_size))
        self.problems: list[Problem] = []
        self.failed = False

    def __iter__(self) -> Iterator[list[RawRecord]]:
        path, source = self.path, str(self.path)
        suffix = path.suffix.lower()
        if suffix not in _READABLE:
            self._fail(
                f"unsupported file type {suffix!r}; valid types: .csv, .jsonl, .ndjson, .parquet"
            )
            return
        if not path.is_file():
            self._fail("no such file")
            return
        readers = {".csv": _read_csv, ".parquet": _read_parquet}
        items = readers.get(suffix, _read_jsonl)(path)
        columns: set[str] = set()
        any_record = False
        chunk: list[RawRecord] = []
        try:
            for item in items:
                if isinstance(item, Problem):
                    self.problems.append(item)
                    continue
                any_record = True
                columns.update(k for k in item.values if k != EXTRA_CELLS)
                chunk.append(item)
                if len(chunk) >= self.chunk_size:
                    yield chunk
                    chunk = []
        except _READ_ERRORS as exc:
            self._fail(f"cannot read file: {exc}")
            return
        if chunk:
            yield chunk
        if not any_record and not self.problems:
            self.problems.append(
                Problem(source, "", None, "no records in the file (empty, or a header only)")
            )
        unknown = sorted(columns - set(FIELDS))
        if unknown:
            self.problems.append(
                Problem(
                    source,
                    "",
                    None,
                    f"unknown columns {unknown}; valid columns: {', '.join(FIELDS)}",
                )
            )

    def _fail(self, message: str) -> None:
        self.failed = True
        self.problems = [Problem(str(self.path), "", None, message)]


def _read_csv(path: Path) -> Iterator[RawRecord | Problem]:
    """Rows keyed by the header; a location is the file line where the row starts (header: 1).

    A UTF-8 byte-order mark is dropped; a repeated header name rejects the file.
    """
    csv.field_size_limit(1 << 30)
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            return
        first: dict[str, int] = {}
        for number, name in enumerate(header, start=1):
            if name in first:
                message = f"duplicate column {name!r} (columns {first[name]} and {number})"
                yield Problem(str(path), "line 1", None, message)
                return
            first[name] = number
        start = reader.line_num + 1
        for cells in reader:
            if not cells:  # a blank line
                start = reader.line_num + 1
                continue
            values: dict[str, Any] = dict(zip(header, cells, strict=False))
            if len(cells) > len(header):
                values[EXTRA_CELLS] = (len(cells), len(header))
            yield RawRecord(str(path), f"line {start}", values)
            start = reader.line_num + 1


class _DuplicateKeyError(ValueError):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKeyError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _read_jsonl(path: Path) -> Iterator[RawRecord | Problem]:
    with path.open(encoding="utf-8-sig") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line, object_pairs_hook=_no_duplicate_keys)
            except json.JSONDecodeError as exc:
                yield Problem(str(path), f"line {number}", None, f"invalid JSON: {exc.msg}")
                continue
            except _DuplicateKeyError as exc:
                yield Problem(str(path), f"line {number}", None, str(exc))
                continue
            if not isinstance(value, dict):
                yield Problem(str(path), f"line {number}", None, "expected a JSON object")
                continue
            yield RawRecord(str(path), f"line {number}", value)


def _read_parquet(path: Path, batch_rows: int = 10_000) -> Iterator[RawRecord | Problem]:
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as parquet:
        names = parquet.schema_arrow.names
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            yield Problem(str(path), "", None, f"duplicate columns {repeated}")
            return
        number = 0
        for batch in parquet.iter_batches(batch_size=batch_rows):
            for row in batch.to_pylist():
                number += 1
                yield RawRecord(str(path), f"row {number}", row)


# -- per-field conversion --------------------------------------------------------
def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def _convert(f: Field, value: Any) -> Any:
    """Convert one raw value; raise ``ValueError`` with the reason when it is bad."""
    if f.kind in ("id", "text"):
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValueError(f"expected a string, got {type(value).__name__} {value!r:.60}")
        text = str(value)
        limit = MAX_ID_CHARS if f.kind == "id" else MAX_TEXT_CHARS
        if len(text) > limit:
            raise ValueError(f"too long: {len(text)} characters (at most {limit})")
        _check_characters(text)
        if f.kind == "id" and text != text.strip():
            raise ValueError(f"has leading or trailing whitespace: {text!r:.60}")
        return text
    if f.kind == "choice":
        text = str(value).strip().lower()
        if text not in f.choices:
            raise ValueError(f"{value!r:.60} is not one of {', '.join(f.choices)}")
        return text
    if f.kind == "timestamp":
        try:
            moment = datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise ValueError(f"{value!r:.60} is not an ISO 8601 timestamp") from None
        low, high = TIMESTAMP_YEARS
        if not low <= moment.year <= high:  # also keeps the UTC conversion from overflowing
            raise ValueError(f"{value!r:.60} is out of range (years {low} to {high})")
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    number = _number(value, integral=f.kind == "int")
    if f.minimum is not None and number < f.minimum:
        raise ValueError(f"must be at least {f.minimum:g}, got {number:g}")
    if f.maximum is not None and number > f.maximum:
        raise ValueError(f"must be at most {f.maximum:g}, got {number:g}")
    return number


def _number(value: Any, *, integral: bool) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected a number, got {type(value).__name__} {value!r:.60}")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"expected a number, got {value!r:.60}") from None
    except OverflowError:  # an integer beyond any float
        raise ValueError(f"is too large: {str(value)[:20]}... ({len(str(value))} digits)") from None
    if math.isnan(number):
        raise ValueError("is NaN")
    if math.isinf(number):
        raise ValueError("is infinite")
    if integral:
        if not number.is_integer():
            raise ValueError(f"expected a whole number, got {value!r:.60}")
        return int(number)
    return number


def _check_characters(text: str) -> None:
    """Reject what no store can keep faithfully: NUL characters and lone surrogates."""
    if "\x00" in text:
        raise ValueError("contains a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"is not valid Unicode (lone surrogate {ascii(text[exc.start])[1:-1]} at "
            f"character {exc.start + 1})"
        ) from None


def check_record(raw: RawRecord) -> tuple[dict[str, Any], list[Problem]]:
    """One record converted field by field, and what is wrong with it on its own."""
    problems: list[Problem] = []

    def bad(name: str | None, message: str) -> None:
        problems.append(Problem(raw.source, raw.location, name, message))

    if EXTRA_CELLS in raw.values:
        cells, columns = raw.values[EXTRA_CELLS]
        bad(None, f"{cells} cells but the header has {columns} columns")
    record: dict[str, Any] = {}
    for name, f in FIELDS.items():
        value = raw.values.get(name)
        if _is_missing(value):
            if f.required:
                bad(name, "missing required field")
            continue
        try:
            record[name] = _convert(f, value)
        except ValueError as exc:
            bad(name, str(exc))
    if "llm_id" not in record:
        for name in _NEEDS_LLM:
            if name in record:
                bad(name, "given without llm_id")
    decision = record.get("decision")
    if decision and "user_id" not in record:
        bad("user_id", f"a {decision!r} decision needs user_id")
    if decision in ("preferred", "tie") and "other_llm_id" not in record:
        bad("other_llm_id", f"a {decision!r} decision needs other_llm_id")
    if "other_llm_id" in record and decision not in ("preferred", "tie"):
        bad("other_llm_id", "only used with a 'preferred' or 'tie' decision")
    if "other_llm_id" in record and record.get("other_llm_id") == record.get("llm_id"):
        bad("other_llm_id", "is the same LLM as llm_id")
    if "reward" in record and decision != "chose":
        bad("reward", "only used with a 'chose' decision")
    if "user_alpha" in record and "user_id" not in record:
        bad("user_alpha", "given without user_id")
    return record, problems


# -- cross-record checks ---------------------------------------------------------
# Each entry: the fields identifying an entity, and the fields that must agree
# between all records that name it.
CONSISTENT: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("task_id",), ("task_description",)),
    (("query_id",), ("task_id", "query_text", "split")),
    (("llm_id",), ("llm_description", "llm_input_price", "llm_output_price")),
    (("user_id",), ("user_alpha",)),
    (("query_id", "llm_id"), _OUTCOME),
    (("user_id", "query_id", "llm_id", "decision", "other_llm_id"), ("reward",)),
    (("user_id", "query_id", "llm_id", "other_llm_id"), ("decision",)),
)


def conflicts(items: list[tuple[RawRecord, dict[str, Any]]]) -> dict[int, list[Problem]]:
    """Records (indices into ``items``) that disagree with another record about the same
    entity; ``items`` in file order."""
    found: dict[int, list[Problem]] = defaultdict(list)
    for key_fields, value_fields in CONSISTENT:
        for value_field in value_fields:
            seen: dict[tuple, tuple[Any, int]] = {}
            for index, (raw, record) in enumerate(items):
                if value_field not in record or not all(k in record for k in key_fields):
                    continue
                key = tuple(record[k] for k in key_fields)
                value = record[value_field]
                if key not in seen:
                    seen[key] = (value, index)
                    continue
                first_value, first_index = seen[key]
                if value != first_value:
                    first = items[first_index][0]
                    label = ", ".join(
                        f"{k}={v!r:.60}" for k, v in zip(key_fields, key, strict=True)
                    )
                    found[index].append(
                        Problem(
                            raw.source,
                            raw.location,
                            value_field,
                            f"conflicts with {first.source}, {first.location} for {label}: "
                            f"{value!r:.60} vs {first_value!r:.60}",
                        )
                    )
                    found[first_index].append(
                        Problem(
                            first.source,
                            first.location,
                            value_field,
                            f"conflicts with {raw.source}, {raw.location} for {label}",
                        )
                    )
    return found


def reference_problems(
    raw: RawRecord,
    record: Mapping[str, Any],
    *,
    query_known: bool,
    other_known: bool,
    stored_task: str | None,
) -> list[Problem]:
    """A record's reference problems: its query stored under another task, an unknown
    query (``query_known``: some record or the graph gives its text), an unknown
    ``other_llm_id`` (``other_known``: some record or the graph has that LLM)."""
    found: list[Problem] = []
    if stored_task is not None and stored_task != record["task_id"]:
        # A query belongs to one task for good: moving it would leave two OF_TASK edges.
        found.append(
            Problem(
                raw.source,
                raw.location,
                "task_id",
                f"query {record['query_id']!r:.80} belongs to task {stored_task!r:.80} "
                f"in the graph, not {record['task_id']!r:.80}",
            )
        )
    if not query_known:
        found.append(
            Problem(
                raw.source,
                raw.location,
                "query_id",
                f"unknown query {record['query_id']!r:.80}: no record "
                "gives its query_text and the graph does not have it",
            )
        )
    other = record.get("other_llm_id")
    if other is not None and not other_known:
        found.append(
            Problem(
                raw.source,
                raw.location,
                "other_llm_id",
                f"unknown LLM {other!r:.80}: no record has it as "
                "llm_id and the graph does not have it",
            )
        )
    return found


def _unknown_references(
    items: list[tuple[RawRecord, dict[str, Any]]],
    known_queries: set[str],
    known_llms: set[str],
    query_tasks: Mapping[str, str],
) -> dict[int, list[Problem]]:
    with_text = known_queries | {r["query_id"] for _, r in items if "query_text" in r}
    llms = known_llms | {r["llm_id"] for _, r in items if "llm_id" in r}
    found: dict[int, list[Problem]] = defaultdict(list)
    for index, (raw, record) in enumerate(items):
        problems = reference_problems(
            raw,
            record,
            query_known=record["query_id"] in with_text,
            other_known=record.get("other_llm_id") in llms,
            stored_task=query_tasks.get(record["query_id"]),
        )
        if problems:
            found[index] = problems
    return found


def validate(
    raws: Iterable[RawRecord],
    *,
    known_queries: Iterable[str] = (),
    known_llms: Iterable[str] = (),
    query_tasks: Mapping[str, str] | None = None,
) -> Validated:
    """Check every record and their consistency; merge exact duplicates.

    ``known_queries`` / ``known_llms`` are ids already in the graph, so that
    records may refer to them without repeating their text. ``query_tasks``
    maps stored queries to their task: a record giving another task is rejected.
    """
    out = Validated()
    items: list[tuple[RawRecord, dict[str, Any]]] = []
    for raw in raws:
        record, problems = check_record(raw)
        if problems:
            out.rejected.append((raw, problems))
        else:
            items.append((raw, record))
    known_q, known_l = set(known_queries), set(known_llms)
    # Rejecting a record can orphan others that relied on it: repeat until stable.
    while True:
        bad = conflicts(items)
        for index, problems in _unknown_references(
            items, known_q, known_l, query_tasks or {}
        ).items():
            bad[index].extend(problems)
        if not bad:
            break
        out.rejected.extend((items[i][0], bad[i]) for i in sorted(bad))
        items = [item for i, item in enumerate(items) if i not in bad]
    unique: dict[tuple, dict[str, Any]] = {}
    for _, record in items:
        unique.setdefault(tuple(sorted(record.items())), record)
    out.duplicates = len(items) - len(unique)
    out.records = list(unique.values())
    return out


def refuse_invalid(validated: Validated, records_read: int, outcome: str) -> None:
    """Raise a ValidationError naming every problem of ``validated`` (if any):
    "N of M records are invalid; ``outcome``:" and the problem lines."""
    if validated.problems:
        head = f"{len(validated.rejected)} of {records_read} records are invalid; {outcome}:"
        raise ValidationError("\n".join([head, *problem_lines(validated)]), validated.problems)


def problem_lines(validated: Validated, limit: int = 20) -> Iterator[str]:
    """Human-readable problem lines, at most ``limit`` then a count of the rest."""
    problems = validated.problems
    for problem in problems[:limit]:
        yield str(problem)
    if len(problems) > limit:
        yield f"... and {len(problems) - limit} more problems"
