"""Approximate neighbour indexes kept on disk, so that a new process reads them instead of
building them again (minutes on a graph of a million queries: serving, write-back, route).

A file is named by what it was built from and by its own content::

    <base digest>-<rows>x<dim>-c<connectivity>-e<expansion_add>-u<usearch version>-<file digest>
    (suffix .usearch)

It is written under a unique temporary name and renamed into place (whole or absent),
and read only after three checks: its bytes hash to the digest in its name (a torn or
altered file), usearch's header describes this base (rows, dimension, metric, float32),
and the vectors it holds are the base's, row for row. A file that fails is removed
and the index is built again. The folder keeps the :data:`KEEP` files used last.
Every failure to read or write is a warning: the search goes on with a built index.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import sys
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["KEEP", "index_name", "load_index", "save_index"]

log = logging.getLogger(__name__)

#: Index files kept in the folder (the most recently used; older ones are removed).
KEEP = 4
_SUFFIX = ".usearch"
_VERIFY_ROWS = 65_536  # vectors compared with the base at a time


def index_name(base_digest: str, shape: tuple[int, int], connectivity: int, expansion: int) -> str:
    """The name stem of the index of a base (digest, shape) built with these parameters."""
    from usearch import __version__

    rows, dim = shape
    return f"{base_digest}-{rows}x{dim}-c{connectivity}-e{expansion}-u{__version__}"


def _file_digest(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def _warn(message: str) -> None:
    """On stderr, as the builds are announced (and in the log, below warnings, so that a
    server logging warnings to stderr does not print it twice)."""
    log.info(message)
    print(f"neighbours: warning: {message}", file=sys.stderr)


def load_index(folder: Path, stem: str, base: np.ndarray) -> Any | None:
    """The saved index of ``base`` named ``stem`` (memory-mapped, read-only), or None when
    there is none or it fails a check (then it is removed, with a warning)."""
    for path in sorted(Path(folder).glob(f"{stem}-*{_SUFFIX}")):
        problem = _check_file(path, stem, base)
        if problem is None:
            index = _open(path, base)
            if isinstance(index, str):
                problem = index
            else:
                _touch(path)
                return index
        _warn(f"ignoring the saved index {path.name}: {problem}; building it again")
        _remove(path)
    return None


def _check_file(path: Path, stem: str, base: np.ndarray) -> str | None:
    from usearch.index import Index, MetricKind, ScalarKind

    try:
        if _file_digest(path) != path.name[len(stem) + 1 : -len(_SUFFIX)]:
            return "its content does not match the digest in its name (torn or altered)"
        meta = Index.metadata(str(path))
    except (OSError, RuntimeError, ValueError) as exc:
        return f"unreadable ({exc})"
    if meta is None:
        return "not a usearch index"
    expected = {
        "count_present": len(base),
        "count_deleted": 0,
        "dimensions": base.shape[1],
        "kind_metric": MetricKind.IP,
        "kind_scalar": ScalarKind.F32,
        "matrix_included": True,
    }
    wrong = [k for k, v in expected.items() if meta.get(k) != v]
    return f"its header differs from this base ({', '.join(wrong)})" if wrong else None


def _open(path: Path, base: np.ndarray) -> Any:
    """The memory-mapped index, or why it is not the index of ``base``."""
    from usearch.index import Index

    try:
        index = Index.restore(str(path), view=True)
    except (OSError, RuntimeError, ValueError) as exc:
        return f"unreadable ({exc})"
    if index is None:
        return "not a usearch index"
    for start in range(0, len(base), _VERIFY_ROWS):
        keys = np.arange(start, min(start + _VERIFY_ROWS, len(base)), dtype=np.uint64)
        held = index.get(keys)
        if held is None or not np.array_equal(np.asarray(held, dtype=np.float32), base[keys]):
            return f"its vectors are not this base's (rows {start:,} on)"
    return index


def _touch(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.utime(path)  # "used last": what :func:`save_index` keeps


def save_index(folder: Path, stem: str, index: Any) -> Path | None:
    """Write ``index`` into ``folder`` atomically as ``stem``'s file, then keep the
    :data:`KEEP` files used last; None (with a warning) when it cannot be written."""
    folder = Path(folder)
    tmp = folder / f".{stem}.{secrets.token_hex(4)}.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        index.save(str(tmp))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        path = folder / f"{stem}-{_file_digest(tmp)}{_SUFFIX}"
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:
        _warn(f"could not save the index in {folder} ({exc}); the next process builds it again")
        return None
    finally:
        _remove(tmp)
    _retain(folder)
    return path


def _retain(folder: Path) -> None:
    def used(p: Path) -> float:
        try:
            return p.stat().st_mtime
        except OSError:
            return 0.0

    files = sorted(folder.glob(f"*{_SUFFIX}"), key=used, reverse=True)
    for old in files[KEEP:]:
        _remove(old)


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):  # not ours to remove, or its folder is gone
        path.unlink(missing_ok=True)
