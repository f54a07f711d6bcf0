"""Peak memory of the ROUTED_TO write-back on LadybugDB: one transaction against one per batch.

``gnn.writeback.write_predictions`` writes in batches of ``BATCH_ROWS`` rows, but inside
one transaction (and ``prouter train`` wraps the RouterModel, ROUTED_TO and EVALUATED
writes in one more). On RouterBench with 1,000 users (2.84M top-3 rows) that
transaction took ``prouter train`` from 2.5 GB to 10.5 GB. Each mode runs in its own
process on a fresh store (1,000 users, 11 LLMs, 3,000 queries) and prints its time and
the rise of the peak RSS over the process's RSS before the write.

    ./dev bench writeback_memory                       # 600k and 2.85M rows
    ./dev bench writeback_memory --rows 2850000 --modes one
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401  (puts the repository on sys.path)

USERS, LLMS, QUERIES, TOP = 1000, 11, 3000, 3


def _rss_mb() -> tuple[int, int]:
    """(current, peak) resident memory of this process in MiB."""
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return int(status["VmRSS"].split()[0]) // 1024, int(status["VmHWM"].split()[0]) // 1024


def worker(rows: int, mode: str) -> dict:
    import numpy as np
    import pyarrow as pa

    from gnn.writeback import BATCH_ROWS, write_predictions
    from graphdb.ingest import write_tables
    from graphdb.store import open_store
    from workloads.synthetic import generate

    wl = generate(n_queries=QUERIES, n_users=USERS, n_llms=LLMS, users_per_query=1, seed=0)
    per_user = max(1, min(QUERIES, rows // (USERS * TOP)))
    user = np.repeat(np.arange(USERS), per_user * TOP)
    query = np.tile(np.repeat(np.arange(per_user), TOP), USERS)
    llm = np.tile(np.arange(TOP), USERS * per_user)
    n = len(user)
    table = pa.table(  # ordered by user, as gnn.writeback.prediction_table makes it
        {
            "src": np.asarray(wl.user_ids, dtype=object)[user],
            "dst": np.asarray(wl.llm_ids, dtype=object)[llm],
            "query_id": np.asarray(wl.query_ids, dtype=object)[query],
            "model_version": np.full(n, "gnn-20261130T000000000000Z-bench-000000", dtype=object),
            "score": np.random.default_rng(0).random(n),
            "rank": (llm + 1).astype(np.int64),
        }
    )
    with (
        tempfile.TemporaryDirectory(prefix="prouter-wb-") as tmp,
        open_store(f"ladybug:{Path(tmp) / 'g.lbug'}") as store,
    ):
        write_tables(store, wl.tables(embedding_dim=8))
        Path("/proc/self/clear_refs").write_text("5")  # the peak from here on
        before = _rss_mb()[0]
        started = time.perf_counter()
        if mode == "one":
            write_predictions(store, table)
        else:
            for start in range(0, n, BATCH_ROWS):
                with store.transaction():
                    store.write_edges("ROUTED_TO", table.slice(start, BATCH_ROWS))
        seconds = time.perf_counter() - started
        peak = _rss_mb()[1]
    return {"rows": n, "mode": mode, "seconds": seconds, "rise_mb": peak - before}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default="600000,2850000", help="comma-separated")
    parser.add_argument("--modes", default="one,per-batch", help="one, per-batch")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(int(args.worker[0]), args.worker[1])))
        return
    print(f"{'rows':>9} {'transactions':<14} {'seconds':>8} {'peak RSS rise MiB':>18}")
    for rows in args.rows.split(","):
        for mode in args.modes.split(","):
            done = subprocess.run(
                [sys.executable, __file__, "--worker", rows, mode], capture_output=True, text=True
            )
            if done.returncode:
                raise SystemExit(f"{mode} at {rows} rows failed:\n{done.stderr[-3000:]}")
            r = json.loads(done.stdout.strip().splitlines()[-1])
            how = "one" if mode == "one" else "one per batch"
            print(f"{r['rows']:>9} {how:<14} {r['seconds']:>8.1f} {r['rise_mb']:>18.0f}")


if __name__ == "__main__":
    main()
