"""The numpy all-MiniLM-L6-v2 against sentence-transformers, and through the Embedder."""

from __future__ import annotations

import numpy as np
import pytest

from prcore.errors import ConfigError
from workloads.embeddings import Embedder
from workloads.minilm import NumpyMiniLM, bundled_model_path

TEXTS = [
    "What is 17% of 240?",
    "Write a Python function that reverses a linked list",
    "a",
    "",
    " ",
    "  leading and trailing spaces  ",
    "\n\t tabs and new lines\n",
    "héllo wörld — naïve café, 日本語のテキスト, Ελληνικά, emoji 🚀🚀",
    "UPPER case And MiXeD",
    "longer than the 256-token limit: " + " ".join(f"word{i}" for i in range(700)),
    "[CLS] [SEP] [PAD] [MASK] literal special-token text",
]


@pytest.fixture(scope="module")
def both() -> tuple[np.ndarray, np.ndarray]:
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(bundled_model_path()), device="cpu")
    expected = reference.encode(TEXTS, batch_size=4, convert_to_numpy=True)
    got = NumpyMiniLM().encode(TEXTS, batch_size=4)
    return got, np.asarray(expected, dtype=np.float32)


def test_numpy_minilm_matches_sentence_transformers(both):
    got, expected = both
    assert got.shape == expected.shape == (len(TEXTS), 384)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-5)
    cosine = (
        (got * expected).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(expected, axis=1)
    )
    assert cosine.min() >= 0.99999
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_batching_and_truncation_do_not_change_a_vector(both):
    got, _ = both
    model = NumpyMiniLM()
    one_by_one = np.concatenate([model.encode([t]) for t in TEXTS])
    np.testing.assert_allclose(one_by_one, got, atol=1e-5)
    # Past max_seq_length the rest of the text is cut off, as sentence-transformers does.
    long = TEXTS[-2]
    np.testing.assert_allclose(
        model.encode([long]), model.encode([long + " and even more words"]), atol=1e-6
    )


def test_embedder_numpy_encoder_shares_the_cache(tmp_path, both):
    got, _ = both
    cache = tmp_path / "cache.sqlite"
    with Embedder(cache_path=cache, numpy_encoder=True) as light:
        first = light.embed(TEXTS[:3], progress=False)
        assert light.misses == 3
    np.testing.assert_allclose(first, got[:3], atol=1e-6)
    with Embedder(cache_path=cache) as full:  # the torch Embedder reads what it cached
        again = full.embed(TEXTS[:3], progress=False)
        assert full.hits == 3 and full._model is None  # no model was loaded
    np.testing.assert_array_equal(again, first)


def test_numpy_encoder_only_for_the_bundled_model(tmp_path):
    with pytest.raises(ConfigError, match="only the bundled"):
        Embedder(str(tmp_path), numpy_encoder=True)
    with pytest.raises(ConfigError, match="cannot read"):
        NumpyMiniLM(tmp_path)
