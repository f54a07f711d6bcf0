"""Batched encoding in the gateway (``prouter.gateway.router``: concurrent requests are
routed in batches, one embedding call each): requests share forwards of the real
all-MiniLM-L6-v2, and every vector is the one its text gets when encoded alone (padding
of texts of different lengths changes nothing)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from test_route import TRAIN, write_workload

from gnn.pipeline import train_and_record
from gnn.serving import RoutingService
from graphdb.store import open_store
from prouter.gateway.embedding import LruEmbedder
from prouter.gateway.router import Router
from workloads.embeddings import Embedder, embed_graph

#: From one word to past the encoder's 256 word pieces (truncated), so a batch pads a lot.
TEXTS = [
    "Hi",
    "What is 17% of 240?",
    "Write a Python function that reverses a linked list in place, explaining each step.",
    "Summarise this article about rivers in two lines",
    " ".join(f"river{i} flows into the sea near town{i}" for i in range(60)),
    "Translate 'good morning' into French, German and Italian.",
    "Why?",
    "List three prime numbers larger than one hundred and say why they are prime.",
]


class CountingModel:
    """The real encoder, with the size of every forward it ran recorded."""

    def __init__(self, model: object) -> None:
        self.model, self.forwards = model, []

    def encode(self, texts, **options):  # type: ignore[no-untyped-def]
        self.forwards.append(len(texts))
        return self.model.encode(texts, **options)

    def __getattr__(self, name: str) -> object:
        return getattr(self.model, name)


def alone(embedder: Embedder, texts: list[str]) -> np.ndarray:
    """Each text encoded in a forward of its own."""
    return np.stack([embedder.model.encode([t], show_progress_bar=False)[0] for t in texts])


@pytest.mark.parametrize("numpy_encoder", [False, True], ids=["torch", "numpy"])
def test_a_batched_forward_gives_each_text_its_own_vector(numpy_encoder):
    from workloads.minilm import NumpyMiniLM

    tokenizer = NumpyMiniLM().tokenizer  # the model's tokenizer, truncating at 256
    lengths = [len(tokenizer.encode(t).ids) for t in TEXTS]
    assert min(lengths) == 3 and max(lengths) == 256  # one batch pads 3 word pieces to 256
    inner = Embedder(cache_path=None, numpy_encoder=numpy_encoder)
    batched = LruEmbedder(inner).embed(TEXTS, progress=False)
    np.testing.assert_allclose(batched, alone(inner, TEXTS), atol=1e-5, rtol=0)


@pytest.fixture(scope="module")
def minilm_store(tmp_path_factory):
    """(store URL, model dir) of a small store embedded with the real all-MiniLM-L6-v2."""
    tmp = tmp_path_factory.mktemp("encode-batching")
    url = f"ladybug:{tmp / 'g.lbug'}"
    with open_store(url) as store, Embedder(cache_path=None) as embedder:
        write_workload(store, dim=None)
        embed_graph(store, embedder, progress=False)
        train_and_record(store, seed=0, model_dir=tmp / "models", config=TRAIN)
    return url, tmp / "models"


def service_of(minilm_store, embedder: object) -> RoutingService:
    url, model_dir = minilm_store
    with open_store(url, read_only=True) as store:
        return RoutingService(store, embedder, model_dir=model_dir)


def test_concurrent_routes_share_one_forward_and_route_as_alone(minilm_store):
    inner = Embedder(cache_path=None)
    counting = CountingModel(inner.model)
    inner._model = counting
    cached = LruEmbedder(inner)
    service = service_of(minilm_store, cached)
    requests = [("user-0001" if i % 2 else "stranger", t) for i, t in enumerate(TEXTS)]
    router = Router(service, max_batch=len(requests))

    async def serve() -> list:
        router.start()
        try:
            return await asyncio.gather(*(router.route(u, t, None) for u, t in requests))
        finally:
            await router.stop()

    results = asyncio.run(serve())
    # Each text encoded once, in forwards shared by requests that were queued together.
    assert sum(counting.forwards) == len(TEXTS) and len(counting.forwards) < len(TEXTS)
    reference = Embedder(cache_path=None)
    vectors = np.stack([cached.cached(t) for t in TEXTS])
    np.testing.assert_allclose(vectors, alone(reference, TEXTS), atol=1e-5, rtol=0)
    single = service_of(minilm_store, LruEmbedder(reference))
    for (user, text), got in zip(requests, results, strict=True):
        expected = single.route(user, text)
        assert got.query == text and got.task == expected.task
        assert [r.llm_id for r in got.ranking] == [r.llm_id for r in expected.ranking]
        assert [r.utility for r in got.ranking] == pytest.approx(
            [r.utility for r in expected.ranking], abs=1e-5
        )
