"""The warm router behind the gateway: batched inference off the event loop, hot reload.

Concurrent route requests are gathered into small batches (one embedding call
and one forward pass each, :meth:`gnn.serving.RoutingService.route_many`) run
on worker threads, so the event loop never runs inference and clients are not
queued one by one behind a lock. A newer ``RouterModel`` is loaded on a
thread and swapped in with one reference assignment: requests already holding
the old service finish on it, later ones use the new one, none fails.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prcore.errors import ProuterError

if TYPE_CHECKING:
    from gnn.serving import RouteResult, RoutingService

__all__ = ["MAX_EMBED_CHARS", "Router"]

log = logging.getLogger(__name__)
MAX_EMBED_CHARS = 8000  # the encoder reads ~256 word pieces; a longer text only costs time


@dataclass
class _Pending:
    service: RoutingService
    user: str
    query: str
    task: str | None
    future: asyncio.Future[RouteResult]


class Router:
    """Routes requests with the current service; ``load`` builds a service (on a thread)."""

    def __init__(
        self,
        service: RoutingService,
        load: Callable[[str | None], RoutingService] | None = None,
        latest: Callable[[], str] | None = None,
        *,
        max_batch: int = 32,
        workers: int = 2,
    ) -> None:
        self.service = service
        self._load, self._latest = load, latest
        self.max_batch, self.workers = max_batch, workers
        self._queue: asyncio.Queue[_Pending] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._reload_lock = threading.Lock()

    @property
    def version(self) -> str:
        return self.service.version

    # -- batching ------------------------------------------------------------------
    def start(self) -> None:
        """Start the batch workers on the running event loop."""
        self._queue = asyncio.Queue()
        self._tasks = [asyncio.create_task(self._worker()) for _ in range(self.workers)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def route(self, user: str, query: str, task: str | None) -> RouteResult:
        """Rank the LLMs for one request; :class:`ProuterError` for a bad request."""
        service = self.service
        from gnn.serving import RouteRequest

        service._check(RouteRequest(user, query, task), None)  # bad requests fail alone
        if self._queue is None:  # not started (tests, scripts): run on a thread directly
            return await asyncio.to_thread(service.route, user, query[:MAX_EMBED_CHARS], task)
        future: asyncio.Future[RouteResult] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(service, user, query, task, future))
        return await future

    async def _worker(self) -> None:
        assert self._queue is not None
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            by_service: dict[int, list[_Pending]] = {}
            for p in batch:
                by_service.setdefault(id(p.service), []).append(p)
            for group in by_service.values():
                try:
                    results = await asyncio.to_thread(_route_group, group)
                except Exception as exc:
                    for p in group:
                        if not p.future.done():
                            p.future.set_exception(exc)
                    continue
                for p, result in zip(group, results, strict=True):
                    if p.future.done():
                        continue
                    if isinstance(result, Exception):
                        p.future.set_exception(result)
                    else:
                        p.future.set_result(result)

    # -- reload --------------------------------------------------------------------
    def reload(self, version: str | None = None) -> bool:
        """Load ``version`` (None: the latest in the graph) when it differs; True if swapped.

        Blocking (reads the graph, loads the checkpoint): call it on a thread.
        Raises :class:`ProuterError` when no loader was configured or loading fails;
        the current service then keeps serving.
        """
        if self._load is None or self._latest is None:
            raise ProuterError("this gateway was started without a model loader")
        with self._reload_lock:
            wanted = version or self._latest()
            if wanted == self.service.version:
                return False
            service = self._load(wanted)
            service.warm_up()
            self.service = service  # one atomic swap; in-flight requests keep the old one
            log.warning("router model %s loaded", service.version)
            return True


def _route_group(group: list[_Pending]) -> list[RouteResult | Exception]:
    from gnn.serving import RouteRequest

    service = group[0].service
    requests = [RouteRequest(p.user, p.query[:MAX_EMBED_CHARS], p.task) for p in group]
    try:
        results: list[RouteResult | Exception] = list(service.route_many(requests))
    except ProuterError:
        if len(requests) == 1:
            raise
        results = [_one(service, r) for r in requests]  # isolate the bad one
    # Report the query as asked, not as truncated for the encoder.
    return [
        r if isinstance(r, Exception) else _with_query(r, p.query)
        for r, p in zip(results, group, strict=True)
    ]


def _one(service: RoutingService, request: object) -> RouteResult | Exception:
    try:
        return service.route_many([request])[0]  # type: ignore[list-item]
    except ProuterError as exc:
        return exc


def _with_query(result: RouteResult, query: str) -> RouteResult:
    if result.query == query:
        return result
    from dataclasses import replace

    return replace(result, query=query)
