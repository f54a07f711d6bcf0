"""What every adapter returns, and how it goes into the graph."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from graphdb.canonical import RawRecord
from graphdb.ingest import IngestReport, ingest_records
from graphdb.store import GraphStore, WriteStats

__all__ = ["AdapterResult", "load"]


@dataclass
class AdapterResult:
    """Canonical records from one data set, extra LLM metadata, and a cleaning summary."""

    source: str
    records: list[RawRecord] = field(default_factory=list)
    llms: pa.Table | None = None  # LLM nodes (id, description, prices) not tied to a record
    summary: list[str] = field(default_factory=list)

    def add(self, location: str, values: dict[str, Any]) -> None:
        """Append one canonical record (values that are None are left out)."""
        self.records.append(
            RawRecord(self.source, location, {k: v for k, v in values.items() if v is not None})
        )


def load(
    store: GraphStore,
    result: AdapterResult,
    *,
    skip_invalid: bool = False,
    report_path: str | Path | None = None,
) -> IngestReport:
    """Write an adapter's LLM metadata and ingest its records (validated, idempotent)."""
    with store.transaction():
        catalogue = WriteStats()
        if result.llms is not None and result.llms.num_rows:
            catalogue = store.write_nodes("LLM", result.llms)
        report = ingest_records(
            store, result.records, skip_invalid=skip_invalid, report_path=report_path
        )
    if catalogue.total:
        report.written["LLM"] = catalogue + report.written.get("LLM", WriteStats())
    return report
