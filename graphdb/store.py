"""The graph-store interface that the rest of PersonalizedRouter codes against.

Two backends implement it: the embedded LadybugDB store (default, one file on
disk, no server) and Neo4j over Bolt. ``open_store(url)`` picks one from a
single setting. Everything schema-shaped (exports, counts, named queries) is
written once here on top of two backend primitives: ``read`` (a parameterised,
read-only Cypher query returning Arrow) and the idempotent writers.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from graphdb.diff import delta
from graphdb.queries import check_params, get_query
from graphdb.schema import NODES, RELS, NodeType, RelType, node_type, rel_type
from graphdb.tables import TableLike, conform_edges, conform_nodes, edge_schema, node_schema
from prcore.errors import ConfigError, StoreError

__all__ = ["BACKENDS", "GraphStore", "WriteStats", "embedded_store_file", "open_store"]

BACKENDS = {
    "ladybug": "embedded LadybugDB file: 'ladybug:PATH' or a path ending in .lbug",
    "neo4j": "Neo4j server: 'neo4j://HOST:PORT', 'bolt://HOST:PORT' (also +s / +ssc)",
}
DELETE_BATCH = 10_000  # items deleted per statement by delete_routed / delete_model
_NEO4J_SCHEMES = ("neo4j://", "neo4j+s://", "neo4j+ssc://", "bolt://", "bolt+s://", "bolt+ssc://")


@dataclass(frozen=True)
class WriteStats:
    """What one write did: rows created, rows updated, rows already identical."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def total(self) -> int:
        return self.created + self.updated + self.unchanged

    def __add__(self, other: WriteStats) -> WriteStats:
        return WriteStats(
            self.created + other.created,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
        )


class GraphStore(abc.ABC):
    """A property graph with the PersonalizedRouter schema.

    Writes are idempotent upserts keyed by the schema: writing the same rows
    twice leaves the graph as after the first write. A null value in a written
    row means "unknown" and keeps the stored value.
    """

    backend: str = ""
    _in_transaction: bool = False

    # -- backend primitives -------------------------------------------------
    @abc.abstractmethod
    def apply_schema(self) -> None:
        """Create the tables / constraints of the schema (idempotent)."""

    @abc.abstractmethod
    def read(
        self, cypher: str, params: Mapping[str, Any] | None = None, schema: pa.Schema | None = None
    ) -> pa.Table:
        """Run a parameterised read query and return its rows as an Arrow table.

        ``schema`` fixes the column types (useful when the result may be empty).
        """

    @abc.abstractmethod
    def _existing_nodes(self, nt: NodeType, keys: pa.Array, schema: pa.Schema) -> pa.Table:
        """Stored nodes of ``nt`` among ``keys`` (distinct), with ``schema``'s columns."""

    @abc.abstractmethod
    def _existing_edges(self, rt: RelType, srcs: pa.Array, schema: pa.Schema) -> pa.Table:
        """Stored edges of ``rt`` leaving the ``srcs`` nodes, with ``schema``'s columns."""

    def _existing_edges_like(self, rt: RelType, keys: pa.Table, schema: pa.Schema) -> pa.Table:
        """Stored edges of ``rt`` with the endpoints and key values of ``keys`` (columns
        ``src``, ``dst``, ``*rt.key``), or a superset of them: by default every edge
        leaving their sources (a backend may look up exactly these)."""
        return self._existing_edges(rt, pc.unique(keys.column("src")), schema)

    @abc.abstractmethod
    def _create_nodes(self, nt: NodeType, rows: pa.Table) -> None: ...

    @abc.abstractmethod
    def _update_nodes(self, nt: NodeType, rows: pa.Table) -> None:
        """Set the non-null values of ``rows`` on the nodes with their keys."""

    @abc.abstractmethod
    def _create_edges(self, rt: RelType, rows: pa.Table) -> None: ...

    @abc.abstractmethod
    def _update_edges(self, rt: RelType, rows: pa.Table) -> None:
        """Set the non-null values of ``rows`` on the edges with their keys."""

    def _begin(self) -> AbstractContextManager[None]:
        """One backend transaction around the enclosed writes (none by default)."""
        return nullcontext()

    def ensure_room(self, incoming_bytes: int) -> None:
        """Refuse (before anything is written) a write of about ``incoming_bytes`` of new
        data that cannot fit where the store keeps its files; no check by default."""
        return None

    def commit_point(self) -> None:
        """Inside :meth:`transaction`, let the backend keep the writes so far outside
        memory where that publishes nothing yet (LadybugDB writing its private copy:
        commit there and go on; nothing elsewhere). Large loads call it between batches."""
        return None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes: on LadybugDB they commit or roll back together.

        On Neo4j each write batch is its own transaction (large loads would not
        fit one); since every write first looks up what is stored and writes only
        what is missing or different, a re-run after a failure converges.
        Nested uses join the outer transaction.
        """
        if self._in_transaction:
            yield
            return
        self._in_transaction = True
        try:
            with self._begin():
                yield
        finally:
            self._in_transaction = False

    @abc.abstractmethod
    def clear(self) -> None:
        """Delete every node and relationship (the schema stays)."""

    def _delete_batch(self, cypher: str, params: Mapping[str, Any]) -> int:
        """Run one parameterised deleting statement that ends ``RETURN count(*)``, once, and
        return that count (a backend primitive for :meth:`delete_routed` and
        :meth:`delete_model`)."""
        raise NotImplementedError(f"{type(self).__name__} cannot delete")

    def _delete_all(self, cypher: str, params: Mapping[str, Any]) -> int:
        """Repeat ``cypher`` (which deletes at most ``$n`` items) until it deletes nothing,
        inside one :meth:`transaction` (LadybugDB: one copy and swap, never the live file
        edited in place; Neo4j: each statement its own transaction, so that none has to
        hold every item at once); the total deleted."""
        total = 0
        with self.transaction():
            while deleted := self._delete_batch(cypher, {**params, "n": DELETE_BATCH}):
                total += deleted
        return total

    def delete_routed(self, version: str, *, above_rank: int | None = None) -> int:
        """Delete the ROUTED_TO edges of model ``version`` (only those ranked below
        ``above_rank`` when given); the number deleted."""
        doomed = "r.model_version = $version"
        params: dict[str, Any] = {"version": version}
        if above_rank is not None:
            doomed, params["rank"] = f"{doomed} AND r.rank > $rank", int(above_rank)
        return self._delete_routed(doomed, params)

    def _delete_routed(self, doomed: str, params: Mapping[str, Any]) -> int:
        """Delete the ROUTED_TO edges ``r`` for which the condition ``doomed`` holds; the
        number deleted."""
        return self._delete_all(
            f"MATCH (:User)-[r:ROUTED_TO]->(:LLM) WHERE {doomed} "
            "WITH r LIMIT $n DELETE r RETURN count(*) AS deleted",
            params,
        )

    def delete_model(self, version: str) -> dict[str, int]:
        """Delete model ``version`` from the graph: its ROUTED_TO edges, its EVALUATED
        edges and its RouterModel node (counts of each; one :meth:`transaction`)."""
        with self.transaction():
            routed = self.delete_routed(version)
            evaluated = self._delete_all(
                "MATCH (m:RouterModel)-[e:EVALUATED]->(:User) WHERE m.version = $version "
                "WITH e LIMIT $n DELETE e RETURN count(*) AS deleted",
                {"version": version},
            )
            models = self._delete_all(
                "MATCH (m:RouterModel) WHERE m.version = $version "
                "WITH m LIMIT $n DETACH DELETE m RETURN count(*) AS deleted",
                {"version": version},
            )
        return {"ROUTED_TO": routed, "EVALUATED": evaluated, "RouterModel": models}

    def delete_outcomes(self, pairs: Sequence[tuple[str, str]]) -> int:
        """Delete the ANSWERED_BY edges of these (query id, LLM id) pairs, in batches of
        ``DELETE_BATCH`` inside one :meth:`transaction`; the number deleted."""
        total = 0
        with self.transaction():
            for start in range(0, len(pairs), DELETE_BATCH):
                batch = [{"q": q, "l": m} for q, m in pairs[start : start + DELETE_BATCH]]
                total += self._delete_batch(
                    "UNWIND $pairs AS p "
                    "MATCH (:Query {id: p.q})-[a:ANSWERED_BY]->(:LLM {id: p.l}) "
                    "DELETE a RETURN count(*) AS deleted",
                    {"pairs": batch},
                )
        return total

    @abc.abstractmethod
    def close(self) -> None:
        """Release the database handle or driver."""

    # -- shared behaviour ------------------------------------------------------
    def write_nodes(self, label: str, rows: TableLike) -> WriteStats:
        """Upsert nodes of ``label``; columns are the key and any schema properties."""
        nt = node_type(label)
        table = conform_nodes(nt, rows)
        if table.num_rows == 0:
            return WriteStats()
        with self.transaction():
            keys = pc.unique(table.column(nt.key))
            existing = self._existing_nodes(nt, keys, table.schema)
            change = delta(table, existing, [nt.key], table.column_names[1:])
            if change.new.num_rows:
                self._create_nodes(nt, change.new)
            if change.changed.num_rows:
                self._update_nodes(nt, change.changed)
        return WriteStats(change.new.num_rows, change.changed.num_rows, change.unchanged)

    def write_edges(self, rel: str, rows: TableLike) -> WriteStats:
        """Upsert relationships of type ``rel`` from rows with ``src``, ``dst`` and properties.

        Every endpoint must exist already; otherwise nothing is written and the
        error names the missing ids.
        """
        rt = rel_type(rel)
        table = conform_edges(rt, rows)
        if table.num_rows == 0:
            return WriteStats()
        key = ["src", "dst", *rt.key]
        values = [c for c in table.column_names if c not in key]
        with self.transaction():
            for side, label in (("src", rt.src), ("dst", rt.dst)):
                keys = pc.unique(table.column(side))
                nt = node_type(label)
                known = self._existing_nodes(nt, keys, node_schema(nt, []))
                missing = pc.filter(keys, pc.invert(pc.is_in(keys, known.column(0))))
                if len(missing):
                    raise StoreError(
                        f"{rel} edges reference {len(missing)} unknown {label} ids "
                        f"(nothing was written), e.g. {missing.to_pylist()[:5]}"
                    )
            keys = table.select(key).group_by(key, use_threads=False).aggregate([])
            existing = self._existing_edges_like(rt, keys, table.schema)
            change = delta(table, existing, key, values)
            if change.new.num_rows:
                self._create_edges(rt, change.new)
            if change.changed.num_rows:
                self._update_edges(rt, change.changed)
        return WriteStats(change.new.num_rows, change.changed.num_rows, change.unchanged)

    def node_ids(self, label: str) -> list[str]:
        """Every key of ``label``."""
        nt = node_type(label)
        table = self.read(
            f"MATCH (n:{nt.label}) RETURN n.{nt.key} AS {nt.key}", schema=node_schema(nt, [])
        )
        return table.column(0).to_pylist()

    def export_nodes(self, label: str, properties: Sequence[str] | None = None) -> pa.Table:
        """All nodes of ``label`` as a table: the key, then ``properties`` (default: all)."""
        nt = node_type(label)
        schema = node_schema(nt, properties)
        cols = ", ".join(f"n.{c} AS {c}" for c in schema.names)
        return self.read(f"MATCH (n:{nt.label}) RETURN {cols} ORDER BY n.{nt.key}", schema=schema)

    def export_edges(self, rel: str, properties: Sequence[str] | None = None) -> pa.Table:
        """All relationships of type ``rel``: ``src``, ``dst``, then ``properties``."""
        rt = rel_type(rel)
        schema = edge_schema(rt, properties)
        src_key, dst_key = node_type(rt.src).key, node_type(rt.dst).key
        # Key properties order the rows even when they are not asked for.
        hidden = [k for k in rt.key if k not in schema.names]
        cols = ", ".join(
            [f"s.{src_key} AS src", f"d.{dst_key} AS dst"]
            + [f"r.{p} AS {p}" for p in schema.names[2:]]
            + [f"r.{k} AS _key_{k}" for k in hidden]
        )
        order = ", ".join(
            ["src", "dst", *(k if k in schema.names else f"_key_{k}" for k in rt.key)]
        )
        table = self.read(
            f"MATCH (s:{rt.src})-[r:{rt.name}]->(d:{rt.dst}) RETURN {cols} ORDER BY {order}"
        )
        return (
            table.select(list(range(len(schema.names)))).rename_columns(schema.names).cast(schema)
        )

    def counts(self) -> dict[str, int]:
        """Number of nodes per label and relationships per type."""
        out: dict[str, int] = {}
        for label in NODES:
            out[label] = self._count(f"MATCH (n:{label}) RETURN count(n) AS n")
        for name, rt in RELS.items():
            out[name] = self._count(
                f"MATCH (:{rt.src})-[r:{name}]->(:{rt.dst}) RETURN count(r) AS n"
            )
        return out

    def _count(self, cypher: str) -> int:
        return int(self.read(cypher).column(0)[0].as_py())

    def query(self, name: str, **params: Any) -> pa.Table:
        """Run a named query from ``cypher/`` with its declared parameters."""
        named = get_query(name)
        check_params(named, params)
        return self.read(named.text, params)

    def __enter__(self) -> GraphStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def embedded_store_file(url: str) -> Path | None:
    """The file of an embedded (LadybugDB) store ``url``; None for any other backend."""
    url = str(url)
    if url.startswith(_NEO4J_SCHEMES) or not (url.startswith("ladybug:") or url.endswith(".lbug")):
        return None
    return Path(url.removeprefix("ladybug:").removeprefix("//"))


def open_store(
    url: str,
    *,
    username: str | None = None,
    password: str | None = None,
    database: str | None = None,
    read_only: bool = False,
) -> GraphStore:
    """Open the store named by one setting.

    ``url`` is ``ladybug:PATH`` (or a path ending in ``.lbug``) for the embedded
    store, or a Neo4j URI (``neo4j://``, ``bolt://``, ...) with ``username`` and
    ``password``. The schema is applied unless ``read_only``.
    """
    url = str(url)
    if url.startswith(_NEO4J_SCHEMES):
        from graphdb.backends.neo4j import Neo4jStore

        if not username or password is None:
            raise ConfigError(
                "Neo4j needs a username and password (NEO4J_USERNAME / NEO4J_PASSWORD)"
            )
        store: GraphStore = Neo4jStore.connect(
            url, (username, password), database=database, read_only=read_only
        )
    elif (path := embedded_store_file(url)) is not None:
        from graphdb.backends.ladybug import LadybugStore

        store = LadybugStore.open(path, read_only=read_only)
    else:
        choices = "; ".join(f"{k}: {v}" for k, v in BACKENDS.items())
        raise ConfigError(f"cannot tell the backend of store {url!r}; valid backends: {choices}")
    if not read_only:
        store.apply_schema()
    return store
