"""Named, parameterised Cypher queries kept as ``.cypher`` files in ``cypher/``.

Each file holds one query and starts with a header::

    // name: user_choice_share
    // For one user, the share of their CHOSE decisions that went to each LLM.
    // params: $user_id (str)
    // returns: user_id, llm_id, n, share

The header is parsed, and the declared parameters must be exactly the ``$names``
the body uses, so a query cannot silently ignore or miss a parameter. Declared
types (``str``, ``int``, ``float``, ``bool``, ``list``, ``list[int]``, ...) let
:func:`bind_params` turn command-line text into typed query parameters.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from cypher import CYPHER_DIR
from prcore.errors import QueryError

__all__ = [
    "PARAM_TYPES",
    "NamedQuery",
    "adhoc_query",
    "bind_params",
    "check_params",
    "coerce_param",
    "cypher_dir",
    "get_query",
    "load_queries",
    "parse_query",
    "schema_statements",
]

_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_DECLARED = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)\s*\(([^)]*)\)")


@dataclass(frozen=True)
class NamedQuery:
    """One query of the library: its name, purpose, parameters and Cypher text."""

    name: str
    description: str
    params: dict[str, str]
    returns: tuple[str, ...]
    text: str
    path: Path


def cypher_dir() -> Path:
    """The folder of ``.cypher`` files (``PROUTER_CYPHER_DIR`` overrides)."""
    env = os.environ.get("PROUTER_CYPHER_DIR")
    return Path(env) if env else CYPHER_DIR


def parse_query(path: Path) -> NamedQuery:
    """Parse one ``.cypher`` file, checking its header against its body."""
    header: dict[str, str] = {}
    description: list[str] = []
    body: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not body and stripped.startswith("//"):
            content = stripped[2:].strip()
            key, sep, value = content.partition(":")
            if sep and key in {"name", "params", "returns"}:
                header[key] = value.strip()
            elif content:
                description.append(content)
        elif stripped or body:
            body.append(line)
    if "name" not in header:
        raise QueryError(f"{path}: missing '// name:' header line")
    text = "\n".join(body).strip()
    declared = dict(_DECLARED.findall(header.get("params", "")))
    used = set(_PARAM.findall(text))
    if set(declared) != used:
        raise QueryError(
            f"{path}: header declares parameters {sorted(declared)} "
            f"but the query uses {sorted(used)}"
        )
    unknown = {k: v.strip() for k, v in declared.items() if v.strip() not in PARAM_TYPES}
    if unknown:
        raise QueryError(
            f"{path}: unknown parameter types {unknown}; valid types: {', '.join(PARAM_TYPES)}"
        )
    returns = tuple(c.strip() for c in header.get("returns", "").split(",") if c.strip())
    return NamedQuery(
        name=header["name"],
        description=" ".join(description),
        params={k: v.strip() for k, v in declared.items()},
        returns=returns,
        text=text,
        path=path,
    )


@cache
def _load(folder: Path) -> dict[str, NamedQuery]:
    queries: dict[str, NamedQuery] = {}
    for path in sorted(folder.glob("*.cypher")):
        query = parse_query(path)
        if query.name in queries:
            raise QueryError(f"query name {query.name!r} is defined twice ({path})")
        queries[query.name] = query
    return queries


def load_queries() -> dict[str, NamedQuery]:
    """All named queries of the library, by name."""
    return _load(cypher_dir())


def get_query(name: str) -> NamedQuery:
    """One named query; the error lists the valid names."""
    queries = load_queries()
    try:
        return queries[name]
    except KeyError:
        raise QueryError(
            f"unknown query {name!r}; valid queries: {', '.join(sorted(queries))}"
        ) from None


def check_params(query: NamedQuery, params: dict[str, object]) -> None:
    """Raise when ``params`` are not exactly the parameters the query declares."""
    missing = sorted(set(query.params) - set(params))
    extra = sorted(set(params) - set(query.params))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing parameters: {', '.join(missing)}")
        if extra:
            parts.append(f"unexpected parameters: {', '.join(extra)}")
        declared = ", ".join(f"${k} ({v})" for k, v in query.params.items()) or "none"
        raise QueryError(f"query {query.name!r}: {'; '.join(parts)} (it takes: {declared})")


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"true", "yes", "1"}:
        return True
    if lowered in {"false", "no", "0"}:
        return False
    raise ValueError(f"not a boolean: {text!r} (use true or false)")


def _split(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


_SCALARS: dict[str, Callable[[str], object]] = {
    "str": str,
    "int": int,
    "float": float,
    "bool": _bool,
}
PARAM_TYPES: tuple[str, ...] = (*_SCALARS, "list", *(f"list[{t}]" for t in _SCALARS))


def coerce_param(name: str, type_: str, text: str) -> object:
    """Turn the text ``text`` into a value of the declared ``type_`` of parameter ``name``.

    Lists are comma-separated (``a,b,c``); ``list`` means ``list[str]``.
    """
    if type_ not in PARAM_TYPES:
        raise QueryError(
            f"parameter ${name}: unknown type {type_!r}; valid types: {', '.join(PARAM_TYPES)}"
        )
    item_type = type_.removeprefix("list[").removesuffix("]") if type_ != "list" else "str"
    convert = _SCALARS[item_type]
    try:
        if type_.startswith("list"):
            return [convert(item) for item in _split(text)]
        return convert(text)
    except ValueError:
        raise QueryError(f"parameter ${name} ({type_}): invalid value {text!r}") from None


def bind_params(query: NamedQuery, raw: Mapping[str, str]) -> dict[str, object]:
    """Typed parameters for ``query`` from text values, checked against its header."""
    check_params(query, dict(raw))
    return {name: coerce_param(name, query.params[name], raw[name]) for name in query.params}


def adhoc_query(text: str, types: Mapping[str, str] | None = None) -> NamedQuery:
    """A user's own query text as a :class:`NamedQuery` (name ``adhoc``).

    Its parameters are the ``$names`` it uses, typed by ``types`` (default ``str``).
    """
    used = sorted(set(_PARAM.findall(text)))
    types = dict(types or {})
    return NamedQuery(
        name="adhoc",
        description="",
        params={name: types.get(name, "str") for name in used},
        returns=(),
        text=text.strip(),
        path=Path("<query>"),
    )


def schema_statements(backend: str) -> list[str]:
    """The DDL statements of ``cypher/schema/<backend>.cypher``."""
    path = cypher_dir() / "schema" / f"{backend}.cypher"
    lines = [
        line
        for line in path.read_text(encoding="utf-8").splitlines()
        if not line.strip().startswith("//")
    ]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
