"""The embedded default store: LadybugDB, one file on disk, no server.

Each write call runs in one transaction: new rows go in with ``COPY ... FROM``
an Arrow table (bulk load), changed rows are updated with ``LOAD FROM ... SET``.
A store opened from a path writes into a private copy of the file that replaces
the live file only once committed, checkpointed and verified
(:mod:`graphdb.backends.ladybug_files`): a killed process, a full disk or an
error leaves the old graph or the new one, never a mix. One process writes a
store at a time; read-only opens see the last published file.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ladybug
import pyarrow as pa

from graphdb.backends import ladybug_files as files
from graphdb.queries import schema_statements
from graphdb.schema import NODES, ROUTED_TO, NodeType, RelType, node_type
from graphdb.store import GraphStore
from graphdb.tables import edge_schema, node_schema
from prcore.errors import StoreError

__all__ = ["REBUILD_RATIO", "UPDATE_BATCH", "LadybugStore"]

# A ROUTED_TO delete rebuilds the table when it keeps at most this many edges per edge
# it deletes (docs/reliability.md): rebuilding cost 0.01-0.03 ms per kept edge here,
# deleting 0.2-3 ms per deleted edge, more the more edges its LLM has.
REBUILD_RATIO = 20
# Rows per committed batch of an update (LOAD FROM ... SET): LadybugDB's COMMIT of one
# update grows with the square of its rows where NULL lists become vectors (100k
# embeddings: 101 s in one commit, 9 s in batches of 10,000; docs/reliability.md).
UPDATE_BATCH = 10_000


class LadybugStore(GraphStore):
    """A :class:`GraphStore` over a ``ladybug.Database`` it is given."""

    backend = "ladybug"
    _private_copy = False  # inside a copy-and-swap transaction

    def __init__(
        self,
        db: ladybug.Database,
        *,
        path: Path | None = None,
        lock: files.WriterLock | None = None,
    ) -> None:
        """Wrap ``db``; with ``path`` and the writer ``lock`` held, writes copy and swap."""
        self._db = db
        self._conn = ladybug.Connection(db)
        self.path = path
        self._lock = lock

    @classmethod
    def open(cls, path: str | Path, *, read_only: bool = False) -> LadybugStore:
        """Open (or create) the database file at ``path``.

        A read-only open that finds an interrupted checkpoint first lets
        LadybugDB finish it with a brief read-write open, when the file is
        writable and no other process writes it; otherwise it says what to do.
        """
        path = Path(path)
        if read_only:
            if not path.exists():
                raise StoreError(f"no LadybugDB database at {path}")
            return cls(_open_read_only(path), path=path)
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = _writer_lock(path)
        try:
            files.remove_stale_copies(path)
            if not path.exists():
                _create_empty(path)
            db = _database(path)
        except BaseException:
            lock.release()
            raise
        return cls(db, path=path, lock=lock)

    def __repr__(self) -> str:
        return f"LadybugStore({str(self.path)!r})"

    def apply_schema(self) -> None:
        existing = set(self.read("CALL show_tables() RETURN name").column(0).to_pylist())
        statements = [s for s in schema_statements("ladybug") if _created_table(s) not in existing]
        if statements:
            with self.transaction():
                for statement in statements:
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

    def _delete_routed(self, doomed: str, params: Mapping[str, Any]) -> int:
        """Delete the ROUTED_TO edges for which ``doomed`` holds. LadybugDB deletes an edge
        from its LLM's backward adjacency list too, at a cost that grows with that LLM's
        in-degree (one version's edges: hours), so when the edges kept are at most
        ``REBUILD_RATIO`` times those deleted the table is rebuilt instead, with the
        edges kept (:meth:`_rebuild_routed`); either way in one :meth:`transaction`."""
        with self.transaction():
            counts = self.read(
                f"MATCH (:User)-[r:ROUTED_TO]->(:LLM) WITH coalesce({doomed}, false) AS d "
                "RETURN count(*) AS total, count(CASE WHEN d THEN 1 END) AS doomed",
                params,
            ).to_pylist()[0]
            total, deleted = int(counts["total"]), int(counts["doomed"])
            if deleted == 0 or total - deleted > REBUILD_RATIO * deleted:
                return super()._delete_routed(doomed, params)
            self._rebuild_routed(f"NOT coalesce({doomed}, false)", params, total - deleted)
        return deleted

    def _rebuild_routed(self, keep: str, params: Mapping[str, Any], kept: int) -> None:
        """Replace the ROUTED_TO table by a new one holding only its ``kept`` edges for
        which ``keep`` holds (created from :data:`graphdb.schema.ROUTED_TO`, so the same
        columns; the new table is renamed to ROUTED_TO)."""
        rt, new = ROUTED_TO, f"{ROUTED_TO.name}_rebuilt"
        columns = "".join(f", {p} {t}" for p, t in rt.properties.items())
        self._execute(f"CREATE REL TABLE {new}(FROM {rt.src} TO {rt.dst}{columns})")
        if kept:
            src, dst = node_type(rt.src).key, node_type(rt.dst).key
            values = "".join(f", r.{p}" for p in rt.properties)
            self._execute(
                f"COPY {new} FROM (MATCH (s:{rt.src})-[r:{rt.name}]->(d:{rt.dst}) "
                f"WHERE {keep} RETURN s.{src}, d.{dst}{values})",
                dict(params),
            )
        self._execute(f"DROP TABLE {rt.name}")
        self._execute(f"ALTER TABLE {new} RENAME TO {rt.name}")

    def close(self) -> None:
        self.close_handles()
        if self._lock is not None:
            self._lock.release()

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
        self._update_in_batches(
            f"LOAD FROM $rows MATCH (n:{nt.label} {{{nt.key}: v_{nt.key}}}) SET {sets}", rows
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
        self._update_in_batches(
            f"LOAD FROM $rows MATCH (s:{rt.src} {{{src_key}: v_src}})-[r:{rt.name}]->"
            f"(d:{rt.dst} {{{dst_key}: v_dst}}) WHERE {match} SET {sets}",
            rows,
        )

    def _update_in_batches(self, cypher: str, rows: pa.Table) -> None:
        """``cypher`` over ``rows`` in batches of ``UPDATE_BATCH``, committed in between
        on the private copy (:meth:`commit_point`)."""
        for start in range(0, rows.num_rows, UPDATE_BATCH):
            if start:
                self.commit_point()
            self._execute(cypher, {"rows": _stage(rows.slice(start, UPDATE_BATCH))})

    def ensure_room(self, incoming_bytes: int) -> None:
        """A write copies the database, then adds the new data and its WAL beside it: refuse
        it up front when the free space is clearly short (LadybugDB itself aborts the
        process when its WAL hits a full disk)."""
        if self.path is None or not self.path.exists():
            return
        need = self.path.stat().st_size + 2 * incoming_bytes
        free = shutil.disk_usage(self.path.parent).free
        if free < need:
            raise StoreError(
                f"not enough disk space beside {self.path}: about {need / 1e6:.1f} MB needed "
                f"(a copy of the database and room for the new data), {free / 1e6:.1f} MB "
                "free; nothing was written"
            )

    def commit_point(self) -> None:
        """On the private copy of a copy-and-swap transaction, commit and begin again: the
        writes leave LadybugDB's in-memory transaction state for the copy's WAL, and the
        live file still changes only when the whole transaction is published."""
        if self._private_copy:
            self._execute("COMMIT")
            self._execute("CHECKPOINT")
            self._execute("BEGIN TRANSACTION")

    @contextmanager
    def _begin(self) -> Iterator[None]:
        if self.path is None or self._lock is None:
            with self._in_place():
                yield
            return
        with self._copy_and_swap(self.path):
            yield

    @contextmanager
    def _in_place(self) -> Iterator[None]:
        """A plain LadybugDB transaction on the open database (no path to swap)."""
        self._execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._execute("COMMIT")

    @contextmanager
    def _copy_and_swap(self, path: Path) -> Iterator[None]:
        """Run the writes on a private copy, then publish it over ``path`` atomically."""
        self.close_handles()
        copy: Path | None = None
        try:
            copy = files.copy_for_write(path)
            self._attach(_database(copy, auto_checkpoint=False))
            self._execute("BEGIN TRANSACTION")
            self._private_copy = True
            try:
                yield
                expected = self.counts()
                self._execute("COMMIT")
                self._execute("CHECKPOINT")
                self.close_handles()
                _verify(copy, expected)
            except StoreError as exc:
                if type(exc) is not StoreError:
                    raise
                raise StoreError(_nothing_written(exc)) from exc
            files.publish(copy, path)
            copy = None
        finally:
            self._private_copy = False
            self.close_handles()
            if copy is not None:
                files.discard(copy)
            self._attach(_database(path))

    def _attach(self, db: ladybug.Database) -> None:
        self._db = db
        self._conn = ladybug.Connection(db)

    def close_handles(self) -> None:
        """Close the connection and database, keeping the writer lock."""
        if self._conn is not None:
            self._conn.close()
            self._db.close()
            self._conn = None  # type: ignore[assignment]

    def _execute(self, cypher: str, params: dict[str, Any] | None = None) -> ladybug.QueryResult:
        try:
            result = self._conn.execute(cypher, params or {})
        except RuntimeError as exc:
            raise StoreError(f"LadybugDB: {exc}") from exc
        return result[-1] if isinstance(result, list) else result


def _database(path: Path, **options: Any) -> ladybug.Database:
    try:
        return ladybug.Database(str(path), **options)
    except RuntimeError as exc:
        raise StoreError(f"cannot open LadybugDB database {path}: {_one_line(exc)}") from exc


def _writer_lock(path: Path) -> files.WriterLock:
    lock = files.WriterLock(path)
    if not lock.acquire():
        raise StoreError(
            f"another process is writing LadybugDB database {path} (one writer at a time); "
            "retry when it finishes"
        )
    return lock


def _create_empty(path: Path) -> None:
    """Create a new empty database at ``path`` atomically (built beside it, then renamed)."""
    tmp = path.with_name(f"{path.name}.tx-new")
    files.discard(tmp)
    _database(tmp).close()
    files.publish(tmp, path)


_RECOVERY_PENDING = "checkpoint recovery is pending"


def _open_read_only(path: Path) -> ladybug.Database:
    try:
        return ladybug.Database(str(path), read_only=True)
    except RuntimeError as exc:
        if _RECOVERY_PENDING not in str(exc):
            raise StoreError(f"cannot open LadybugDB database {path}: {_one_line(exc)}") from exc
    _finish_recovery(path)
    return _database(path, read_only=True)


def _finish_recovery(path: Path) -> None:
    """Let LadybugDB finish an interrupted checkpoint with a brief read-write open."""
    hint = (
        f"LadybugDB database {path} has an interrupted checkpoint to finish; "
        f"run `prouter --store ladybug:{path} graph summary` as a user who can write it"
    )
    if not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)):
        raise StoreError(hint)
    lock = files.WriterLock(path)
    if not lock.acquire():
        raise StoreError(f"{hint}; another process is writing it now, retry when it finishes")
    try:
        _database(path).close()
    finally:
        lock.release()


def _verify(copy: Path, expected: dict[str, int]) -> None:
    """Check that a checkpointed copy is complete on its own before it is published."""
    leftovers = files.sidecars(copy)
    if leftovers:
        raise StoreError(
            "LadybugDB did not finish its checkpoint (disk full?); nothing was written "
            f"(left: {', '.join(p.name for p in leftovers)})"
        )
    check = LadybugStore(_database(copy, read_only=True))
    try:
        found = check.counts()
    finally:
        check.close()
    if found != expected:
        raise StoreError("LadybugDB wrote an incomplete copy of the graph; nothing was written")


_CREATE_TABLE = re.compile(r"CREATE (?:NODE|REL) TABLE IF NOT EXISTS (\w+)", re.IGNORECASE)


def _created_table(statement: str) -> str | None:
    match = _CREATE_TABLE.match(statement)
    return match.group(1) if match else None


def _nothing_written(exc: StoreError) -> str:
    message = str(exc)
    return message if "nothing was written" in message else f"{message}; nothing was written"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


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
