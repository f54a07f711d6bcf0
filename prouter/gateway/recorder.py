"""Recording served traffic into the graph, off the request path.

Request handlers :meth:`Recorder.submit` small events (a served query with its
route and upstream attempts, feedback) into an in-memory queue; one writer
thread turns what accumulated into node and edge tables and writes them in
one transaction every ``interval`` seconds (or as soon as ``max_batch`` events
wait). Served queries that were not routed (an explicit LLM id) are embedded
there, in one batch, so that every recorded query can train the router.
:meth:`Recorder.close` (on SIGTERM / shutdown) writes what is left.

What a hard crash (SIGKILL, power loss) can lose: the events submitted since
the last write, i.e. at most one batch window (``interval`` seconds of
traffic, and while the store is unavailable, what waits for it); everything
written before is committed. Writes are idempotent upserts keyed by ids, so an
event is never recorded twice, even when a failed write is retried.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from graphdb.schema import NODES, RELS
from prcore.values import finite_or_none

if TYPE_CHECKING:
    from graphdb.store import GraphStore

__all__ = ["Attempt", "Choice", "Outcome", "Preference", "Recorder", "Served"]

log = logging.getLogger(__name__)
MAX_RESPONSE_CHARS = 32_000  # of each answer kept on ANSWERED_BY.response


@dataclass(frozen=True)
class Attempt:
    """One upstream call: the LLM, how it went, what it cost."""

    llm_id: str
    status: str  # "ok", or what failed: "http 502", "timeout", "connect error", ...
    latency_ms: float
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: float | None = None
    response: str | None = None
    response_id: str | None = None  # the id the answer was served under (None: not served)


@dataclass(frozen=True)
class Served:
    """A served chat request: who asked what, the route taken and every upstream attempt."""

    ts: str
    user: str
    query_id: str
    text: str
    task: str | None
    embedding: list[float] | None = None
    model_version: str | None = None
    ranking: list[tuple[str, float]] = field(default_factory=list)  # (llm, utility), best first
    attempts: list[Attempt] = field(default_factory=list)


@dataclass(frozen=True)
class Outcome:
    """A rated answer: ANSWERED_BY.performance of ``llm_id`` on the query."""

    query_id: str
    llm_id: str
    performance: float


@dataclass(frozen=True)
class Choice:
    """The user chose ``llm_id``'s answer on the query (CHOSE)."""

    user: str
    llm_id: str
    query_id: str
    ts: str
    reward: float | None = None


@dataclass(frozen=True)
class Preference:
    """The user preferred ``llm_id``'s answer over ``over``'s on the query (PREFERRED)."""

    user: str
    llm_id: str
    query_id: str
    over: str
    tie: bool
    ts: str


Event = Served | Outcome | Choice | Preference


class _Rows:
    """Rows per node label / relationship type, merged by key (later non-null values win)."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {}

    def add(self, name: str, row: dict[str, Any]) -> None:
        if name in NODES:
            key: tuple[Any, ...] = (row[NODES[name].key],)
        else:
            key = (row["src"], row["dst"], *(row[k] for k in RELS[name].key))
        merged = self.rows.setdefault(name, {}).setdefault(key, {})
        merged.update({k: v for k, v in row.items() if v is not None or k not in merged})

    def tables(self) -> dict[str, Any]:
        import pyarrow as pa

        out = {}
        for name, rows in self.rows.items():
            columns = list(dict.fromkeys(k for row in rows.values() for k in row))
            out[name] = pa.table({c: [row.get(c) for row in rows.values()] for c in columns})
        return out


def event_rows(events: list[Event]) -> _Rows:
    """The graph rows that record ``events``."""
    rows = _Rows()
    for e in events:
        if isinstance(e, Served):
            rows.add("User", {"id": e.user})
            rows.add("Query", {"id": e.query_id, "text": e.text, "embedding": e.embedding})
            served_id = next((a.response_id for a in e.attempts if a.response_id), None)
            rows.add(
                "ASKED",
                {"src": e.user, "dst": e.query_id, "ts": e.ts, "response_id": served_id},
            )
            if e.task:
                rows.add("Task", {"id": e.task})
                rows.add("OF_TASK", {"src": e.query_id, "dst": e.task})
            for rank, (llm, utility) in enumerate(e.ranking, start=1):
                rows.add("LLM", {"id": llm})
                rows.add(
                    "ROUTED_TO",
                    {
                        "src": e.user,
                        "dst": llm,
                        "query_id": e.query_id,
                        "model_version": e.model_version,
                        "score": finite_or_none(utility),
                        "rank": rank,
                    },
                )
            for a in e.attempts:
                rows.add("LLM", {"id": a.llm_id})
                response = a.response[:MAX_RESPONSE_CHARS] if a.response is not None else None
                rows.add(
                    "ANSWERED_BY",
                    {
                        "src": e.query_id,
                        "dst": a.llm_id,
                        "cost": finite_or_none(a.cost),
                        "input_tokens": a.input_tokens,
                        "output_tokens": a.output_tokens,
                        "latency_ms": finite_or_none(a.latency_ms),
                        "status": a.status,
                        "response": response,
                        "response_id": a.response_id,
                    },
                )
        elif isinstance(e, Outcome):
            rows.add(
                "ANSWERED_BY", {"src": e.query_id, "dst": e.llm_id, "performance": e.performance}
            )
        elif isinstance(e, Choice):
            rows.add(
                "CHOSE",
                {
                    "src": e.user,
                    "dst": e.llm_id,
                    "query_id": e.query_id,
                    "reward": finite_or_none(e.reward),
                    "ts": e.ts,
                },
            )
        elif isinstance(e, Preference):
            rows.add(
                "PREFERRED",
                {
                    "src": e.user,
                    "dst": e.llm_id,
                    "query_id": e.query_id,
                    "over": e.over,
                    "tie": e.tie,
                    "ts": e.ts,
                },
            )
    return rows


class Recorder:
    """A batched background writer of :data:`Event` s into the graph.

    ``open_store`` returns a context manager yielding a writable store (opened
    per batch, so an embedded store stays free between batches). A failed write
    keeps its events for the next batch; beyond ``max_pending`` waiting events
    the oldest are dropped and counted in ``dropped``.
    """

    def __init__(
        self,
        open_store: Callable[[], AbstractContextManager[GraphStore]],
        *,
        interval: float = 1.0,
        max_batch: int = 1000,
        max_pending: int = 100_000,
        on_written: Callable[[int], None] | None = None,
        on_failed: Callable[[], None] | None = None,
        embed: Callable[[list[str]], Any] | None = None,
    ) -> None:
        self._open = open_store
        self._embed = embed
        self.interval, self.max_batch, self.max_pending = interval, max_batch, max_pending
        self._pending: list[Event] = []
        self._cond = threading.Condition()
        self._write_lock = threading.Lock()
        self._stop = False
        self._thread: threading.Thread | None = None
        self.written = self.dropped = self.failures = 0
        self._on_written, self._on_failed = on_written, on_failed

    @property
    def depth(self) -> int:
        """Events waiting to be written."""
        return len(self._pending)

    def submit(self, event: Event) -> None:
        """Queue one event (never blocks on the store)."""
        with self._cond:
            self._pending.append(event)
            if len(self._pending) > self.max_pending:
                excess = len(self._pending) - self.max_pending
                del self._pending[:excess]
                self.dropped += excess
            if len(self._pending) >= self.max_batch:
                self._cond.notify()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="prouter-recorder", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._stop and len(self._pending) < self.max_batch:
                    self._cond.wait(self.interval)
                if self._stop:
                    return
            self.flush()

    def flush(self) -> int:
        """Write every waiting event now; the number written (0 on failure: kept for later)."""
        with self._write_lock:
            with self._cond:
                batch, self._pending = self._pending, []
            if not batch:
                return 0
            try:
                batch = self._with_embeddings(batch)
                tables = event_rows(batch).tables()
                with self._open() as store, store.transaction():
                    for name in [*NODES, *RELS]:  # nodes before the edges that need them
                        if name in tables:
                            write = store.write_nodes if name in NODES else store.write_edges
                            write(name, tables[name])
            except Exception:
                log.exception(
                    "recording %d events failed; retrying with the next batch", len(batch)
                )
                self.failures += 1
                if self._on_failed:
                    self._on_failed()
                with self._cond:
                    self._pending[:0] = batch
                return 0
            self.written += len(batch)
            if self._on_written:
                self._on_written(len(batch))
            return len(batch)

    def _with_embeddings(self, batch: list[Event]) -> list[Event]:
        """Embed (in one call) the served queries that were not routed, so they can train."""
        missing = [e.text for e in batch if isinstance(e, Served) and e.embedding is None]
        if self._embed is None or not missing:
            return batch
        from dataclasses import replace

        from prouter.gateway.router import MAX_EMBED_CHARS

        texts = list(dict.fromkeys(t[:MAX_EMBED_CHARS] for t in missing))
        vectors = dict(zip(texts, self._embed(texts), strict=True))
        return [
            replace(e, embedding=[float(x) for x in vectors[e.text[:MAX_EMBED_CHARS]]])
            if isinstance(e, Served) and e.embedding is None
            else e
            for e in batch
        ]

    def close(self) -> None:
        """Stop the writer thread and write what is left (one attempt)."""
        with self._cond:
            self._stop = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join()
        self.flush()
