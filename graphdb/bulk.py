"""CSV files for ``neo4j-admin database import full``: the initial bulk load of a graph.

:func:`write_spill_files` turns the spill of :func:`graphdb.chunked.validate_files` (the
validated records) into the node and edge tables the UNWIND path writes
(:func:`graphdb.chunked.spill_parts`, a chunk of records at a time), appends them to one
header-typed CSV per label and relationship type (:class:`ImportFiles`) and returns the
``--nodes`` / ``--relationships`` arguments of the import tool. The import tool neither
merges rows nor skips duplicate nodes, so each node and each ``ANSWERED_BY`` outcome
must be one row with all its values: nodes (a few small columns each) and the outcomes
that more than one record gives are held as Arrow until every chunk has been read, then
written one row per key; all other edges are written as each chunk gives them (ASKED /
CHOSE / PREFERRED come merged over all chunks, last). Node ids are per-label ID spaces
(``id:ID(Query)``), so equal keys of two labels never clash. Lists (embeddings) are
``;``-separated ``float[]`` values; empty cells are absent properties, as in the UNWIND
path.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import pyarrow as pa

from graphdb.chunked import Spill, concat, first_per_key, repeated_pairs, spill_parts
from graphdb.schema import BOOLEAN, DOUBLE, FLOAT_LIST, INT64, NODES, RELS, node_type, rel_type
from prcore.errors import StoreError

__all__ = ["ImportFiles", "write_spill_files"]

_TYPES = {DOUBLE: "double", INT64: "long", BOOLEAN: "boolean", FLOAT_LIST: "float[]"}
ARRAY_DELIMITER = ";"


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        raise StoreError(f"refusing to bulk-load a non-finite number ({value})")
    if isinstance(value, list):
        return ARRAY_DELIMITER.join(repr(float(_cell(v))) for v in value)  # type: ignore[arg-type]
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _header(name: str, columns: list[str]) -> list[str]:
    """The import tool's header of a node label's or relationship type's CSV."""
    if name in NODES:
        nt = node_type(name)
        head, props, values = [f"{nt.key}:ID({name})"], nt.properties, columns[1:]
    else:
        rt = rel_type(name)
        head, props = [f":START_ID({rt.src})", f":END_ID({rt.dst})"], rt.properties
        values = columns[2:]
    for prop in values:
        kind = _TYPES.get(props.get(prop, ""), "")
        head.append(f"{prop}:{kind}" if kind else prop)
    return head


def _aligned(table: pa.Table, columns: list[str]) -> pa.Table:
    """``table`` with exactly ``columns`` (a missing one all null)."""
    extra = [c for c in table.column_names if c not in columns]
    if any(table.column(c).null_count < table.num_rows for c in extra):
        raise StoreError(f"bulk CSV has no column for {extra} (header {columns})")
    nulls = pa.nulls(table.num_rows)
    return pa.table({c: table.column(c) if c in table.column_names else nulls for c in columns})


class ImportFiles:
    """The import CSVs of one load in ``folder``: one file per node label and relationship
    type, its header from the first table added, later tables' rows appended."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._open: dict[str, tuple[IO[str], Any, list[str]]] = {}
        self.paths: dict[str, Path] = {}

    def add(self, name: str, table: pa.Table | None) -> None:
        """Append the rows of a node or edge table of :func:`graphdb.ingest.graph_tables`."""
        if table is None or table.num_rows == 0:
            return
        if name not in self._open:
            kind = "nodes" if name in NODES else "rels"
            path = self.folder / f"{kind}-{name}.csv"
            fh = open(path, "w", newline="", encoding="utf-8")  # noqa: SIM115 (closed by close)
            writer = csv.writer(fh)
            writer.writerow(_header(name, table.column_names))
            self._open[name], self.paths[name] = (fh, writer, table.column_names), path
        _, writer, columns = self._open[name]
        for batch in _aligned(table, columns).to_batches(max_chunksize=50_000):
            for row in zip(*(c.to_pylist() for c in batch.columns), strict=True):
                writer.writerow([_cell(v) for v in row])

    def args(self) -> list[str]:
        """The import tool's ``--nodes`` / ``--relationships`` arguments, nodes first."""
        nodes = [f"--nodes={n}={self.paths[n]}" for n in NODES if n in self.paths]
        return nodes + [f"--relationships={n}={self.paths[n]}" for n in RELS if n in self.paths]

    def close(self) -> None:
        """Close every file (they stay on disk)."""
        for fh, _, _ in self._open.values():
            fh.close()
        self._open.clear()

    def __enter__(self) -> ImportFiles:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def write_spill_files(spill: Spill, folder: Path, *, chunk_size: int) -> list[str]:
    """Write the import CSVs of the records of ``spill`` less the rejected ones into
    ``folder``, ``chunk_size`` records at a time (see module docs); the tool's arguments."""
    held: dict[str, list[pa.Table]] = {}
    with ImportFiles(folder) as files:
        for _, parts in spill_parts(spill, chunk_size=chunk_size):
            for name, counted, repeats in parts:
                if name == "ANSWERED_BY" and spill.repeated_outcomes.size:
                    _, repeated = repeated_pairs(counted, spill.repeated_outcomes)
                    files.add(name, counted.filter(pa.array(~repeated)))
                    counted = counted.filter(pa.array(repeated))
                elif name not in NODES:
                    files.add(name, counted)
                    continue
                held.setdefault(name, []).extend(
                    t for t in (counted, repeats) if t is not None and t.num_rows
                )
        for name, tables in held.items():
            if tables:
                files.add(name, first_per_key(name, concat(tables)))
        return files.args()
