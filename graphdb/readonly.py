"""Only reading the graph: an allow-list check of an analytics query before it runs.

A store opened read-only refuses writes to the graph, but not everything else a
Cypher statement can do: LadybugDB's ``COPY ... TO``, ``EXPORT DATABASE``,
``LOAD FROM``, ``LOAD EXTENSION``, ``INSTALL``, ``ATTACH``, ``CHECKPOINT`` and
``CALL``; Neo4j's ``SHOW``/``TERMINATE TRANSACTIONS`` and procedures such as
``db.clearQueryCaches()`` all pass a read-only session. :func:`check_read_only`
lets a statement through only when it is a plain graph read, in three steps:

1. the statement kind: one statement, whose first clause is ``MATCH``,
   ``OPTIONAL MATCH``, ``WITH``, ``UNWIND`` or ``RETURN``;
2. its reading clauses are ``MATCH`` / ``UNWIND`` only: no ``CALL`` (procedures,
   subqueries) and no ``LOAD`` (files), refused here because LadybugDB reads a
   file while it merely plans a ``LOAD FROM``;
3. the database's own plan (``EXPLAIN``, which runs nothing): every operator must
   be a read operator of an allow-list (LadybugDB: scans, joins, filters,
   projections, aggregation, ordering; table functions only its internal
   ``READ_FTABLE``), and on Neo4j the statement type must be read-only (``r``).

Anything else is a :class:`ReadOnlyQueryError` naming what was refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from prcore.errors import QueryError

if TYPE_CHECKING:
    from graphdb.store import GraphStore

__all__ = ["READ_CLAUSES", "ReadOnlyQueryError", "check_read_only", "plan_operators"]

# The clauses a read-only statement may start with.
READ_CLAUSES = ("MATCH", "OPTIONAL MATCH", "WITH", "UNWIND", "RETURN")
# Reading clauses other than MATCH/UNWIND: procedures and subqueries, files.
_OTHER_READING = ("CALL", "LOAD")


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


_LADYBUG_READ_OPERATORS = _names(
    """
    AGGREGATE AGGREGATE_FINALIZE AGGREGATE_SCAN CROSS_PRODUCT DUMMY_SINK EMPTY_RESULT
    FILTER FLATTEN HASH_JOIN_BUILD HASH_JOIN_PROBE INTERSECT INTERSECT_BUILD LIMIT
    MULTIPLICITY_REDUCER ORDER_BY ORDER_BY_MERGE ORDER_BY_SCAN PATH_PROPERTY_PROBE
    PRIMARY_KEY_SCAN_NODE_TABLE PROJECTION QUERY_PRIMARY_KEY_LOOKUP RECURSIVE_EXTEND
    RESULT_COLLECTOR SCAN_NODE_TABLE SCAN_REL_TABLE SEMI_MASKER SKIP TABLE_FUNCTION_CALL
    TOP_K TOP_K_SCAN UNION_ALL_SCAN UNWIND
    """
)
_LADYBUG_READ_FUNCTIONS = frozenset({"READ_FTABLE"})  # the rows of a query without a scan

_NEO4J_READ_OPERATORS = _names(
    """
    AllNodesScan Anti AntiConditionalApply AntiSemiApply Apply Argument ArgumentTracker
    AssertSameNode AssertSameRelationship BFSPruningVarLengthExpand(All)
    BFSPruningVarLengthExpand(Into) CacheProperties CartesianProduct ConditionalApply
    DirectedAllRelationshipsScan DirectedRelationshipByElementIdSeek
    DirectedRelationshipByIdSeek DirectedRelationshipIndexContainsScan
    DirectedRelationshipIndexEndsWithScan DirectedRelationshipIndexScan
    DirectedRelationshipIndexSeek DirectedRelationshipIndexSeekByRange
    DirectedRelationshipTypeScan DirectedUnionRelationshipTypesScan Distinct Eager
    EagerAggregation EmptyResult ExhaustiveLimit Expand(All) Expand(Into) Filter
    IntersectionNodeByLabelsScan LetAntiSemiApply LetSelectOrAntiSemiApply
    LetSelectOrSemiApply LetSemiApply Limit MultiNodeIndexSeek NodeByElementIdSeek
    NodeByIdSeek NodeByLabelScan NodeCountFromCountStore NodeHashJoin
    NodeIndexContainsScan NodeIndexEndsWithScan NodeIndexScan NodeIndexSeek
    NodeIndexSeekByRange NodeLeftOuterHashJoin NodeRightOuterHashJoin
    NodeUniqueIndexSeek NodeUniqueIndexSeekByRange NullifyMetadata Optional
    OptionalExpand(All) OptionalExpand(Into) OrderedAggregation OrderedDistinct
    OrderedUnion PartialSort PartialTop ProduceResults ProjectEndpoints Projection
    PruningVarLengthExpand RelationshipCountFromCountStore Repeat(Trail) RollUpApply
    SelectOrAntiSemiApply SelectOrSemiApply SemiApply ShortestPath Skip Sort
    StatefulShortestPath(All) StatefulShortestPath(Into) SubtractionNodeByLabelsScan
    Top Top1WithTies TriadicBuild TriadicFilter TriadicSelection
    UndirectedAllRelationshipsScan UndirectedRelationshipByElementIdSeek
    UndirectedRelationshipByIdSeek UndirectedRelationshipIndexContainsScan
    UndirectedRelationshipIndexEndsWithScan UndirectedRelationshipIndexScan
    UndirectedRelationshipIndexSeek UndirectedRelationshipIndexSeekByRange
    UndirectedRelationshipTypeScan UndirectedUnionRelationshipTypesScan Union
    UnionNodeByLabelsScan Unwind ValueHashJoin VarLengthExpand(All) VarLengthExpand(Into)
    VarLengthExpand(Pruning) VarLengthExpand(Pruning,BFS)
    """
)

# Comments, string literals and `quoted names`: none of them are clauses.
_NOT_CODE = re.compile(
    r"//[^\n]*|/\*.*?\*/|'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`(?:[^`]|``)*`", re.DOTALL
)
_WORD = re.compile(r"(?<![.$\w])([A-Za-z_]\w*)")
_LADYBUG_OPERATOR = re.compile(r"([A-Z][A-Z_]+)\[\d+\]")
_LADYBUG_FUNCTION = re.compile(r"Function: ([A-Za-z_]+)")


class ReadOnlyQueryError(QueryError):
    """An analytics query that would do more than read the graph."""


def _refuse(what: str) -> ReadOnlyQueryError:
    return ReadOnlyQueryError(
        f"{what} is not allowed: only one statement starting with "
        f"{', '.join(READ_CLAUSES)}, reading with MATCH/UNWIND and returning rows "
        "(no procedures, files, extensions, administration or writes)"
    )


def _code(cypher: str) -> str:
    """``cypher`` with comments, strings and quoted names blanked out."""
    return _NOT_CODE.sub(lambda m: " " * len(m.group()), cypher)


def _check_text(cypher: str) -> None:
    code = _code(cypher).strip()
    if ";" in code.rstrip(";"):
        raise _refuse("more than one statement")
    words = [w.upper() for w in _WORD.findall(code)]
    if not words:
        raise _refuse("an empty statement")
    first = " ".join(words[:2]) if words[0] == "OPTIONAL" else words[0]
    if first not in READ_CLAUSES:
        raise _refuse(f"the statement kind {first}")
    previous = ""
    for match in _WORD.finditer(code):
        word = match.group(1).upper()
        follows = code[match.end() :].lstrip()[:1]
        # `AS call` names a column, `{call: 1}` is a map key, `(call:User)` a variable
        if word in _OTHER_READING and previous != "AS" and follows not in (":", ")", ","):
            raise _refuse(f"the clause {word}")
        previous = word


def plan_operators(store: GraphStore, cypher: str, params: Mapping[str, Any]) -> set[str]:
    """The operators of the database's plan for ``cypher`` (``EXPLAIN``: nothing runs);
    on LadybugDB table functions appear as ``FUNCTION:<name>``, on Neo4j the statement
    type as ``QUERY_TYPE:<type>``."""
    if store.backend == "ladybug":
        text = "".join(
            str(row[0])
            for row in store.read(f"EXPLAIN {cypher}", params).to_pylist()
            for row in [list(row.values())]
        )
        return set(_LADYBUG_OPERATOR.findall(text)) | {
            f"FUNCTION:{name.upper()}" for name in _LADYBUG_FUNCTION.findall(text)
        }
    return store.explain(cypher, params)  # type: ignore[attr-defined, no-any-return]


def check_read_only(store: GraphStore, cypher: str, params: Mapping[str, Any]) -> None:
    """Raise :class:`ReadOnlyQueryError` unless ``cypher`` only reads the graph."""
    _check_text(cypher)
    found = plan_operators(store, cypher, params)
    if store.backend == "ladybug":
        allowed = _LADYBUG_READ_OPERATORS | {f"FUNCTION:{f}" for f in _LADYBUG_READ_FUNCTIONS}
    else:
        allowed = _NEO4J_READ_OPERATORS | {"QUERY_TYPE:r"}
    refused = sorted(found - allowed)
    if refused:
        raise _refuse(f"the plan operator(s) {', '.join(refused)}")
