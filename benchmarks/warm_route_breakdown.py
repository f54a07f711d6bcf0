"""Where a warm route's time goes: one request at a time through the loaded service.

Builds the small synthetic store of the gateway tests (stand-in embeddings, a
GNN trained for a few epochs), loads the routing service as the gateway does,
routes the same texts again and again (their vectors are cached, so no
encoding) and prints the mean time per request of ``route_many`` and of its
stages (timers wrapped around them; nested stages are inside ``predict``).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/warm_route_breakdown.py --requests 400
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from _common import REPO


def _timed(obj: Any, name: str, label: str, spent: dict[str, float]) -> None:
    inner = getattr(obj, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            spent[label] += time.perf_counter() - t0

    setattr(obj, name, wrapper)


def main() -> None:
    import sys

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400, help="timed requests")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "tests"))
    import torch
    from test_route import TRAIN, StandInEmbedder, write_workload

    import gnn.train
    from gnn.pipeline import train_and_record
    from gnn.serving import RouteRequest
    from graphdb.store import open_store
    from prouter.gateway.server import StoreAccess, build_gateway

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="prouter-warm-route-"))
    url = f"ladybug:{tmp / 'g.lbug'}"
    with open_store(url) as store:
        write_workload(store)
        train_and_record(store, seed=0, model_dir=tmp / "m", config=TRAIN)
        embedder = StandInEmbedder(store)
    access = StoreAccess(lambda read_only: open_store(url, read_only=read_only))
    service = build_gateway(access, embedder, model_dir=tmp / "m", record=False).router.service
    requests = [RouteRequest("user-0001", f"question {i % 20}", None) for i in range(args.requests)]
    for request in requests[:40]:
        service.route_many([request])  # warm

    spent: dict[str, float] = defaultdict(float)
    router = service.router
    _timed(gnn.train, "neighbour_outcomes", "  neighbour_outcomes", spent)
    for name in ("eval", "encode_queries", "encode_llms", "outcomes"):
        _timed(router.model, name, f"  model.{name}", spent)
    _timed(router, "predict", "predict", spent)
    _timed(service, "_embed", "embed (cached vector)", spent)
    _timed(service, "_infer_task", "infer task", spent)
    _timed(service, "_result", "result + explanation", spent)
    t0 = time.perf_counter()
    for request in requests:
        service.route_many([request])
    total = time.perf_counter() - t0
    n = len(requests)
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"route_many, one request at a time: {1e3 * total / n:.2f} ms per request")
    for label, seconds in spent.items():
        print(f"  {label:<28} {1e3 * seconds / n:6.2f} ms")


if __name__ == "__main__":
    main()
