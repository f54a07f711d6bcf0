"""`prouter route` and the routing service: rankings, explanations checked against the graph."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from gnn.pipeline import train_and_record
from gnn.serving import RouteRequest, RoutingService
from graphdb.ingest import write_tables
from graphdb.store import GraphStore, open_store
from graphdb.tables import embedding_array
from prcore.errors import ProuterError
from prouter.cli import cli
from workloads.synthetic import generate

TRAIN = {"epochs": 30, "hidden": 16}
DIM = 16


def write_workload(store: GraphStore, *, dim: int | None = DIM, seed: int = 1) -> None:
    """A small synthetic workload (4 users, 120 queries, 4 LLMs); stand-in embeddings."""
    workload = generate(n_queries=120, n_users=4, n_llms=4, users_per_query=2, seed=seed)
    tables = workload.tables(embedding_dim=dim)
    if dim:
        rng = np.random.default_rng(seed)
        tables["LLM"] = tables["LLM"].append_column(
            "embedding", embedding_array(rng.normal(size=(4, dim)))
        )
    write_tables(store, tables)


def open_backend(backend: str, tmp: Path, request: pytest.FixtureRequest) -> GraphStore:
    """An empty store: a LadybugDB file, or the wiped test Neo4j (as the ``store`` fixture)."""
    if backend == "ladybug":
        return open_store(f"ladybug:{tmp / 'graph.lbug'}")
    server = request.getfixturevalue("neo4j_server")
    store = open_store(server["uri"], username=server["username"], password=server["password"])
    store.clear()
    return store


class StandInEmbedder:
    """Graph query texts get their graph embedding; other texts a seeded unit vector."""

    def __init__(self, store: GraphStore) -> None:
        table = store.export_nodes("Query", ["text", "embedding"])
        self.known = {
            t: np.asarray(e, dtype=np.float32)
            for t, e in zip(
                table.column("text").to_pylist(), table.column("embedding").to_pylist(), strict=True
            )
        }
        self.dim = len(next(iter(self.known.values())))
        self.calls = 0

    def embed(self, texts, progress=True):  # type: ignore[no-untyped-def]
        self.calls += 1
        out = []
        for text in texts:
            if text in self.known:
                out.append(self.known[text])
                continue
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
            v = np.random.default_rng(seed).normal(size=self.dim)
            out.append(v / np.linalg.norm(v))
        return np.asarray(out, dtype=np.float32)


@pytest.fixture(scope="module", params=["ladybug", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def trained(request, tmp_path_factory):
    """(store, service, the error before training) on a small trained workload, per backend."""
    tmp = tmp_path_factory.mktemp(f"route-{request.param}")
    store = open_backend(request.param, tmp, request)
    write_workload(store)
    model_dir = tmp / "models"
    with pytest.raises(ProuterError) as no_model:  # before training: nothing to serve
        RoutingService(store, StandInEmbedder(store), model_dir=model_dir)
    train_and_record(store, seed=0, model_dir=model_dir, config=TRAIN)
    service = RoutingService(store, StandInEmbedder(store), model_dir=model_dir)
    yield store, service, str(no_model.value)
    store.close()


def user_query_ids(store: GraphStore, user: str) -> set[str]:
    asked = store.read(
        "MATCH (u:User)-[:ASKED]->(q:Query) WHERE u.id = $user RETURN q.id AS id", {"user": user}
    )
    chose = store.read(
        "MATCH (u:User)-[c:CHOSE]->(:LLM) WHERE u.id = $user RETURN c.query_id AS id",
        {"user": user},
    )
    return set(asked.column("id").to_pylist()) | set(chose.column("id").to_pylist())


def a_query_of(store: GraphStore, user: str) -> tuple[str, str, str]:
    """(query id, text, task) of one query the user decided on."""
    table = store.read(
        "MATCH (u:User)-[c:CHOSE]->(:LLM), (q:Query)-[:OF_TASK]->(t:Task) "
        "WHERE u.id = $user AND q.id = c.query_id "
        "RETURN q.id AS id, q.text AS text, t.id AS task ORDER BY id LIMIT 1",
        {"user": user},
    )
    return tuple(table.column(c)[0].as_py() for c in ("id", "text", "task"))  # type: ignore[return-value]


def test_known_user_ranking_and_explanation_come_from_model_and_graph(trained):
    store, service, _ = trained
    user = "user-0001"
    qid, text, task = a_query_of(store, user)
    result = service.route(user, text)
    # The task is inferred from the most similar known queries (the query itself is one).
    assert result.task_inferred and result.task == task
    assert "inferred from the 10 most similar known queries" in result.explanation.task_note
    # The ranking is the model's prediction for this user, best utility first.
    row = service.data.user_ids.index(user)
    emb = service.embedder.embed([text])
    pred = service.router.predict(emb, [task], np.array([row]))
    utilities = [r.utility for r in result.ranking]
    assert utilities == sorted(utilities, reverse=True)
    assert [r.llm_id for r in result.ranking] == [
        service.router.llm_ids[m] for m in np.argsort(-pred.utility[0], kind="stable")
    ]
    best = service.router.llm_ids.index(result.best.llm_id)
    assert result.best.utility == pytest.approx(float(pred.utility[0, best]))
    assert result.best.cost == pytest.approx(float(pred.cost[0, best]))
    # The explanation lists the user's own past queries, nearest first: the query itself.
    ex = result.explanation
    assert ex.known_user and not ex.prior_choices
    weight = float(service.router.preferences()[row])
    assert ex.quality_weight == pytest.approx(weight)
    assert f"learned weight on quality vs cost {weight:.2f}" in ex.message
    assert len(ex.past_queries) == 3
    assert ex.past_queries[0].query_id == qid
    assert ex.past_queries[0].similarity == pytest.approx(1.0, abs=1e-5)
    assert {p.query_id for p in ex.past_queries} <= user_query_ids(store, user)
    sims = [p.similarity for p in ex.past_queries]
    assert sims == sorted(sims, reverse=True)
    for past in ex.past_queries:
        facts = store.read(
            "MATCH (u:User)-[c:CHOSE]->(m:LLM), (q:Query)-[a:ANSWERED_BY]->(m) "
            "WHERE u.id = $user AND c.query_id = $qid AND q.id = $qid "
            "RETURN m.id AS llm, a.performance AS performance, a.cost AS cost, q.text AS text",
            {"user": user, "qid": past.query_id},
        ).to_pylist()
        assert len(facts) == 1
        assert past.chosen_llm == facts[0]["llm"]
        assert past.performance == pytest.approx(facts[0]["performance"])
        assert past.cost == pytest.approx(facts[0]["cost"])
        assert past.text == facts[0]["text"]


def test_users_are_ranked_differently_and_a_given_task_is_used(trained):
    store, service, _ = trained
    _, text, task = a_query_of(store, "user-0000")
    other = next(t for t in service.router.task_ids if t != task)
    results = {u: service.route(u, text, other) for u in ("user-0000", "user-0003")}
    for result in results.values():
        assert result.task == other and not result.task_inferred
        assert result.explanation.task_note is None
    a, b = ([r.utility for r in results[u].ranking] for u in results)
    assert not np.allclose(sorted(a), sorted(b))  # personalised: the users' scores differ


def test_a_new_user_is_routed_with_the_prior_and_told_whose_choices_it_reflects(trained):
    store, service, _ = trained
    _, text, task = a_query_of(store, "user-0002")
    result = service.route("newcomer", text, task)
    ex = result.explanation
    assert not ex.known_user and not ex.past_queries
    assert "newcomer is a new user (is not in the graph)" in ex.message
    assert "population prior" in ex.message
    assert ex.quality_weight == pytest.approx(service.router.prior_preference())
    # Same scores as the model's prior (h_u = 0), and for any other unknown user.
    pred = service.router.predict(service.embedder.embed([text]), [task], np.array([-1]))
    assert sorted(r.utility for r in result.ranking) == pytest.approx(sorted(pred.utility[0]))
    again = service.route("someone-else", text, task)
    assert [r.llm_id for r in again.ranking] == [r.llm_id for r in result.ranking]
    # The prior's explanation counts the known users' CHOSE edges on the listed queries.
    assert len(ex.prior_queries) == 5
    rows = store.read(
        "MATCH (u:User)-[c:CHOSE]->(m:LLM) WHERE c.query_id IN $ids "
        "RETURN m.id AS llm, count(*) AS n, collect(u.id) AS users",
        {"ids": ex.prior_queries},
    ).to_pylist()
    expected = {r["llm"]: (r["n"], sorted(set(r["users"]))) for r in rows}
    assert {c.llm_id: (c.decisions, c.users) for c in ex.prior_choices} == expected
    assert sum(c.share for c in ex.prior_choices) == pytest.approx(1.0)
    counts = [c.decisions for c in ex.prior_choices]
    assert counts == sorted(counts, reverse=True)
    tasks = store.read(
        "MATCH (q:Query)-[:OF_TASK]->(t:Task) WHERE q.id IN $ids RETURN DISTINCT t.id AS t",
        {"ids": ex.prior_queries},
    )
    assert tasks.column("t").to_pylist() == [task]


def test_a_user_known_only_from_preferences_is_personal_without_retraining(trained, tmp_path):
    store, service, _ = trained
    qid, text, task = a_query_of(store, "user-0002")
    win, lose = service.router.llm_ids[:2]
    store.write_nodes("User", {"id": ["critic"]})
    store.write_edges(
        "PREFERRED",
        {"src": ["critic"], "dst": [win], "query_id": [qid], "over": [lose], "tie": [False]},
    )
    fresh = RoutingService(store, service.embedder, model_dir=service.model_dir)
    result = fresh.route("critic", text, task)
    ex = result.explanation
    assert ex.known_user and "0 decisions, 1 preference judgements, 1 past queries" in ex.message
    (past,) = ex.past_queries
    assert (past.query_id, past.chosen_llm, past.preferred) == (qid, None, [(win, lose)])
    prior = fresh.route("newcomer", text, task)
    assert [r.utility for r in result.ranking] != [r.utility for r in prior.ranking]


def test_batch_routing_matches_single_requests_and_bad_requests_fail_cleanly(trained):
    store, service, _ = trained
    _, text, _ = a_query_of(store, "user-0003")
    requests = [RouteRequest("user-0003", text), RouteRequest("newcomer", "hello there", "math")]
    batch = service.route_many(requests)
    for req, got in zip(requests, batch, strict=True):
        one = service.route(req.user, req.query, req.task)
        assert got.task == one.task and got.explanation.message == one.explanation.message
        assert got.explanation.prior_choices == one.explanation.prior_choices
        past = [(p.query_id, p.chosen_llm) for p in one.explanation.past_queries]
        assert [(p.query_id, p.chosen_llm) for p in got.explanation.past_queries] == past
        assert [r.llm_id for r in got.ranking] == [r.llm_id for r in one.ranking]
        # Batched and single lookups differ only by float rounding.
        utilities = [r.utility for r in one.ranking]
        assert [r.utility for r in got.ranking] == pytest.approx(utilities, rel=1e-5, abs=1e-7)
    with pytest.raises(ProuterError, match=r"unknown task 'poetry'; the model knows: code"):
        service.route("user-0003", text, "poetry")
    with pytest.raises(ProuterError, match="query text is missing or empty"):
        service.route("user-0003", "  ")


def test_no_model_trained_is_a_clear_error(trained):
    assert trained[2] == (
        "no trained router model in the graph (no RouterModel node): "
        "train one first with `prouter train`"
    )


# -- the CLI, with the real embedding model ------------------------------------------------
@pytest.fixture(scope="module")
def embedded_store(tmp_path_factory):
    """A ladybug store embedded with the real all-MiniLM-L6-v2, and a trained model."""
    from workloads.embeddings import Embedder, embed_graph

    tmp = tmp_path_factory.mktemp("route-cli")
    url = f"ladybug:{tmp / 'g.lbug'}"
    cache = tmp / "cache.sqlite"
    with open_store(url) as store, Embedder(cache_path=cache) as embedder:
        write_workload(store, dim=None)
        embed_graph(store, embedder, progress=False)
        train_and_record(store, seed=0, model_dir=tmp / "models", config=TRAIN)
    return url, tmp / "models", cache


def invoke(url: str, model_dir: Path, cache: Path, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(
        cli,
        ["--store", url, "route", "--model-dir", str(model_dir), "--cache", str(cache), *args],
    )


def test_cli_routes_a_new_text_with_the_real_embedder(embedded_store):
    url, model_dir, cache = embedded_store
    text = "Write a Python function that reverses a linked list"
    result = invoke(url, model_dir, cache, "--user", "user-0001", "--json", "--top", "2", text)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["query"] == text and out["user"] == "user-0001"
    assert out["task_inferred"] and out["task"] in {"code", "math", "qa", "summarize"}
    assert [r["rank"] for r in out["ranking"]] == [1, 2]
    assert out["explanation"]["known_user"] is True
    with open_store(url, read_only=True) as store:
        assert {p["query_id"] for p in out["explanation"]["past_queries"]} <= user_query_ids(
            store, "user-0001"
        )
        latest = store.query("latest_router_model").column("version")[0].as_py()
    assert out["model_version"] == latest
    # Human output: the table and the new-user message.
    human = invoke(url, model_dir, cache, "--user", "stranger", "--task", "code", text)
    assert human.exit_code == 0, human.output
    assert "stranger is a new user (is not in the graph)" in human.output
    assert f"model {latest} · task code" in human.output
    assert human.output.count("$") >= 4  # one predicted cost per LLM row


def test_cli_batch_mode_and_exit_codes(embedded_store, tmp_path):
    url, model_dir, cache = embedded_store
    src = tmp_path / "queries.jsonl"
    src.write_text(
        json.dumps({"query": "Summarise the news about the storm"})
        + "\n\n"
        + json.dumps({"query": "What is 12 times 7?", "user": "user-0002", "task": "math"})
        + "\n"
    )
    out = tmp_path / "routed.jsonl"
    result = invoke(
        url, model_dir, cache, "--user", "user-0000", "--input", str(src), "--output", str(out)
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["line"], r["user"], r["task_inferred"]) for r in lines] == [
        (1, "user-0000", True),
        (3, "user-0002", False),
    ]
    assert lines[1]["task"] == "math" and len(lines[0]["ranking"]) == 4  # --top 5, 4 LLMs
    csv_src = tmp_path / "queries.csv"
    csv_src.write_text("query,user,task\nWhat is 12 times 7?,user-0002,math\n")
    result = invoke(url, model_dir, cache, "--input", str(csv_src), "--top", "1")
    assert result.exit_code == 0, result.output
    (row,) = [json.loads(line) for line in result.output.splitlines()]
    assert row["line"] == 2 and len(row["ranking"]) == 1
    first = lines[1]["ranking"][0]  # the same request, routed in another batch
    assert row["ranking"][0]["llm_id"] == first["llm_id"]
    assert row["ranking"][0]["utility"] == pytest.approx(first["utility"], abs=1e-5)

    # Domain errors: exit 1, one line, no traceback.
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"user": "u"}\n')
    for args, message in [
        (["--input", str(bad)], f"Error: {bad}:1: 'query' is missing"),
        (["--input", str(tmp_path / "none.jsonl")], "cannot read"),
        (["--user", "u", "--task", "poetry", "text"], "unknown task 'poetry'"),
        (["--user", "u", "--model", "gnn-nope", "text"], "no checkpoint for model 'gnn-nope'"),
    ]:
        result = invoke(url, model_dir, cache, *args)
        assert result.exit_code == 1, (args, result.output)
        assert message in result.output and "Traceback" not in result.output
    # Usage errors: exit 2.
    for args in (["text"], [], ["--user", "u", "--input", str(src), "text"]):
        assert invoke(url, model_dir, cache, *args).exit_code == 2


def test_cli_without_a_trained_model_exits_1(tmp_path):
    url = f"ladybug:{tmp_path / 'g.lbug'}"
    with open_store(url) as store:
        write_workload(store)
    result = invoke(url, tmp_path / "models", tmp_path / "c.sqlite", "--user", "u", "hi")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: no trained router model in the graph (no RouterModel node): "
        "train one first with `prouter train`"
    ]


def test_route_help_documents_exit_codes():
    result = CliRunner().invoke(cli, ["route", "--help"])
    assert result.exit_code == 0
    assert "Exit status:" in result.output
    assert "1  domain error: no model trained yet" in result.output
    assert "2  usage error" in result.output
