"""Canonical files validated and loaded in bounded memory, a chunk of records at a time.

Pass 1 (:func:`validate_files`) reads each file ``chunk_size`` records at a time, checks
every record on its own (:func:`graphdb.canonical.check_record`), writes the clean ones
column-wise to a temporary Parquet *spill* and keeps only 64-bit hashes of their keys
(:mod:`graphdb.keyhash`). The cross-record checks of :func:`graphdb.canonical.validate`
(conflicting values, unknown queries and LLMs, a stored query's task, repeated until no
rejection orphans another record, exact duplicates) run on those hashes; only the records
they flag are read again to word the problems with the same functions, so problems, their
order and the counts are those of validating everything at once.

Pass 2 (:func:`write_spill`) reads the spill a chunk at a time into graph tables
(:func:`graphdb.ingest.graph_tables`; :func:`spill_parts`, which the Neo4j bulk import's
CSVs, :mod:`graphdb.bulk`, are written from too) and writes them inside one store
transaction (LadybugDB: one copy and swap, all or nothing; Neo4j: batches, as every write). Nodes
already written by an earlier chunk are rewritten only when they add a value, and are
not counted again (so a node or outcome already in the graph whose new values come only
in a later chunk than its first mention counts as that first chunk found it); ASKED /
CHOSE / PREFERRED rows are merged over all chunks (earliest timestamp, first reward)
before they are written. Peak memory is one chunk of records
plus the key hashes (about 50 bytes per record and 16 per distinct value to agree on),
never the whole file as Python objects.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from graphdb.canonical import (
    ChunkReader,
    Problem,
    RawRecord,
    Validated,
    check_record,
    conflicts,
    reference_problems,
)
from graphdb.keyhash import (
    RECORD_SCHEMA,
    KeyColumns,
    chunk_keys,
    id_hashes,
    in_sorted,
    pair_hashes,
)
from graphdb.store import GraphStore, WriteStats

__all__ = [
    "DEFAULT_CHUNK",
    "Part",
    "Spill",
    "concat",
    "first_per_key",
    "repeated_pairs",
    "spill_parts",
    "validate_files",
    "write_spill",
]

log = logging.getLogger(__name__)

DEFAULT_CHUNK = 50_000  # records per chunk
WRITE_ROWS = 4_000_000  # graph table rows per write
SPILL_SCHEMA = RECORD_SCHEMA.append(pa.field("_row", pa.int64()))
SPILL_SCHEMA = SPILL_SCHEMA.append(pa.field("_file", pa.int32()))
SPILL_SCHEMA = SPILL_SCHEMA.append(pa.field("_loc", pa.string()))
_NODE_KEYS = {"Task": "id", "LLM": "id", "User": "id", "Query": "id"}
_MERGED = {  # decision edges merged over chunks: key columns, first-record columns
    "ASKED": (["src", "dst"], []),
    "CHOSE": (["src", "dst", "query_id"], ["reward"]),
    "PREFERRED": (["src", "dst", "query_id", "over"], ["tie"]),
}


@dataclass
class Spill:
    """Pass 1's outcome: the problems (``validated``, without records) and the spill."""

    path: Path
    paths: list[str]
    validated: Validated
    records_read: int = 0
    records_loaded: int = 0
    nbytes: int = 0
    bad_rows: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    # (query, LLM) pairs whose outcome more than one record gives (maybe in two chunks)
    repeated_outcomes: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.uint64))


def validate_files(
    store: GraphStore, paths: Sequence[str | Path], spill_path: Path, *, chunk_size: int
) -> Spill:
    """Read and validate ``paths`` against the graph in ``store``, writing the clean
    records to ``spill_path`` (see module docs)."""
    sources = [str(Path(p)) for p in paths]
    out = Spill(spill_path, sources, Validated())
    keys = KeyColumns()
    row = 0
    bar = tqdm(desc="validating", unit=" records", disable=None, leave=False)
    with bar, pq.ParquetWriter(spill_path, SPILL_SCHEMA) as writer:
        for file_index, path in enumerate(paths):
            reader = ChunkReader(path, chunk_size=chunk_size)
            for chunk in reader:
                records, rows, locations = [], [], []
                for raw in chunk:
                    record, problems = check_record(raw)
                    if problems:
                        out.validated.rejected.append((raw, problems))
                    else:
                        records.append(record)
                        rows.append(row)
                        locations.append(raw.location)
                    row += 1
                table = _spill_table(records, rows, file_index, locations)
                keys.add(chunk_keys(table, np.asarray(rows, dtype=np.int64)))
                writer.write_table(table)
                out.nbytes += table.nbytes
                bar.update(len(chunk))
            out.validated.file_problems.extend(reader.problems)
            log.info("validated %s: %d records so far", path, row)
    out.records_read = row
    if out.validated.file_problems:
        return out
    _cross_checks(store, out, keys, chunk_size)
    return out


def _spill_table(
    records: list[dict[str, Any]], rows: list[int], file_index: int, locations: list[str]
) -> pa.Table:
    table = pa.Table.from_pylist(records, schema=RECORD_SCHEMA)
    return (
        table.append_column("_row", pa.array(rows, pa.int64()))
        .append_column("_file", pa.array([file_index] * len(rows), pa.int32()))
        .append_column("_loc", pa.array(locations, pa.string()))
    )


def _cross_checks(store: GraphStore, out: Spill, keys: KeyColumns, chunk_size: int) -> None:
    """The cross-record checks of :func:`graphdb.canonical.validate` on key hashes."""
    candidates = keys.candidates()
    cols = keys.columns()
    del keys
    out.repeated_outcomes = KeyColumns.repeated(cols.answered)
    conflict_problems: dict[int, list[Problem]] = {}
    if candidates.size:
        items, item_rows = _spilled_items(out, chunk_size, entries=candidates)
        found = conflicts(items)
        conflict_problems = {item_rows[i]: ps for i, ps in found.items()}
    known_q = np.unique(id_hashes(store.node_ids("Query")))
    known_l = np.unique(id_hashes(store.node_ids("LLM")))
    of_task = store.export_edges("OF_TASK", [])
    stored_q = id_hashes(of_task.column("src"))
    stored_t = id_hashes(of_task.column("dst"))
    order = np.argsort(stored_q, kind="stable")
    stored_q, stored_t = stored_q[order], stored_t[order]
    at = np.minimum(np.searchsorted(stored_q, cols.query), max(stored_q.size - 1, 0))
    moved = (
        (stored_q[at] == cols.query) & (stored_t[at] != cols.task)
        if stored_q.size
        else np.zeros(cols.query.size, dtype=bool)
    )
    in_conflict = np.isin(cols.row, np.fromiter(conflict_problems, dtype=np.int64))
    alive = np.ones(cols.row.size, dtype=bool)
    rounds: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # rows, query / other unknown
    while True:
        texts = np.union1d(known_q, cols.query[alive & cols.text])
        llms = np.union1d(known_l, cols.llm[alive & (cols.llm != 0)])
        no_query = ~in_sorted(cols.query, texts)
        no_other = (cols.other != 0) & ~in_sorted(cols.other, llms)
        bad = alive & (moved | no_query | no_other | (in_conflict if not rounds else False))
        if not bad.any():
            break
        rounds.append((cols.row[bad], no_query[bad], no_other[bad]))
        alive &= ~bad
    out.records_loaded = int(alive.sum())
    out.validated.duplicates = out.records_loaded - np.unique(cols.record[alive]).size
    if rounds:
        out.bad_rows = np.sort(np.concatenate([r for r, _, _ in rounds]))
        _add_rejections(store, out, rounds, conflict_problems, of_task)


def _add_rejections(
    store: GraphStore,
    out: Spill,
    rounds: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    conflict_problems: dict[int, list[Problem]],
    of_task: pa.Table,
) -> None:
    """Word the cross-record rejections, round by round, as :func:`validate` does."""
    raws = _read_rows(out.paths, out.bad_rows)
    records = {row: check_record(raw)[0] for row, raw in raws.items()}
    queries = pa.array(sorted({r["query_id"] for r in records.values()}), pa.string())
    stored = of_task.filter(pc.is_in(of_task.column("src"), value_set=queries))
    tasks = dict(
        zip(stored.column("src").to_pylist(), stored.column("dst").to_pylist(), strict=True)
    )
    for rows, no_query, no_other in rounds:
        for row, query_unknown, other_unknown in zip(
            rows.tolist(), no_query.tolist(), no_other.tolist(), strict=True
        ):
            raw, record = raws[row], records[row]
            problems = list(conflict_problems.get(row, []))
            problems += reference_problems(
                raw,
                record,
                query_known=not query_unknown,
                other_known=not other_unknown,
                stored_task=tasks.get(record["query_id"]),
            )
            out.validated.rejected.append((raw, problems))


def _read_rows(paths: Sequence[str], rows: np.ndarray) -> dict[int, RawRecord]:
    """The raw records at input ``rows`` (sorted), read again from ``paths``."""
    found: dict[int, RawRecord] = {}
    row = 0
    for path in paths:
        for chunk in ChunkReader(path, chunk_size=DEFAULT_CHUNK):
            start, row = row, row + len(chunk)
            lo, hi = np.searchsorted(rows, [start, row])
            for r in rows[lo:hi].tolist():
                found[r] = chunk[r - start]
            if len(found) == rows.size:
                return found
    return found


def _spilled_items(
    out: Spill, chunk_size: int, *, entries: np.ndarray
) -> tuple[list[tuple[RawRecord, dict[str, Any]]], list[int]]:
    """The spilled records with an entry key among ``entries`` (sorted), in input order,
    each with a record standing for its source and location."""
    items, item_rows = [], []
    for table in _spill_batches(out.path, chunk_size):
        rows = table.column("_row").to_numpy()
        keys = chunk_keys(table.select(RECORD_SCHEMA.names), rows)
        wanted = np.unique(keys.entry_row[in_sorted(keys.entry_key, entries)])
        if not wanted.size:
            continue
        picked = table.filter(pc.is_in(table.column("_row"), value_set=pa.array(wanted)))
        for values in picked.to_pylist():
            where = RawRecord(out.paths[values["_file"]], values["_loc"], {})
            items.append((where, _record(values)))
            item_rows.append(values["_row"])
    return items, item_rows


def _spill_batches(path: Path, chunk_size: int) -> Iterator[pa.Table]:
    with pq.ParquetFile(path) as spill:
        for batch in spill.iter_batches(batch_size=chunk_size):
            yield pa.Table.from_batches([batch])


def _record(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None and not k.startswith("_")}


Part = tuple[str, pa.Table, pa.Table | None]  # name, rows first seen, repeats adding values


def write_spill(
    store: GraphStore, spill: Spill, *, chunk_size: int, write_rows: int | None = None
) -> dict[str, WriteStats]:
    """Write the spill's records less the rejected ones (pass 2; see module docs): graph
    tables gathered as Arrow over chunks and written about ``write_rows`` rows at a time
    (LadybugDB needs far more memory for many small COPYs than for a few large ones)."""
    from graphdb.ingest import WRITE_ORDER  # it imports this module

    write_rows = WRITE_ROWS if write_rows is None else write_rows
    batch = _WriteBatch(store, WRITE_ORDER)
    store.ensure_room(spill.nbytes)
    bar = tqdm(
        total=spill.records_loaded, desc="writing", unit=" records", disable=None, leave=False
    )
    with bar, store.transaction():
        for records, parts in spill_parts(spill, chunk_size=chunk_size):
            for name, counted, repeats in parts:
                batch.add(name, counted, repeats)
            if batch.rows >= write_rows:
                batch.flush()
            bar.update(records)
        batch.flush()
    return {name: batch.written[name] for name in WRITE_ORDER if name in batch.written}


def spill_parts(spill: Spill, *, chunk_size: int) -> Iterator[tuple[int, list[Part]]]:
    """The graph table rows of the spill less the rejected records, one chunk at a time:
    (records read, parts). A node or outcome comes once as first seen; a later chunk's
    rows for it come as repeats, nodes only when they carry a value (outcomes only when
    ``spill.repeated_outcomes`` names the pair). ASKED / CHOSE / PREFERRED come last, as
    one part each merged over all chunks (0 records)."""
    from graphdb.ingest import WRITE_ORDER, graph_tables  # it imports this module

    seen: dict[str, set[str]] = {label: set() for label in _NODE_KEYS}
    merged: dict[str, list[pa.Table]] = {name: [] for name in _MERGED}
    seen_outcomes: set[int] = set()
    for table in _spill_batches(spill.path, chunk_size):
        if spill.bad_rows.size:
            rows = table.column("_row").to_numpy()
            table = table.filter(pa.array(~in_sorted(rows, spill.bad_rows)))
        tables = graph_tables([_record(v) for v in table.to_pylist()])
        parts: list[Part] = []
        new_queries = pa.array([], pa.string())
        for name in WRITE_ORDER:
            part = tables[name]
            if part.num_rows == 0:
                continue
            if name in merged:
                merged[name].append(part)
            elif name in seen:
                known = pa.array(_in_set(part.column("id"), seen[name]), pa.bool_())
                fresh = part.filter(pc.invert(known))
                if name == "Query":
                    new_queries = fresh.column("id")
                parts.append((name, fresh, _adds_values(part.filter(known))))
                seen[name].update(fresh.column("id").to_pylist())
            elif name == "OF_TASK":  # one per query: written with its Query
                parts.append(
                    (name, part.filter(pc.is_in(part.column("src"), value_set=new_queries)), None)
                )
            elif name == "ANSWERED_BY" and spill.repeated_outcomes.size:
                known = _seen_pairs(part, spill.repeated_outcomes, seen_outcomes)
                parts.append((name, part.filter(pc.invert(known)), part.filter(known)))
            else:
                parts.append((name, part, None))
        yield table.num_rows, parts
    yield 0, [(name, _merge(name, tables), None) for name, tables in merged.items() if tables]


class _WriteBatch:
    """Graph table rows waiting to be written: counted ones (first seen in this ingest)
    and repeats that only add values (written after them, merged per key, not counted)."""

    def __init__(self, store: GraphStore, order: Sequence[str]) -> None:
        self.store, self.order = store, order
        self.written: dict[str, WriteStats] = {}
        self.counted: dict[str, list[pa.Table]] = {name: [] for name in order}
        self.repeats: dict[str, list[pa.Table]] = {name: [] for name in order}
        self.rows = 0

    def add(self, name: str, counted: pa.Table, repeats: pa.Table | None = None) -> None:
        for pending, table in ((self.counted, counted), (self.repeats, repeats)):
            if table is not None and table.num_rows:
                pending[name].append(table)
                self.rows += table.num_rows

    def flush(self) -> None:
        from graphdb.ingest import write_table

        for name in self.order:
            if self.counted[name]:
                stats = write_table(self.store, name, concat(self.counted[name]))
                _count(self.written, name, stats)
            if self.repeats[name]:
                write_table(self.store, name, first_per_key(name, concat(self.repeats[name])))
            self.counted[name], self.repeats[name] = [], []
        self.rows = 0
        self.store.commit_point()


def concat(tables: list[pa.Table]) -> pa.Table:
    """One table of ``tables`` (same columns; an all-null column takes the others' type)."""
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="default")


def first_per_key(name: str, table: pa.Table) -> pa.Table:
    """One row per node id / (src, dst), each value the first non-null one."""
    key = ["id"] if name in _NODE_KEYS else ["src", "dst"]
    values = [c for c in table.column_names if c not in key]
    typed = [c for c in values if not pa.types.is_null(table.column(c).type)]
    grouped = table.group_by(key, use_threads=False).aggregate([(c, "first") for c in typed])
    columns = {c: grouped.column(c) for c in key} | {c: grouped.column(f"{c}_first") for c in typed}
    return pa.table({c: columns[c] for c in key + typed})


def repeated_pairs(part: pa.Table, repeated: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (src, dst) pair hashes of ``part``'s edges, and which are among ``repeated``
    (sorted pair hashes: the outcomes that more than one record gives)."""
    pairs = pair_hashes(id_hashes(part.column("src")), id_hashes(part.column("dst")))
    return pairs, in_sorted(pairs, repeated)


def _seen_pairs(part: pa.Table, repeated: np.ndarray, seen: set[int]) -> pa.Array:
    """Which edges of ``part`` an earlier chunk wrote (only ``repeated`` pairs can be);
    adds this chunk's repeated pairs to ``seen``."""
    pairs, maybe = repeated_pairs(part, repeated)
    known = np.zeros(pairs.size, dtype=bool)
    for i in np.flatnonzero(maybe).tolist():
        known[i] = int(pairs[i]) in seen
    seen.update(pairs[maybe].tolist())
    return pa.array(known)


def _in_set(ids: pa.ChunkedArray | pa.Array, known: set[str]) -> list[bool]:
    return [i in known for i in ids.to_pylist()]


def _adds_values(table: pa.Table) -> pa.Table:
    """Rows with a value besides their key (the others cannot change a written node)."""
    if table.num_rows == 0 or table.num_columns < 2:
        return table.slice(0, 0)
    given = pc.is_valid(table.column(1))
    for column in table.columns[2:]:
        given = pc.or_(given, pc.is_valid(column))
    return table.filter(given)


def _count(written: dict[str, WriteStats], name: str, stats: WriteStats | None) -> None:
    if stats is not None:
        written[name] = written.get(name, WriteStats()) + stats


def _merge(name: str, parts: list[pa.Table]) -> pa.Table:
    """One row per edge key over all chunks: the earliest ``ts``, the first record's
    other values (what :func:`graphdb.ingest.graph_tables` does within one chunk)."""
    table = pa.concat_tables(parts, promote_options="default")
    if len(parts) == 1 or table.num_rows == 0:
        return table
    key, _ = _MERGED[name]
    table = table.append_column("_i", pa.array(np.arange(table.num_rows)))
    dated = not pa.types.is_null(table.column("ts").type)
    aggregates = [("_i", "min")] + ([("ts", "min")] if dated else [])
    grouped = table.group_by(key, use_threads=False).aggregate(aggregates)
    picked = table.take(grouped.column("_i_min")).drop_columns(["_i"])
    if dated:
        picked = picked.set_column(picked.column_names.index("ts"), "ts", grouped.column("ts_min"))
    return picked
