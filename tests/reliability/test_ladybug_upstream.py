"""The upstream LadybugDB bug the embedded store works around (kept to notice a fix).

LadybugDB 0.22.0: kill a process while its post-commit checkpoint runs (the
frozen WAL ``*.wal.checkpoint`` exists) and recovery applies the committed
transaction only in part: the SET on existing nodes survives, the COPY-ed new
nodes are gone. When this test starts passing (strict xfail fails), a fixed
release is installed and the copy-and-swap in ``graphdb.backends.ladybug_files``
can be reconsidered.
"""

from __future__ import annotations

from pathlib import Path

import ladybug
import pytest
from reliability_support import Workload, clone, raw_write_and_kill

pytestmark = pytest.mark.slow

N_NEW = 100_000


def _state(db: Path) -> tuple[int, int]:
    conn = ladybug.Connection(database := ladybug.Database(str(db)))
    try:
        queries = conn.execute("MATCH (q:Query) RETURN count(q)").get_next()[0]
        updated = conn.execute("MATCH (u:User) WHERE u.alpha = 0.123 RETURN count(u)").get_next()
        return int(queries), int(updated[0])
    finally:
        conn.close()
        database.close()


@pytest.mark.xfail(
    strict=True, reason="LadybugDB 0.22.0 tears a committed transaction killed mid-checkpoint"
)
def test_ladybug_recovers_a_killed_checkpoint_atomically(
    workload: Workload, tmp_path: Path
) -> None:
    db = clone(workload.old_db, tmp_path / "store")
    old_queries, _ = _state(db)
    with ladybug.Database(str(db), read_only=True) as database:
        users = ladybug.Connection(database).execute("MATCH (u:User) RETURN count(u)").get_next()
    n_users = int(users[0])
    result = raw_write_and_kill(db, N_NEW)
    if not result.hit:
        pytest.skip("the raw writer finished before its checkpoint could be caught")
    assert _state(db) in [(old_queries, 0), (old_queries + N_NEW, n_users)]
