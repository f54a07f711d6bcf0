"""Helpers shared by the benchmark scripts: a fresh store per backend, sizes, timing."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
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
