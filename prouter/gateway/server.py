"""Assemble a gateway from settings and run it under uvicorn."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prouter.gateway.app import Gateway, create_app
from prouter.gateway.embedding import LruEmbedder
from prouter.gateway.feedback import Answer, Answers, stored_answer
from prouter.gateway.keys import KeyRing
from prouter.gateway.protocol import header_timeout_protocol
from prouter.gateway.recorder import Recorder
from prouter.gateway.router import Router
from prouter.gateway.upstreams import Upstream

if TYPE_CHECKING:
    from graphdb.store import GraphStore

__all__ = ["StoreAccess", "build_gateway", "run"]


class StoreAccess:
    """The graph store for one use at a time. An embedded file is opened per use (so it
    stays free in between); a server store (Neo4j) stays open, one per mode, until
    :meth:`close`: connecting and applying the schema per write batch cost more than
    the batch."""

    def __init__(self, open_store: Callable[[bool], GraphStore]) -> None:
        self._open = open_store
        self._lock = threading.Lock()
        self._kept: dict[bool, GraphStore] = {}

    @contextmanager
    def __call__(self, read_only: bool = False) -> Iterator[GraphStore]:
        with self._lock:
            store = self._kept.get(read_only) or self._open(read_only)
            keep = store.backend != "ladybug"
            try:
                yield store
            except BaseException:
                keep = False  # a failed use (e.g. a dropped connection) opens afresh next time
                raise
            finally:
                if keep:
                    self._kept[read_only] = store
                else:
                    self._kept.pop(read_only, None)
                    store.close()

    def close(self) -> None:
        """Close the server stores kept open."""
        with self._lock:
            kept, self._kept = list(self._kept.values()), {}
        for store in kept:
            store.close()


def build_gateway(
    access: StoreAccess,
    embedder: Any,
    *,
    model_dir: Path,
    version: str | None = None,
    device: str = "cpu",
    similar: int = 3,
    upstreams: dict[str, Upstream] | None = None,
    keys: Path | None = None,
    record: bool = True,
    record_interval: float = 1.0,
    **options: Any,
) -> Gateway:
    """A gateway over the store behind ``access``: the model loaded and warm."""
    from gnn.serving import RoutingService, resolve_version

    cached = embedder if isinstance(embedder, LruEmbedder) else LruEmbedder(embedder)

    def load(wanted: str | None) -> RoutingService:
        with access(read_only=True) as store:
            return RoutingService(
                store, cached, model_dir=model_dir, version=wanted, device=device, similar=similar
            )

    def latest() -> str:
        with access(read_only=True) as store:
            return resolve_version(store)

    service = load(version)
    service.warm_up()

    def stored(response_id: str) -> Answer | None:
        with access(read_only=True) as store:
            return stored_answer(store, response_id)

    recorder = None
    if record:
        recorder = Recorder(
            lambda: access(read_only=False),
            interval=record_interval,
            embed=lambda texts: cached.embed(texts, progress=False),
        )
    return Gateway(
        router=Router(service, load, latest),
        upstreams=dict(upstreams or {}),
        recorder=recorder,
        answers=Answers(lookup=stored),
        on_close=[access.close],
        keys=KeyRing(keys) if keys is not None and Path(keys).exists() else None,
        **options,
    )


def _server_class() -> type:
    import uvicorn

    class Server(uvicorn.Server):
        """SIGINT / SIGTERM stop serving (and flush), then the process exits 0 (not re-raised)."""

        def handle_exit(self, sig: int, frame: Any) -> None:
            super().handle_exit(sig, frame)
            self._captured_signals.clear()

    return Server


def run(gw: Gateway, host: str, port: int, on_ready: Callable[[str, int], None]) -> None:
    """Serve until SIGINT / SIGTERM: stop accepting, finish requests, flush the recorder."""
    import asyncio

    import uvicorn

    _Server = _server_class()
    config = uvicorn.Config(
        create_app(gw),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        backlog=2048,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=30,
        server_header=False,
        http=header_timeout_protocol(gw.read_timeout),
    )
    server = _Server(config)

    async def main() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started and not task.done():
            await asyncio.sleep(0.05)
        if server.started:
            sock = server.servers[0].sockets[0]
            bound_host, bound_port = sock.getsockname()[:2]
            on_ready(bound_host, bound_port)
        await task

    asyncio.run(main())
