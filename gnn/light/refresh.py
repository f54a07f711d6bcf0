"""Where a store's route snapshot goes, and writing it from a full routing service.

:func:`snapshot_target` is the one place that decides whether routes of a store
can take the light path (an embedded store, the CPU, the bundled embedding
model) and stamps the store file; `prouter route` (its full path), `prouter
train`, `prouter demo` and the Dagster ``route_snapshot`` asset all write through
it. Take the target (its stamp) before the store is read, or after the last
write to it has closed: a snapshot claims to be what the store held at its stamp.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gnn.light.snapshot import StaleSnapshot, snapshot_path, store_stamp, write_snapshot
from graphdb.store import embedded_store_file
from prcore.errors import ProuterError
from prcore.settings import is_bundled_embedding

if TYPE_CHECKING:
    from graphdb.store import GraphStore

__all__ = ["NoLightPath", "SnapshotTarget", "snapshot_target", "write_latest_snapshot"]


class NoLightPath(ProuterError):
    """Routes of this store cannot take the light path (the message says why)."""


@dataclass(frozen=True)
class SnapshotTarget:
    """The snapshot file of an embedded store and the store file's stamp when it was
    taken (None: it could not be stamped, e.g. a recovery is pending)."""

    path: Path
    store_file: Path
    model_dir: Path
    stamp: list[int] | None

    def write(self, service: Any, *, latest: bool) -> Path:
        """Save ``service`` (a full :class:`gnn.serving.RoutingService` built from the
        store as stamped) as the snapshot; its path. ``latest``: its model is the graph's
        latest. Raises :class:`ProuterError` (no stamp, not a GNN) or ``OSError``."""
        if self.stamp is None:
            raise StaleSnapshot("the store file cannot be stamped (a recovery is pending)")
        write_snapshot(
            service, self.path, stamp=self.stamp, store_file=self.store_file, latest=latest
        )
        return self.path


def snapshot_target(
    store_url: str, model_dir: Path, *, embedding_model: str, device: str = "cpu"
) -> SnapshotTarget:
    """The route snapshot of the store ``store_url`` (in ``model_dir``), stamped now.
    Raises :class:`NoLightPath` for a server store, a device other than the CPU or an
    embedding model other than the bundled one."""
    store_file = embedded_store_file(store_url)
    if store_file is None:
        raise NoLightPath("not an embedded store")
    if device != "cpu":
        raise NoLightPath(f"device {device!r}: the light path runs on the CPU")
    if not is_bundled_embedding(embedding_model):
        raise NoLightPath("not the bundled embedding model")
    return SnapshotTarget(
        snapshot_path(model_dir, store_file), store_file, Path(model_dir), store_stamp(store_file)
    )


def write_latest_snapshot(
    open_store: Callable[[], AbstractContextManager[GraphStore]],
    target: SnapshotTarget,
    embedder: Any,
) -> str:
    """Build the full routing service of the graph's latest model from the store that
    ``open_store`` opens (read-only) and save it at ``target`` (stamped before this
    read); the model version. ``embedder`` is the service's (not used to write).
    Raises :class:`ProuterError` (no model, another router, no stamp) or ``OSError``."""
    from gnn.serving import RoutingService

    if target.stamp is None:
        raise StaleSnapshot("the store file cannot be stamped (a recovery is pending)")
    with open_store() as store:
        service = RoutingService(store, embedder, model_dir=target.model_dir)
    target.write(service, latest=True)
    return service.version
