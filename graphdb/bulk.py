"""CSV files for ``neo4j-admin database import full``: the initial bulk load of a graph.

:func:`write_import_files` turns the node and edge tables of
:func:`graphdb.ingest.graph_tables` (the same validated tables the UNWIND path
writes) into one header-typed CSV per label and relationship type, and returns the
``--nodes`` / ``--relationships`` arguments of the import tool. Node ids are
per-label ID spaces (``id:ID(Query)``), so equal keys of two labels never clash.
Lists (embeddings) are ``;``-separated ``float[]`` values; empty cells are absent
properties, as in the UNWIND path.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pyarrow as pa

from graphdb.schema import BOOLEAN, DOUBLE, FLOAT_LIST, INT64, NODES, RELS, node_type, rel_type
from prcore.errors import StoreError

__all__ = ["write_import_files"]

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


def _write(path: Path, header: list[str], table: pa.Table) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for batch in table.to_batches(max_chunksize=50_000):
            for row in zip(*(c.to_pylist() for c in batch.columns), strict=True):
                writer.writerow([_cell(v) for v in row])


def write_import_files(tables: dict[str, pa.Table], folder: Path) -> list[str]:
    """Write one CSV per non-empty table into ``folder``; the import tool's arguments."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    args: list[str] = []
    for label in NODES:
        table = tables.get(label)
        if table is None or table.num_rows == 0:
            continue
        nt = node_type(label)
        header = [f"{nt.key}:ID({label})"]
        for name in table.column_names[1:]:
            kind = _TYPES.get(nt.properties.get(name, ""), "")
            header.append(f"{name}:{kind}" if kind else name)
        path = folder / f"nodes-{label}.csv"
        _write(path, header, table)
        args.append(f"--nodes={label}={path}")
    for name, rt in RELS.items():
        table = tables.get(name)
        if table is None or table.num_rows == 0:
            continue
        rt = rel_type(name)
        header = [f":START_ID({rt.src})", f":END_ID({rt.dst})"]
        for prop in table.column_names[2:]:
            kind = _TYPES.get(rt.properties.get(prop, ""), "")
            header.append(f"{prop}:{kind}" if kind else prop)
        path = folder / f"rels-{name}.csv"
        _write(path, header, table)
        args.append(f"--relationships={name}={path}")
    return args
