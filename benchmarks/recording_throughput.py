"""Recording throughput: served requests per second the gateway's recorder writes per backend.

Submits synthetic served requests (a routed query with its embedding, a
ranking of ``--llms`` LLMs and one answered upstream call) to a
:class:`~prouter.gateway.recorder.Recorder` and times its flushes into an
empty store: ``--batches`` batches of ``--batch`` requests (the recorder
writes one batch per ``interval``; later batches meet a graph that already
holds the earlier ones). Neo4j is a local server started by ``neo4j_local``
in ``.neo4j-bench/``. ``--profile`` also prints the time spent per table.

    .venv/bin/python benchmarks/recording_throughput.py
    .venv/bin/python benchmarks/recording_throughput.py --backend neo4j --batches 4 --batch 500
"""

from __future__ import annotations

import argparse
import os
import time
from collections import defaultdict
from contextlib import contextmanager

from _common import fresh_store_url


def served_events(start: int, n: int, llms: int, users: int = 50) -> list:
    """``n`` served requests of ``users`` users, each a new query answered by ``llm-0``."""
    from prouter.gateway.recorder import Attempt, Served

    ts = time.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    return [
        Served(
            ts=ts, user=f"user-{i % users}", query_id=f"gw-{i}", text=f"query {i}", task="qa",
            embedding=[0.01 * (i % 7)] * 384, model_version="v1",
            ranking=[(f"llm-{m}", 0.5 - 0.1 * m) for m in range(llms)],
            attempts=[Attempt("llm-0", "ok", 20.0, 100, 200, 0.001, "answer", f"chatcmpl-{i}")],
        )
        for i in range(start, start + n)
    ]  # fmt: skip


def recording_rates(
    backend: str, batches: int, batch: int, llms: int, users: int = 50, profile: bool = False
) -> list[float]:
    """Served requests per second of each of ``batches`` flushes into an empty store."""
    from graphdb.store import open_store
    from prouter.gateway.recorder import Recorder
    from prouter.gateway.server import StoreAccess

    spent: dict[str, float] = defaultdict(float)
    with fresh_store_url(backend) as (url, user, password, _, _):
        kw = {"username": user, "password": password} if user else {}
        access = StoreAccess(lambda read_only: open_store(url, read_only=read_only, **kw))

        @contextmanager
        def opened():  # type: ignore[no-untyped-def]
            t0 = time.perf_counter()
            with access() as store:  # as the gateway does: a server store stays open
                spent["open (connect, schema)"] += time.perf_counter() - t0
                if profile and not hasattr(store, "_timed"):
                    _time_writes(store, spent)
                yield store

        recorder = Recorder(opened, interval=3600, max_batch=10**9)
        rates = []
        for b in range(batches):
            for event in served_events(b * batch, batch, llms, users):
                recorder.submit(event)
            t0 = time.perf_counter()
            written = recorder.flush()
            elapsed = time.perf_counter() - t0
            if written != batch:
                raise SystemExit("the recording failed (see the log)")
            rates.append(batch / elapsed)
        access.close()
    if profile:
        for name, seconds in sorted(spent.items(), key=lambda kv: -kv[1]):
            print(f"  {name:<28} {seconds:8.2f} s")
    return rates


def _time_writes(store, spent: dict[str, float]) -> None:  # type: ignore[no-untyped-def]
    """Wrap the store's writers to add their wall time per table to ``spent``."""
    for method in ("write_nodes", "write_edges"):
        inner = getattr(store, method)

        def timed(name, rows, _inner=inner):  # type: ignore[no-untyped-def]
            t0 = time.perf_counter()
            try:
                return _inner(name, rows)
            finally:
                spent[name] += time.perf_counter() - t0

        setattr(store, method, timed)
    store._timed = True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["ladybug", "neo4j", "both"], default="both")
    parser.add_argument("--batches", type=int, default=4, help="flushes timed")
    parser.add_argument("--batch", type=int, default=500, help="served requests per flush")
    parser.add_argument("--llms", type=int, default=5, help="LLMs ranked per request")
    parser.add_argument("--users", type=int, default=50, help="users sending the requests")
    parser.add_argument("--profile", action="store_true", help="time spent per table")
    args = parser.parse_args()
    backends = ["ladybug", "neo4j"] if args.backend == "both" else [args.backend]
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    for backend in backends:
        rates = recording_rates(
            backend, args.batches, args.batch, args.llms, args.users, args.profile
        )
        each = ", ".join(f"{r:.0f}" for r in rates)
        print(
            f"recording into {backend}: {each} served requests/s "
            f"({args.batches} flushes of {args.batch}, {args.users} users)"
        )


if __name__ == "__main__":
    main()
