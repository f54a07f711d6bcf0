"""Fault injection helpers: run an ingest in a child process and kill it at a chosen point.

A kill point is a file that appears in the store's folder (LadybugDB's WAL,
frozen WAL ``*.wal.checkpoint``, shadow file, or the product's private copy) or
the live file being replaced. The child is polled in a loop bounded by
``MAX_WAIT_S``; nothing asserts on wall-clock time.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from graphdb.schema import NODES, RELS
from graphdb.store import GraphStore, open_store

PROUTER = str(Path(sys.executable).with_name("prouter"))
MAX_WAIT_S = 90.0  # bound on one child run, not an assertion
SWAPPED = "<live file replaced>"


def prouter(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a child process."""
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [PROUTER, *args], capture_output=True, text=True, check=check, env=env, timeout=300
    )


def digest(store: GraphStore) -> tuple[str, dict[str, int]]:
    """A hash of every node and edge export (order-independent) and the counts."""
    h = hashlib.sha256()
    counts: dict[str, int] = {}
    for name, export in [(n, store.export_nodes) for n in NODES] + [
        (r, store.export_edges) for r in RELS
    ]:
        rows = sorted(json.dumps(r, sort_keys=True, default=str) for r in export(name).to_pylist())
        counts[name] = len(rows)
        h.update(name.encode() + b"\0" + "\n".join(rows).encode() + b"\0")
    return h.hexdigest(), counts


@dataclass
class KillResult:
    """What happened to the child: killed at the point, or finished first."""

    hit: bool
    returncode: int
    files_at_kill: list[str]
    stderr: str


def ingest_and_kill(db: Path, data: Path, point: str, *, after_hits: int = 0) -> KillResult:
    """Start ``prouter ingest canonical data`` on ``db`` and SIGKILL it at ``point``.

    ``point`` is a glob on file names in ``db``'s folder, or ``SWAPPED``.
    ``after_hits`` extra polls (about 1 ms each) pass between seeing the point and the kill.
    """
    inode = db.stat().st_ino
    child = subprocess.Popen(
        [PROUTER, "--store", f"ladybug:{db}", "ingest", "canonical", str(data)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"OMP_NUM_THREADS": "1"},
    )

    def reached() -> bool:
        if point == SWAPPED:
            try:
                return db.stat().st_ino != inode
            except FileNotFoundError:
                return False
        return any(fnmatch.fnmatch(n, point) for n in os.listdir(db.parent))

    return _kill_when(child, db, reached, after_hits=after_hits)


def _kill_when(
    child: subprocess.Popen[str], db: Path, reached: Callable[[], bool], *, after_hits: int = 0
) -> KillResult:
    """Poll until ``reached()`` (at most ``MAX_WAIT_S``), wait ``after_hits`` more polls of
    about 1 ms, then SIGKILL ``child`` if it still runs; what was beside ``db`` at that moment."""
    deadline = time.monotonic() + MAX_WAIT_S
    hit = False
    while child.poll() is None and time.monotonic() < deadline:
        if reached():
            hit = True
            for _ in range(after_hits):
                time.sleep(0.001)
            break
        time.sleep(0.0002)
    files = sorted(os.listdir(db.parent))
    if child.poll() is None:
        child.send_signal(signal.SIGKILL)
    _, stderr = child.communicate(timeout=60)
    return KillResult(hit, child.returncode, files, stderr)


def clone(src: Path, dst_dir: Path) -> Path:
    """Copy a clean store file into ``dst_dir`` and return the copy's path."""
    dst_dir.mkdir(parents=True, exist_ok=True)
    dst = dst_dir / src.name
    shutil.copyfile(src, dst)
    return dst


# A child that writes straight through LadybugDB (no product code): COPY new Query
# nodes and SET every User's alpha in one transaction, committed with the automatic
# checkpoint. Killing it while its frozen WAL (``*.wal.checkpoint``) exists leaves
# "checkpoint recovery pending" behind.
RAW_WRITER = """
import sys, ladybug, pyarrow as pa
db = ladybug.Database(sys.argv[1]); c = ladybug.Connection(db)
n = int(sys.argv[2])
c.execute("BEGIN TRANSACTION")
c.execute("COPY Query FROM $t", {"t": pa.table({
    "id": [f"raw{i:07d}" for i in range(n)], "text": ["raw"] * n, "split": ["train"] * n,
    "embedding": pa.nulls(n, pa.list_(pa.float32()))})})
c.execute("MATCH (u:User) SET u.alpha = 0.123")
c.execute("COMMIT")
"""


def raw_write_and_kill(db: Path, n_new: int, point: str = "*.wal.checkpoint") -> KillResult:
    """Run ``RAW_WRITER`` on ``db`` and SIGKILL it when ``point`` appears beside it."""
    child = subprocess.Popen(
        [sys.executable, "-c", RAW_WRITER, str(db), str(n_new)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    return _kill_when(
        child, db, lambda: any(fnmatch.fnmatch(n, point) for n in os.listdir(db.parent))
    )


@dataclass(frozen=True)
class Workload:
    """The old store, the new file, and the digests of the old and fully-new graphs."""

    old_db: Path
    new_data: Path
    old_digest: str
    new_digest: str
    new_db_size: int


def store_digest(db: Path, *, read_only: bool = True) -> str:
    with open_store(f"ladybug:{db}", read_only=read_only) as store:
        return digest(store)[0]
