"""The gateway's embedder: a bounded in-memory LRU over the encoder, nothing on disk.

Routing a query embeds its text; the gateway keeps the last ``capacity``
vectors (so a served query's embedding is recorded without encoding it twice)
and never grows the shared on-disk embedding cache with every new query.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["LruEmbedder"]


class LruEmbedder:
    """Wraps an embedder (``workloads.embeddings.Embedder`` or any ``embed(texts)``)."""

    def __init__(self, inner: Any, capacity: int = 4096) -> None:
        self.inner, self.capacity = inner, capacity
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()  # the cache
        self._encode_lock = threading.Lock()  # tokenizers are not safe across threads

    def cached(self, text: str) -> np.ndarray | None:
        """The vector of ``text`` if it is still in memory."""
        with self._lock:
            return self._cache.get(text)

    def _encode(self, texts: list[str]) -> np.ndarray:
        with self._encode_lock:
            if hasattr(self.inner, "model") and hasattr(self.inner, "batch_size"):
                matrix = self.inner.model.encode(
                    texts,
                    batch_size=self.inner.batch_size,
                    show_progress_bar=False,
                    convert_to_numpy=True,
                )
            else:
                matrix = self.inner.embed(texts, progress=False)
        return np.ascontiguousarray(matrix, dtype=np.float32)

    def embed(self, texts: Sequence[str], progress: bool = True) -> np.ndarray:
        texts = list(texts)
        with self._lock:
            found = {t: self._cache[t] for t in texts if t in self._cache}
            for t in found:
                self._cache.move_to_end(t)
        missing = list(dict.fromkeys(t for t in texts if t not in found))
        if missing:
            matrix = self._encode(missing)
            with self._lock:
                for t, v in zip(missing, matrix, strict=True):
                    self._cache[t] = v
                    found[t] = v
                while len(self._cache) > self.capacity:
                    self._cache.popitem(last=False)
        return np.stack([found[t] for t in texts]).astype(np.float32, copy=False)
