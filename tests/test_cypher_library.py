"""The Cypher analytics library and `prouter cypher`, on both backends.

A small hand-made graph with known contents is written into each store; every
library query's rows are compared with the same numbers computed here in plain
Python from the fixture data.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner

from graphdb.queries import (
    PARAM_TYPES,
    adhoc_query,
    bind_params,
    coerce_param,
    get_query,
    load_queries,
    parse_query,
)
from graphdb.store import GraphStore
from prcore.errors import QueryError
from prouter.cli import cli
from prouter.commands.cypher import format_table

# -- the fixture graph ---------------------------------------------------------
USERS = ["u1", "u2", "u3", "u4"]
QUERY_TASK = {"q1": "math", "q2": "math", "q3": "math", "q4": "code", "q5": "code", "q6": "code"}
LLMS = {"a": (0.5, 1.0), "b": (1.0, 2.0), "c": (4.0, 8.0)}  # input, output price
# (query, llm) -> (performance, cost); c never answered q6.
ANSWERS = {
    ("q1", "a"): (0.5, 0.25),
    ("q1", "b"): (0.75, 0.5),
    ("q1", "c"): (1.0, 2.0),
    ("q2", "a"): (0.25, 0.25),
    ("q2", "b"): (0.5, 0.5),
    ("q2", "c"): (0.75, 1.5),
    ("q3", "a"): (1.0, 0.125),
    ("q3", "b"): (1.0, 0.5),
    ("q3", "c"): (1.0, 2.0),
    ("q4", "a"): (0.0, 0.25),
    ("q4", "b"): (0.5, 0.75),
    ("q4", "c"): (1.0, 2.5),
    ("q5", "a"): (0.75, 0.25),
    ("q5", "b"): (0.5, 0.5),
    ("q5", "c"): (0.25, 1.0),
    ("q6", "a"): (0.25, 0.125),
    ("q6", "b"): (0.75, 0.375),
}
# (user, query) -> (chosen llm, reward); u3's choice of c on q6 has no outcome.
CHOSE = {
    ("u1", "q1"): ("a", 0.5),
    ("u1", "q2"): ("b", 0.25),
    ("u1", "q3"): ("a", 1.0),
    ("u1", "q4"): ("c", 0.75),
    ("u1", "q5"): ("a", 0.75),
    ("u2", "q1"): ("a", 0.5),
    ("u2", "q2"): ("c", 0.5),
    ("u2", "q4"): ("c", 1.0),
    ("u2", "q6"): ("b", 0.5),
    ("u3", "q1"): ("b", 0.25),
    ("u3", "q3"): ("a", 1.0),
    ("u3", "q6"): ("c", 0.0),
    ("u4", "q1"): ("a", 0.5),
    ("u4", "q2"): ("b", 0.25),
    ("u4", "q4"): ("c", 0.75),
}
# (user, query, winner, loser, tie)
PREFERRED = [
    ("u1", "q1", "a", "b", False),
    ("u1", "q1", "a", "c", False),
    ("u2", "q4", "c", "a", False),
    ("u2", "q5", "b", "a", True),
    ("u3", "q3", "a", "c", False),
    ("u3", "q2", "c", "b", False),
]
MODELS = {  # version -> (created_at, config, metrics)
    "v1": ("2025-01-01T00:00:00Z", '{"epochs": 5}', '{"reward": 0.5}'),
    "v2": ("2025-02-01T00:00:00Z", '{"epochs": 10}', '{"reward": 0.625}'),
}
# (version, user, query) -> LLMs by rank (rank 1 = the pick)
ROUTED = {
    ("v1", "u1", "q1"): ["b", "a"],
    ("v1", "u1", "q2"): ["b", "c"],
    ("v1", "u1", "q4"): ["a", "c"],
    ("v1", "u2", "q1"): ["a", "b"],
    ("v1", "u2", "q6"): ["a", "b"],
    ("v1", "u3", "q3"): ["c", "a"],
    ("v1", "u3", "q6"): ["a", "c"],
    ("v2", "u1", "q1"): ["a", "b"],
    ("v2", "u1", "q4"): ["c", "a"],
    ("v2", "u2", "q2"): ["a", "c"],
    ("v2", "u3", "q1"): ["b", "a"],
    ("v2", "u3", "q3"): ["a", "b"],
    ("v2", "u4", "q5"): ["a", "b"],
    # v3's write-back was interrupted: edges without a RouterModel node, which no query sees
    ("v3", "u1", "q1"): ["c", "a"],
    ("v3", "u2", "q2"): ["c", "b"],
}
# (version, user, setting, shots) -> (reward, performance, cost, accuracy, n)
EVALUATED = {
    ("v1", "u1", "general", 0): (0.5, 0.5, 0.25, 0.5, 4),
    ("v1", "u2", "general", 0): (0.25, 0.75, 0.5, 0.25, 4),
    ("v1", "u2", "new_user", 1): (0.25, 0.5, 0.5, 0.0, 2),
    ("v1", "u3", "new_user", 1): (0.5, 0.25, 0.25, 0.5, 2),
    ("v1", "u2", "new_user", 3): (0.5, 0.75, 0.5, 0.5, 1),
    ("v1", "u3", "new_user", 3): (0.75, 0.5, 0.25, 1.0, 1),
    ("v2", "u1", "general", 0): (0.75, 0.75, 0.5, 0.75, 4),
    ("v2", "u2", "general", 0): (None, 0.5, 0.25, 0.5, 4),
    ("v2", "u3", "new_user", 1): (0.625, 0.5, 0.25, 0.5, 2),
    ("v2", "u4", "new_user", 1): (0.375, 0.25, 0.5, 0.0, 2),
    ("v2", "u3", "new_user", 3): (1.0, 1.0, 0.125, 1.0, 1),
    ("v2", "u1", "new_llm", 0): (0.5, 0.25, 0.75, 0.25, 3),
}


def write_fixture(store: GraphStore) -> None:
    """Write the fixture graph above into ``store``."""
    store.write_nodes("User", [{"id": u} for u in USERS])
    tasks = sorted(set(QUERY_TASK.values()))
    store.write_nodes("Task", [{"id": t, "description": f"{t} questions"} for t in tasks])
    store.write_nodes("Query", [{"id": q, "text": f"query {q}"} for q in QUERY_TASK])
    store.write_nodes(
        "LLM", [{"id": k, "input_price": i, "output_price": o} for k, (i, o) in LLMS.items()]
    )
    store.write_nodes(
        "RouterModel",
        [
            {"version": v, "created_at": c, "config": g, "metrics": m}
            for v, (c, g, m) in MODELS.items()
        ],
    )
    store.write_edges("OF_TASK", [{"src": q, "dst": t} for q, t in QUERY_TASK.items()])
    store.write_edges("ASKED", [{"src": u, "dst": q, "ts": "2025-01-01"} for u, q in CHOSE])
    store.write_edges(
        "ANSWERED_BY",
        [{"src": q, "dst": m, "performance": p, "cost": c} for (q, m), (p, c) in ANSWERS.items()],
    )
    store.write_edges(
        "CHOSE",
        [{"src": u, "dst": m, "query_id": q, "reward": r} for (u, q), (m, r) in CHOSE.items()],
    )
    store.write_edges(
        "PREFERRED",
        [{"src": u, "dst": w, "query_id": q, "over": o, "tie": t} for u, q, w, o, t in PREFERRED],
    )
    store.write_edges(
        "ROUTED_TO",
        [
            {"src": u, "dst": m, "query_id": q, "model_version": v, "score": 1 / r, "rank": r}
            for (v, u, q), ranked in ROUTED.items()
            for r, m in enumerate(ranked, 1)
        ],
    )
    store.write_edges(
        "EVALUATED",
        [
            dict(zip(["reward", "performance", "cost", "accuracy", "n"], e, strict=True))
            | {"src": v, "dst": u, "setting": s, "shots": k}
            for (v, u, s, k), e in EVALUATED.items()
        ],
    )


@pytest.fixture
def graph(store: GraphStore) -> GraphStore:
    """The fixture graph, once per backend."""
    write_fixture(store)
    return store


# -- the same numbers, computed in Python ----------------------------------------
def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def expect_llm_outcomes_by_task() -> list[dict[str, Any]]:
    groups: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for (q, m), outcome in ANSWERS.items():
        groups[(QUERY_TASK[q], m)].append(outcome)
    rows = [
        {
            "task_id": t,
            "llm_id": m,
            "n": len(v),
            "mean_performance": _mean([p for p, _ in v]),
            "mean_cost": _mean([c for _, c in v]),
        }
        for (t, m), v in groups.items()
    ]
    return sorted(rows, key=lambda r: (r["task_id"], -r["mean_performance"], r["llm_id"]))


def expect_user_choice_share(user_id: str) -> list[dict[str, Any]]:
    counts = Counter(m for (u, _), (m, _) in CHOSE.items() if u == user_id)
    total = sum(counts.values())
    rows = [
        {"user_id": user_id, "llm_id": m, "n": n, "share": n / total} for m, n in counts.items()
    ]
    return sorted(rows, key=lambda r: (-r["share"], r["llm_id"]))


def expect_user_llm_preference_by_task() -> list[dict[str, Any]]:
    counts: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for (u, q), (m, _) in CHOSE.items():
        counts[(u, QUERY_TASK[q])][m] += 1
    rows = [
        {"user_id": u, "task_id": t, "llm_id": m, "n": n, "share": n / c.total()}
        for (u, t), c in counts.items()
        for m, n in c.items()
    ]
    return sorted(rows, key=lambda r: (r["user_id"], r["task_id"], -r["n"], r["llm_id"]))


def expect_cost_saved_per_user() -> list[dict[str, Any]]:
    sums: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    for (u, q), (m, _) in CHOSE.items():
        if (q, m) in ANSWERS:
            sums[u][0] += 1
            sums[u][1] += ANSWERS[(q, m)][1]
            sums[u][2] += max(c for (q2, _), (_, c) in ANSWERS.items() if q2 == q)
    rows = [
        {
            "user_id": u,
            "n": n,
            "chosen_cost": chosen,
            "max_cost": most,
            "cost_saved": most - chosen,
            "saved_share": (most - chosen) / most,
        }
        for u, (n, chosen, most) in sums.items()
    ]
    return sorted(rows, key=lambda r: (-r["cost_saved"], r["user_id"]))


def expect_routing_agreement_by_model() -> list[dict[str, Any]]:
    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for (v, u, q), ranked in ROUTED.items():
        if (u, q) in CHOSE and v in MODELS:
            tally[v][0] += 1
            tally[v][1] += ranked[0] == CHOSE[(u, q)][0]
    return [
        {"model_version": v, "n": n, "agreed": a, "agreement": a / n}
        for v, (n, a) in sorted(tally.items())
    ]


def _eval_summary(setting: str | None) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str, int], list[tuple]] = defaultdict(list)
    for (v, _, s, k), e in EVALUATED.items():
        if setting is None or s == setting:
            groups[(v, s, k)].append(e)
    rows = []
    for (v, s, k), es in groups.items():
        row = {"model_version": v, "created_at": MODELS[v][0], "setting": s, "shots": k}
        row |= {"users": len(es), "n": sum(e[4] for e in es)}
        for i, metric in enumerate(["reward", "performance", "cost", "accuracy"]):
            row[f"mean_{metric}"] = _mean([e[i] for e in es])
        rows.append(row)
    return rows


def expect_new_user_eval_by_k() -> list[dict[str, Any]]:
    rows = _eval_summary("new_user")
    for row in rows:
        del row["created_at"], row["setting"]
    return sorted(rows, key=lambda r: (r["model_version"], r["shots"]))


def expect_eval_summary_by_model() -> list[dict[str, Any]]:
    rows = sorted(_eval_summary(None), key=lambda r: (r["model_version"], r["setting"], r["shots"]))
    return sorted(rows, key=lambda r: r["created_at"], reverse=True)


def expect_llm_win_rates_by_task() -> list[dict[str, Any]]:
    scores: dict[tuple[str, str], list[float]] = defaultdict(list)
    for _, q, winner, loser, tie in PREFERRED:
        scores[(QUERY_TASK[q], winner)].append(0.5 if tie else 1.0)
        scores[(QUERY_TASK[q], loser)].append(0.5 if tie else 0.0)
    rows = [
        {
            "task_id": t,
            "llm_id": m,
            "comparisons": len(s),
            "wins": s.count(1.0),
            "ties": s.count(0.5),
            "losses": s.count(0.0),
            "win_rate": sum(s) / len(s),
        }
        for (t, m), s in scores.items()
    ]
    return sorted(rows, key=lambda r: (r["task_id"], -r["win_rate"], r["llm_id"]))


def expect_similar_users(user_id: str, limit: int) -> list[dict[str, Any]]:
    mine = {q: m for (u, q), (m, _) in CHOSE.items() if u == user_id}
    rows = []
    for other in USERS:
        theirs = {q: m for (u, q), (m, _) in CHOSE.items() if u == other}
        common = sorted(set(mine) & set(theirs))
        if other != user_id and common:
            agreed = sum(mine[q] == theirs[q] for q in common)
            rows.append(
                {
                    "user_id": user_id,
                    "other_id": other,
                    "common": len(common),
                    "agreed": agreed,
                    "agreement": agreed / len(common),
                }
            )
    rows.sort(key=lambda r: (-r["agreed"], -r["agreement"], r["other_id"]))
    return rows[:limit]


def expect_router_most_wrong(model_version: str, limit: int) -> list[dict[str, Any]]:
    rows = []
    for (v, u, q), ranked in ROUTED.items():
        pick, chosen = ranked[0], CHOSE.get((u, q), (None,))[0]
        if v != model_version or v not in MODELS or chosen in (None, pick):
            continue
        if (q, pick) in ANSWERS and (q, chosen) in ANSWERS:
            (pp, pc), (cp, cc) = ANSWERS[(q, pick)], ANSWERS[(q, chosen)]
            rows.append(
                {
                    "user_id": u,
                    "query_id": q,
                    "routed_llm_id": pick,
                    "chosen_llm_id": chosen,
                    "performance_gap": cp - pp,
                    "cost_gap": cc - pc,
                }
            )
    rows.sort(key=lambda r: (-r["performance_gap"], r["user_id"], r["query_id"]))
    return rows[:limit]


def expect_latest_router_model() -> list[dict[str, Any]]:
    version = max(MODELS, key=lambda v: (MODELS[v][0], v))
    created_at, config, metrics = MODELS[version]
    evaluations = sum(v == version for v, *_ in EVALUATED)
    return [
        {
            "version": version,
            "created_at": created_at,
            "config": config,
            "metrics": metrics,
            "evaluations": evaluations,
        }
    ]


# name -> (params, expected rows); every query in cypher/ must be here.
CASES: dict[str, tuple[dict[str, Any], Callable[..., list[dict[str, Any]]]]] = {
    "llm_outcomes_by_task": ({}, expect_llm_outcomes_by_task),
    "user_choice_share": ({"user_id": "u1"}, expect_user_choice_share),
    "user_llm_preference_by_task": ({}, expect_user_llm_preference_by_task),
    "cost_saved_per_user": ({}, expect_cost_saved_per_user),
    "routing_agreement_by_model": ({}, expect_routing_agreement_by_model),
    "new_user_eval_by_k": ({}, expect_new_user_eval_by_k),
    "eval_summary_by_model": ({}, expect_eval_summary_by_model),
    "llm_win_rates_by_task": ({}, expect_llm_win_rates_by_task),
    "similar_users": ({"user_id": "u1", "limit": 2}, expect_similar_users),
    "router_most_wrong": ({"model_version": "v1", "limit": 3}, expect_router_most_wrong),
    "latest_router_model": ({}, expect_latest_router_model),
}


def assert_rows(actual: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    """Same rows in the same order; floats equal up to rounding."""
    assert len(actual) == len(expected), (actual, expected)
    for got, want in zip(actual, expected, strict=True):
        assert list(got) == list(want)
        for key, value in want.items():
            if isinstance(value, float):
                assert got[key] == pytest.approx(value, rel=1e-12, abs=1e-12), (key, got, want)
            else:
                assert got[key] == value and type(got[key]) is type(value), (key, got, want)


# -- the library -------------------------------------------------------------------
def test_every_library_query_has_a_case_here():
    assert set(load_queries()) == set(CASES)
    assert len(CASES) >= 10


def test_expected_rows_are_not_trivial():
    for name, (params, expect) in CASES.items():
        assert expect(**params), f"{name}: the fixture gives no rows"
    assert len(expect_similar_users("u1", 9)) > 2  # so that $limit = 2 cuts
    assert len(expect_router_most_wrong("v1", 9)) > 3  # so that $limit = 3 cuts


def test_an_unfinished_write_back_is_invisible_to_the_library(graph):
    """v3 has ROUTED_TO edges (disagreeing with the users' choices) but no RouterModel."""
    raw = graph.read(
        "MATCH (u:User)-[r:ROUTED_TO]->(:LLM) WHERE r.model_version = 'v3' AND r.rank = 1 "
        "MATCH (u)-[c:CHOSE]->(:LLM) WHERE c.query_id = r.query_id RETURN count(*) AS n"
    )
    assert raw.column("n")[0].as_py() == 2
    assert graph.query("router_most_wrong", model_version="v3", limit=10).num_rows == 0
    versions = graph.query("routing_agreement_by_model").column("model_version").to_pylist()
    assert versions == ["v1", "v2"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_library_query_matches_python(graph, name):
    params, expect = CASES[name]
    table = graph.query(name, **params)
    assert tuple(table.column_names) == get_query(name).returns
    assert_rows(table.to_pylist(), expect(**params))


def test_integer_columns_come_back_as_int64_on_both_backends(graph):
    for name, (params, _) in CASES.items():
        table = graph.query(name, **params)
        for column in ("n", "users", "comparisons", "wins", "agreed", "evaluations", "shots"):
            if column in table.column_names:
                assert str(table.schema.field(column).type) == "int64", (name, column)


def test_queries_on_an_empty_graph_return_no_rows(store):
    for name, (params, _) in CASES.items():
        table = store.query(name, **params)
        assert table.num_rows == 0, name


def test_coerce_param_types():
    assert coerce_param("k", "int", "3") == 3
    assert coerce_param("x", "float", "0.5") == 0.5
    assert coerce_param("b", "bool", "TRUE") is True
    assert coerce_param("b", "bool", "no") is False
    assert coerce_param("s", "str", "007") == "007"
    assert coerce_param("l", "list", "a, b,c") == ["a", "b", "c"]
    assert coerce_param("l", "list[int]", "1,2") == [1, 2]
    assert set(PARAM_TYPES) >= {"str", "int", "float", "bool", "list"}


@pytest.mark.parametrize(
    ("type_", "text", "message"),
    [
        ("int", "x", r"parameter \$k \(int\): invalid value 'x'"),
        ("float", "1.5.2", r"parameter \$k \(float\): invalid value"),
        ("bool", "maybe", r"parameter \$k \(bool\): invalid value 'maybe'"),
        ("list[int]", "1,b", r"parameter \$k \(list\[int\]\): invalid value '1,b'"),
        ("date", "x", r"parameter \$k: unknown type 'date'; valid types: str, int"),
    ],
)
def test_coerce_param_errors_name_the_parameter(type_, text, message):
    with pytest.raises(QueryError, match=message):
        coerce_param("k", type_, text)


def test_bind_params_types_and_checks():
    query = get_query("similar_users")
    assert bind_params(query, {"user_id": "u1", "limit": "5"}) == {"user_id": "u1", "limit": 5}
    with pytest.raises(QueryError, match="missing parameters: limit"):
        bind_params(query, {"user_id": "u1"})
    with pytest.raises(QueryError, match="unexpected parameters: top"):
        bind_params(query, {"user_id": "u1", "limit": "5", "top": "1"})


def test_header_with_an_unknown_param_type_is_rejected(tmp_path):
    path = tmp_path / "q.cypher"
    path.write_text(
        "// name: q\n// Purpose.\n// params: $a (date)\n// returns: x\nRETURN $a AS x\n"
    )
    with pytest.raises(QueryError, match="unknown parameter types"):
        parse_query(path)


def test_adhoc_query_params_are_the_names_it_uses():
    query = adhoc_query("MATCH (u:User) WHERE u.id = $id RETURN u.id LIMIT $n", {"n": "int"})
    assert query.params == {"id": "str", "n": "int"}


def test_format_table_aligns_columns():
    text = format_table(
        ["a", "long_name"], [{"a": "x", "long_name": 0.5}, {"a": "yyy", "long_name": None}]
    )
    assert text.splitlines() == [
        "a    long_name",
        "---  ---------",
        "x    0.5",
        "yyy",
        "(2 rows)",
    ]


# -- the command line --------------------------------------------------------------
def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args))


def test_cli_list_shows_every_query_with_params():
    result = invoke("cypher", "list")
    assert result.exit_code == 0, result.output
    for name in CASES:
        assert f"\n{name}\n" in f"\n{result.output}"
    assert "params:  $user_id (str), $limit (int)" in result.output
    assert "returns: user_id, other_id, common, agreed, agreement" in result.output


def test_cli_show_prints_the_query():
    result = invoke("cypher", "show", "router_most_wrong")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("// name: router_most_wrong\n")
    assert "LIMIT $limit" in result.output


@pytest.fixture
def args(graph: GraphStore, store_cli_args) -> list[str]:  # type: ignore[no-untyped-def]
    """`prouter` root options for the fixture graph, once per backend."""
    return store_cli_args(graph)


def test_cli_run_json(args):
    result = invoke(
        *args, "cypher", "run", "similar_users", "--param", "user_id=u1", "-p", "limit=2", "--json"
    )
    assert result.exit_code == 0, result.output
    assert_rows(json.loads(result.output), expect_similar_users("u1", 2))


def test_cli_run_json_with_summed_integers(args):
    result = invoke(*args, "cypher", "run", "eval_summary_by_model", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert_rows(rows, expect_eval_summary_by_model())
    assert all(isinstance(r["n"], int) for r in rows)


def test_cli_run_csv(args):
    result = invoke(*args, "cypher", "run", "router_most_wrong", "-p", "model_version=v1")
    assert result.exit_code == 1  # $limit is missing
    result = invoke(
        *args, "cypher", "run", "router_most_wrong", "-p", "model_version=v1", "-p", "limit=3",
        "--csv",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    expected = expect_router_most_wrong("v1", 3)
    assert [list(r) for r in rows] == [list(e) for e in expected]
    for got, want in zip(rows, expected, strict=True):
        assert got["user_id"] == want["user_id"] and got["query_id"] == want["query_id"]
        assert float(got["performance_gap"]) == want["performance_gap"]


def test_cli_run_table(args):
    result = invoke(*args, "cypher", "run", "routing_agreement_by_model")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["model_version", "n", "agreed", "agreement"]
    for line, row in zip(lines[2:], expect_routing_agreement_by_model(), strict=False):
        v, n, agreed, agreement = line.split()
        assert (v, int(n), int(agreed)) == (row["model_version"], row["n"], row["agreed"])
        assert float(agreement) == pytest.approx(row["agreement"], rel=1e-5)
    assert lines[-1] == f"({len(expect_routing_agreement_by_model())} rows)"


def test_cli_run_own_query_and_file(args, tmp_path):
    text = "MATCH (u:User)-[c:CHOSE]->(l:LLM) WHERE u.id = $id RETURN count(c) AS n LIMIT $k"
    result = invoke(*args, "cypher", "run", "-q", text, "-p", "id=u1", "-p", "k:int=1", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [{"n": sum(u == "u1" for u, _ in CHOSE)}]
    plain = tmp_path / "plain.cypher"
    plain.write_text("MATCH (u:User) RETURN u.id AS id ORDER BY id\n")
    result = invoke(*args, "cypher", "run", "--file", str(plain), "--json")
    assert json.loads(result.output) == [{"id": u} for u in USERS]
    named = tmp_path / "named.cypher"
    named.write_text(
        "// name: top_users\n// The first users.\n// params: $k (int)\n// returns: id\n"
        "MATCH (u:User) RETURN u.id AS id ORDER BY id LIMIT $k\n"
    )
    result = invoke(*args, "cypher", "run", "-f", str(named), "-p", "k=2", "--csv")
    assert result.output == "id\nu1\nu2\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["similar_users", "-p", "user_id=u1", "-p", "limit=ten"], "$limit (int): invalid value"),
        (["similar_users", "-p", "user_id=u1"], "missing parameters: limit"),
        (["similar_users", "-p", "user_id=u1", "-p", "limit=1", "-p", "x=1"], "unexpected"),
        (["similar_users", "-p", "user_id=u1", "-p", "limit:str=1"], "is declared int, not str"),
        (["similar_users", "-p", "user_id"], "'user_id' is not NAME=VALUE"),
        (["similar_users", "-p", "user_id=u1", "-p", "user_id=u2"], "given twice"),
        (["no_such_query"], "valid queries: cost_saved_per_user"),
        ([], "give exactly one of NAME, --query or --file"),
        (["similar_users", "-q", "RETURN 1 AS x"], "give exactly one of NAME"),
        (["-q", "RETURN $a AS x"], "missing parameters: a"),
    ],
)
def test_cli_run_bad_input_is_a_clean_error(tmp_path, argv, message):
    result = invoke("--store", f"ladybug:{tmp_path / 'absent.lbug'}", "cypher", "run", *argv)
    assert result.exit_code in (1, 2)
    assert message in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not (tmp_path / "absent.lbug").exists()


def test_cli_run_on_a_missing_ladybug_file_does_not_create_it(tmp_path):
    result = invoke("--store", f"ladybug:{tmp_path / 'g.lbug'}", "cypher", "run", "-q", "RETURN 1")
    assert result.exit_code == 1
    assert "no LadybugDB database at" in result.output
    assert not (tmp_path / "g.lbug").exists()


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE (u:User {id: 'intruder'}) RETURN u.id AS id",
        "MERGE (u:User {id: 'intruder'})",
        "MATCH (u:User) SET u.persona = 'hacked'",
        "MATCH (u:User {id: 'u1'}) DETACH DELETE u",
        "MATCH ()-[c:CHOSE]->() DELETE c",
    ],
)
def test_cli_refuses_writes_and_leaves_the_graph_unchanged(graph, args, statement):
    before = (graph.counts(), graph.export_nodes("User").to_pylist())
    result = invoke(*args, "cypher", "run", "--query", statement)
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: refused: `prouter cypher run` only reads the graph")
    assert "nothing was written" in result.output or "nothing was run" in result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)
    assert (graph.counts(), graph.export_nodes("User").to_pylist()) == before


def test_cli_run_returning_whole_nodes_gives_rows_or_a_clean_error(args):
    query = "MATCH (u:User) WHERE u.id = 'u1' RETURN u"
    result = invoke(*args, "cypher", "run", "-q", query, "--json")
    assert isinstance(result.exception, SystemExit | None), result.output
    if result.exit_code:
        assert "return properties such as u.id rather than whole nodes" in result.output
    else:
        assert json.loads(result.output)[0]["u"]["id"] == "u1"


def test_cli_run_reports_a_syntax_error_cleanly(args):
    result = invoke(*args, "cypher", "run", "-q", "MATCH (u:User RETURN u.id")
    assert result.exit_code == 1
    assert result.output.startswith("Error: ")
    assert isinstance(result.exception, SystemExit)
