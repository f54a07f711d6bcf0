"""An interrupted LadybugDB checkpoint no longer locks readers out.

Before: every read-only open (``graph summary``, ``route``, ``serve``) failed with
"checkpoint recovery pending" until something opened the store read-write.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from reliability_support import Workload, clone, prouter, raw_write_and_kill

from graphdb.backends import ladybug_files
from graphdb.store import open_store
from prcore.errors import StoreError

pytestmark = pytest.mark.slow


def pending_store(workload: Workload, tmp_path: Path) -> Path:
    """A store left with an interrupted checkpoint by a killed raw LadybugDB writer."""
    db = clone(workload.old_db, tmp_path / "store")
    result = raw_write_and_kill(db, 100_000)
    if not result.hit:
        pytest.skip(f"the raw writer finished before its checkpoint could be caught: {result}")
    assert any(n.endswith(".wal.checkpoint") for n in result.files_at_kill)
    return db


def test_reader_finishes_an_interrupted_checkpoint(workload: Workload, tmp_path: Path) -> None:
    db = pending_store(workload, tmp_path)
    with open_store(f"ladybug:{db}", read_only=True) as store:
        assert store.counts()["User"] > 0
    assert ladybug_files.sidecars(db) == []


def test_graph_summary_works_after_an_interrupted_checkpoint(
    workload: Workload, tmp_path: Path
) -> None:
    db = pending_store(workload, tmp_path)
    out = prouter("--store", f"ladybug:{db}", "graph", "summary", check=False)
    assert out.returncode == 0, out.stderr
    assert "recovery" not in out.stdout + out.stderr


def test_reader_explains_itself_while_another_process_writes(
    workload: Workload, tmp_path: Path
) -> None:
    db = pending_store(workload, tmp_path)
    lock = ladybug_files.WriterLock(db)
    assert lock.acquire()
    try:
        with pytest.raises(StoreError) as err:
            open_store(f"ladybug:{db}", read_only=True)
    finally:
        lock.release()
    message = str(err.value)
    assert "\n" not in message
    assert "interrupted checkpoint" in message and "graph summary" in message
    assert "retry" in message


def test_one_writer_at_a_time(tmp_path: Path) -> None:
    db = tmp_path / "graph.lbug"
    with open_store(f"ladybug:{db}"):
        with pytest.raises(StoreError, match="another process is writing"):
            open_store(f"ladybug:{db}")
        with open_store(f"ladybug:{db}", read_only=True) as reader:
            assert reader.counts()["Query"] == 0
