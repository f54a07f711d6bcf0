"""`prouter cypher`: list and run the named analytics queries of ``cypher/``, or your own.

Every query runs on a store opened read-only (LadybugDB ``read_only=True``,
Neo4j READ access mode), so a query that would write is refused by the database
itself and nothing is written; before that, :func:`graphdb.readonly.check_read_only`
lets only plain graph reads through (no file access, procedures, extensions or
administration). Values reach the database only as parameters.
"""

from __future__ import annotations

import csv
import io
import json
import re
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from prouter.commands.common import Settings, domain_errors

if TYPE_CHECKING:
    import pyarrow as pa

    from graphdb.queries import NamedQuery
    from graphdb.store import GraphStore

__all__ = ["cypher"]

_PARAM_ARG = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?::([A-Za-z\[\]]+))?=(.*)$", re.DOTALL)
# What each backend says when a read-only store refuses a write.
_WRITE_REFUSED = ("read-only database", "read access mode")
_MAX_CELL = 60
_REFUSED = "refused: `prouter cypher run` only reads the graph"


@click.group()
def cypher() -> None:
    """Cypher analytics: named, parameterised read-only queries over the graph.

    The library lives in cypher/*.cypher (one query per file); every query runs
    unchanged on LadybugDB and Neo4j.
    """


@cypher.command("list")
def list_queries() -> None:
    """List the named queries with their descriptions, parameters and columns.

    Example:

        prouter cypher list
    """
    from graphdb.queries import load_queries

    for query in domain_errors(load_queries).values():
        click.echo(query.name)
        click.echo(
            textwrap.fill(query.description, 88, initial_indent=" " * 4, subsequent_indent=" " * 4)
        )
        click.echo(f"    params:  {_describe_params(query)}")
        click.echo(f"    returns: {', '.join(query.returns)}")


@cypher.command()
@click.argument("name")
def show(name: str) -> None:
    """Print the header and Cypher text of one named query.

    Example:

        prouter cypher show similar_users
    """
    from graphdb.queries import get_query

    query = domain_errors(get_query, name)
    click.echo(query.path.read_text(encoding="utf-8").rstrip())


@cypher.command()
@click.argument("name", required=False)
@click.option(
    "--param",
    "-p",
    "params",
    multiple=True,
    metavar="NAME[:TYPE]=VALUE",
    help="A query parameter, typed by the query's header (lists are comma-separated). "
    "For your own queries values are strings unless TYPE says int, float, bool or list[...].",
)
@click.option("--query", "-q", "text", help="Run this Cypher text instead of a named query.")
@click.option(
    "--file",
    "-f",
    "file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Run the query in this file (a '// params:' header types its parameters).",
)
@click.option("--table", "fmt", flag_value="table", default=True, help="Aligned text (default).")
@click.option("--json", "fmt", flag_value="json", help="A JSON list of row objects.")
@click.option("--csv", "fmt", flag_value="csv", help="CSV with a header row.")
@click.pass_obj
def run(
    settings: Settings,
    name: str | None,
    params: tuple[str, ...],
    text: str | None,
    file: Path | None,
    fmt: str,
) -> None:
    """Run a named query (or your own with --query/--file) on a read-only store.

    Only queries that read the graph run: statements that write, call procedures,
    read or write files (COPY, EXPORT, LOAD), load extensions or administer the
    database are refused and nothing is run.

    Example:

    \b
        prouter cypher run similar_users -p user_id=u1 -p limit=5 --json
        prouter cypher run -q 'MATCH (u:User) RETURN count(u) AS n'
        prouter cypher run -q 'MATCH (u:User) WHERE u.id = $id RETURN u.alpha AS a' -p id=u1
    """
    query, typed = _resolve(name, text, file)
    values = _bind(query, params, typed=typed)
    with settings.open(read_only=True) as store:
        table = _read(store, query, values)
    _emit(table, fmt)


def _resolve(name: str | None, text: str | None, file: Path | None) -> tuple[NamedQuery, bool]:
    """The query to run (exactly one of NAME, --query, --file) and whether a header types it."""
    from graphdb.queries import adhoc_query, get_query, parse_query

    given = [x for x in (name, text, file) if x is not None]
    if len(given) != 1:
        raise click.UsageError("give exactly one of NAME, --query or --file")
    if name is not None:
        return domain_errors(get_query, name), True
    if text is not None:
        return adhoc_query(text), False
    assert file is not None
    content = file.read_text(encoding="utf-8")
    if content.lstrip().startswith("// name:"):
        return domain_errors(parse_query, file), True
    return adhoc_query(content), False


def _bind(query: NamedQuery, args: tuple[str, ...], *, typed: bool) -> dict[str, object]:
    """Parse ``NAME[:TYPE]=VALUE`` arguments and type them for ``query``.

    A header's declared types win (an explicit TYPE must agree); otherwise
    TYPE, or ``str``.
    """
    from dataclasses import replace

    from graphdb.queries import bind_params

    raw: dict[str, str] = {}
    types: dict[str, str] = {}
    for arg in args:
        match = _PARAM_ARG.match(arg)
        if match is None:
            raise click.BadParameter(f"{arg!r} is not NAME=VALUE", param_hint="--param")
        key, type_, value = match.groups()
        if key in raw:
            raise click.BadParameter(f"parameter ${key} is given twice", param_hint="--param")
        raw[key] = value
        if type_:
            types[key] = type_
    if not typed:
        query = replace(query, params={k: types.get(k, v) for k, v in query.params.items()})
    else:
        for key, type_ in types.items():
            declared = query.params.get(key)
            if declared is not None and declared != type_:
                raise click.BadParameter(
                    f"parameter ${key} of {query.name!r} is declared {declared}, not {type_}",
                    param_hint="--param",
                )
    return domain_errors(bind_params, query, raw)


def _read(store: GraphStore, query: NamedQuery, values: dict[str, object]) -> pa.Table:
    """Run the query, turning a refused write or a failed query into a clean CLI error."""
    import pyarrow as pa

    from graphdb.readonly import ReadOnlyQueryError, check_read_only
    from prcore.errors import StoreError

    try:
        check_read_only(store, query.text, values)  # an allow-list: plain graph reads only
        return store.read(query.text, values)
    except ReadOnlyQueryError as exc:
        raise click.ClickException(f"{_REFUSED}: {exc}; nothing was run") from exc
    except StoreError as exc:
        if any(marker in str(exc) for marker in _WRITE_REFUSED):
            raise click.ClickException(
                f"{_REFUSED} (opened read-only): queries that create, change or delete "
                f"data are not allowed; nothing was written ({exc})"
            ) from exc
        raise click.ClickException(str(exc)) from exc
    except pa.ArrowException as exc:
        raise click.ClickException(
            f"cannot tabulate the result ({exc}); return properties such as u.id "
            "rather than whole nodes or relationships"
        ) from exc


def _emit(table: pa.Table, fmt: str) -> None:
    """Print the rows as an aligned table, JSON or CSV."""
    rows = table.to_pylist()
    columns = table.column_names
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2, default=_json_default))
    elif fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[_csv_cell(row[c]) for c in columns] for row in rows])
        click.echo(out.getvalue(), nl=False)
    else:
        click.echo(format_table(columns, rows))


def format_table(columns: list[str], rows: list[dict[str, Any]]) -> str:
    """Rows as an aligned text table with a header line and a row count."""
    cells = [[_text_cell(row[c]) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    lines.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(line.rstrip() for line in lines)


def _describe_params(query: NamedQuery) -> str:
    return ", ".join(f"${k} ({v})" for k, v in query.params.items()) or "(none)"


def _text_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    text = str(value)
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 3] + "..."


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value, default=_json_default)
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return str(value)
