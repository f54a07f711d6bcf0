"""End-to-end ingest of the RouterBench subset, with 9 and with 1,000 simulated users.

For each backend, on an empty store: the adapter plus validated ingest of the
public CSVs (3,164 queries x 11 LLMs), then the multi-cost-efficiency
simulation with the paper's 9 users (alpha 0.2..1.0), then with 1,000 users
(alphas uniform), each user asking every query. Prints seconds per step and
edges written per second.

    ./dev bench ingest_routerbench                     # both backends
    ./dev bench ingest_routerbench --backends ladybug --users-large 200
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _common import REPO, fresh_store_url


def run(backend: str, data_dir: Path, users_large: int) -> list[tuple[str, float, int]]:
    from graphdb.ingest import write_tables
    from graphdb.store import open_store
    from workloads.adapters.base import load
    from workloads.adapters.routerbench import load_routerbench
    from workloads.simulate import load_outcomes, simulate_cost_efficiency

    steps = []
    with (
        fresh_store_url(backend) as (url, user, password, _, _),
        open_store(url, username=user or None, password=password or None) as store,
    ):
        t0 = time.perf_counter()
        report = load(store, load_routerbench(data_dir))
        written = sum(s.created for s in report.written.values())
        steps.append(
            ("ingest RouterBench (adapter + validation + write)", time.perf_counter() - t0, written)
        )
        outcomes = load_outcomes(store)
        for n, alphas, prefix in ((9, "grid", "ce9-"), (users_large, "uniform", "ce-big-")):
            t0 = time.perf_counter()
            tables = simulate_cost_efficiency(
                outcomes, n_users=n, alphas=alphas, user_prefix=prefix
            )
            stats = write_tables(store, tables)
            steps.append(
                (
                    f"simulate {n} users (simulate + write)",
                    time.perf_counter() - t0,
                    sum(s.created for s in stats.values()),
                )
            )
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--backends", default="ladybug,neo4j")
    parser.add_argument("--users-large", type=int, default=1000)
    args = parser.parse_args()
    data_dir = args.data_dir / "routerbench"
    if not data_dir.is_dir():
        raise SystemExit(f"RouterBench data not found at {data_dir} (use --data-dir)")
    print(f"{'backend':<8} {'step':<52} {'seconds':>8} {'rows written':>13} {'rows/s':>9}")
    for backend in args.backends.split(","):
        for name, seconds, rows in run(backend, data_dir, args.users_large):
            print(f"{backend:<8} {name:<52} {seconds:>8.1f} {rows:>13} {rows / seconds:>9.0f}")


if __name__ == "__main__":
    main()
