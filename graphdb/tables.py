"""Arrow tables shaped by the graph schema: the currency between stores and callers.

Node tables have the key column then properties; edge tables have ``src`` and
``dst`` (endpoint keys) then properties. ``conform_*`` check and cast what a
caller passes in, so every backend receives the same, validated shape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from graphdb.schema import BOOLEAN, DOUBLE, FLOAT_LIST, INT64, STRING, NodeType, RelType
from prcore.errors import SchemaError

__all__ = [
    "ARROW_TYPES",
    "conform_edges",
    "conform_nodes",
    "edge_schema",
    "embedding_array",
    "node_schema",
    "to_table",
]

ARROW_TYPES: dict[str, pa.DataType] = {
    STRING: pa.string(),
    DOUBLE: pa.float64(),
    INT64: pa.int64(),
    BOOLEAN: pa.bool_(),
    FLOAT_LIST: pa.list_(pa.float32()),
}

TableLike = pa.Table | Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]]


def embedding_array(matrix: np.ndarray) -> pa.Array:
    """A 2-D float matrix as an Arrow ``list<float32>`` column, one row per list."""
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    flat = pa.array(matrix.reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, matrix.shape[1]).cast(pa.list_(pa.float32()))


def node_schema(nt: NodeType, properties: Sequence[str] | None = None) -> pa.Schema:
    """Arrow schema of a node table: the key, then ``properties`` (default: all)."""
    props = list(nt.properties) if properties is None else list(properties)
    fields = [pa.field(nt.key, pa.string())]
    fields += [pa.field(p, ARROW_TYPES[nt.properties[p]]) for p in props]
    return pa.schema(fields)


def edge_schema(rt: RelType, properties: Sequence[str] | None = None) -> pa.Schema:
    """Arrow schema of an edge table: ``src``, ``dst``, then ``properties``."""
    props = list(rt.properties) if properties is None else list(properties)
    fields = [pa.field("src", pa.string()), pa.field("dst", pa.string())]
    fields += [pa.field(p, ARROW_TYPES[rt.properties[p]]) for p in props]
    return pa.schema(fields)


def to_table(rows: TableLike) -> pa.Table:
    """Accept an Arrow table, a pandas DataFrame, a list of dicts or a dict of columns."""
    if isinstance(rows, pa.Table):
        return rows
    if hasattr(rows, "to_dict") and hasattr(rows, "columns"):  # pandas DataFrame
        return pa.Table.from_pandas(rows, preserve_index=False)
    if isinstance(rows, Mapping):
        return pa.table(dict(rows))
    rows = list(rows)
    names = list(dict.fromkeys(k for row in rows for k in row))
    return pa.table({n: [row.get(n) for row in rows] for n in names})


def _cast(table: pa.Table, schema: pa.Schema, what: str) -> pa.Table:
    columns = []
    for f in schema:
        col = table.column(f.name)
        try:
            columns.append(col.cast(f.type) if col.type != f.type else col)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise SchemaError(
                f"{what}: column {f.name!r} of type {col.type} cannot be stored as {f.type}: {exc}"
            ) from None
    return pa.Table.from_arrays(columns, schema=schema)


def _check_columns(
    table: pa.Table, required: list[str], allowed: list[str], what: str
) -> list[str]:
    names = table.column_names
    unknown = [c for c in names if c not in allowed]
    if unknown:
        raise SchemaError(f"{what}: unknown columns {unknown}; valid columns: {', '.join(allowed)}")
    missing = [c for c in required if c not in names]
    if missing:
        raise SchemaError(f"{what}: missing required columns {missing}")
    return [c for c in allowed if c in names and c not in required]


def _check_keys(table: pa.Table, key: list[str], what: str) -> pa.Table:
    for k in key:
        if table.column(k).null_count:
            raise SchemaError(f"{what}: key column {k!r} has null values")
    deduped = table.group_by(key, use_threads=False).aggregate([([], "count_all")])
    if deduped.num_rows == table.num_rows:
        return table
    # Exact duplicates are merged; duplicates that disagree on a value are an error.
    distinct = _distinct_rows(table)
    dup_keys = distinct.group_by(key, use_threads=False).aggregate([([], "count_all")])
    conflicts = dup_keys.filter(pc.greater(dup_keys.column("count_all"), 1))
    if conflicts.num_rows:
        sample = conflicts.slice(0, 3).select(key).to_pylist()
        raise SchemaError(
            f"{what}: {conflicts.num_rows} keys appear more than once with conflicting "
            f"values, e.g. {sample}"
        )
    return distinct


def _distinct_rows(table: pa.Table) -> pa.Table:
    seen: set[tuple] = set()
    keep = []
    for i, row in enumerate(table.to_pylist()):
        marker = tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in row.items())
        if marker not in seen:
            seen.add(marker)
            keep.append(i)
    return table.take(keep)


def conform_nodes(nt: NodeType, rows: TableLike) -> pa.Table:
    """Check and cast node rows: key present and non-null, known properties only."""
    table = to_table(rows)
    what = f"{nt.label} nodes"
    props = _check_columns(table, [nt.key], nt.columns, what)
    table = _cast(table, node_schema(nt, props), what)
    return _check_keys(table, [nt.key], what)


def conform_edges(rt: RelType, rows: TableLike) -> pa.Table:
    """Check and cast edge rows: ``src``/``dst`` and key properties present and non-null."""
    table = to_table(rows)
    what = f"{rt.name} edges"
    props = _check_columns(table, ["src", "dst", *rt.key], ["src", "dst", *rt.properties], what)
    props = [p for p in rt.properties if p in rt.key or p in props]
    table = _cast(table, edge_schema(rt, props), what)
    return _check_keys(table, ["src", "dst", *rt.key], what)
