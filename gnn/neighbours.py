"""k nearest neighbours by cosine similarity: exact below a size threshold, approximate above.

Every query-query neighbour search of the project goes through here: the
training graph (``gnn.graph``: ``SIMILAR`` edges and the neighbours' outcome
messages), the kNN baselines (``gnn.routers.baselines.knn*``) and serving
(task inference and explanations, ``gnn.serving``).

* **exact**: chunked matrix products (at most ``batch`` query rows at a time,
  so memory stays ``batch x base``); neighbours sorted by decreasing
  similarity, ties to the lower base row, which is what a stable sort of the
  full similarity row gives.
* **approx**: an HNSW graph index (``usearch``), built single-threaded in base
  order, hence the same index and the same answers on every run, and searched
  on every core (``threads``; a query's answer does not depend on it); the
  candidates' similarities are recomputed exactly, then sorted as above.
* **auto** (the default): approximate when the base has at least
  ``approx_from`` rows (default :data:`APPROX_FROM`) *and*, for a one-off
  search (:func:`nearest`), the query x base pairs number at least
  ``approx_from ** 2``; exact otherwise. A standing :class:`NeighbourIndex`
  (serving) looks at the base size only.

The mode and threshold come from the settings (``PROUTER_NEIGHBOURS``,
``PROUTER_NEIGHBOURS_APPROX_FROM``, the ``prouter --neighbours`` flag) or
:func:`configure`; each approximate index built is announced on stderr. Built
indexes are kept in ``PROUTER_NEIGHBOURS_INDEX_DIR`` for the next process
(:mod:`gnn.index_files`), which reads them instead of building them again.

Shapes: queries ``(B, D)``, base ``(N, D)``; results ``(B, min(k, N))``, a row
padded with index -1 and similarity ``-inf`` where fewer base rows qualify
(``exclude`` removed one of them).
"""

from __future__ import annotations

import hashlib
import logging
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from gnn import index_files
from prcore.errors import ProuterError
from prcore.settings import DEFAULT_NEIGHBOURS_APPROX_FROM

__all__ = [
    "APPROX_FROM",
    "Mode",
    "NeighbourConfig",
    "NeighbourIndex",
    "NeighbourSearchError",
    "Neighbours",
    "choose_method",
    "configure",
    "current_config",
    "nearest",
    "search_config",
    "settings_config",
    "unit_rows",
    "using",
]

log = logging.getLogger(__name__)

Mode = Literal["auto", "exact", "approx"]
MODES: tuple[str, ...] = get_args(Mode)
#: Base rows from which ``auto`` searches approximately (see the module docstring).
APPROX_FROM = DEFAULT_NEIGHBOURS_APPROX_FROM
_CACHE_SIZE = 2  # approximate indices kept for repeated searches of the same base
_APPROX_BATCH = 8192  # query rows per approximate search call
_CHUNK_ELEMENTS = 2**25  # similarities held at once by the exact search (128 MiB float32)


class NeighbourSearchError(ProuterError, ValueError):
    """Bad input to a neighbour search (k, shapes, non-finite values, mode)."""


@dataclass(frozen=True)
class NeighbourConfig:
    """How searches run: ``mode``, the ``auto`` threshold and the HNSW parameters."""

    mode: Mode = "auto"
    approx_from: int = APPROX_FROM
    connectivity: int = 16  # HNSW edges per node
    expansion_add: int = 128  # candidate list while building
    expansion_search: int = 128  # candidate list while searching (at least 2k is used)
    # Search threads, 0: every core (each query's answer is its own, so the answers do
    # not depend on it); building is single-threaded, hence reproducible.
    threads: int = 0
    # Folder of approximate indexes kept between processes ("": none; gnn.index_files).
    index_dir: str = ""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise NeighbourSearchError(
                f"unknown neighbour search mode {self.mode!r}; valid: {', '.join(MODES)}"
            )
        if self.approx_from < 2:
            raise NeighbourSearchError(f"approx_from must be >= 2, got {self.approx_from}")


@dataclass(frozen=True)
class Neighbours:
    """Base rows (``indices``, int64) and cosine ``similarities`` (float32), best first."""

    indices: np.ndarray
    similarities: np.ndarray
    method: str  # "exact" or "approx"


_config: NeighbourConfig | None = None
_cache: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_cache_lock = threading.Lock()  # serving threads may build / look up indices at once


def settings_config() -> NeighbourConfig:
    """The configuration of the settings (environment: ``PROUTER_NEIGHBOURS*``)."""
    from prcore.settings import Settings

    settings = Settings.load()
    return NeighbourConfig(
        mode=settings.neighbours,
        approx_from=settings.neighbours_approx_from,
        index_dir=settings.neighbours_index_dir,
    )


def current_config() -> NeighbourConfig:
    """The configuration in force (from the settings until :func:`configure` is called)."""
    global _config
    if _config is None:
        _config = settings_config()
    return _config


def configure(
    mode: str | None = None, approx_from: int | None = None, **hnsw: int | str | None
) -> None:
    """Set the process-wide search mode / threshold / HNSW parameters and ``index_dir``
    (None: unchanged)."""
    global _config
    changes: dict[str, Any] = {k: v for k, v in hnsw.items() if v is not None}
    if mode is not None:
        changes["mode"] = mode
    if approx_from is not None:
        changes["approx_from"] = approx_from
    _config = replace(current_config(), **changes)


@contextmanager
def using(
    mode: str | None = None, approx_from: int | None = None, **hnsw: int | str | None
) -> Iterator[None]:
    """:func:`configure` for a ``with`` block (tests, benchmarks), restored afterwards."""
    global _config
    before = current_config()
    configure(mode, approx_from, **hnsw)
    try:
        yield
    finally:
        _config = before


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """float32 rows scaled to unit length (zero rows stay zero)."""
    matrix = np.asarray(matrix, dtype=np.float32)
    norm = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norm > 0, norm, 1.0)


def _check_matrix(name: str, matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix)
    if matrix.ndim != 2:
        raise NeighbourSearchError(f"{name} must be a 2-d matrix, got shape {matrix.shape}")
    if matrix.size and not np.isfinite(matrix).all():
        raise NeighbourSearchError(f"{name} holds NaN or infinite values")
    return matrix


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise NeighbourSearchError(f"k must be an integer >= 1, got {k!r}")
    return int(k)


def choose_method(
    n_base: int, n_queries: int | None = None, *, config: NeighbourConfig | None = None
) -> str:
    """``"exact"`` or ``"approx"`` for a search of ``n_base`` rows (by ``n_queries`` rows
    for a one-off search; None: a standing index) under ``config`` (None: in force)."""
    cfg = config or current_config()
    if n_base == 0 or cfg.mode == "exact":
        return "exact"
    if cfg.mode == "approx":
        return "approx"
    big = n_base >= cfg.approx_from
    if n_queries is not None:
        big = big and n_queries * n_base >= cfg.approx_from**2
    return "approx" if big else "exact"


def search_config(
    n_base: int, n_queries: int | None = None, *, mode: str | None = None
) -> NeighbourConfig:
    """The configuration in force (``mode`` overriding its mode), set to exact search where
    :func:`choose_method` picks it for ``n_base`` rows searched by ``n_queries`` (None: a
    standing index)."""
    cfg = current_config()
    if mode is not None:
        cfg = replace(cfg, mode=mode)  # type: ignore[arg-type]
    if choose_method(n_base, n_queries, config=cfg) == "exact":
        cfg = replace(cfg, mode="exact")
    return cfg


class NeighbourIndex:
    """A base matrix ready to answer k-nearest-neighbour searches (cosine similarity).

    ``mode`` None uses the configuration in force; ``auto`` picks ``approx`` for a
    base of at least ``approx_from`` rows. ``normalised`` says the rows are
    already unit length (skips a copy).
    """

    def __init__(
        self,
        base: np.ndarray,
        *,
        mode: str | None = None,
        config: NeighbourConfig | None = None,
        normalised: bool = False,
    ) -> None:
        cfg = config or current_config()
        if mode is not None:
            cfg = replace(cfg, mode=mode)  # type: ignore[arg-type]
        base = _check_matrix("the base", base)
        self.config = cfg
        self.base = np.asarray(base, dtype=np.float32) if normalised else unit_rows(base)
        self.method = choose_method(len(self.base), config=cfg)
        self._hnsw = _hnsw_index(self.base, cfg) if self.method == "approx" else None

    def __len__(self) -> int:
        return len(self.base)

    def __repr__(self) -> str:
        return f"NeighbourIndex({len(self)}x{self.base.shape[1]}, method={self.method})"

    def search(
        self,
        queries: np.ndarray,
        k: int,
        *,
        exclude: np.ndarray | None = None,
        batch: int = 2048,
        normalised: bool = False,
    ) -> Neighbours:
        """The ``k`` most similar base rows of each query row, best first.

        ``exclude[i]`` is a base row query ``i`` must not get (its own row) or -1.
        """
        k = _check_k(k)
        queries = _check_matrix("the queries", queries)
        if queries.shape[1] != self.base.shape[1]:
            raise NeighbourSearchError(
                f"the queries are {queries.shape[1]}-d but the base is {self.base.shape[1]}-d"
            )
        if exclude is not None:
            exclude = np.asarray(exclude, dtype=np.int64)
            if exclude.shape != (len(queries),):
                raise NeighbourSearchError(
                    f"exclude needs one base row (or -1) per query: shape {exclude.shape} "
                    f"for {len(queries)} queries"
                )
        q = np.asarray(queries, dtype=np.float32) if normalised else unit_rows(queries)
        kk = min(k, len(self.base))
        if len(q) == 0 or kk == 0:
            empty = np.zeros((len(q), kk))
            return Neighbours(empty.astype(np.int64), empty.astype(np.float32), self.method)
        if self._hnsw is None:
            idx, sim = _exact(q, self.base, kk, exclude, batch)
        else:
            idx, sim = _approx(self._hnsw, q, self.base, kk, exclude, self.config)
        return Neighbours(idx, sim, self.method)


def nearest(
    queries: np.ndarray,
    base: np.ndarray,
    k: int,
    *,
    exclude: np.ndarray | None = None,
    mode: str | None = None,
    batch: int = 2048,
    normalised: bool = False,
) -> Neighbours:
    """The ``k`` base rows most similar (cosine) to each query row: a one-off search.

    ``auto`` searches approximately only when the base has at least
    ``approx_from`` rows and queries x base >= ``approx_from ** 2``;
    ``normalised`` says both matrices already have unit rows.
    """
    queries, base = _check_matrix("the queries", queries), _check_matrix("the base", base)
    cfg = search_config(len(base), len(queries), mode=mode)
    index = NeighbourIndex(base, config=cfg, normalised=normalised)
    return index.search(queries, k, exclude=exclude, batch=batch, normalised=normalised)


# -- exact --------------------------------------------------------------------------


def _exact(
    q: np.ndarray, base: np.ndarray, k: int, exclude: np.ndarray | None, batch: int
) -> tuple[np.ndarray, np.ndarray]:
    n, n_base = len(q), len(base)
    idx = np.empty((n, k), dtype=np.int64)
    sim_out = np.empty((n, k), dtype=np.float32)
    batch = max(1, min(batch, _CHUNK_ELEMENTS // n_base))  # memory: batch x base
    starts = range(0, n, batch)
    if n * n_base >= 10**9:  # minutes of work: show progress
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=f"exact neighbours ({n}x{n_base})", unit="batch")
    for start in starts:
        rows = slice(start, min(start + batch, n))
        sim = q[rows] @ base.T
        if exclude is not None:
            own = exclude[rows]
            hit = np.flatnonzero((own >= 0) & (own < n_base))
            sim[hit, own[hit]] = -np.inf
        top = _top_k(sim, k)
        s = np.take_along_axis(sim, top, axis=1)
        idx[rows], sim_out[rows] = _sorted(top, s)
    return idx, sim_out


def _top_k(sim: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the k largest entries per row; at the k-th value's ties, the
    lowest columns (what a stable descending sort keeps)."""
    if k >= sim.shape[1]:
        return np.broadcast_to(np.arange(sim.shape[1]), sim.shape).copy()
    top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    kth = np.take_along_axis(sim, top, axis=1).min(axis=1, keepdims=True)
    tied = np.flatnonzero((sim >= kth).sum(axis=1) > k)
    for r in tied:  # rare: repair the boundary with a stable sort of that row
        top[r] = np.argsort(-sim[r], kind="stable")[:k]
    return top


def _sorted(idx: np.ndarray, sim: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row by decreasing similarity, ties to the lower index; excluded (-inf) -> -1."""
    order = np.lexsort((idx, -sim), axis=-1)
    idx = np.take_along_axis(idx, order, axis=1)
    sim = np.take_along_axis(sim, order, axis=1).astype(np.float32)
    idx = np.where(np.isneginf(sim), -1, idx)
    return idx, sim


# -- approximate ----------------------------------------------------------------------


def _hnsw_index(base: np.ndarray, cfg: NeighbourConfig) -> Any:
    """The HNSW index of ``base`` (unit rows); reused while the same base is searched, and
    read from ``cfg.index_dir`` when an earlier process saved it there."""
    digest = hashlib.blake2b(np.ascontiguousarray(base).view(np.uint8), digest_size=16)
    key = (base.shape, digest.hexdigest(), cfg.connectivity, cfg.expansion_add)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    try:
        from usearch.index import Index
    except ImportError as exc:  # pragma: no cover - usearch is a pinned dependency
        raise NeighbourSearchError(
            "approximate neighbour search needs the 'usearch' package; reinstall with "
            "`./dev setup`, or search exactly (--neighbours exact)"
        ) from exc
    stem = index_files.index_name(key[1], base.shape, cfg.connectivity, cfg.expansion_add)
    index = index_files.load_index(Path(cfg.index_dir), stem, base) if cfg.index_dir else None
    message = (
        f"neighbours: approximate search (HNSW, usearch) over {len(base):,} rows "
        f"(mode {cfg.mode}, exact below {cfg.approx_from:,}); "
        + ("read the saved index" if index is not None else "building the index")
    )
    log.info(message)
    print(message, file=sys.stderr)
    if index is None:
        index = Index(
            ndim=base.shape[1],
            metric="ip",
            dtype="f32",
            connectivity=cfg.connectivity,
            expansion_add=cfg.expansion_add,
            expansion_search=cfg.expansion_search,
        )
        # One thread, rows in base order: the same graph on every run (reproducible).
        index.add(np.arange(len(base), dtype=np.uint64), base, threads=1, log=len(base) >= 100_000)
        if cfg.index_dir:
            index_files.save_index(Path(cfg.index_dir), stem, index)
    with _cache_lock:
        _cache[key] = index
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return index


def _approx(
    index: Any,
    q: np.ndarray,
    base: np.ndarray,
    k: int,
    exclude: np.ndarray | None,
    cfg: NeighbourConfig,
) -> tuple[np.ndarray, np.ndarray]:
    wanted = min(k + (exclude is not None), len(base))
    index.expansion_search = max(cfg.expansion_search, 2 * wanted)
    idx = np.empty((len(q), k), dtype=np.int64)
    sim_out = np.empty((len(q), k), dtype=np.float32)
    for start in range(0, len(q), _APPROX_BATCH):
        rows = slice(start, min(start + _APPROX_BATCH, len(q)))
        found = index.search(q[rows], wanted, threads=cfg.threads)
        keys, counts = _match_rows(found, wanted)
        valid = np.arange(wanted)[None, :] < counts[:, None]
        if exclude is not None:
            valid &= keys != exclude[rows, None]
        keys = np.where(valid, keys, 0)
        # The candidates' similarities, recomputed exactly (the index keeps 1 - dot).
        sim = np.einsum("bd,bkd->bk", q[rows], base[keys])
        sim = np.where(valid, sim, -np.inf).astype(np.float32)
        top, s = _sorted(keys, sim)
        idx[rows], sim_out[rows] = top[:, :k], s[:, :k]
    return idx, sim_out


def _match_rows(found: Any, wanted: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, wanted) keys and (rows,) counts of a usearch result: a batch of rows, or
    the single-row ``Matches`` a one-row search returns (its keys not padded)."""
    if hasattr(found, "counts"):
        keys = np.asarray(found.keys).reshape(-1, wanted).astype(np.int64)
        return keys, np.asarray(found.counts).reshape(-1)
    got = np.asarray(found.keys).astype(np.int64)[:wanted]
    keys = np.zeros((1, wanted), dtype=np.int64)
    keys[0, : len(got)] = got
    return keys, np.array([len(got)])
