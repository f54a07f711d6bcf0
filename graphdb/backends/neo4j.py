"""The production store: Neo4j over Bolt with the official ``neo4j`` driver.

Parameterised Cypher only. Writes go in batches of ``UNWIND $rows AS row ...``
inside managed transactions (``execute_write``), which the driver retries on
transient failures (a failed batch is rolled back first). A re-run after a
crash therefore converges.

Concurrent writers converge too. Every write batch first takes the graph's
write lock (it sets a fresh token on the one ``IngestLock`` node, unique by a
constraint), so batches of different writers run one after the other, and
MERGEs nodes on their unique key and relationships on their endpoints and key
properties: a writer whose lookup missed what another writer has just created
finds it inside its own locked transaction instead of creating a second copy.
Community edition has no relationship-key constraints; this lock is what keeps
each relationship single.

Past one machine (a cluster or Aura, ``neo4j://`` / ``neo4j+s://`` routing URIs):
every read and write is a managed transaction (``execute_read`` goes to a reader,
``execute_write`` to the leader); all sessions of a store share one bookmark
manager, so a read always sees the writes before it (causal consistency); and
``ServiceUnavailable`` / ``SessionExpired`` / ``TransientError`` that outlast the
driver's own retries (``transaction_retry_time``) are retried ``retry_attempts``
times with exponential backoff, then raised as :class:`StoreError`, like every
other driver error.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import neo4j
import pyarrow as pa
from tqdm import tqdm

from graphdb.queries import schema_statements
from graphdb.schema import NodeType, RelType, node_type, rel_type
from graphdb.store import GraphStore
from graphdb.tables import edge_schema, node_schema
from prcore.errors import StoreError

__all__ = ["Neo4jStore"]

BATCH_SIZE = 5_000
# Taken at the start of every write batch: serialises concurrent writers.
WRITE_LOCK = "MERGE (lock:IngestLock {id: 'ingest'}) SET lock.token = $token"
RETRY_ATTEMPTS = 4  # tries of one transaction when the cluster is unavailable
RETRY_BACKOFF_S = (0.2, 2.0)  # first wait, longest wait (doubling)
TRANSACTION_RETRY_S = 10.0  # the driver's own retry budget inside each try
_TRANSIENT = (
    neo4j.exceptions.ServiceUnavailable,
    neo4j.exceptions.SessionExpired,
    neo4j.exceptions.TransientError,
)


class Neo4jStore(GraphStore):
    """A :class:`GraphStore` over a ``neo4j.Driver`` it is given (and may own)."""

    backend = "neo4j"

    def __init__(
        self,
        driver: neo4j.Driver,
        *,
        database: str | None = None,
        read_only: bool = False,
        owns_driver: bool = False,
        batch_size: int = BATCH_SIZE,
        retry_attempts: int = RETRY_ATTEMPTS,
    ) -> None:
        self._driver = driver
        self._database = database
        self._read_only = read_only
        self._owns_driver = owns_driver
        self.batch_size = batch_size
        self.retry_attempts = max(1, int(retry_attempts))
        # One bookmark manager for every session: a read follows the writes before it.
        self._bookmarks = neo4j.GraphDatabase.bookmark_manager()

    @classmethod
    def connect(
        cls,
        uri: str,
        auth: tuple[str, str],
        *,
        database: str | None = None,
        read_only: bool = False,
        retry_attempts: int = RETRY_ATTEMPTS,
        transaction_retry_time: float = TRANSACTION_RETRY_S,
    ) -> Neo4jStore:
        """Open a driver to ``uri`` (``bolt://`` one server, ``neo4j://`` a cluster or
        Aura, routed) and check that the server answers."""
        try:
            # Exports name optional properties that may not exist yet: no warnings for that.
            driver = neo4j.GraphDatabase.driver(
                uri,
                auth=auth,
                notifications_min_severity="OFF",
                max_transaction_retry_time=transaction_retry_time,
            )
        except (neo4j.exceptions.DriverError, ValueError) as exc:
            raise StoreError(f"cannot use Neo4j URI {uri}: {exc}") from exc
        try:
            driver.verify_connectivity()
        except (neo4j.exceptions.Neo4jError, neo4j.exceptions.DriverError, OSError) as exc:
            driver.close()
            raise StoreError(f"cannot connect to Neo4j at {uri}: {exc}") from exc
        return cls(
            driver,
            database=database,
            read_only=read_only,
            owns_driver=True,
            retry_attempts=retry_attempts,
        )

    def __repr__(self) -> str:
        return f"Neo4jStore(database={self._database!r})"

    def apply_schema(self) -> None:
        for statement in schema_statements("neo4j"):
            self._run_write(lambda tx, s=statement: tx.run(s).consume())

    def read(
        self, cypher: str, params: Mapping[str, Any] | None = None, schema: pa.Schema | None = None
    ) -> pa.Table:
        def work(tx: neo4j.ManagedTransaction) -> tuple[list[str], list[list[Any]]]:
            result = tx.run(cypher, dict(params or {}))
            return list(result.keys()), result.values()

        keys, rows = self._run_read(work)
        if schema is None:
            columns = list(zip(*rows, strict=True)) if rows else [() for _ in keys]
            return pa.table({k: pa.array(list(c)) for k, c in zip(keys, columns, strict=True)})
        return _rows_to_table(rows, schema)

    def explain(self, cypher: str, params: Mapping[str, Any] | None = None) -> set[str]:
        """The operator types of Neo4j's plan for ``cypher`` (``EXPLAIN`` runs nothing),
        plus ``QUERY_TYPE:<r|w|rw|s>`` for the statement type."""

        def work(tx: neo4j.ManagedTransaction) -> Any:
            return tx.run(f"EXPLAIN {cypher}", dict(params or {})).consume()

        summary = self._run_read(work)
        found = {f"QUERY_TYPE:{summary.query_type}"}
        stack = [summary.plan or {}]
        while stack:
            node = stack.pop()
            if node.get("operatorType"):
                found.add(str(node["operatorType"]).split("@")[0])
            stack.extend(node.get("children") or [])
        return found

    def clear(self) -> None:
        # Relationships first, in batches, so that no transaction has to hold the
        # hundreds of thousands of edges of one busy node (an LLM) at once.
        for query in (
            "MATCH ()-[r]->() WITH r LIMIT $n DELETE r RETURN count(*) AS deleted",
            "MATCH (n) WITH n LIMIT $n DETACH DELETE n RETURN count(*) AS deleted",
        ):
            while self._run_write(lambda tx, q=query: tx.run(q, n=self.batch_size).single()[0]):
                pass

    def _delete_batch(self, cypher: str, params: Mapping[str, Any]) -> int:
        return int(self._run_write(lambda tx: tx.run(cypher, dict(params)).single()[0]))

    def close(self) -> None:
        if self._owns_driver:
            self._driver.close()

    # -- exports: whole pages per record -------------------------------------
    # One record per row costs the driver ~35 us each; returning a page of rows
    # as one list (collect of row lists, which keeps nulls) is several times faster.
    def export_nodes(self, label: str, properties: Sequence[str] | None = None) -> pa.Table:
        nt = node_type(label)
        schema = node_schema(nt, properties)
        row = ", ".join(f"n.{c}" for c in schema.names)
        query = (
            f"MATCH (n:{nt.label}) WHERE $after IS NULL OR n.{nt.key} > $after "
            f"WITH n ORDER BY n.{nt.key} LIMIT $page "
            f"RETURN collect([{row}]) AS rows, max(n.{nt.key}) AS last"
        )
        return self._paged(query, schema)

    def export_edges(self, rel: str, properties: Sequence[str] | None = None) -> pa.Table:
        rt = rel_type(rel)
        schema = edge_schema(rt, properties)
        # Key properties order the rows even when they are not asked for.
        full = edge_schema(rt, [*schema.names[2:], *(k for k in rt.key if k not in schema.names)])
        src_key, dst_key = node_type(rt.src).key, node_type(rt.dst).key
        row = ", ".join([f"s.{src_key}", f"d.{dst_key}", *(f"r.{p}" for p in full.names[2:])])
        query = (
            f"MATCH (s:{rt.src}) WHERE $after IS NULL OR s.{src_key} > $after "
            f"WITH s ORDER BY s.{src_key} LIMIT $page "
            f"OPTIONAL MATCH (s)-[r:{rt.name}]->(d:{rt.dst}) "
            f"RETURN collect(CASE WHEN r IS NULL THEN null ELSE [{row}] END) AS rows, "
            f"max(s.{src_key}) AS last"
        )
        table = self._paged(query, full)
        table = table.sort_by([(c, "ascending") for c in ["src", "dst", *rt.key]])
        return table.select(schema.names)

    def _paged(self, query: str, schema: pa.Schema) -> pa.Table:
        """Run a keyset-paged query (``$after``, ``$page`` -> ``rows``, ``last``) to the end."""
        parts, after = [], None
        while True:
            record = self._single(query, {"after": after, "page": self.batch_size})
            if record.get("rows"):
                parts.append(_rows_to_table(record["rows"], schema))
            after = record.get("last")
            if after is None:
                return pa.concat_tables(parts) if parts else schema.empty_table()

    def _single(self, query: str, params: dict[str, Any]) -> dict[str, Any]:
        def work(tx: neo4j.ManagedTransaction) -> dict[str, Any]:
            record = tx.run(query, params).single()
            return dict(record) if record is not None else {}

        return self._run_read(work)

    # -- write primitives ------------------------------------------------------
    def _existing_nodes(self, nt: NodeType, keys: pa.Array, schema: pa.Schema) -> pa.Table:
        row = ", ".join(f"n.{c}" for c in schema.names)
        query = (
            f"UNWIND $keys AS k MATCH (n:{nt.label} {{{nt.key}: k}}) "
            f"RETURN collect([{row}]) AS rows"
        )
        return self._by_keys(query, keys, schema)

    def _existing_edges(self, rt: RelType, srcs: pa.Array, schema: pa.Schema) -> pa.Table:
        src_key, dst_key = node_type(rt.src).key, node_type(rt.dst).key
        row = ", ".join([f"s.{src_key}", f"d.{dst_key}", *(f"r.{p}" for p in schema.names[2:])])
        query = (
            f"UNWIND $keys AS k MATCH (s:{rt.src} {{{src_key}: k}})-[r:{rt.name}]->(d:{rt.dst}) "
            f"RETURN collect([{row}]) AS rows"
        )
        return self._by_keys(query, srcs, schema)

    def _existing_edges_like(self, rt: RelType, keys: pa.Table, schema: pa.Schema) -> pa.Table:
        # Exactly the written edges, not all edges of their sources: a busy user has one
        # ROUTED_TO per query and LLM, and re-reading them all per write grows with traffic.
        # Keyed types seek their key's relationship index (cypher/schema/neo4j.cypher).
        src_key, dst_key = node_type(rt.src).key, node_type(rt.dst).key
        row = ", ".join([f"s.{src_key}", f"d.{dst_key}", *(f"r.{p}" for p in schema.names[2:])])
        where = " AND ".join(f"r.{k} = k.{k}" for k in rt.key)
        query = (
            f"UNWIND $keys AS k MATCH (s:{rt.src} {{{src_key}: k.src}})-[r:{rt.name}]->"
            f"(d:{rt.dst} {{{dst_key}: k.dst}}){' WHERE ' + where if where else ''} "
            f"RETURN collect([{row}]) AS rows"
        )
        return self._by_keys(query, keys, schema)

    def _by_keys(self, query: str, keys: pa.Array | pa.Table, schema: pa.Schema) -> pa.Table:
        parts = [
            _rows_to_table(
                self._single(query, {"keys": keys.slice(i, self.batch_size).to_pylist()})["rows"],
                schema,
            )
            for i in range(0, len(keys), self.batch_size)
        ]
        return pa.concat_tables(parts) if parts else schema.empty_table()

    def _create_nodes(self, nt: NodeType, rows: pa.Table) -> None:
        self._merge_nodes(nt, rows)

    def _update_nodes(self, nt: NodeType, rows: pa.Table) -> None:
        self._merge_nodes(nt, rows)

    def _create_edges(self, rt: RelType, rows: pa.Table) -> None:
        # The caller found these edges missing, but another writer may have created
        # them since: MERGE under the write lock (see the module docs) re-checks.
        self._merge_edges(rt, rows)

    def _update_edges(self, rt: RelType, rows: pa.Table) -> None:
        self._merge_edges(rt, rows)

    def _merge_nodes(self, nt: NodeType, rows: pa.Table) -> None:
        props = rows.column_names[1:]
        sets = ", ".join(f"n.{p} = coalesce(row.{p}, n.{p})" for p in props)
        query = f"UNWIND $rows AS row MERGE (n:{nt.label} {{{nt.key}: row.{nt.key}}})"
        self._write_batched(query + (f" SET {sets}" if sets else ""), rows)

    def _merge_edges(self, rt: RelType, rows: pa.Table) -> None:
        src_key, dst_key = node_type(rt.src).key, node_type(rt.dst).key
        values = [c for c in rows.column_names[2:] if c not in rt.key]
        keyed = ", ".join(f"{k}: row.{k}" for k in rt.key)
        pattern = f"(s)-[r:{rt.name}{' {' + keyed + '}' if keyed else ''}]->(d)"
        query = (
            f"UNWIND $rows AS row "
            f"MATCH (s:{rt.src} {{{src_key}: row.src}}) MATCH (d:{rt.dst} {{{dst_key}: row.dst}}) "
            f"MERGE {pattern}"
        )
        sets = ", ".join(f"r.{p} = coalesce(row.{p}, r.{p})" for p in values)
        self._write_batched(query + (f" SET {sets}" if sets else ""), rows)

    # -- helpers ---------------------------------------------------------------
    def _batches(self, table: pa.Table) -> Iterator[list[dict[str, Any]]]:
        for start in range(0, table.num_rows, self.batch_size):
            yield table.slice(start, self.batch_size).to_pylist()

    def _write_batched(self, query: str, rows: pa.Table) -> None:
        with tqdm(
            total=rows.num_rows,
            unit="rows",
            desc="neo4j write",
            leave=False,
            disable=None if rows.num_rows > self.batch_size else True,
        ) as bar:
            for batch in self._batches(rows):
                self._run_write(lambda tx, b=batch: self._locked(tx, query, b))
                bar.update(len(batch))

    @staticmethod
    def _locked(tx: neo4j.ManagedTransaction, query: str, rows: list[dict[str, Any]]) -> None:
        """Take the graph's write lock, then run ``query`` over ``rows`` in ``tx``."""
        tx.run(WRITE_LOCK, token=secrets.token_hex(8)).consume()
        tx.run(query, rows=rows).consume()

    def _run_read(self, work: Any) -> Any:
        return self._run(neo4j.READ_ACCESS, work)

    def _run_write(self, work: Any) -> Any:
        if self._read_only:
            raise StoreError("this Neo4j store was opened read-only")
        return self._run(neo4j.WRITE_ACCESS, work)

    def _run(self, mode: str, work: Any) -> Any:
        """``work`` in a managed transaction of ``mode``; unavailability retried with
        backoff, every driver error raised as :class:`StoreError`."""
        wait, longest = RETRY_BACKOFF_S
        for attempt in range(1, self.retry_attempts + 1):
            try:
                with self._session(mode) as session:
                    if mode == neo4j.READ_ACCESS:
                        return session.execute_read(work)
                    return session.execute_write(work)
            except _TRANSIENT as exc:
                if attempt == self.retry_attempts:
                    raise StoreError(
                        f"Neo4j unavailable after {attempt} attempts "
                        f"({type(exc).__name__}): {_message(exc)}"
                    ) from exc
                time.sleep(wait)
                wait = min(longest, wait * 2)
            except neo4j.exceptions.Neo4jError as exc:
                raise StoreError(f"Neo4j: {_message(exc)}") from exc
            except (neo4j.exceptions.DriverError, OSError) as exc:
                raise StoreError(f"Neo4j driver ({type(exc).__name__}): {_message(exc)}") from exc
        raise AssertionError("unreachable")

    def _session(self, mode: str) -> neo4j.Session:
        return self._driver.session(
            database=self._database, default_access_mode=mode, bookmark_manager=self._bookmarks
        )


def _message(exc: Exception) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return str(text).strip().splitlines()[0][:300]


def _rows_to_table(rows: list[list[Any]], schema: pa.Schema) -> pa.Table:
    """Transpose a list of row lists into an Arrow table of ``schema``."""
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in schema]
    arrays = [pa.array(list(c), type=f.type) for c, f in zip(columns, schema, strict=True)]
    return pa.Table.from_arrays(arrays, schema=schema)
