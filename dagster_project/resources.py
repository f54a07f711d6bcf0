"""Resources: the graph store, the model store, the embedding model and the device.

Settings come from the environment through ``dg.EnvVar`` (the UI shows the
variable's name, never its value): ``PROUTER_STORE`` (``ladybug:PATH``, a Neo4j
URI, or ``neo4j`` for ``$NEO4J_URI``), ``NEO4J_USERNAME``, ``NEO4J_PASSWORD``,
``NEO4J_DATABASE``, ``PROUTER_MODEL_DIR``, ``PROUTER_EMBEDDING_MODEL``,
``PROUTER_DEVICE``. Unset ones fall back to the defaults of the ``prouter`` CLI.
"""

from __future__ import annotations

import abc
import hashlib
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np

from graphdb.store import GraphStore, open_store
from prcore.errors import ConfigError
from prcore.settings import (
    DEFAULT_EMBEDDING_MODEL,
    DEFAULT_MODEL_DIR,
    DEFAULT_STORE,
    resolve_store_url,
)

__all__ = [
    "DeviceResource",
    "EmbeddingModelResource",
    "GraphStoreResource",
    "HashingEmbeddings",
    "ModelStoreResource",
    "SentenceTransformerEmbeddings",
    "embedding_model_from_env",
    "resources_from_env",
]

DEVICES = ("auto", "cpu", "cuda")


class GraphStoreResource(dg.ConfigurableResource):
    """The property graph: an embedded LadybugDB file or a Neo4j server."""

    url: str = DEFAULT_STORE
    username: str | None = None
    password: str | None = None
    database: str | None = None

    def resolved_url(self) -> str:
        """The store's URL (``neo4j`` resolved to ``$NEO4J_URI``)."""
        return resolve_store_url(self.url, os.environ.get("NEO4J_URI"))

    @contextmanager
    def open(self, *, read_only: bool = False) -> Iterator[GraphStore]:
        """The opened store, closed on exit."""
        store = open_store(
            self.resolved_url(),
            username=self.username or "neo4j",
            password=self.password,
            database=self.database,
            read_only=read_only,
        )
        try:
            yield store
        finally:
            store.close()


class ModelStoreResource(dg.ConfigurableResource):
    """The model folder: checkpoints ``<version>.pt`` (the layout ``prouter train`` and
    ``prouter route`` use), training-subgraph exports in ``exports/``, reports in ``reports/``."""

    directory: str = str(DEFAULT_MODEL_DIR)

    def path(self, *parts: str) -> Path:
        """An absolute path under the model store (folders are created)."""
        path = Path(self.directory, *parts).resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path


class DeviceResource(dg.ConfigurableResource):
    """Where torch runs: ``cpu``, ``cuda`` (or ``cuda:N``), or ``auto`` (CUDA when present)."""

    device: str = "auto"

    def resolve(self) -> str:
        name = self.device.strip().lower()
        if name not in DEVICES and not re.fullmatch(r"cuda:\d+", name):
            raise ConfigError(f"unknown device {self.device!r}; valid: auto, cpu, cuda, cuda:N")
        if name == "auto":
            import torch

            return "cuda" if torch.cuda.is_available() else "cpu"
        return name


class EmbeddingModelResource(dg.ConfigurableResource, abc.ABC):
    """Turns texts into vectors for :func:`workloads.embeddings.embed_graph`."""

    @abc.abstractmethod
    @contextmanager
    def embedder(self, device: str) -> Iterator[Any]:
        """An object with ``embed(texts, progress) -> ndarray`` and ``model_id``."""

    @abc.abstractmethod
    def setting(self) -> str:
        """The model as ``PROUTER_EMBEDDING_MODEL`` names it."""


class SentenceTransformerEmbeddings(EmbeddingModelResource):
    """A sentence-transformers model (default: the bundled all-MiniLM-L6-v2, offline)."""

    model: str = DEFAULT_EMBEDDING_MODEL
    cache_path: str = "prouter-data/embedding-cache.sqlite"
    batch_size: int = 64

    @contextmanager
    def embedder(self, device: str) -> Iterator[Any]:
        from workloads.embeddings import Embedder

        with Embedder(
            self.model, cache_path=Path(self.cache_path), batch_size=self.batch_size, device=device
        ) as embedder:
            yield embedder

    def setting(self) -> str:
        return self.model


class _HashingEmbedder:
    """Bag-of-words feature hashing: texts sharing words get similar unit vectors."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.model_id = f"hashing-{dim}"

    def embed(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for token in re.findall(r"[^\W\d_]+", text.lower()) or [text]:
                h = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "big")
                out[row, h % self.dim] += 1.0 if h >> 63 else -1.0
        norm = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norm > 0, norm, 1.0)


class HashingEmbeddings(EmbeddingModelResource):
    """A model-free stand-in (tests, demos, CI): deterministic, instant, no weights."""

    dim: int = 64

    @contextmanager
    def embedder(self, device: str) -> Iterator[Any]:
        yield _HashingEmbedder(self.dim)

    def setting(self) -> str:
        return f"hashing:{self.dim}"


def _env(name: str, default: Any) -> Any:
    """``dg.EnvVar(name)`` when the variable is set (resolved at run time), else ``default``."""
    return dg.EnvVar(name) if os.environ.get(name) else default


def embedding_model_from_env() -> EmbeddingModelResource:
    """``PROUTER_EMBEDDING_MODEL``: a sentence-transformers model (default all-MiniLM-L6-v2),
    or ``hashing`` / ``hashing:DIM`` for the model-free stand-in (CI, quick demos)."""
    name = os.environ.get("PROUTER_EMBEDDING_MODEL", "")
    if name == "hashing" or name.startswith("hashing:"):
        return HashingEmbeddings(dim=int(name.partition(":")[2] or 64))
    return SentenceTransformerEmbeddings(
        model=_env("PROUTER_EMBEDDING_MODEL", DEFAULT_EMBEDDING_MODEL)
    )


def resources_from_env() -> dict[str, dg.ConfigurableResource]:
    """The resources of the deployed project, configured from the environment."""
    return {
        "graph_store": GraphStoreResource(
            url=_env("PROUTER_STORE", DEFAULT_STORE),
            username=_env("NEO4J_USERNAME", None),
            password=_env("NEO4J_PASSWORD", None),
            database=_env("NEO4J_DATABASE", None),
        ),
        "model_store": ModelStoreResource(
            directory=_env("PROUTER_MODEL_DIR", str(DEFAULT_MODEL_DIR))
        ),
        "embedding_model": embedding_model_from_env(),
        "device": DeviceResource(device=_env("PROUTER_DEVICE", "auto")),
    }
