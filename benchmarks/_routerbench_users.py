"""RouterBench with many simulated users, end to end through the real ``prouter`` commands.

Part of ``./dev bench scale`` (``--routerbench-users``). On a fresh LadybugDB store in a
temporary folder, each step is one ``prouter`` process, measured by
:func:`_common.run_measured` (wall time and that process's own peak RSS):

1. ``ingest routerbench`` (3,164 queries x 11 LLMs);
2. ``embed`` (through a copy of ``--embedding-cache`` when given, else encoded here);
3. ``simulate cost-efficiency --users N --alphas uniform`` (every query per user unless
   ``--queries-per-user``);
4. ``train`` with its defaults (the full-batch / mini-batch choice it prints, top-3
   ROUTED_TO write-back) and ``--epochs``;
5. ``models list --json``: the ROUTED_TO edges the version holds;
6. ``evaluate`` of the gnn and the strongest baselines, one seed (unless skipped).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from _common import Stage, dir_size_mb, run_measured

ROUTERS = "gnn,best_llm_per_user_task,logistic_outcomes"


@dataclass
class RouterBenchRun:
    """What one end-to-end run measured."""

    users: int
    queries_per_user: int | None
    epochs: int
    stages: list[Stage] = field(default_factory=list)
    batch_choice: str = ""
    best_epoch: int = -1
    patience: int = -1
    routed_to: int = -1
    decisions: int = -1
    rewards: dict[str, float] = field(default_factory=dict)
    store_mb: float = float("nan")


def _prouter() -> str:
    return str(Path(sys.executable).with_name("prouter"))


def _checked(stage: Stage) -> Stage:
    if stage.returncode != 0:
        raise SystemExit(f"{stage.name} failed ({stage.returncode}):\n{stage.stderr[-3000:]}")
    print(
        f"done: {stage.name} {stage.seconds:.1f} s, peak RSS {stage.peak_rss_mb:.0f} MiB",
        file=sys.stderr,
        flush=True,
    )
    return stage


def _checkpoint_facts(model_dir: Path, version: str) -> tuple[int, int]:
    """(best epoch, patience) from the saved checkpoint (weights-only load)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from gnn.checkpoint import load_checkpoint

    state = load_checkpoint(model_dir, version)
    return int(state.get("best_epoch", -1)), int(state["config"].get("patience", -1))


def run_routerbench(
    data_dir: Path,
    *,
    users: int,
    queries_per_user: int | None,
    epochs: int,
    embedding_cache: Path | None,
    batch_size: int | None = None,
    log: Path | None = None,
    evaluate: bool = True,
) -> RouterBenchRun:
    """The six steps on a fresh store; raises SystemExit when a command fails."""
    out = RouterBenchRun(users, queries_per_user, epochs)
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    tmp = Path(tempfile.mkdtemp(prefix="prouter-rb-users-"))
    try:
        base = [_prouter(), "--store", f"ladybug:{tmp / 'rb.lbug'}"]
        models = tmp / "models"

        def step(name: str, *args: str) -> Stage:
            stage = _checked(run_measured(name, [*base, *args], env=env, log=log))
            out.stages.append(stage)
            return stage

        step("ingest routerbench", "ingest", "routerbench", str(data_dir))
        cache = tmp / "embedding-cache.sqlite"
        if embedding_cache is not None:  # a copy: the caller's cache is never written
            shutil.copy(embedding_cache, cache)
        step("embed", "embed", "--cache", str(cache))
        simulate = ["simulate", "cost-efficiency", "--users", str(users), "--alphas", "uniform"]
        if queries_per_user:
            simulate += ["--queries-per-user", str(queries_per_user)]
        sim = step(f"simulate {users} users", *simulate)
        chose = re.search(r"CHOSE\s+created\s+(\d+)", sim.stdout)
        out.decisions = int(chose.group(1)) if chose else -1
        train = ["train", "--epochs", str(epochs), "--model-dir", str(models)]
        if batch_size is not None:
            train += ["--batch-size", str(batch_size)]
        trained = step("train (export, fit, write-back)", *train)
        choice = re.search(r"^training: .*$", trained.stderr, re.M)
        out.batch_choice = choice.group(0) if choice else "(not printed)"
        version = re.search(r"^model (\S+) saved", trained.stdout, re.M)
        if version is None:
            raise SystemExit(f"train printed no model version:\n{trained.stdout[-2000:]}")
        out.best_epoch, out.patience = _checkpoint_facts(models, version.group(1))
        listed = step("models list", "models", "list", "--model-dir", str(models), "--json")
        rows = {row["version"]: row for row in json.loads(listed.stdout)}
        out.routed_to = int(rows[version.group(1)]["ROUTED_TO"])
        out.store_mb = dir_size_mb(tmp / "rb.lbug")
        if not evaluate:
            return out
        evaluated = step(
            "evaluate (1 seed)",
            *["evaluate", "--routers", ROUTERS, "--seeds", "0", "--settings", "general"],
            *["--epochs", str(epochs), "--json"],
        )
        results = json.loads(evaluated.stdout)["routers"]
        out.rewards = {name: float(r["reward"][0]) for name, r in results.items()}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def report(run: RouterBenchRun) -> list[str]:
    """The printed table of one run."""
    per_user = "every query" if not run.queries_per_user else f"{run.queries_per_user} queries"
    ran = min(run.epochs, run.best_epoch + 1 + run.patience)
    lines = [
        f"RouterBench, {run.users} simulated users ({per_user} each, {run.decisions} decisions), "
        f"prouter commands on a fresh LadybugDB store ({run.store_mb:.0f} MB at the end), "
        f"--epochs {run.epochs}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}",
        f"{'step':<34} {'seconds':>8} {'peak RSS MiB':>13}",
    ]
    lines += [f"{s.name:<34} {s.seconds:>8.1f} {s.peak_rss_mb:>13.0f}" for s in run.stages]
    lines += [
        f"train: {run.batch_choice}",
        f"train: best epoch {run.best_epoch + 1} of {ran} run (patience {run.patience})",
        f"ROUTED_TO edges of the version (top-3 default): {run.routed_to}",
    ]
    if run.rewards:
        ranked = sorted(run.rewards.items(), key=lambda kv: -kv[1])
        lines.append(
            "evaluate test reward (seed 0): " + ", ".join(f"{k} {v:.4f}" for k, v in ranked)
        )
    return lines
