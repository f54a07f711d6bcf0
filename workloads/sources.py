"""Raw interaction sources as canonical records, and loading them into a store.

A source is read into an :class:`~workloads.adapters.base.AdapterResult`
(canonical records plus LLM metadata and a cleaning summary): canonical files
(CSV / JSONL / Parquet), the public data-set adapters, or the seeded synthetic
workload. :func:`ingest_sources` validates and writes them, one source after
the other, with the idempotent upserts of :mod:`graphdb.ingest`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from graphdb.canonical import RawRecord, read_records
from graphdb.store import GraphStore, WriteStats
from prcore.errors import ValidationError

if TYPE_CHECKING:
    from workloads.adapters.base import AdapterResult

__all__ = ["ingest_sources", "read_canonical", "read_synthetic"]


def read_canonical(paths: Sequence[str | Path]) -> AdapterResult:
    """Canonical interaction files as one source; an unreadable file rejects them all."""
    from workloads.adapters.base import AdapterResult

    result = AdapterResult(source=", ".join(str(p) for p in paths))
    problems = []
    for path in paths:
        records, file_problems = read_records(path)
        result.records.extend(records)
        problems.extend(file_problems)
        result.summary.append(f"read {Path(path).name}: {len(records)} records")
    if problems:
        raise ValidationError(
            "\n".join(["input rejected, nothing was written:", *map(str, problems)]), problems
        )
    return result


def read_synthetic(
    *, n_queries: int, n_users: int, n_llms: int, users_per_query: int = 1, seed: int = 0
) -> AdapterResult:
    """The seeded synthetic workload of :mod:`workloads.synthetic` as canonical records."""
    from workloads.adapters.base import AdapterResult
    from workloads.synthetic import generate

    workload = generate(
        n_queries=n_queries,
        n_users=n_users,
        n_llms=n_llms,
        users_per_query=users_per_query,
        seed=seed,
    )
    source = f"synthetic-{n_queries}q-{n_users}u-{n_llms}l-seed{seed}"
    result = AdapterResult(source=source)
    result.records = [
        RawRecord(source, f"record {i}", values) for i, values in enumerate(workload.records())
    ]
    result.summary.append(f"generated {len(result.records)} records")
    return result


def ingest_sources(
    store: GraphStore,
    sources: Sequence[AdapterResult],
    *,
    skip_invalid: bool = False,
    report_dir: Path | None = None,
) -> dict[str, WriteStats]:
    """Validate and write each source in turn; returns what was written, summed per type.

    With ``skip_invalid`` the rejected records of source ``i`` and their reasons go
    to ``report_dir/rejected-<i>.jsonl`` (default: the working directory).
    """
    from workloads.adapters.base import load

    written: dict[str, WriteStats] = {}
    for i, source in enumerate(sources):
        report_path = (report_dir or Path()) / f"rejected-{i}.jsonl"
        report = load(store, source, skip_invalid=skip_invalid, report_path=report_path)
        for name, stats in report.written.items():
            written[name] = written.get(name, WriteStats()) + stats
    return written
