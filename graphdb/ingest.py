"""Load canonical interaction records into a graph store.

``ingest_files`` reads and validates every file first, a chunk of records at a
time (:mod:`graphdb.chunked`: memory bounded by the chunk, not the file). By default one bad
record rejects the whole input and nothing is written; with
``skip_invalid=True`` the good records load and the rejected ones are written,
with their reasons, to a JSONL report. Writes are idempotent upserts, so a
re-run after a crash (or of the same files) converges to the same graph.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from graphdb.canonical import RawRecord, Validated, refuse_invalid, validate
from graphdb.chunked import DEFAULT_CHUNK, validate_files, write_spill
from graphdb.schema import NODES
from graphdb.store import GraphStore, WriteStats
from prcore.errors import ConfigError, ValidationError

__all__ = [
    "IngestReport",
    "check_report_path",
    "graph_tables",
    "ingest_files",
    "ingest_records",
    "remove_stale_spills",
    "write_stats_lines",
    "write_table",
    "write_tables",
]

log = logging.getLogger(__name__)

DEFAULT_REPORT = "rejected.jsonl"
SPILL_PREFIX = "prouter-ingest-"  # + pid: the temporary folder of one ingest

# Order matters: nodes before the edges that connect them.
WRITE_ORDER = (
    "Task",
    "LLM",
    "User",
    "Query",
    "OF_TASK",
    "ASKED",
    "ANSWERED_BY",
    "CHOSE",
    "PREFERRED",
)


@dataclass
class IngestReport:
    """What an ingest read, rejected, merged and wrote."""

    records_read: int = 0
    records_loaded: int = 0
    records_rejected: int = 0
    duplicates_merged: int = 0
    written: dict[str, WriteStats] = field(default_factory=dict)
    report_path: Path | None = None

    def lines(self) -> list[str]:
        """A short human-readable summary."""
        out = [
            f"records read: {self.records_read}, loaded: {self.records_loaded}, "
            f"rejected: {self.records_rejected}, exact duplicates merged: {self.duplicates_merged}"
        ]
        out += write_stats_lines(self.written)
        if self.report_path:
            out.append(f"rejected records and reasons: {self.report_path}")
        return out


def write_stats_lines(written: dict[str, WriteStats]) -> list[str]:
    """One aligned line per node or edge type: created, updated, unchanged."""
    return [
        f"  {name:<12} created {s.created:>8}  updated {s.updated:>8}  unchanged {s.unchanged:>8}"
        for name, s in written.items()
    ]


def _first(
    records: Iterable[dict[str, Any]], key: str, fields: Sequence[str]
) -> list[dict[str, Any]]:
    """One row per distinct ``key``, each field taken from the first record that has it."""
    rows: dict[Any, dict[str, Any]] = {}
    for record in records:
        if key not in record:
            continue
        row = rows.setdefault(record[key], {})
        for f in fields:
            if f in record and f not in row:
                row[f] = record[f]
    return [{"id": k, **v} for k, v in rows.items()]


def _table(rows: list[dict[str, Any]], columns: Sequence[str]) -> pa.Table:
    return pa.table({c: [r.get(c) for r in rows] for c in columns})


def graph_tables(records: Sequence[dict[str, Any]]) -> dict[str, pa.Table]:
    """Turn validated records into node and edge tables keyed by schema name."""
    tables: dict[str, pa.Table] = {}
    tasks = _first(records, "task_id", ["task_description"])
    tables["Task"] = _table(
        [{"id": t["id"], "description": t.get("task_description")} for t in tasks],
        ["id", "description"],
    )
    llms = _first(records, "llm_id", ["llm_description", "llm_input_price", "llm_output_price"])
    named = {t["id"] for t in llms}
    llms += [
        {"id": r["other_llm_id"]}
        for r in records
        if "other_llm_id" in r and r["other_llm_id"] not in named
    ]
    tables["LLM"] = _table(
        [
            {
                "id": t["id"],
                "description": t.get("llm_description"),
                "input_price": t.get("llm_input_price"),
                "output_price": t.get("llm_output_price"),
            }
            for t in _first(llms, "id", ["llm_description", "llm_input_price", "llm_output_price"])
        ],
        ["id", "description", "input_price", "output_price"],
    )
    users = _first(records, "user_id", ["user_alpha"])
    tables["User"] = _table(
        [{"id": u["id"], "alpha": u.get("user_alpha")} for u in users], ["id", "alpha"]
    )
    queries = _first(records, "query_id", ["query_text", "split", "task_id"])
    tables["Query"] = _table(
        [{"id": q["id"], "text": q.get("query_text"), "split": q.get("split")} for q in queries],
        ["id", "text", "split"],
    )
    tables["OF_TASK"] = _table(
        [{"src": q["id"], "dst": q["task_id"]} for q in queries], ["src", "dst"]
    )
    asked: dict[tuple[str, str], str | None] = {}
    for r in records:
        if "user_id" in r:
            pair = (r["user_id"], r["query_id"])
            asked[pair] = _earliest(asked.get(pair), r.get("timestamp"), pair in asked)
    tables["ASKED"] = _table(
        [{"src": u, "dst": q, "ts": ts} for (u, q), ts in asked.items()], ["src", "dst", "ts"]
    )
    outcome_fields = ["performance", "cost", "input_tokens", "output_tokens", "response"]
    outcomes: dict[tuple[str, str], dict[str, Any]] = {}
    for r in records:  # each value from the first record that gives it
        if "llm_id" in r and any(f in r for f in outcome_fields):
            row = outcomes.setdefault((r["query_id"], r["llm_id"]), {})
            for f in outcome_fields:
                if f in r and f not in row:
                    row[f] = r[f]
    tables["ANSWERED_BY"] = _table(
        [{"src": q, "dst": m, **v} for (q, m), v in outcomes.items()],
        ["src", "dst", *outcome_fields],
    )
    chose: dict[tuple, dict[str, Any]] = {}
    preferred: dict[tuple, dict[str, Any]] = {}
    for r in records:
        decision = r.get("decision")
        if decision == "chose":
            key = (r["user_id"], r["llm_id"], r["query_id"])
            row = chose.setdefault(key, {"reward": r.get("reward"), "ts": r.get("timestamp")})
            row["ts"] = _earliest(row["ts"], r.get("timestamp"), True)
        elif decision in ("preferred", "tie"):
            key = (r["user_id"], r["llm_id"], r["query_id"], r["other_llm_id"])
            row = preferred.setdefault(key, {"tie": decision == "tie", "ts": r.get("timestamp")})
            row["ts"] = _earliest(row["ts"], r.get("timestamp"), True)
    tables["CHOSE"] = _table(
        [{"src": u, "dst": m, "query_id": q, **v} for (u, m, q), v in chose.items()],
        ["src", "dst", "query_id", "reward", "ts"],
    )
    tables["PREFERRED"] = _table(
        [
            {"src": u, "dst": m, "query_id": q, "over": o, **v}
            for (u, m, q, o), v in preferred.items()
        ],
        ["src", "dst", "query_id", "over", "tie", "ts"],
    )
    return tables


def _earliest(current: str | None, new: str | None, seen: bool) -> str | None:
    if not seen:
        return new
    candidates = [t for t in (current, new) if t is not None]
    return min(candidates) if candidates else None


def write_tables(store: GraphStore, tables: dict[str, pa.Table]) -> dict[str, WriteStats]:
    """Write node then edge tables, in one transaction where the backend allows it."""
    written: dict[str, WriteStats] = {}
    store.ensure_room(sum(t.nbytes for t in tables.values() if t is not None))
    with store.transaction():
        for name in WRITE_ORDER:
            stats = write_table(store, name, tables.get(name))
            if stats is not None:
                written[name] = stats
    return written


def write_table(store: GraphStore, name: str, table: pa.Table | None) -> WriteStats | None:
    """Upsert one node or edge table of :func:`graph_tables`; None when it has no rows."""
    if table is None or table.num_rows == 0:
        return None
    log.info("writing %s (%d rows)", name, table.num_rows)
    if name in NODES:
        return store.write_nodes(name, _drop_empty(table))
    return store.write_edges(name, _drop_empty(table))


def _drop_empty(table: pa.Table) -> pa.Table:
    """Drop optional columns that are entirely null (they carry no information)."""
    keep = [i for i, c in enumerate(table.columns) if i < 2 or c.null_count < len(c)]
    return table.select(keep)


def ingest_records(
    store: GraphStore,
    raws: Sequence[RawRecord],
    *,
    file_problems: Sequence = (),
    skip_invalid: bool = False,
    report_path: str | Path | None = None,
) -> IngestReport:
    """Validate raw records against the graph, then write them (see module docs)."""
    of_task = store.export_edges("OF_TASK", [])
    validated = validate(
        raws,
        known_queries=store.node_ids("Query"),
        known_llms=store.node_ids("LLM"),
        query_tasks=dict(
            zip(of_task.column("src").to_pylist(), of_task.column("dst").to_pylist(), strict=True)
        ),
    )
    validated.file_problems.extend(file_problems)
    return _load(store, validated, len(raws), skip_invalid, report_path)


def ingest_files(
    store: GraphStore,
    paths: Sequence[str | Path],
    *,
    skip_invalid: bool = False,
    report_path: str | Path | None = None,
    chunk_size: int = DEFAULT_CHUNK,
) -> IngestReport:
    """Read, validate and load canonical files (CSV, JSONL, Parquet), ``chunk_size``
    records at a time (:mod:`graphdb.chunked`): the same checks, problems and graph as
    :func:`ingest_records` on all the records, in memory bounded by the chunk."""
    if skip_invalid:
        check_report_path(report_path or DEFAULT_REPORT, paths)
    remove_stale_spills()
    with tempfile.TemporaryDirectory(prefix=f"{SPILL_PREFIX}{os.getpid()}-") as folder:
        spill = validate_files(store, paths, Path(folder) / "spill.parquet", chunk_size=chunk_size)
        validated = spill.validated
        if validated.file_problems:
            # A file that cannot be read as a whole is never loaded in part.
            raise ValidationError(
                "\n".join(
                    ["input rejected, nothing was written:", *map(str, validated.file_problems)]
                ),
                validated.file_problems,
            )
        report = _report(validated, spill.records_read, skip_invalid, report_path)
        report.records_loaded = spill.records_loaded
        report.written = write_spill(store, spill, chunk_size=chunk_size)
    return report


def remove_stale_spills(folder: str | Path | None = None) -> None:
    """Remove the temporary folders of ingests whose process is gone (killed before it
    could clean up); ``folder``: where they are (default: the temporary directory)."""
    for path in Path(folder or tempfile.gettempdir()).glob(f"{SPILL_PREFIX}*-*"):
        pid = path.name[len(SPILL_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)) and path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def check_report_path(report_path: str | Path, inputs: Iterable[str | Path]) -> None:
    """Refuse a reject report that would overwrite one of the ``inputs`` (however spelled)."""
    report = Path(report_path)
    for source in inputs:
        source = Path(source)
        same = report.resolve() == source.resolve()
        if not same and report.exists() and source.exists():
            same = os.path.samefile(report, source)  # hard links too
        if same:
            raise ConfigError(
                f"the report {str(report)!r} is one of the input files; "
                "choose another --report path"
            )


def _load(
    store: GraphStore,
    validated: Validated,
    n_read: int,
    skip_invalid: bool,
    report_path: str | Path | None,
) -> IngestReport:
    report = _report(validated, n_read, skip_invalid, report_path)
    report.records_loaded = len(validated.records) + validated.duplicates
    report.written = write_tables(store, graph_tables(validated.records))
    return report


def _report(
    validated: Validated, n_read: int, skip_invalid: bool, report_path: str | Path | None
) -> IngestReport:
    """The report before writing: raise on any problem unless ``skip_invalid``, else write
    the rejected records with their reasons to ``report_path``."""
    report = IngestReport(
        records_read=n_read,
        records_rejected=len(validated.rejected),
        duplicates_merged=validated.duplicates,
    )
    if not skip_invalid:
        refuse_invalid(
            validated,
            n_read,
            "nothing was written (skip invalid records to load the rest and report these)",
        )
    if validated.rejected:
        report.report_path = Path(report_path or DEFAULT_REPORT)
        write_rejections(validated, report.report_path)
    return report


def write_rejections(validated: Validated, path: Path) -> None:
    """Write each rejected record with its reasons as one JSON line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # backslashreplace: a lone surrogate in a rejected value stays a valid JSON escape.
    with path.open("w", encoding="utf-8", errors="backslashreplace") as fh:
        for raw, problems in validated.rejected:
            fh.write(
                json.dumps(
                    {
                        "source": raw.source,
                        "location": raw.location,
                        "problems": [{"field": p.field, "message": p.message} for p in problems],
                        "record": raw.values,
                    },
                    default=str,
                    ensure_ascii=False,
                )
                + "\n"
            )
