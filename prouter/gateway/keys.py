"""API keys of the gateway: only their SHA-256 hashes are stored.

The key file (JSON, default ``prouter-data/gateway-keys.json``) lists each key's
id, hash, optional bound user, whether it may use ``/admin``, and when it was
created or revoked. A key is shown once, by :func:`create_key`; the gateway
checks ``Authorization: Bearer <key>`` against the hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from prcore.errors import ConfigError

__all__ = ["ApiKey", "KeyRing", "create_key", "list_keys", "revoke_key"]

PREFIX = "pr-"


@dataclass(frozen=True)
class ApiKey:
    """One stored key (never the key itself)."""

    id: str
    sha256: str
    user: str | None = None
    admin: bool = False
    created_at: str = ""
    revoked_at: str | None = None


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _read(path: Path) -> list[ApiKey]:
    if not path.exists():
        return []
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        return [ApiKey(**entry) for entry in document["keys"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"the key file {path} is not valid: {exc}") from None


def _write(path: Path, keys: list[ApiKey]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump({"keys": [asdict(k) for k in keys]}, out, indent=1)
    os.replace(tmp, path)


def create_key(path: Path, *, user: str | None = None, admin: bool = False) -> tuple[str, ApiKey]:
    """A new key (returned once, in clear) and its stored entry."""
    if user is not None and not user.strip():
        raise ConfigError("the user a key is bound to must be a non-empty id")
    keys = _read(path)
    secret = PREFIX + secrets.token_urlsafe(32)
    entry = ApiKey(
        id="key-" + secrets.token_hex(4),
        sha256=_hash(secret),
        user=user,
        admin=admin,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    _write(path, [*keys, entry])
    return secret, entry


def list_keys(path: Path) -> list[ApiKey]:
    """Every stored key, revoked ones included."""
    return _read(path)


def revoke_key(path: Path, key_id: str) -> ApiKey:
    """Mark a key revoked (it stays listed); ConfigError for an unknown id."""
    keys = _read(path)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    for i, k in enumerate(keys):
        if k.id == key_id:
            if k.revoked_at is None:
                keys[i] = ApiKey(**{**asdict(k), "revoked_at": now})
                _write(path, keys)
            return keys[i]
    raise ConfigError(f"no key {key_id!r} in {path}; `prouter keys list` shows them")


class KeyRing:
    """The active keys of a key file, re-read when the file changes (revocations apply live)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._stamp: tuple[int, int] | None = None
        self._by_hash: dict[str, ApiKey] = {}

    def _refresh(self) -> None:
        try:
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = (0, 0)
        if stamp != self._stamp:
            self._by_hash = {k.sha256: k for k in _read(self.path) if k.revoked_at is None}
            self._stamp = stamp

    def check(self, key: str | None) -> ApiKey | None:
        """The active key matching ``key``, else None."""
        if not key:
            return None
        self._refresh()
        digest = _hash(key)
        for stored, entry in self._by_hash.items():
            if hmac.compare_digest(stored, digest):
                return entry
        return None
