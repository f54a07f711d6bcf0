"""How long `prouter evaluate` takes with every router and 3 seeds (goal: 10 minutes on 2 cores).

Runs the product command itself in a subprocess on a store that holds
RouterBench, simulated users and embeddings (build one as in
docs/results/README.md), and prints the wall time against the goal, then each
router's mean test reward over the seeds (from the command's JSON).

    ./dev bench evaluate_routerbench --store ladybug:/path/rb.lbug
    ./dev bench evaluate_routerbench --store ladybug:/path/rb.lbug --settings general,new_user
    ./dev bench evaluate_routerbench --store ladybug:/path/rb.lbug --save rb.json  # + the JSON
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common

GOAL_S = 600.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True, help="ladybug:PATH (copied first) or a Neo4j URI")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--routers", default="all")
    parser.add_argument("--settings", default="general")
    parser.add_argument("--save", type=Path, help="also write the command's JSON here")
    args = parser.parse_args()
    store = args.store
    with tempfile.TemporaryDirectory(prefix="prouter-bench-") as tmp:
        if store.startswith("ladybug:"):  # never touch the caller's file
            copy = Path(tmp) / "g.lbug"
            shutil.copy(store.removeprefix("ladybug:"), copy)
            store = f"ladybug:{copy}"
        command = [
            str(Path(sys.executable).with_name("prouter")),
            "--store",
            store,
            "evaluate",
            "--routers",
            args.routers,
            "--seeds",
            args.seeds,
            "--settings",
            args.settings,
            "--json",
        ]
        print("$", " ".join(command[1:]), flush=True)
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, cwd=_common.REPO)
        wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"evaluate failed ({done.returncode}):\n{done.stderr[-3000:]}")
    out = json.loads(done.stdout)
    if args.save:
        args.save.write_text(done.stdout)
    routers = out.get("routers", {})
    print(
        f"wall time {wall:.0f} s for {len(routers)} routers x {len(out['seeds'])} seeds "
        f"({out['data']['queries']} queries, {out['data']['users']} users): "
        f"{'within' if wall <= GOAL_S else 'OVER'} the {GOAL_S / 60:.0f}-minute goal"
    )
    ranked = sorted(routers.items(), key=lambda kv: -(kv[1]["reward"][0] or float("-inf")))
    for name, metrics in ranked:
        mean, std = metrics["reward"]
        of_oracle = metrics["reward_of_oracle"][0]
        share = f"{100 * of_oracle:.1f}% of oracle" if of_oracle is not None else ""
        print(f"  {name:<24} reward {mean:.4f} ± {std:.4f}   {share}")


if __name__ == "__main__":
    main()
