"""File-level safety for the embedded store: one writer lock, copy-and-swap.

LadybugDB 0.22.0 can recover a committed transaction only in part when the
process dies (or the disk fills) during the checkpoint that follows the commit
(see docs/reliability.md). So a write never touches the live database file:
it goes into a private copy next to it (``<name>.tx-<pid>-<token>``), which is
committed, checkpointed, verified, flushed to disk and then renamed over the
live file. A rename is atomic, so a killed or failed write leaves either the
old file or the new one, never a mix; leftover copies are deleted by the next
writer.
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import shutil
from pathlib import Path
from typing import IO

from prcore.errors import StoreError

__all__ = [
    "SIDECAR_SUFFIXES",
    "WriterLock",
    "copy_for_write",
    "discard",
    "publish",
    "remove_stale_copies",
    "sidecars",
]

# Files LadybugDB keeps beside a database while a WAL or checkpoint is pending.
SIDECAR_SUFFIXES = (".wal", ".wal.checkpoint", ".shadow")


def sidecars(path: Path) -> list[Path]:
    """The WAL / shadow files present beside ``path`` (empty for a clean database)."""
    return [p for s in SIDECAR_SUFFIXES if (p := path.with_name(path.name + s)).exists()]


class WriterLock:
    """An exclusive, non-blocking lock on ``<db>.writer.lock``: one writer per store."""

    def __init__(self, db_path: Path) -> None:
        self.path = db_path.with_name(db_path.name + ".writer.lock")
        self._fh: IO[bytes] | None = None

    def acquire(self) -> bool:
        """Take the lock; False when another process holds it."""
        fh = self.path.open("ab")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            return False
        self._fh = fh
        return True

    def release(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def remove_stale_copies(db_path: Path) -> None:
    """Delete copies (and their sidecars) left by killed writers; call under the lock."""
    for stale in db_path.parent.glob(f"{db_path.name}.tx-*"):
        stale.unlink(missing_ok=True)


def copy_for_write(db_path: Path) -> Path:
    """Copy the (clean) live database to a new private file beside it and return its path."""
    copy = db_path.with_name(f"{db_path.name}.tx-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        shutil.copyfile(db_path, copy)
    except OSError as exc:
        discard(copy)
        raise StoreError(_io_message(db_path, exc)) from exc
    return copy


def publish(copy: Path, db_path: Path) -> None:
    """Flush ``copy`` to disk and atomically rename it over ``db_path``."""
    try:
        _fsync(copy, os.O_RDONLY)
        os.replace(copy, db_path)
        _fsync(db_path.parent, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        discard(copy)
        raise StoreError(_io_message(db_path, exc)) from exc


def discard(copy: Path) -> None:
    """Delete a private copy and its sidecars."""
    for p in [copy, *copy.parent.glob(f"{copy.name}.*")]:
        p.unlink(missing_ok=True)


def _fsync(path: Path, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _io_message(db_path: Path, exc: OSError) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (
            f"not enough disk space beside {db_path} (a write needs room for a copy of the "
            "database); nothing was written"
        )
    return f"cannot write LadybugDB database {db_path}: {exc.strerror or exc}; nothing was written"
