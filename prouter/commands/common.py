"""What every command shares: the store settings and clean errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from prcore.errors import ProuterError
from prcore.settings import Settings as BaseSettings

if TYPE_CHECKING:
    from graphdb.store import GraphStore, WriteStats

__all__ = ["Settings", "comma_list", "domain_errors", "echo_written"]

T = TypeVar("T")


class Settings(BaseSettings):
    """The settings (:class:`prcore.settings.Settings`, flags over environment) plus
    opening the configured store with clean CLI errors."""

    def open(self, *, read_only: bool = False) -> GraphStore:
        """Open the configured store, turning library errors into CLI errors."""
        from graphdb.store import open_store

        return domain_errors(
            open_store,
            domain_errors(self.store_url),
            username=self.neo4j_username,
            password=self.neo4j_password,
            database=self.neo4j_database,
            read_only=read_only,
        )


def comma_list(value: str | None) -> list[str] | None:
    """``"a, b"`` -> ``["a", "b"]``; None or empty -> None (meaning "all")."""
    return [item.strip() for item in value.split(",")] if value else None


def domain_errors(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call ``fn``; a ProuterError becomes a clean CLI error (exit 1), not a traceback."""
    try:
        return fn(*args, **kwargs)
    except ProuterError as exc:
        raise click.ClickException(str(exc)) from exc


def echo_written(written: dict[str, WriteStats]) -> None:
    """Print what a write created, updated and left unchanged, per node or edge type."""
    from graphdb.ingest import write_stats_lines

    for line in write_stats_lines(written):
        click.echo(line)
