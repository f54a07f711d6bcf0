"""Prometheus metrics of one gateway (its own registry, text format at ``GET /metrics``)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class Metrics:
    """Requests, latency, routes per LLM, upstream errors, recording and its queue depth."""

    def __init__(self, queue_depth: Callable[[], float]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "prouter_requests", "HTTP requests served", ["endpoint", "status"], registry=r
        )
        self.latency = Histogram(
            "prouter_request_seconds",
            "Wall time per request (streaming: until the last byte)",
            ["endpoint"],
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.routes = Counter(
            "prouter_routes", "Requests answered per LLM", ["llm", "mode"], registry=r
        )
        self.upstream_errors = Counter(
            "prouter_upstream_errors", "Failed upstream calls", ["llm", "kind"], registry=r
        )
        self.recorded = Counter(
            "prouter_recorded_events", "Events written to the graph", registry=r
        )
        self.record_failures = Counter(
            "prouter_record_failures", "Failed graph writes (retried)", registry=r
        )
        self.reloads = Counter("prouter_model_reloads", "Router models swapped in", registry=r)
        queue = Gauge("prouter_write_queue_depth", "Events waiting to be written", registry=r)
        queue.set_function(queue_depth)

    def render(self) -> bytes:
        return generate_latest(self.registry)
