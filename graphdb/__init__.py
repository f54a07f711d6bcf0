"""The property-graph store: schema, backends, canonical ingest, export and write-back."""

from __future__ import annotations

from graphdb.store import BACKENDS, GraphStore, WriteStats, open_store

__all__ = ["BACKENDS", "GraphStore", "WriteStats", "open_store"]
