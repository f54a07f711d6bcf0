"""The property-graph schema shared by every backend.

This module is the single source of truth for node labels, relationship types,
their properties and value types, and the keys that make writes idempotent.
The DDL in ``cypher/schema/{ladybug,neo4j}.cypher`` must agree with it (a test
checks that).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "ANSWERED_BY",
    "ASKED",
    "CHOSE",
    "EVALUATED",
    "LLM",
    "NODES",
    "OF_TASK",
    "PREFERRED",
    "QUERY",
    "RELS",
    "ROUTED_TO",
    "ROUTER_MODEL",
    "TASK",
    "USER",
    "NodeType",
    "RelType",
    "node_type",
    "rel_type",
]

# Value types. They map onto LadybugDB column types; Neo4j stores the same
# Python values (STRING -> str, DOUBLE -> float, INT64 -> int, BOOLEAN -> bool,
# FLOAT_LIST -> list of floats).
STRING = "STRING"
DOUBLE = "DOUBLE"
INT64 = "INT64"
BOOLEAN = "BOOL"
FLOAT_LIST = "FLOAT[]"


@dataclass(frozen=True)
class NodeType:
    """A node label with its primary key and typed properties (key excluded)."""

    label: str
    key: str
    properties: dict[str, str] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        """Key first, then the properties in declaration order."""
        return [self.key, *self.properties]


@dataclass(frozen=True)
class RelType:
    """A relationship type between two labels.

    ``key`` lists the properties that, with the two endpoints, identify one
    relationship: writing a row whose endpoints and key values already exist
    updates that relationship instead of adding a second one.
    """

    name: str
    src: str
    dst: str
    properties: dict[str, str] = field(default_factory=dict)
    key: tuple[str, ...] = ()

    @property
    def value_properties(self) -> list[str]:
        """Properties that are not part of the key."""
        return [p for p in self.properties if p not in self.key]


USER = NodeType("User", "id", {"alpha": DOUBLE, "persona": STRING})
# description_inferred: the embedding was made from the id (no description was given).
TASK = NodeType(
    "Task", "id", {"description": STRING, "embedding": FLOAT_LIST, "description_inferred": BOOLEAN}
)
QUERY = NodeType("Query", "id", {"text": STRING, "split": STRING, "embedding": FLOAT_LIST})
LLM = NodeType(
    "LLM",
    "id",
    {
        "description": STRING,
        "input_price": DOUBLE,
        "output_price": DOUBLE,
        "embedding": FLOAT_LIST,
        "description_inferred": BOOLEAN,
    },
)
ROUTER_MODEL = NodeType(
    "RouterModel",
    "version",
    {"created_at": STRING, "config": STRING, "metrics": STRING},
)

OF_TASK = RelType("OF_TASK", "Query", "Task")
ASKED = RelType(
    "ASKED",
    "User",
    "Query",
    # served traffic: the response id of the latest answer the user got to the query
    {"ts": STRING, "response_id": STRING},
)
ANSWERED_BY = RelType(
    "ANSWERED_BY",
    "Query",
    "LLM",
    {
        "performance": DOUBLE,
        "cost": DOUBLE,
        "input_tokens": INT64,
        "output_tokens": INT64,
        "response": STRING,
        "latency_ms": DOUBLE,  # served traffic: the upstream call's wall time
        "status": STRING,  # served traffic: "ok" or what failed ("http 502", "timeout")
        "response_id": STRING,  # served traffic: the latest answer's id (for feedback)
    },
)
CHOSE = RelType(
    "CHOSE", "User", "LLM", {"query_id": STRING, "reward": DOUBLE, "ts": STRING}, ("query_id",)
)
PREFERRED = RelType(
    "PREFERRED",
    "User",
    "LLM",
    {"query_id": STRING, "over": STRING, "tie": BOOLEAN, "ts": STRING},
    ("query_id", "over"),
)
ROUTED_TO = RelType(
    "ROUTED_TO",
    "User",
    "LLM",
    {"query_id": STRING, "model_version": STRING, "score": DOUBLE, "rank": INT64},
    ("query_id", "model_version"),
)
EVALUATED = RelType(
    "EVALUATED",
    "RouterModel",
    "User",
    {
        "setting": STRING,
        "shots": INT64,
        "reward": DOUBLE,
        "performance": DOUBLE,
        "cost": DOUBLE,
        "accuracy": DOUBLE,
        "n": INT64,
    },
    ("setting", "shots"),
)

NODES: dict[str, NodeType] = {n.label: n for n in (USER, TASK, QUERY, LLM, ROUTER_MODEL)}
RELS: dict[str, RelType] = {
    r.name: r for r in (OF_TASK, ASKED, ANSWERED_BY, CHOSE, PREFERRED, ROUTED_TO, EVALUATED)
}


def node_type(label: str) -> NodeType:
    """Look up a node label, naming the valid ones when it is unknown."""
    from prcore.errors import SchemaError

    try:
        return NODES[label]
    except KeyError:
        raise SchemaError(
            f"unknown node label {label!r}; valid labels: {', '.join(NODES)}"
        ) from None


def rel_type(name: str) -> RelType:
    """Look up a relationship type, naming the valid ones when it is unknown."""
    from prcore.errors import SchemaError

    try:
        return RELS[name]
    except KeyError:
        raise SchemaError(
            f"unknown relationship type {name!r}; valid types: {', '.join(RELS)}"
        ) from None
