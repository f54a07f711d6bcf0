"""The batched recorder on both backends: what lands in the graph, retries, no duplicates."""

from __future__ import annotations

from contextlib import contextmanager

import pytest

from prouter.gateway.feedback import Answer, stored_answer
from prouter.gateway.recorder import Attempt, Choice, Outcome, Preference, Recorder, Served

TS = "2026-01-01T00:00:00.000001+00:00"


def served(
    qid: str, user: str = "ann", routed: bool = True, response_id: str | None = None
) -> Served:
    return Served(
        ts=TS,
        user=user,
        query_id=qid,
        text=f"text of {qid}",
        task="math",
        embedding=[0.5, 0.25, float(len(qid))],
        model_version="v1" if routed else None,
        ranking=[("m1", 0.75), ("m2", float("nan")), ("m3", 0.25)] if routed else [],
        attempts=[
            Attempt("m1", "http 503", 12.5),
            Attempt("m2", "ok", 40.0, 10, 20, 0.003, "an answer", response_id or f"chatcmpl-{qid}"),
        ],
    )


def rows(store, cypher: str) -> list[dict]:  # type: ignore[no-untyped-def]
    return store.read(cypher).to_pylist()


def test_events_become_nodes_and_edges_once(store):
    opened = []

    @contextmanager
    def open_():  # type: ignore[no-untyped-def]
        opened.append(1)
        if len(opened) == 1:
            raise OSError("store busy")  # the first write fails: kept for the next
        yield store

    recorder = Recorder(open_, interval=60)
    recorder.submit(served("q1"))
    recorder.submit(served("q1"))  # the same answer recorded twice in one batch
    assert recorder.flush() == 0 and recorder.depth == 2 and recorder.failures == 1
    assert recorder.flush() == 2 and recorder.depth == 0
    recorder.submit(served("q1"))  # and again in a later batch
    recorder.submit(Outcome("q1", "m2", 0.75))
    recorder.submit(Choice("ann", "m2", "q1", TS))
    recorder.submit(Preference("ann", "m2", "q1", "m1", False, TS))
    recorder.close()
    assert recorder.written == 6 and recorder.depth == 0
    counts = store.counts()
    assert counts["Query"] == 1 and counts["ASKED"] == 1 and counts["OF_TASK"] == 1
    assert counts["ROUTED_TO"] == 3 and counts["ANSWERED_BY"] == 2
    assert counts["CHOSE"] == 1 and counts["PREFERRED"] == 1 and counts["LLM"] == 3
    answered = rows(
        store,
        "MATCH (q:Query)-[a:ANSWERED_BY]->(l:LLM) RETURN l.id AS llm, a.status AS status, "
        "a.latency_ms AS ms, a.input_tokens AS tin, a.output_tokens AS tout, a.cost AS cost, "
        "a.performance AS perf, a.response AS response ORDER BY llm",
    )
    assert answered[0] | {"ms": None} == {
        "llm": "m1",
        "status": "http 503",
        "ms": None,
        "tin": None,
        "tout": None,
        "cost": None,
        "perf": None,
        "response": None,
    }
    assert answered[0]["ms"] == pytest.approx(12.5)
    assert answered[1]["status"] == "ok" and answered[1]["perf"] == pytest.approx(0.75)
    assert (answered[1]["tin"], answered[1]["tout"]) == (10, 20)
    assert answered[1]["cost"] == pytest.approx(0.003) and answered[1]["response"] == "an answer"
    routed = rows(
        store,
        "MATCH (u:User)-[r:ROUTED_TO]->(l:LLM) RETURN l.id AS llm, r.rank AS rank, "
        "r.score AS score, r.model_version AS v ORDER BY rank",
    )
    assert [(r["llm"], r["rank"], r["v"]) for r in routed] == [
        ("m1", 1, "v1"),
        ("m2", 2, "v1"),
        ("m3", 3, "v1"),
    ]
    assert routed[1]["score"] is None  # NaN is never written
    emb = rows(store, "MATCH (q:Query) RETURN q.embedding AS e, q.text AS t")
    assert emb[0]["e"] == pytest.approx([0.5, 0.25, 2.0]) and emb[0]["t"] == "text of q1"


def test_a_pass_through_query_is_embedded_at_write_time(store):
    @contextmanager
    def open_():  # type: ignore[no-untyped-def]
        yield store

    calls = []

    def embed(texts):  # type: ignore[no-untyped-def]
        calls.append(list(texts))
        return [[1.0, 0.0, 0.0] for _ in texts]

    recorder = Recorder(open_, interval=60, embed=embed)
    event = served("q2", routed=False)
    recorder.submit(Served(**{**event.__dict__, "embedding": None}))
    recorder.submit(served("q3"))  # routed: already has its embedding
    recorder.close()
    assert calls == [["text of q2"]]
    got = {
        r["id"]: r["e"] for r in rows(store, "MATCH (q:Query) RETURN q.id AS id, q.embedding AS e")
    }
    assert got["q2"] == pytest.approx([1.0, 0.0, 0.0]) and got["q3"] == pytest.approx(
        [0.5, 0.25, 2.0]
    )
    assert store.counts()["ROUTED_TO"] == 3  # q3 only


def test_the_queue_is_bounded(store):
    @contextmanager
    def never():  # type: ignore[no-untyped-def]
        raise OSError("down")
        yield store

    recorder = Recorder(never, interval=60, max_pending=5)
    for i in range(8):
        recorder.submit(Outcome(f"q{i}", "m", 1.0))
    assert recorder.depth == 5 and recorder.dropped == 3
    assert recorder.flush() == 0 and recorder.depth == 5


def test_a_store_made_before_the_new_columns_gets_them(tmp_path):
    import ladybug

    from graphdb.queries import schema_statements
    from graphdb.store import open_store

    path = tmp_path / "old.lbug"
    db = ladybug.Database(str(path))
    conn = ladybug.Connection(db)
    for statement in schema_statements("ladybug"):
        if statement.startswith("ALTER"):
            continue
        old = statement.replace(", latency_ms DOUBLE, status STRING, response_id STRING", "")
        old = old.replace("ts STRING, response_id STRING", "ts STRING")
        assert "response_id" not in old and "latency_ms" not in old
        conn.execute(old)
    conn.close()
    db.close()

    with open_store(f"ladybug:{path}") as store:

        @contextmanager
        def open_():  # type: ignore[no-untyped-def]
            yield store

        recorder = Recorder(open_, interval=60)
        recorder.submit(served("q1"))
        recorder.close()
        got = rows(
            store,
            "MATCH ()-[a:ANSWERED_BY]->(l:LLM) RETURN l.id AS l, a.status AS s, a.response_id AS r",
        )
        asked = rows(store, "MATCH ()-[k:ASKED]->() RETURN k.response_id AS r")
    assert sorted((r["l"], r["s"], r["r"]) for r in got) == [
        ("m1", "http 503", None),
        ("m2", "ok", "chatcmpl-q1"),
    ]
    assert asked == [{"r": "chatcmpl-q1"}]


def test_answers_are_found_by_response_id_in_the_graph(store):
    """What feedback after a restart resolves: the user, query and LLM of a served answer."""

    @contextmanager
    def open_():  # type: ignore[no-untyped-def]
        yield store

    recorder = Recorder(open_, interval=60)
    recorder.submit(served("q1", "ann", response_id="chatcmpl-a"))
    recorder.submit(served("q2", "ann", response_id="chatcmpl-b"))
    recorder.submit(served("q2", "bob", response_id="chatcmpl-c"))  # the same answer, later
    recorder.close()
    assert stored_answer(store, "chatcmpl-a") == Answer("ann", "q1", "m2")
    assert stored_answer(store, "chatcmpl-c") == Answer("bob", "q2", "m2")
    # ANSWERED_BY keeps the latest response id of each (query, LLM) answer
    assert stored_answer(store, "chatcmpl-b") is None
    assert stored_answer(store, "chatcmpl-unknown") is None
