"""Model versions in the graph and the model folder: list them, prune old ones.

A version lives in two places: the graph (its RouterModel node, ROUTED_TO and
EVALUATED edges) and the model folder (``<version>.pt`` and the few-shot caches
``<version>-fewshot-<key>.pt``). :func:`list_models` joins both; :func:`prune_models`
removes every version but the ``keep`` newest (by ``created_at``, then name; the
latest RouterModel, which serving and reports use, is never removed), graph first,
then files, so an interrupted prune can be re-run. File paths come only from
:func:`gnn.checkpoint.checkpoint_path` (a version that could leave the folder is
refused) and every removed file is checked to lie in the folder.

A version with ROUTED_TO edges but no RouterModel node is an unfinished write-back
(``orphaned``: interrupted between its batches, see :mod:`gnn.writeback`); readers do
not see its edges, and :func:`prune_models` always deletes them (its checkpoint
follows the ``keep`` rule like any other, so a kept one can be written back again).
Edges that ``prouter serve`` recorded under a version that has no RouterModel node
count as orphaned too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from gnn.checkpoint import CheckpointError, checkpoint_path
from graphdb.store import GraphStore
from prcore.errors import ConfigError

__all__ = ["ModelEntry", "PruneReport", "list_models", "prune_models"]

_STAMP = re.compile(r"gnn-(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)(\d{6})Z-")
_FEW_SHOT = re.compile(r"-fewshot-[0-9a-f]{1,64}\.pt")


@dataclass
class ModelEntry:
    """One model version: where it is, and how much of the graph it holds."""

    version: str
    created_at: str
    in_graph: bool = False
    checkpoint: Path | None = None
    caches: list[Path] = field(default_factory=list)
    routed: int = 0
    evaluated: int = 0

    @property
    def orphaned(self) -> bool:
        """ROUTED_TO edges without a RouterModel node: an unfinished write-back."""
        return self.routed > 0 and not self.in_graph

    def as_dict(self) -> dict[str, object]:
        return {
            "version": self.version,
            "created_at": self.created_at,
            "in_graph": self.in_graph,
            "orphaned": self.orphaned,
            "checkpoint": str(self.checkpoint) if self.checkpoint else None,
            "few_shot_caches": len(self.caches),
            "ROUTED_TO": self.routed,
            "EVALUATED": self.evaluated,
        }


@dataclass
class PruneReport:
    """What :func:`prune_models` kept and removed (or would remove, on a dry run);
    ``orphaned``: the unfinished write-backs whose ROUTED_TO edges it deleted (version ->
    edges, also counted in ``deleted``)."""

    kept: list[str]
    removed: list[str]
    deleted: dict[str, int]
    dry_run: bool
    orphaned: dict[str, int] = field(default_factory=dict)


def _created_from_name(version: str) -> str:
    """The ISO time a version name carries (``gnn-<UTC time>Z-...``), or '' if none."""
    m = _STAMP.match(version)
    if not m:
        return ""
    y, mo, d, h, mi, s, us = m.groups()
    return f"{y}-{mo}-{d}T{h}:{mi}:{s}.{us}Z"


def _in_folder(path: Path, folder: Path) -> bool:
    return path.resolve().parent == folder and not path.is_symlink()


def list_models(store: GraphStore, model_dir: Path) -> list[ModelEntry]:
    """Every version in the graph or the model folder, newest first."""
    folder = Path(model_dir).resolve()
    entries: dict[str, ModelEntry] = {}
    rows = store.read(
        "MATCH (m:RouterModel) "
        "OPTIONAL MATCH (m)-[e:EVALUATED]->(:User) "
        "RETURN m.version AS version, m.created_at AS created_at, count(e) AS evaluated"
    ).to_pylist()
    for row in rows:
        version = str(row["version"])
        entries[version] = ModelEntry(
            version, str(row["created_at"] or ""), in_graph=True, evaluated=int(row["evaluated"])
        )
    routed = store.read(
        "MATCH (:User)-[r:ROUTED_TO]->(:LLM) RETURN r.model_version AS version, count(r) AS edges"
    ).to_pylist()
    for row in routed:
        version = str(row["version"])
        entry = entries.setdefault(version, ModelEntry(version, _created_from_name(version)))
        entry.routed = int(row["edges"])
    if folder.is_dir():
        for path in sorted(folder.glob("gnn-*.pt")):
            if not _in_folder(path, folder):
                continue
            cache = _FEW_SHOT.search(path.name)
            version = path.name[: cache.start()] if cache else path.stem
            try:
                checkpoint_path(folder, version)  # a plain version name, or not ours
            except CheckpointError:
                continue
            entry = entries.setdefault(version, ModelEntry(version, _created_from_name(version)))
            if cache:
                entry.caches.append(path)
            else:
                entry.checkpoint = path
    return sorted(entries.values(), key=lambda e: (e.created_at, e.version), reverse=True)


def _latest_in_graph(store: GraphStore) -> str | None:
    table = store.query("latest_router_model")
    return table.column("version")[0].as_py() if table.num_rows else None


def prune_models(
    store: GraphStore, model_dir: Path, *, keep: int, dry_run: bool = False
) -> PruneReport:
    """Remove every version but the ``keep`` (>= 1) newest: its ROUTED_TO and EVALUATED
    edges, its RouterModel node, its checkpoint and few-shot caches; and the ROUTED_TO
    edges of every unfinished write-back (``orphaned``), kept versions included."""
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise ConfigError(f"--keep must be at least 1 (the newest model is never pruned): {keep}")
    folder = Path(model_dir).resolve()
    entries = list_models(store, folder)
    latest = _latest_in_graph(store)
    kept = entries[:keep]
    removed = [e for e in entries[keep:] if e.version != latest]
    kept += [e for e in entries[keep:] if e.version == latest]
    deleted = {"ROUTED_TO": 0, "EVALUATED": 0, "RouterModel": 0, "files": 0}
    orphaned = {e.version: e.routed for e in entries if e.orphaned}
    if dry_run:
        deleted["ROUTED_TO"] += sum(orphaned.get(e.version, 0) for e in kept)
        for e in removed:
            deleted["ROUTED_TO"] += e.routed
            deleted["EVALUATED"] += e.evaluated
            deleted["RouterModel"] += int(e.in_graph)
            deleted["files"] += int(e.checkpoint is not None) + len(e.caches)
    else:
        for e in kept:
            if e.version in orphaned:
                deleted["ROUTED_TO"] += store.delete_routed(e.version)
        for e in removed:
            for key, n in store.delete_model(e.version).items():
                deleted[key] += n
        for e in removed:
            files = [checkpoint_path(folder, e.version), *e.caches]
            for path in files:
                if path.exists() and _in_folder(path, folder) and path.name.startswith(e.version):
                    path.unlink()
                    deleted["files"] += 1
    return PruneReport(
        [e.version for e in kept], [e.version for e in removed], deleted, dry_run, orphaned
    )
