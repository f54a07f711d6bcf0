"""A full disk during an embedded ingest leaves the old graph, with a one-line error.

Issue 14 item 1: on a 5 MB tmpfs the ingest tore the graph while LadybugDB
printed "Transaction committed successfully ... durable and will be recovered".
Each case mounts a small tmpfs (needs root; skipped with the reason otherwise)
whose free space after the old store is a fraction of the fully-new store's size.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from reliability_support import Workload, clone, prouter, store_digest

pytestmark = pytest.mark.slow


@contextmanager
def tmpfs(where: Path, size: int) -> Iterator[Path]:
    """A tmpfs of ``size`` bytes mounted at ``where`` (skips the test when impossible)."""
    where.mkdir()
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if mount.returncode != 0:
        pytest.skip(f"disk-full test needs a small tmpfs, and mount failed: {mount.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


# Free space after the old store, as a fraction of the fully-new store's size:
# too little for the private copy, for the new data, for its checkpoint, and enough.
FREE_FRACTIONS = [0.1, 0.6, 1.2, 1.8, 3.0]


@pytest.mark.parametrize("free", FREE_FRACTIONS)
def test_disk_full_leaves_old_or_new_graph(free: float, workload: Workload, tmp_path: Path) -> None:
    size = workload.old_db.stat().st_size + int(free * workload.new_db_size)
    with tmpfs(tmp_path / "disk", size) as disk:
        db = clone(workload.old_db, disk)
        out = prouter(
            "--store", f"ladybug:{db}", "ingest", "canonical", str(workload.new_data), check=False
        )
        after = store_digest(db)
        if out.returncode == 0:
            assert after == workload.new_digest
        else:
            assert after == workload.old_digest, f"torn graph with {free} free: {out.stderr}"
            assert "Traceback" not in out.stderr
            if out.returncode < 0:  # LadybugDB aborts the process when its WAL hits ENOSPC
                assert "No space left on device" in out.stderr, out.stderr
            else:
                assert "nothing was written" in out.stderr
        assert [p.name for p in disk.iterdir() if ".tx-" in p.name] == []
