"""Feedback becomes CHOSE / PREFERRED / performance; a retrain learns from it; hot reload."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest
from gateway_support import serving
from test_http_api import call
from test_route import TRAIN

from gnn.data import load_routing_data
from gnn.pipeline import train_and_record
from prouter.gateway.app import create_app, query_id
from prouter.gateway.server import build_gateway


def chat(world, model: str, text: str, user: str):  # type: ignore[no-untyped-def]
    client = openai.OpenAI(base_url=world.base + "/v1", api_key="unused", max_retries=0)
    return client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": text}],
        user=user,
        metadata={"task": "math"},
    )


def test_feedback_becomes_edges_and_a_retrain_uses_them(world):
    a, b, c = sorted(world.upstreams)[:3]
    text = "What is 17% of 240?"
    ra = chat(world, a, text, "user-0001").id
    rb = chat(world, b, text, "user-0001").id
    other = chat(world, c, "A different question", "user-0001").id
    stranger = chat(world, b, text, "user-0002").id
    feedback = [
        ({"preferred": ra, "over": rb}, 200),
        ({"response_id": ra, "thumbs": "up"}, 200),
        ({"response_id": rb, "rating": 2}, 200),
        ({"response_id": ra, "chosen": True}, 200),
        ({"preferred": ra, "over": other}, 400),  # different queries
        ({"preferred": rb, "over": stranger}, 400),  # different users
        ({"preferred": ra, "over": ra}, 400),  # same LLM
        ({"response_id": ra, "rating": 6}, 400),
        ({"response_id": ra, "thumbs": "sideways"}, 400),
    ]
    for body, code in feedback:
        status, answer = call(world.base, "/feedback", body)
        assert status == code, (body, answer)
    qid = query_id(text)
    pref = world.graph(
        "MATCH (u:User)-[p:PREFERRED]->(l:LLM) WHERE p.query_id = $q "
        "RETURN u.id AS user, l.id AS llm, p.over AS over, p.tie AS tie",
        q=qid,
    )
    assert pref == [{"user": "user-0001", "llm": a, "over": b, "tie": False}]
    chose = world.graph(
        "MATCH (u:User)-[c:CHOSE]->(l:LLM) WHERE c.query_id = $q RETURN u.id AS user, l.id AS llm",
        q=qid,
    )
    assert chose == [{"user": "user-0001", "llm": a}]
    perf = world.graph(
        "MATCH (q:Query)-[r:ANSWERED_BY]->(l:LLM) WHERE q.id = $q "
        "RETURN l.id AS llm, r.performance AS p, r.status AS s",
        q=qid,
    )
    assert {r["llm"]: r["p"] for r in perf} == pytest.approx({a: 1.0, b: 0.25})
    assert {r["s"] for r in perf} == {"ok"}

    before = world.gw.router.service.health()["decisions"]
    with world.access() as store:
        data = load_routing_data(store, tasks=list(world.gw.router.service.router.task_ids))
        q = data.query_ids.index(qid)
        u = data.user_ids.index("user-0001")
        decisions = set(zip(data.dec_user.tolist(), data.dec_query.tolist(), strict=True))
        assert (u, q) in decisions
        assert (u, q, data.llm_ids.index(a), data.llm_ids.index(b)) in {
            tuple(row)
            for row in zip(
                data.pref_user, data.pref_query, data.pref_win, data.pref_lose, strict=True
            )
        }
        result = train_and_record(store, seed=1, model_dir=world.model_dir, config=TRAIN)
    assert result.version != world.gw.router.version
    status, body = call(world.base, "/admin/reload", {})
    assert status == 200 and body == {"model_version": result.version, "reloaded": True}
    health = world.gw.router.service.health()
    assert health["decisions"] == before + 1  # the served "chosen" is a training decision


def test_hot_reload_under_concurrent_requests_fails_none(world):
    old = world.gw.router.version
    with world.access() as store:
        new = train_and_record(store, seed=2, model_dir=world.model_dir, config=TRAIN).version
    stop = threading.Event()
    seen: list[tuple[int, str]] = []

    def hammer(i: int) -> None:
        while not stop.is_set():
            status, body = call(world.base, "/route", {"user": "user-0000", "query": f"q{i}"})
            seen.append((status, body.get("model_version", body)))

    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = [pool.submit(hammer, i) for i in range(6)]
        while len(seen) < 20:
            stop.wait(0.05)
        status, body = call(world.base, "/admin/reload", {})
        n = len(seen)
        while len(seen) < n + 20:
            stop.wait(0.05)
        stop.set()
        for f in futures:
            f.result()
    assert status == 200 and body == {"model_version": new, "reloaded": True}
    assert {s for s, _ in seen} == {200}
    versions = [v for _, v in seen]
    assert versions[0] == old and versions[-1] == new and set(versions) == {old, new}
    status, body = call(world.base, "/admin/reload", {})  # nothing newer: no swap
    assert body == {"model_version": new, "reloaded": False}


def test_feedback_finds_answers_served_before_a_restart(world):
    a, b = sorted(world.upstreams)[:2]
    text = "Which answers survive a restart?"
    ra = chat(world, a, text, "user-0003").id
    rb = chat(world, b, text, "user-0003").id
    world.gw.recorder.flush()
    restarted = build_gateway(
        world.access,
        world.embedder,
        model_dir=world.model_dir,
        upstreams=world.upstreams,
        record_interval=0.1,
    )
    assert len(restarted.answers) == 0  # a new process remembers nothing it served
    with serving(create_app(restarted)) as base:
        unknown = {"response_id": "chatcmpl-" + "0" * 32, "thumbs": "up"}
        assert call(base, "/feedback", unknown)[0] == 404
        for body in (
            {"preferred": ra, "over": rb},
            {"response_id": ra, "thumbs": "down"},
            {"response_id": rb, "chosen": True},
        ):
            status, answer = call(base, "/feedback", body)
            assert status == 200 and answer == {"recorded": 1}, (body, answer)
    qid = query_id(text)  # the restarted gateway flushed its recorder when it stopped
    pref = world.graph(
        "MATCH (u:User)-[p:PREFERRED]->(l:LLM) WHERE p.query_id = $q "
        "RETURN u.id AS user, l.id AS llm, p.over AS over",
        q=qid,
    )
    assert pref == [{"user": "user-0003", "llm": a, "over": b}]
    chose = world.graph(
        "MATCH (u:User)-[c:CHOSE]->(l:LLM) WHERE c.query_id = $q RETURN u.id AS user, l.id AS llm",
        q=qid,
    )
    assert chose == [{"user": "user-0003", "llm": b}]
    perf = world.graph(
        "MATCH (q:Query)-[r:ANSWERED_BY]->(l:LLM) WHERE q.id = $q AND l.id = $l "
        "RETURN r.performance AS p",
        q=qid,
        l=a,
    )
    assert perf == [{"p": pytest.approx(0.0)}]
