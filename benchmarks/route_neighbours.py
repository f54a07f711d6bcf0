"""Route-time neighbour messages: a one-off search per lookup against a kept index.

A route lookup hears the outcomes of its new query's nearest training queries
(``gnn.graph``). Searched one-off, each lookup normalises and copies the reference
embeddings and searches them exactly; the router keeps an
``OutcomeNeighbourhood`` instead (built once; approximate from ``approx_from``
rows, as a standing index). For ``--sizes`` reference queries (``--dim``-d,
clustered like real prompts: ``--clusters`` centres plus noise) and ``--llms``
LLMs with every outcome known, prints the build time of the kept index, the mean
time of one single-query lookup each way (``--lookups`` of them) and how far the
kept index's messages are from the exact ones (mean absolute difference of the
similarity-weighted performance).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/route_neighbours.py --sizes 10000,100000
"""

from __future__ import annotations

import argparse
import time

from _common import REPO  # noqa: F401  (puts the repository on sys.path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--llms", type=int, default=10)
    parser.add_argument("--clusters", type=int, default=200)
    parser.add_argument("--lookups", type=int, default=50)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()

    import numpy as np

    from gnn.graph import OutcomeNeighbourhood, neighbour_outcomes

    rng = np.random.default_rng(0)
    print(
        f"{'refs':>9} {'kept build s':>13} {'one-off ms':>11} {'kept ms':>9} "
        f"{'ratio':>7} {'|dP|':>7}"
    )
    for n in (int(s) for s in args.sizes.split(",")):
        centres = rng.normal(size=(args.clusters, args.dim))
        ref = centres[rng.integers(args.clusters, size=n)] + 0.3 * rng.normal(size=(n, args.dim))
        ref = ref.astype(np.float32)
        perf = (rng.random((n, args.llms)) < 0.6).astype(float)
        cost = rng.random((n, args.llms))
        pick = rng.integers(n, size=args.lookups)
        new = ref[pick] + 0.1 * rng.normal(size=(args.lookups, args.dim)).astype(np.float32)
        t0 = time.perf_counter()
        kept = OutcomeNeighbourhood(ref, perf, cost)
        build = time.perf_counter() - t0
        one_off, standing = [], []
        t0 = time.perf_counter()
        for q in new:
            one_off.append(neighbour_outcomes(q[None], ref, perf, cost, k=args.k))
        t_one = (time.perf_counter() - t0) / args.lookups * 1e3
        t0 = time.perf_counter()
        for q in new:
            standing.append(kept.messages(q[None], k=args.k))
        t_kept = (time.perf_counter() - t0) / args.lookups * 1e3
        diff = float(np.mean(np.abs(np.concatenate(one_off) - np.concatenate(standing))[..., 0]))
        print(
            f"{n:>9,} {build:>13.2f} {t_one:>11.2f} {t_kept:>9.2f} "
            f"{t_one / t_kept:>6.1f}x {diff:>7.4f}"
        )


if __name__ == "__main__":
    main()
