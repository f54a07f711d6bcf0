"""Model versions and checkpoint files: one naming scheme, one writer, one loader.

* A version is ``gnn-<UTC time to the microsecond>Z-<training key>-<random>``:
  unique even for two trainings in the same second, sortable by time, and the
  training key lets a pipeline find a checkpoint it trained before.
* :func:`save_checkpoint` writes ``<model dir>/<version>.pt`` atomically (a
  temporary file linked into place) and never overwrites an existing file.
* :func:`load_checkpoint` accepts only a version name that stays inside the
  model folder and loads with ``weights_only=True``: tensors and plain Python
  values, never pickled code. Anything else is a :class:`CheckpointError`.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from prcore.errors import ProuterError

__all__ = [
    "CheckpointError",
    "checkpoint_path",
    "find_checkpoints",
    "load_checkpoint",
    "load_file",
    "new_version",
    "save_checkpoint",
    "save_file",
]

FORMAT = 2  # bumped when a checkpoint's layout changes
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}")
REQUIRED = ("format", "router", "config", "state_dict", "task_ids", "llm_ids", "version")


class CheckpointError(ProuterError):
    """A model version or checkpoint file is missing, malformed or unsafe."""


def new_version(key: str) -> tuple[str, str]:
    """A fresh ``(version, created_at)``; ``created_at`` is ISO-8601 UTC to the microsecond."""
    now = datetime.now(UTC)
    version = f"gnn-{now:%Y%m%dT%H%M%S%f}Z-{key}-{secrets.token_hex(3)}"
    return version, now.isoformat(timespec="microseconds").replace("+00:00", "Z")


def checkpoint_path(model_dir: Path, version: str) -> Path:
    """``<model_dir>/<version>.pt``, refusing a version that could leave the folder."""
    if not isinstance(version, str) or not _VERSION.fullmatch(version) or ".." in version:
        raise CheckpointError(
            f"refusing model version {str(version)[:80]!r}: a version is a plain name "
            "(letters, digits, '.', '_', '-'), never a path"
        )
    folder = Path(model_dir).resolve()
    path = (folder / f"{version}.pt").resolve()
    if path.parent != folder:
        raise CheckpointError(f"refusing model version {version!r}: it leaves {folder}")
    return path


def find_checkpoints(model_dir: Path, key: str) -> list[Path]:
    """Checkpoints in ``model_dir`` trained with ``key``, oldest first."""
    return sorted(Path(model_dir).glob(f"gnn-*-{key}-*.pt"))


def _plain(value: Any) -> Any:
    """``value`` with numpy arrays as tensors and numpy scalars as Python numbers, so that a
    weights-only load can read it back."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, np.ndarray):
        import torch  # torch is imported where a file is written or read (not for paths)

        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, np.generic):
        return value.item()
    return value


def save_file(path: Path, payload: Any, *, overwrite: bool = False) -> Path:
    """Write ``payload`` (tensors and plain values) to ``path`` atomically, through a unique
    temporary file; an existing file is kept unless ``overwrite`` (then replaced whole)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    import torch

    try:
        with open(tmp, "wb") as fh:
            torch.save(_plain(payload), fh)
            fh.flush()
            os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, path)
            return path
        try:
            os.link(tmp, path)  # fails if the file exists: no silent overwrite
        except FileExistsError:
            raise CheckpointError(f"{path} exists already; it is never overwritten") from None
    finally:
        tmp.unlink(missing_ok=True)
    return path


def save_checkpoint(model_dir: Path, version: str, payload: dict[str, Any]) -> Path:
    """Write ``payload`` as the checkpoint of ``version``; never overwrites (atomic)."""
    path = checkpoint_path(model_dir, version)
    return save_file(path, payload | {"format": FORMAT, "version": version})


def load_file(path: Path, *, safe_globals: Iterable[type] = (), mmap: bool = False) -> Any:
    """``torch.load(path, weights_only=True)`` (plus the listed data classes), with every
    failure (truncated, foreign or pickled-code file) as a :class:`CheckpointError`;
    ``mmap``: tensors map the file (read when used) instead of being read whole."""
    import torch

    try:
        with torch.serialization.safe_globals(list(safe_globals)):
            return torch.load(Path(path), map_location="cpu", weights_only=True, mmap=mmap)
    except FileNotFoundError:
        raise CheckpointError(f"no file {path}") from None
    except Exception as exc:  # the unpickler raises many kinds on bad input
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{path} is not a readable PersonalizedRouter file (truncated, foreign, or holding "
            f"code, which is never loaded): {first}"
        ) from None


def load_checkpoint(model_dir: Path, version: str) -> dict[str, Any]:
    """The checkpoint of ``version`` in ``model_dir``, checked for its required fields."""
    path = checkpoint_path(model_dir, version)
    if not path.is_file():
        found = sorted(p.stem for p in Path(model_dir).glob("*.pt"))
        raise CheckpointError(
            f"no checkpoint for model {version!r} at {path}; "
            + (f"models in {model_dir}: {', '.join(found)}" if found else f"{model_dir} has none")
            + " (pass --model-dir to point at the folder `prouter train` saved it in)"
        )
    state = load_file(path)
    if not isinstance(state, dict) or any(k not in state for k in REQUIRED):
        raise CheckpointError(f"{path} is not a PersonalizedRouter checkpoint of this release")
    if state["format"] != FORMAT or state["version"] != version:
        raise CheckpointError(
            f"{path} holds model {state['version']!r} in format {state['format']!r} "
            f"(expected {version!r}, format {FORMAT}); retrain with `prouter train`"
        )
    return state
