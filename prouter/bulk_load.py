"""The initial load of canonical files into the local Neo4j with ``neo4j-admin``.

:func:`bulk_load` validates the files exactly as ``prouter ingest canonical``
does (all or nothing), a chunk of records at a time into a temporary spill
(:func:`graphdb.chunked.validate_files`), turns the spill, a chunk at a time, into
the same node and edge tables and writes them as import CSVs
(:func:`graphdb.bulk.write_spill_files`; memory: one chunk of records plus the
distinct nodes), runs ``neo4j-admin database import full`` of the launcher's own
distribution (:func:`neo4j_local.import_full`: stop, import, start), then applies
the schema. It only loads an empty database
of a server started by ``prouter neo4j start`` (:func:`local_server_for`);
everything else goes through the UNWIND path of :mod:`graphdb.ingest`.
"""

from __future__ import annotations

import secrets
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from prcore.errors import ConfigError

__all__ = ["BulkReport", "bulk_load", "local_server_for"]


@dataclass
class BulkReport:
    """What :func:`bulk_load` loaded, and how long each step took (seconds)."""

    records: int
    counts: dict[str, int]
    seconds: dict[str, float] = field(default_factory=dict)

    def lines(self) -> list[str]:
        loaded = ", ".join(f"{k} {v}" for k, v in self.counts.items() if v)
        steps = ", ".join(f"{k} {v:.1f}s" for k, v in self.seconds.items())
        return [f"bulk-loaded {self.records} records: {loaded}", f"  ({steps})"]


def local_server_for(url: str, home: Path | None = None):  # type: ignore[no-untyped-def]
    """The running local server (``neo4j_local``) that ``url`` points at, else None."""
    import neo4j_local

    info = neo4j_local.status(home)
    if info is None:
        return None
    want, have = urlparse(url), urlparse(info.uri)
    local = {"127.0.0.1", "localhost", "::1"}
    same_host = want.hostname in local and have.hostname in local
    return info if same_host and want.port == have.port else None


def bulk_load(
    paths: Sequence[str | Path], *, home: Path | None = None, chunk_size: int | None = None
) -> BulkReport:
    """Load canonical ``paths`` into the empty database of the local Neo4j server, reading
    ``chunk_size`` records at a time (default :data:`graphdb.chunked.DEFAULT_CHUNK`)."""
    import neo4j_local
    from graphdb.bulk import write_spill_files
    from graphdb.canonical import refuse_invalid
    from graphdb.chunked import DEFAULT_CHUNK, validate_files
    from graphdb.store import open_store

    chunk_size = chunk_size or DEFAULT_CHUNK

    seconds: dict[str, float] = {}
    info = neo4j_local.status(home)
    if info is None:
        raise ConfigError("no local Neo4j server is running (start it with `prouter neo4j start`)")
    folder = info.home / "import" / f"bulk-{secrets.token_hex(4)}"
    folder.mkdir(parents=True)
    try:
        t0 = time.perf_counter()
        with open_store(info.uri, username=info.username, password=info.password) as store:
            if any(store.counts().values()):
                raise ConfigError(
                    "the Neo4j database is not empty: the bulk import only makes an initial "
                    "load (use `prouter ingest canonical` without --bulk to add to it)"
                )
            spill = validate_files(store, paths, folder / "spill.parquet", chunk_size=chunk_size)
        refuse_invalid(spill.validated, spill.records_read, "nothing was loaded")
        seconds["validate"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        args = write_spill_files(spill, folder, chunk_size=chunk_size)
        spill.path.unlink()
        seconds["csv"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        info = neo4j_local.import_full(args, info.home, password=info.password)
        seconds["import+restart"] = time.perf_counter() - t0
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    t0 = time.perf_counter()
    with open_store(info.uri, username=info.username, password=info.password) as store:
        counts = store.counts()  # open_store applied the schema (constraints, indexes)
    seconds["schema"] = time.perf_counter() - t0
    return BulkReport(spill.records_read, counts, seconds)
