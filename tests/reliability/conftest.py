"""Shared workload for the reliability tests: an old store and the graph after a new file.

``old`` holds a small synthetic workload; ``new.parquet`` (the same seed with more
queries: it overlaps the old ids, keeps their tasks since a query never changes
task, changes their texts, and extends them) ingested into a copy of it gives
the fully-new graph. A faulted ingest must leave exactly one of the two digests.
"""

from __future__ import annotations

import pytest
from reliability_support import Workload, clone, prouter, store_digest


@pytest.fixture(scope="session")
def workload(tmp_path_factory: pytest.TempPathFactory) -> Workload:
    root = tmp_path_factory.mktemp("workload")
    old_data, new_data = root / "old.parquet", root / "new.parquet"
    prouter("generate", "synthetic", str(old_data), "--queries", "600", "--seed", "0")
    prouter("generate", "synthetic", str(new_data), "--queries", "3000", "--seed", "0")
    old_db = root / "old" / "graph.lbug"
    old_db.parent.mkdir()
    prouter("--store", f"ladybug:{old_db}", "ingest", "canonical", str(old_data))
    new_db = clone(old_db, root / "new")
    prouter("--store", f"ladybug:{new_db}", "ingest", "canonical", str(new_data))
    work = Workload(
        old_db, new_data, store_digest(old_db), store_digest(new_db), new_db.stat().st_size
    )
    assert work.old_digest != work.new_digest
    return work
