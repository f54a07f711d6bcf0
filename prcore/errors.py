"""The exception tree of PersonalizedRouter.

ProuterError
├── ConfigError        bad settings: unknown backend, missing credentials
├── SchemaError        unknown label, relationship type or property
├── StoreError         the graph store failed (connection, transaction)
├── QueryError         unknown named query, missing or extra parameters
└── ValidationError    input records failed validation (carries the problems)
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "ProuterError",
    "QueryError",
    "SchemaError",
    "StoreError",
    "ValidationError",
]


class ProuterError(Exception):
    """Root of every error PersonalizedRouter raises on purpose."""


class ConfigError(ProuterError):
    """A setting is missing or invalid."""


class SchemaError(ProuterError):
    """A label, relationship type or property is not part of the schema."""


class StoreError(ProuterError):
    """The graph store could not complete an operation."""


class QueryError(ProuterError):
    """A named query is unknown or was given the wrong parameters."""


class ValidationError(ProuterError):
    """Input records failed validation; ``problems`` lists every one found."""

    def __init__(self, message: str, problems: list | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems or [])
