"""Helpers shared by the benchmark scripts: a fresh store per backend, sizes, timing, and
commands run with their own wall time and peak RSS."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
BENCH_NEO4J_HOME = REPO / ".neo4j-bench"


def dir_size_mb(path: Path) -> float:
    """Total size of the files under ``path`` in MiB."""
    files = [path] if path.is_file() else path.rglob("*")
    return sum(p.stat().st_size for p in files if p.is_file()) / 2**20


@contextmanager
def fresh_store_url(backend: str) -> Iterator[tuple[str, str, str, Path, int | None]]:
    """(url, user, password, data folder, server pid) of an empty store of ``backend``.

    LadybugDB: a file in a temporary folder. Neo4j: a local server started on an
    empty database in ``.neo4j-bench/`` and stopped afterwards.
    """
    if backend == "ladybug":
        tmp = Path(tempfile.mkdtemp(prefix="prouter-bench-"))
        try:
            yield f"ladybug:{tmp / 'g.lbug'}", "", "", tmp, None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return
    import neo4j_local

    neo4j_local.stop(home=BENCH_NEO4J_HOME)
    shutil.rmtree(BENCH_NEO4J_HOME / "data", ignore_errors=True)
    info = neo4j_local.start(home=BENCH_NEO4J_HOME)
    try:
        yield info.uri, info.username, info.password, BENCH_NEO4J_HOME / "data", info.pid
    finally:
        neo4j_local.stop(home=BENCH_NEO4J_HOME)


def server_peak_rss_mb(pid: int | None) -> float:
    """Peak resident memory (VmHWM) of a running process, NaN when unknown."""
    if pid is None:
        return float("nan")
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Stage:
    """One command run by :func:`run_measured`: wall time, peak RSS, exit status, output."""

    name: str
    seconds: float
    peak_rss_mb: float
    returncode: int
    stdout: str
    stderr: str
    cpu_seconds: float = float("nan")  # user + system CPU time of the process


def run_measured(
    name: str, command: Sequence[str], *, env: dict[str, str] | None = None, log: Path | None = None
) -> Stage:
    """Run ``command`` to completion; its wall time and peak resident memory (the child's
    own ``ru_maxrss`` from ``wait4``, so each stage's peak is its own). Output goes to
    temporary files (no pipe to fill) and is appended to ``log`` when given."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(list(command), stdout=out, stderr=err, env=env, cwd=REPO)
        _pid, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        stage = Stage(
            name,
            seconds,
            usage.ru_maxrss / 1024,
            proc.returncode,
            out.read(),
            err.read(),
            usage.ru_utime + usage.ru_stime,
        )
    if log is not None:
        with log.open("a") as f:
            f.write(f"\n=== {name}: $ {' '.join(command)}\n{stage.stdout}\n--- stderr\n")
            f.write(f"{stage.stderr}\n=== {name}: {seconds:.1f} s, peak RSS "
                    f"{stage.peak_rss_mb:.0f} MiB, exit {stage.returncode}\n")  # fmt: skip
    return stage
