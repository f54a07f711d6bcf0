"""What every command shares: the store settings and clean errors."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import click

from prouter.errors import ProuterError

if TYPE_CHECKING:
    from graphdb.store import GraphStore, WriteStats

__all__ = ["DEFAULT_STORE", "Settings", "comma_list", "domain_errors", "echo_written"]

DEFAULT_STORE = "ladybug:prouter-data/graph.lbug"
T = TypeVar("T")


@dataclass
class Settings:
    """Where the graph lives; built once by the root group from options and env vars."""

    store: str
    username: str | None
    password: str | None
    database: str | None

    def open(self, *, read_only: bool = False) -> GraphStore:
        """Open the configured store, turning library errors into CLI errors."""
        from graphdb.store import open_store

        url = self.store
        if url == "neo4j":
            url = os.environ.get("NEO4J_URI", "")
            if not url:
                raise click.UsageError("--store neo4j needs NEO4J_URI to be set")
        return domain_errors(
            open_store,
            url,
            username=self.username,
            password=self.password,
            database=self.database,
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
