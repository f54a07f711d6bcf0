"""Peak memory of the model write-back on LadybugDB: one transaction against batches.

Both modes run the write-back of ``prouter train`` (``gnn.writeback.write_back``: the
ROUTED_TO rows, then the RouterModel node with one EVALUATED edge per user):

* ``one``: the whole write-back in one transaction, as ``prouter train`` wrote it
  before (on RouterBench with 1,000 users, 2.84M top-3 rows, that transaction took
  ``prouter train`` from 2.5 GB to 10.5 GB);
* ``batched``: as it writes now, each ROUTED_TO batch of ``BATCH_ROWS`` rows its own
  transaction and the RouterModel node last (one more transaction).

Each mode runs in its own process on a fresh store (1,000 users, 11 LLMs, 3,000
queries) and prints its time, the number of transactions (each copies the store
file: docs/reliability.md) and the rise of the peak RSS over the process's RSS
before the write, then the ratio of the two modes per size. With ``--delete`` each
process then deletes the version it wrote (``GraphStore.delete_model``, what
``prouter models prune`` runs: one copy-and-swap transaction) and prints the same
figures for the delete; ``--keep K`` first writes K other versions of the same size
(not measured), which the delete must keep (on LadybugDB a large delete rebuilds
ROUTED_TO with the edges kept, so their number sets its cost; ``--edge-by-edge``
measures the delete as it ran before, edge by edge).

    ./dev bench writeback_memory                       # 600k and 2.85M rows
    ./dev bench writeback_memory --rows 2850000 --modes one
    ./dev bench writeback_memory --rows 2850000 --modes batched --delete
    ./dev bench writeback_memory --rows 300000 --modes batched --delete --keep 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import _common  # noqa: F401  (puts the repository on sys.path)

USERS, LLMS, QUERIES, TOP = 1000, 11, 3000, 3


def _rss_mb() -> tuple[int, int]:
    """(current, peak) resident memory of this process in MiB."""
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return int(status["VmRSS"].split()[0]) // 1024, int(status["VmHWM"].split()[0]) // 1024


def worker(rows: int, mode: str, delete: bool = False, keep: int = 0) -> dict:
    import numpy as np
    import pyarrow as pa

    from graphdb.backends import ladybug

    if os.environ.get("WRITEBACK_EDGE_BY_EDGE"):
        # -1, not 0: with 0 a delete that keeps no edge (--keep 0) still rebuilds
        ladybug.REBUILD_RATIO = -1

    from gnn.writeback import write_back
    from graphdb.ingest import write_tables
    from graphdb.store import open_store
    from workloads.synthetic import generate

    wl = generate(n_queries=QUERIES, n_users=USERS, n_llms=LLMS, users_per_query=1, seed=0)
    per_user = max(1, min(QUERIES, rows // (USERS * TOP)))
    user = np.repeat(np.arange(USERS), per_user * TOP)
    query = np.tile(np.repeat(np.arange(per_user), TOP), USERS)
    llm = np.tile(np.arange(TOP), USERS * per_user)
    n = len(user)
    version = "gnn-20261130T000000000000Z-bench-000000"
    table = pa.table(  # ordered by user, as gnn.writeback.prediction_table makes it
        {
            "src": np.asarray(wl.user_ids, dtype=object)[user],
            "dst": np.asarray(wl.llm_ids, dtype=object)[llm],
            "query_id": np.asarray(wl.query_ids, dtype=object)[query],
            "model_version": np.full(n, version, dtype=object),
            "score": np.random.default_rng(0).random(n),
            "rank": (llm + 1).astype(np.int64),
        }
    )
    with (
        tempfile.TemporaryDirectory(prefix="prouter-wb-") as tmp,
        open_store(f"ladybug:{Path(tmp) / 'g.lbug'}") as store,
    ):
        write_tables(store, wl.tables(embedding_dim=8))

        def model(v: str) -> dict:
            return {"version": v, "created_at": "2026-11-30T00:00:00Z", "config": "{}"}

        def evaluations(v: str) -> list[dict]:
            return [
                {"src": v, "dst": u, "setting": "general", "shots": 0, "accuracy": 0.5, "n": 1}
                for u in wl.user_ids
            ]

        for i in range(keep):  # other versions, which the delete keeps
            other = f"{version[:-6]}keep{i:02d}"
            kept = table.set_column(3, "model_version", pa.array([other] * n))
            write_back(store, model(other), kept, evaluations(other), top_k=TOP)
        transactions = []
        begin = store._begin
        store._begin = lambda: transactions.append(1) or begin()  # count the outermost ones

        def write() -> dict:
            with store.transaction() if mode == "one" else nullcontext():
                return write_back(store, model(version), table, evaluations(version), top_k=TOP)

        written, result = _measured(write, transactions)
        assert written["ROUTED_TO"].created == n and written["RouterModel"].created == 1
        result |= {"rows": n, "mode": mode}
        if delete:
            deleted, result["delete"] = _measured(lambda: store.delete_model(version), transactions)
            assert deleted["ROUTED_TO"] == n and deleted["RouterModel"] == 1
            assert store.counts()["ROUTED_TO"] == keep * n
    return result


def _measured(call, transactions: list) -> tuple:  # type: ignore[no-untyped-def]
    """``call()``'s result, and its transactions, seconds and peak RSS rise (MiB)."""
    transactions.clear()
    Path("/proc/self/clear_refs").write_text("5")  # the peak from here on
    before = _rss_mb()[0]
    started = time.perf_counter()
    result = call()
    seconds = time.perf_counter() - started
    rise = _rss_mb()[1] - before
    return result, {"transactions": len(transactions), "seconds": seconds, "rise_mb": rise}


def _row(rows: int, label: str, r: dict) -> str:
    """One printed row: rows, mode (or delete), transactions, seconds, peak RSS rise."""
    seconds, rise = f"{r['seconds']:>8.1f}", f"{r['rise_mb']:>18.0f}"
    return f"{rows:>9} {label:<8} {r['transactions']:>12} {seconds} {rise}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default="600000,2850000", help="comma-separated")
    parser.add_argument("--modes", default="one,batched", help="one, batched")
    parser.add_argument(
        "--delete", action="store_true", help="then delete the version written, and measure it"
    )
    parser.add_argument(
        "--keep", type=int, default=0, help="other versions of the same size to write first"
    )
    parser.add_argument(
        "--edge-by-edge", action="store_true", help="delete edge by edge (never rebuild)"
    )
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        rows, mode, delete, keep = args.worker
        print(json.dumps(worker(int(rows), mode, delete == "delete", int(keep))))
        return
    print(f"{'rows':>9} {'mode':<8} {'transactions':>12} {'seconds':>8} {'peak RSS rise MiB':>18}")
    for rows in args.rows.split(","):
        rises = {}
        for mode in args.modes.split(","):
            done = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--worker",
                    rows,
                    mode,
                    "delete" * args.delete,
                    str(args.keep),
                ],
                capture_output=True,
                text=True,
                env=os.environ | ({"WRITEBACK_EDGE_BY_EDGE": "1"} if args.edge_by_edge else {}),
            )
            if done.returncode:
                raise SystemExit(f"{mode} at {rows} rows failed:\n{done.stderr[-3000:]}")
            r = json.loads(done.stdout.strip().splitlines()[-1])
            rises[mode] = r["rise_mb"]
            print(_row(r["rows"], mode, r))
            if "delete" in r:
                print(_row(r["rows"], "delete", r["delete"]))
        if rises.get("one") and rises.get("batched"):
            print(f"{'':>9} batched / one peak RSS rise: {rises['batched'] / rises['one']:.2f}")


if __name__ == "__main__":
    main()
