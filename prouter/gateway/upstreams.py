"""The upstreams file: where each LLM id is served, and what it costs.

JSON (or TOML) mapping each LLM id to an OpenAI-compatible endpoint::

    {"llms": {
        "gpt-4o-mini": {"base_url": "https://api.openai.com/v1", "model": "gpt-4o-mini",
                        "api_key_env": "OPENAI_API_KEY",
                        "input_price": 0.00015, "output_price": 0.0006},
        "local-llama": {"base_url": "http://127.0.0.1:8000/v1", "model": "llama-3-8b"}
    }}

Prices are USD per 1,000 input / output tokens (default 0). ``api_key_env``
names the environment variable holding the key; the key itself never appears
in the file, in logs or in responses.
"""

from __future__ import annotations

import json
import math
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from prcore.errors import ConfigError

__all__ = ["Upstream", "load_upstreams", "parse_upstreams"]

_FIELDS = {"base_url", "model", "api_key_env", "input_price", "output_price"}


@dataclass(frozen=True)
class Upstream:
    """One LLM's OpenAI-compatible endpoint and prices (USD per 1k tokens)."""

    llm_id: str
    base_url: str
    model: str
    api_key_env: str | None = None
    input_price: float = 0.0
    output_price: float = 0.0

    def api_key(self) -> str | None:
        """The key from the named environment variable (None: none configured)."""
        return os.environ.get(self.api_key_env) if self.api_key_env else None

    def cost(self, input_tokens: int | None, output_tokens: int | None) -> float | None:
        """USD for the given token counts (None when a count is unknown)."""
        if input_tokens is None or output_tokens is None:
            return None
        return (input_tokens * self.input_price + output_tokens * self.output_price) / 1000.0


def _price(llm: str, name: str, value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"upstream {llm!r}: {name} must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"upstream {llm!r}: {name} must be finite and >= 0, got {value!r}")
    return float(value)


def _upstream(llm: str, spec: Any) -> Upstream:
    if not isinstance(spec, dict):
        raise ConfigError(f"upstream {llm!r} must be an object with base_url and model")
    unknown = sorted(set(spec) - _FIELDS)
    if unknown:
        raise ConfigError(f"upstream {llm!r}: unknown fields {unknown}; valid: {sorted(_FIELDS)}")
    base_url = spec.get("base_url")
    parts = urlsplit(base_url) if isinstance(base_url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"upstream {llm!r}: base_url must be an http(s) URL, got {base_url!r}")
    model = spec.get("model", llm)
    key_env = spec.get("api_key_env")
    if not isinstance(model, str) or not model:
        raise ConfigError(f"upstream {llm!r}: model must be a non-empty string")
    if key_env is not None and (not isinstance(key_env, str) or not key_env.isidentifier()):
        raise ConfigError(f"upstream {llm!r}: api_key_env must name an environment variable")
    return Upstream(
        llm_id=llm,
        base_url=base_url.rstrip("/"),
        model=model,
        api_key_env=key_env,
        input_price=_price(llm, "input_price", spec.get("input_price")),
        output_price=_price(llm, "output_price", spec.get("output_price")),
    )


def parse_upstreams(document: Any) -> dict[str, Upstream]:
    """Upstreams from a parsed document ``{"llms": {llm_id: {...}}}``."""
    llms = document.get("llms") if isinstance(document, dict) else None
    if not isinstance(llms, dict) or not llms:
        raise ConfigError('the upstreams file needs a non-empty "llms" object (LLM id -> spec)')
    return {str(llm): _upstream(str(llm), spec) for llm, spec in llms.items()}


def load_upstreams(path: Path) -> dict[str, Upstream]:
    """Read and validate an upstreams file (``.json`` or ``.toml``)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the upstreams file {path}: {exc.strerror}") from None
    try:
        document = (
            tomllib.loads(raw.decode()) if path.suffix == ".toml" else json.loads(raw.decode())
        )
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"the upstreams file {path} is not valid: {exc}") from None
    return parse_upstreams(document)
