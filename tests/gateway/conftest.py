"""A trained LadybugDB workload, a fake upstream and a live gateway, shared per module."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from gateway_support import FakeUpstream, serving
from test_route import TRAIN, StandInEmbedder, write_workload

from gnn.pipeline import train_and_record
from graphdb.store import GraphStore, open_store
from prouter.gateway.app import Gateway, create_app
from prouter.gateway.server import StoreAccess, build_gateway
from prouter.gateway.upstreams import Upstream

PRICE_IN, PRICE_OUT = 0.5, 1.5  # USD per 1k tokens


@dataclass
class World:
    access: StoreAccess
    model_dir: Path
    embedder: StandInEmbedder
    upstream: FakeUpstream
    upstreams: dict[str, Upstream]
    gw: Gateway
    base: str  # the gateway's base URL

    def graph(self, cypher: str, **params: object) -> list[dict]:
        """Flush the recorder, then run a read query."""
        if self.gw.recorder is not None:
            self.gw.recorder.flush()
        with self.access(read_only=True) as store:
            return store.read(cypher, params).to_pylist()


def make_upstreams(base: str, llms: list[str]) -> dict[str, Upstream]:
    return {
        llm: Upstream(llm, f"{base}/v1", f"up-{llm}", None, PRICE_IN, PRICE_OUT) for llm in llms
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("gateway")
    url = f"ladybug:{tmp / 'g.lbug'}"

    def open_(read_only: bool) -> GraphStore:
        return open_store(url, read_only=read_only)

    with open_store(url) as store:
        write_workload(store)
        train_and_record(store, seed=0, model_dir=tmp / "models", config=TRAIN)
        embedder = StandInEmbedder(store)
        llms = store.node_ids("LLM")
    access = StoreAccess(open_)
    # A slow upstream is 3x the gateway's timeout; the timeout is long enough that a healthy
    # upstream answers within it on a loaded machine (1 s once timed out the fallback itself).
    upstream = FakeUpstream(slow_seconds=15.0)
    with serving(upstream.app) as up_base:
        upstreams = make_upstreams(up_base, llms)
        gw = build_gateway(
            access,
            embedder,
            model_dir=tmp / "models",
            upstreams=upstreams,
            record_interval=0.1,
            upstream_timeout=5.0,
        )
        with serving(create_app(gw)) as base:
            yield World(access, tmp / "models", embedder, upstream, upstreams, gw, base)
