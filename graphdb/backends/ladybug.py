"""The embedded default store: LadybugDB, one file on disk, no server.

Each write call runs in one transaction: new rows go in with ``COPY ... FROM``
an Arrow table (bulk load), changed rows are updated with ``LOAD FROM ... SET``.
A failure anywhere rolls the whole call back, so nothing is half written.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ladybug
import pyarrow as pa

from graphdb.queries import schema_statements
from graphdb.schema import NODES, NodeType, RelType, node_type
from graphdb.store import GraphStore
from graphdb.tables import edge_schema, node_schema
from prcore.errors import StoreError

__all__ = ["LadybugStore"]


class LadybugStore(GraphStore):
    """A :class:`GraphStore` over a ``ladybug.Database`` it is given."""

    backend = "ladybug"

    def __init__(self, db: ladybug.Database, *, path: Path | None = None) -> None:
        self._db = db
        self._conn = ladybug.Connection(db)
        self.path = path

    @classmethod
    def open(cls, path: str | Path, *, read_only: bool = False) -> LadybugStore:
        """Open (or create) the database file at ``path``."""
        path = Path(path)
        if read_only and not path.exists():
            raise StoreError(f"no LadybugDB database at {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            db = ladybug.Database(str(path), read_only=read_only)
        except RuntimeError as exc:
            raise StoreError(f"cannot open LadybugDB database {path}: {exc}") from exc
        return cls(db, path=path)

    def __repr__(self) -> str:
        return f"LadybugStore({str(self.path)!r})"

    def apply_schema(self) -> None:
        for statement in schema_statements("ladybug"):
            self._execute(statement)

    def read(
        self, cypher: str, params: Mapping[str, Any] | None = None, schema: pa.Schema | None = None
    ) -> pa.Table:
        table = self._execute(cypher, dict(params or {})).get_as_arrow()
        if schema is not None:
            return table.rename_columns(schema.names).cast(schema)
        return _plain_integers(table)

    def clear(self) -> None:
        with self.transaction():
            for label in NODES:
                self._execute(f"MATCH (n:{label}) DETACH DELETE n")

    def _delete_batch(self, cypher: str, params: Mapping[str, Any]) -> int:
        table = self._execute(cypher, dict(params)).get_as_arrow()
        return int(table.column(0)[0].as_py()) if table.num_rows else 0

    def close(self) -> None:
        self._conn.close()
        self._db.close()

    # -- write primitives ------------------------------------------------------
    def _existing_nodes(self, nt: NodeType, keys: pa.Array, schema: pa.Schema) -> pa.Table:
        cols = ", ".join(f"n.{c} AS {c}" for c in schema.names)
        return self.read(
            f"LOAD FROM $keys MATCH (n:{nt.label} {{{nt.key}: k}}) RETURN {cols}",
            {"keys": pa.table({"k": keys})},
            schema=schema,
        )

    def _existing_edges(self, rt: RelType, srcs: pa.Array, schema: pa.Schema) -> pa.Table:
        src_key, dst_key = node_type(rt.src).key, node_type(rt.dst).key
        cols = ", ".join(
            [f"s.{src_key} AS src", f"d.{dst_key} AS dst"]
            + [f"r.{p} AS {p}" for p in schema.names[2:]]
        )
        return self.read(
            f"LOAD FROM $keys MATCH (s:{rt.src} {{{src_key}: k}})-[r:{rt.name}]->(d:{rt.dst}) "
            f"RETURN {cols}",
            {"keys": pa.table({"k": srcs})},
            schema=schema,
        )

    def _create_nodes(self, nt: NodeType, rows: pa.Table) -> None:
        self._execute(f"COPY {nt.label} FROM $rows", {"rows": _widen(rows, node_schema(nt))})

    def _update_nodes(self, nt: NodeType, rows: pa.Table) -> None:
        props = rows.column_names[1:]
        sets = ", ".join(f"n.{p} = coalesce(v_{p}, n.{p})" for p in props)
        self._execute(
            f"LOAD FROM $rows MATCH (n:{nt.label} {{{nt.key}: v_{nt.key}}}) SET {sets}",
            {"rows": _stage(rows)},
        )

    def _create_edges(self, rt: RelType, rows: pa.Table) -> None:
        full = _widen(rows, edge_schema(rt))
        full = full.rename_columns(["from", "to", *full.column_names[2:]])
        self._execute(f"COPY {rt.name} FROM $rows", {"rows": full})

    def _update_edges(self, rt: RelType, rows: pa.Table) -> None:
        src_key, dst_key = node_type(rt.src).key, node_type(rt.dst).key
        values = [c for c in rows.column_names[2:] if c not in rt.key]
        match = " AND ".join(f"r.{k} = v_{k}" for k in rt.key) or "true"
        sets = ", ".join(f"r.{p} = coalesce(v_{p}, r.{p})" for p in values)
        self._execute(
            f"LOAD FROM $rows MATCH (s:{rt.src} {{{src_key}: v_src}})-[r:{rt.name}]->"
            f"(d:{rt.dst} {{{dst_key}: v_dst}}) WHERE {match} SET {sets}",
            {"rows": _stage(rows)},
        )

    @contextmanager
    def _begin(self) -> Iterator[None]:
        self._execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._execute("COMMIT")

    def _execute(self, cypher: str, params: dict[str, Any] | None = None) -> ladybug.QueryResult:
        try:
            result = self._conn.execute(cypher, params or {})
        except RuntimeError as exc:
            raise StoreError(f"LadybugDB: {exc}") from exc
        return result[-1] if isinstance(result, list) else result


def _widen(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Add the schema's missing columns as nulls, in schema order (what COPY expects)."""
    columns = [
        table.column(f.name) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def _stage(table: pa.Table) -> pa.Table:
    """Prefix column names so that LOAD FROM variables cannot clash with keywords."""
    return table.rename_columns([f"v_{c}" for c in table.column_names])


def _plain_integers(table: pa.Table) -> pa.Table:
    """Cast whole-number decimal columns to int64.

    LadybugDB sums INT64 values into INT128, which Arrow shows as
    ``decimal128(38, 0)``; Neo4j returns plain integers. This makes both alike.
    """
    for i, field in enumerate(table.schema):
        if pa.types.is_decimal(field.type) and field.type.scale == 0:
            table = table.set_column(i, field.name, table.column(i).cast(pa.int64()))
    return table
