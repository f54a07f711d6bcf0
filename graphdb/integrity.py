"""Read-only health figures of a graph: outcome gaps, orphans, duplicate ids, new interactions.

Every query here is parameterised Cypher through :meth:`GraphStore.read` and runs
unchanged on both backends. Labels and relationship types come from
:mod:`graphdb.schema`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from graphdb.schema import ASKED, CHOSE, NODES, PREFERRED, ROUTER_MODEL
from graphdb.store import GraphStore

__all__ = [
    "IntegrityReport",
    "duplicate_ids",
    "integrity_report",
    "interaction_counts",
    "interactions_since_last_model",
    "orphans",
    "outcome_gaps",
    "served_traffic_since_last_model",
]

#: Labels checked for orphans: a node of these labels with no relationship at all.
ORPHAN_LABELS = ("Task", "Query", "User", "LLM")
_EXAMPLES = 5


@dataclass
class IntegrityReport:
    """What :func:`integrity_report` found; ``ok`` when there is nothing to report."""

    gaps: list[dict] = field(default_factory=list)  # per task: queries, llms, outcomes, missing
    orphans: dict[str, list[str]] = field(default_factory=dict)  # label -> ids (all of them)
    duplicates: dict[str, list[str]] = field(default_factory=dict)  # label -> duplicated ids

    @property
    def missing_outcomes(self) -> int:
        return sum(row["missing"] for row in self.gaps)

    @property
    def orphan_count(self) -> int:
        return sum(len(ids) for ids in self.orphans.values())

    @property
    def duplicate_count(self) -> int:
        return sum(len(ids) for ids in self.duplicates.values())

    @property
    def ok(self) -> bool:
        return not (self.missing_outcomes or self.orphan_count or self.duplicate_count)

    def summary(self) -> dict[str, object]:
        """Counts and a few example ids (for logs and check metadata)."""
        return {
            "missing_outcomes": self.missing_outcomes,
            "missing_outcomes_by_task": {r["task_id"]: r["missing"] for r in self.gaps},
            "orphans": self.orphan_count,
            "orphans_by_label": {k: len(v) for k, v in self.orphans.items()},
            "orphan_examples": {k: v[:_EXAMPLES] for k, v in self.orphans.items() if v},
            "duplicate_ids": self.duplicate_count,
            "duplicate_examples": {k: v[:_EXAMPLES] for k, v in self.duplicates.items() if v},
        }


def outcome_gaps(store: GraphStore) -> list[dict]:
    """Per task: its queries, its candidate LLMs (any LLM that answered one of its queries),
    the outcomes present and the ``missing`` ones (queries x candidates - outcomes)."""
    rows = store.read(
        "MATCH (q:Query)-[:OF_TASK]->(t:Task) "
        "OPTIONAL MATCH (q)-[a:ANSWERED_BY]->(l:LLM) "
        "RETURN t.id AS task_id, count(DISTINCT q) AS queries, count(DISTINCT l) AS llms, "
        "count(a) AS outcomes ORDER BY task_id"
    ).to_pylist()
    for row in rows:
        row["missing"] = int(row["queries"]) * int(row["llms"]) - int(row["outcomes"])
    return rows


def orphans(store: GraphStore, labels: tuple[str, ...] = ORPHAN_LABELS) -> dict[str, list[str]]:
    """Ids of the nodes of each label that have no relationship at all."""
    out: dict[str, list[str]] = {}
    for label in labels:
        nt = NODES[label]
        table = store.read(
            f"MATCH (n:{nt.label}) OPTIONAL MATCH (n)-[r]-() "
            f"WITH n, count(r) AS degree WHERE degree = 0 "
            f"RETURN n.{nt.key} AS id ORDER BY id"
        )
        out[label] = table.column("id").to_pylist() if table.num_rows else []
    return out


def duplicate_ids(store: GraphStore) -> dict[str, list[str]]:
    """Key values held by more than one node, per label (the schema forbids them)."""
    out: dict[str, list[str]] = {}
    for nt in NODES.values():
        table = store.read(
            f"MATCH (n:{nt.label}) WITH n.{nt.key} AS id, count(*) AS c WHERE c > 1 "
            "RETURN id ORDER BY id"
        )
        out[nt.label] = table.column("id").to_pylist() if table.num_rows else []
    return out


def integrity_report(store: GraphStore) -> IntegrityReport:
    """Outcome gaps, orphans and duplicate ids of the whole graph."""
    return IntegrityReport(outcome_gaps(store), orphans(store), duplicate_ids(store))


def interaction_counts(store: GraphStore) -> dict[str, int]:
    """Number of CHOSE and ASKED relationships (the interactions a re-train learns from)."""
    return {
        rt.name: int(
            store.read(f"MATCH (:{rt.src})-[r:{rt.name}]->(:{rt.dst}) RETURN count(r) AS n")
            .column("n")[0]
            .as_py()
        )
        for rt in (CHOSE, ASKED)
    }


def interactions_since_last_model(store: GraphStore) -> tuple[str | None, int]:
    """(latest RouterModel version or None, CHOSE + ASKED relationships added since it).

    A model trained by the Dagster pipeline records the interaction counts of the
    graph in its config (``graph_counts``); the difference to today's counts is the
    number of new interactions. For a model without them, the interactions with a
    timestamp after the model's ``created_at`` are counted.
    """
    latest = store.read(
        f"MATCH (m:{ROUTER_MODEL.label}) RETURN m.version AS version, "
        "m.created_at AS created_at, m.config AS config "
        "ORDER BY created_at DESC, version DESC LIMIT 1"
    ).to_pylist()
    now = interaction_counts(store)
    if not latest:
        return None, sum(now.values())
    model = latest[0]
    recorded = json.loads(model["config"] or "{}").get("graph_counts")
    if recorded:
        return model["version"], max(0, sum(now.values()) - sum(recorded.values()))
    newer = 0
    for rt in (CHOSE, ASKED):
        newer += int(
            store.read(
                f"MATCH (:{rt.src})-[r:{rt.name}]->(:{rt.dst}) WHERE r.ts > $since "
                "RETURN count(r) AS n",
                {"since": model["created_at"]},
            )
            .column("n")[0]
            .as_py()
        )
    return model["version"], newer


def _latest_model(store: GraphStore) -> dict | None:
    latest = store.read(
        f"MATCH (m:{ROUTER_MODEL.label}) RETURN m.version AS version, "
        "m.created_at AS created_at ORDER BY created_at DESC, version DESC LIMIT 1"
    ).to_pylist()
    return latest[0] if latest else None


def served_traffic_since_last_model(store: GraphStore) -> tuple[str | None, dict[str, int]]:
    """(latest RouterModel version or None, what the gateway recorded since it).

    ``served``: users' queries answered through the gateway (ASKED edges with a
    response id) since the model's ``created_at``; ``feedback``: CHOSE and
    PREFERRED edges since then; ``rated``: every served answer with a thumbs /
    rating (ANSWERED_BY with a response id and a performance; these carry no
    time, so this one is a running total to compare with an earlier count).
    """
    model = _latest_model(store)
    # created_at ends in "Z", served timestamps in "+00:00": compare like with like
    since = (model["created_at"] or "").replace("Z", "+00:00") if model else ""

    def count(cypher: str, params: dict | None = None) -> int:
        return int(store.read(cypher, params).column("n")[0].as_py())

    served = count(
        f"MATCH (:{ASKED.src})-[r:{ASKED.name}]->(:{ASKED.dst}) "
        "WHERE r.response_id IS NOT NULL AND r.ts > $since RETURN count(r) AS n",
        {"since": since},
    )
    feedback = sum(
        count(
            f"MATCH (:{rt.src})-[r:{rt.name}]->(:{rt.dst}) "
            "WHERE r.ts > $since RETURN count(r) AS n",
            {"since": since},
        )
        for rt in (CHOSE, PREFERRED)
    )
    rated = count(
        "MATCH (:Query)-[a:ANSWERED_BY]->(:LLM) WHERE a.response_id IS NOT NULL "
        "AND a.performance IS NOT NULL RETURN count(a) AS n"
    )
    return (model["version"] if model else None), {
        "served": served,
        "feedback": feedback,
        "rated": rated,
    }
