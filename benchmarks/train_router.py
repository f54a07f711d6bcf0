"""GNN router training and routing benchmark (CPU unless --device cuda).

For each graph it prints: the time per training epoch (median), the epochs
and wall time to convergence (early stopping on validation: the best epoch
and the epoch training stopped at), peak memory, and routing throughput
(routes/s of ``route`` over the test decisions, and of ``predict`` on new
query embeddings, which includes the neighbour search).

Graphs:

* ``routerbench``: the store given by ``--store`` (e.g. RouterBench + 9
  simulated users + embeddings; see README), skipped when not given;
* ``synthetic``: a seeded synthetic graph of 500k outcome edges (50k queries
  x 10 LLMs, 384-d stand-in embeddings, 10 users, one decision per query),
  built in a temporary LadybugDB store. ``--epochs`` caps its run (default 30): the
  point is the time per epoch at that size.

    ./dev bench train_router
    ./dev bench train_router --store ladybug:/path/g.lbug --epochs 300
    ./dev bench train_router --queries 5000          # a smaller synthetic graph
    ./dev bench train_router --queries 100000 --epochs 5 --batch-size 0     # full batch
    ./dev bench train_router --queries 100000 --epochs 5 --batch-size 4096  # mini-batches

``--batch-size``: -1 (default) the automatic choice of ``gnn.minibatch.batch_plan``, 0
full batch, N mini-batches of N training decisions (``--state-sample`` decisions per user
state). Peak RSS is the process's (run one configuration per process to compare).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401  (puts the repository on sys.path)


def synthetic_store(queries: int, llms: int, users: int, dim: int) -> str:
    import numpy as np

    from graphdb.ingest import write_tables
    from graphdb.store import open_store
    from graphdb.tables import embedding_array
    from workloads.synthetic import generate

    workload = generate(n_queries=queries, n_users=users, n_llms=llms, seed=0)
    tables = workload.tables(embedding_dim=dim)
    tables["LLM"] = tables["LLM"].append_column(
        "embedding", embedding_array(np.random.default_rng(0).normal(size=(llms, dim)))
    )
    url = f"ladybug:{Path(tempfile.mkdtemp(prefix='prouter-train-')) / 'g.lbug'}"
    with open_store(url) as store:
        write_tables(store, tables)
    return url


def run(
    name: str, url: str, epochs: int, device: str, batch_size: int = -1, state_sample: int = 64
) -> list[str]:
    import numpy as np

    from gnn.data import load_routing_data, split_queries
    from gnn.evaluate import evaluate
    from gnn.train import GNNRouter
    from graphdb.store import open_store

    with open_store(url, read_only=True) as store:
        data = load_routing_data(store)
    split = split_queries(data, seed=0)
    t0 = time.perf_counter()
    router = GNNRouter(
        seed=0,
        epochs=epochs,
        device=device,
        progress=True,
        batch_size=batch_size,
        state_sample=state_sample,
    ).fit(data, split)
    fit_s = time.perf_counter() - t0
    per_epoch = float(np.median([h["seconds"] for h in router.history]))
    idx = np.flatnonzero(split.test[data.dec_query])
    users, queries = data.dec_user[idx], data.dec_query[idx]
    router.route(data, users[:10], queries[:10])  # warm-up
    t0 = time.perf_counter()
    router.route(data, users, queries)
    route_s = time.perf_counter() - t0
    batch = min(1000, len(idx))
    tasks = [data.task_ids[t] for t in data.query_task[queries[:batch]]]
    t0 = time.perf_counter()
    router.predict(data.query_emb[queries[:batch]], tasks, users[:batch])
    predict_s = time.perf_counter() - t0
    reward = evaluate(router, data, split, "test").reward
    n_edges = int((~np.isnan(data.performance)).sum())
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return [
        f"{name}: {len(data.query_ids)} queries, {data.num_llms} LLMs, {n_edges} outcome edges, "
        f"{len(data.user_ids)} users, {len(data.dec_user)} decisions, "
        f"batch_size {batch_size}",
        f"  time per epoch (median)   {per_epoch * 1000:10.1f} ms",
        f"  epochs run / best epoch   {len(router.history):>6d} / {router.best_epoch}",
        f"  fit wall time             {fit_s:10.1f} s  (to convergence: "
        f"{per_epoch * (router.best_epoch + 1):.1f} s at the best epoch)",
        f"  route (graph queries)     {len(idx) / route_s:10.0f} routes/s  ({len(idx)} routes)",
        f"  predict (new queries)     {batch / predict_s:10.0f} routes/s  ({batch} queries)",
        f"  test reward               {reward:10.4f}",
        f"  peak RSS so far           {peak_mib:10.0f} MiB",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", help="A store with routing data, e.g. RouterBench + users.")
    parser.add_argument("--store-epochs", type=int, default=300, help="Most epochs on --store.")
    parser.add_argument(
        "--epochs", type=int, default=30, help="Most epochs on the synthetic graph."
    )
    parser.add_argument("--queries", type=int, default=50_000)
    parser.add_argument("--llms", type=int, default=10)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--batch-size", type=int, default=-1, help="-1 automatic, 0 full batch.")
    parser.add_argument("--state-sample", type=int, default=64)
    args = parser.parse_args()
    lines = []
    if args.store:
        lines += run(
            "routerbench",
            args.store,
            args.store_epochs,
            args.device,
            args.batch_size,
            args.state_sample,
        )
    if not args.skip_synthetic:
        url = synthetic_store(args.queries, args.llms, args.users, args.dim)
        lines += run("synthetic", url, args.epochs, args.device, args.batch_size, args.state_sample)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
