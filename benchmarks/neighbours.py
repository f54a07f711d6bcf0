"""Neighbour search: recall of the approximate (HNSW) index against exact search, and times.

1. RouterBench (or any graph): the query embeddings of ``--store`` (opened read-only;
   for an embedded file, pass a copy), each query's ``--k`` nearest other queries,
   exact vs approximate: recall@k, build time, query time; then the same on its
   distinct embeddings only (row ``distinct``).
2. Synthetic ``--dim``-d random unit vectors at ``--sizes`` rows (a self-join, each
   row excluding itself, as the training graph does): index build time and the time
   to search every row, exact vs approximate, and recall@k on ``--sample`` rows.
   Exact times above ``--exact-max`` rows are extrapolated from the ``--sample``
   rows (marked ``~``): the exact search is linear in the number of query rows.
   Random vectors in many dimensions are the hardest case for an HNSW graph (every
   point is nearly equally far from every other), so their recall is a lower bound.

Everything runs on ``--threads`` threads (default 1, as on a shared machine).

    .venv/bin/python benchmarks/neighbours.py --store ladybug:/tmp/rb9.lbug
    .venv/bin/python benchmarks/neighbours.py --sizes 10000,100000,1000000 --exact-max 100000
"""

from __future__ import annotations

import argparse
import os
import time

from _common import REPO  # noqa: F401  (puts the repository on sys.path)


def recall(found_sim, exact_sim) -> float:  # type: ignore[no-untyped-def]
    """recall@k that counts ties: the share of a row's k results at least as similar as
    its exact k-th neighbour (1e-5 slack for float32). Index sets would be wrong on data
    with duplicate embeddings (RouterBench: 3,164 queries, 427 distinct embeddings, since
    the 5-shot prompts are cut to the model's 256 tokens), where any of the tied rows
    is a correct k-th neighbour."""
    import numpy as np

    kth = exact_sim[:, -1:]
    return float(np.mean(found_sim >= kth - 1e-5))


def index_recall(found, exact) -> float:  # type: ignore[no-untyped-def]
    """recall@k as the overlap of the index sets (ties count as misses)."""
    hits = [len(set(a) & set(b)) / len(b) for a, b in zip(found, exact, strict=True)]
    return float(sum(hits) / len(hits))


def compare(name: str, x, k: int, sample: int, exact_max: int, threads: int) -> dict:  # type: ignore[no-untyped-def]
    """Exact vs approximate self-join of the rows of ``x`` (each row excludes itself)."""
    import numpy as np

    from gnn.neighbours import NeighbourConfig, NeighbourIndex, unit_rows

    x = unit_rows(x)
    n = len(x)
    rows = np.random.default_rng(0).choice(n, min(sample, n), replace=False)
    own = np.arange(n)
    cfg = NeighbourConfig(mode="approx", threads=threads)
    out: dict = {"name": name, "rows": n, "dim": x.shape[1], "k": k}

    t0 = time.perf_counter()
    exact_index = NeighbourIndex(x, mode="exact", normalised=True)
    t1 = time.perf_counter()
    if n <= exact_max:
        exact = exact_index.search(x, k, exclude=own, normalised=True)
        out["exact_query_s"] = time.perf_counter() - t1
        exact_idx, exact_sim = exact.indices[rows], exact.similarities[rows]
    else:
        exact = exact_index.search(x[rows], k, exclude=rows, normalised=True)
        exact_idx, exact_sim = exact.indices, exact.similarities
        out["exact_query_s"] = (time.perf_counter() - t1) * n / len(rows)
        out["exact_estimated"] = True
    out["exact_build_s"] = t1 - t0

    t0 = time.perf_counter()
    approx_index = NeighbourIndex(x, config=cfg, normalised=True)
    out["approx_build_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    approx = approx_index.search(x, k, exclude=own, normalised=True)
    out["approx_query_s"] = time.perf_counter() - t0
    out["recall"] = recall(approx.similarities[rows], exact_sim)
    out["index_recall"] = index_recall(approx.indices[rows], exact_idx)
    out["distinct"] = len(np.unique(x, axis=0))
    out["recall_rows"] = len(rows)
    return out


def store_embeddings(url: str):  # type: ignore[no-untyped-def]
    import numpy as np

    from graphdb.store import open_store

    store = open_store(url, read_only=True)
    try:
        table = store.export_nodes("Query", ["embedding"])
    finally:
        store.close()
    rows = [e for e in table.column("embedding").to_pylist() if e is not None]
    return np.asarray(rows, dtype=np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", help="a graph with query embeddings (e.g. RouterBench)")
    parser.add_argument("--sizes", default="10000,100000", help="synthetic row counts")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--sample", type=int, default=2000, help="rows for recall / estimates")
    parser.add_argument("--exact-max", type=int, default=10_000, help="largest full exact run")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import numpy as np

    results = []
    if args.store:
        emb = store_embeddings(args.store)
        results.append(compare("store", emb, args.k, len(emb), len(emb), args.threads))
        distinct = np.unique(emb, axis=0)  # the same without duplicate embeddings
        results.append(
            compare("distinct", distinct, args.k, len(distinct), len(distinct), args.threads)
        )
    for size in (int(s) for s in args.sizes.split(",") if s):
        x = np.random.default_rng(size).normal(size=(size, args.dim)).astype(np.float32)
        results.append(compare("random", x, args.k, args.sample, args.exact_max, args.threads))

    print(f"neighbour search, k={args.k}, {args.threads} thread(s); approx = usearch HNSW "
          "(connectivity 16, expansion 128/128), built single-threaded")  # fmt: skip
    print(
        f"{'data':<8} {'rows':>9} {'dim':>4} {'exact s':>9} {'approx build s':>15} "
        f"{'approx query s':>15} {'approx total s':>15} {'speed-up':>9} {'recall@k':>9} "
        f"{'(index sets)':>12} {'distinct rows':>13}"
    )
    for r in results:
        exact = r["exact_build_s"] + r["exact_query_s"]
        total = r["approx_build_s"] + r["approx_query_s"]
        mark = "~" if r.get("exact_estimated") else " "
        print(
            f"{r['name']:<8} {r['rows']:>9} {r['dim']:>4} {mark}{exact:>8.1f} "
            f"{r['approx_build_s']:>15.1f} {r['approx_query_s']:>15.1f} {total:>15.1f} "
            f"{exact / total:>8.2f}x {r['recall']:>9.4f} {r['index_recall']:>12.4f} "
            f"{r['distinct']:>13}"
        )
    print(f"recall@k over {args.sample} sampled rows per synthetic size (all rows for --store), "
          "ties with the exact k-th neighbour counted as hits ('index sets': as misses); "
          "~ = exact time extrapolated from the sampled rows")  # fmt: skip


if __name__ == "__main__":
    main()
