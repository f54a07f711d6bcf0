"""Killing an embedded ingest at any point leaves the old graph or the new one, exactly.

Issue 14 item 1: a SIGKILL while LadybugDB checkpointed (``*.wal.checkpoint``
present) left a mix: updates to existing nodes applied, new nodes and edges
missing; a kill while the WAL was being written left a store that would not open.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from reliability_support import SWAPPED, Workload, clone, ingest_and_kill, prouter, store_digest

pytestmark = pytest.mark.slow

# (kill point, polls of ~1 ms between seeing it and the kill)
KILL_POINTS = {
    "store opened": ("graph.lbug.writer.lock", 0),
    "private copy made": ("graph.lbug.tx-*", 0),
    "WAL written": ("graph.lbug*.wal", 0),
    "checkpoint starts": ("graph.lbug*.wal.checkpoint", 0),
    "checkpoint +5 ms": ("graph.lbug*.wal.checkpoint", 5),
    "checkpoint +50 ms": ("graph.lbug*.wal.checkpoint", 50),
    "shadow pages": ("graph.lbug*.shadow", 0),
    "live file replaced": (SWAPPED, 0),
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_killed_ingest_leaves_old_or_new_graph(
    point: str, workload: Workload, tmp_path: Path
) -> None:
    pattern, delay = KILL_POINTS[point]
    db = clone(workload.old_db, tmp_path / "store")
    result = ingest_and_kill(db, workload.new_data, pattern, after_hits=delay)
    if pattern == SWAPPED:
        # The child may finish between the swap and the kill.
        assert result.hit or result.returncode == 0, result.stderr
    else:
        assert result.hit, f"kill point {point!r} never reached: {result.stderr[-500:]}"

    # Readers open without any manual step, then a writer: both see old or new exactly.
    seen = store_digest(db, read_only=True)
    assert seen in (workload.old_digest, workload.new_digest), (
        f"torn graph after a kill at {point!r} (files then: {result.files_at_kill})"
    )
    assert store_digest(db, read_only=False) == seen
    leftovers = [p.name for p in db.parent.iterdir() if ".tx-" in p.name]
    assert leftovers == [], "the next writer removes copies left by the killed one"


def test_ingest_after_a_kill_completes_the_new_graph(workload: Workload, tmp_path: Path) -> None:
    db = clone(workload.old_db, tmp_path / "store")
    result = ingest_and_kill(db, workload.new_data, "graph.lbug*.wal.checkpoint")
    assert result.hit, result.stderr[-500:]
    prouter("--store", f"ladybug:{db}", "ingest", "canonical", str(workload.new_data))
    assert store_digest(db) == workload.new_digest
