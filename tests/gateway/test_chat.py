"""The gateway with the official openai client: routed, pass-through, streamed, fallback."""

from __future__ import annotations

import openai
import pytest
from conftest import PRICE_IN, PRICE_OUT
from gateway_support import answer_text

from prouter.gateway.app import query_id


def client(world, **kw) -> openai.OpenAI:  # type: ignore[no-untyped-def]
    return openai.OpenAI(base_url=world.base + "/v1", api_key="unused", max_retries=0, **kw)


def ask(text: str) -> list[dict]:
    return [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}]


def answered(world, qid: str) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    rows = world.graph(
        "MATCH (q:Query)-[a:ANSWERED_BY]->(l:LLM) WHERE q.id = $q RETURN l.id AS llm, "
        "a.status AS status, a.input_tokens AS tin, a.output_tokens AS tout, a.cost AS cost, "
        "a.latency_ms AS ms, a.response AS response, a.performance AS performance",
        q=qid,
    )
    return {r["llm"]: r for r in rows}


def test_routed_call_goes_to_the_routers_pick_and_is_recorded(world):
    text = "How many prime numbers are below 30?"
    expected = world.gw.router.service.route("user-0001", text, "math")
    raw = client(world).chat.completions.with_raw_response.create(
        model="prouter", messages=ask(text), user="user-0001", metadata={"task": "math"}
    )
    done = raw.parse()
    best = expected.best.llm_id
    assert done.model == best and raw.headers["x-prouter-llm"] == best
    assert done.choices[0].message.content == answer_text(f"up-{best}", text)
    assert raw.headers["x-prouter-model-version"] == world.gw.router.version
    assert raw.headers["x-prouter-rank"] == "1" and raw.headers["x-prouter-task"] == "math"
    assert float(raw.headers["x-prouter-utility"]) == pytest.approx(expected.best.utility, rel=1e-4)
    assert done.id == raw.headers["x-prouter-response-id"]
    assert world.upstream.calls[-1] == (f"up-{best}", False)

    qid = query_id(text)
    rows = answered(world, qid)
    assert set(rows) == {best}
    row = rows[best]
    assert row["status"] == "ok" and row["response"] == done.choices[0].message.content
    assert (row["tin"], row["tout"]) == (done.usage.prompt_tokens, done.usage.completion_tokens)
    assert row["cost"] == pytest.approx((row["tin"] * PRICE_IN + row["tout"] * PRICE_OUT) / 1000)
    assert row["ms"] > 0
    routed = world.graph(
        "MATCH (u:User)-[r:ROUTED_TO]->(l:LLM) WHERE r.query_id = $q "
        "RETURN u.id AS user, l.id AS llm, r.rank AS rank, r.model_version AS v, r.score AS s "
        "ORDER BY rank",
        q=qid,
    )
    assert [r["llm"] for r in routed] == [r.llm_id for r in expected.ranking]
    assert {(r["user"], r["v"]) for r in routed} == {("user-0001", world.gw.router.version)}
    assert [r["s"] for r in routed] == pytest.approx([r.utility for r in expected.ranking], 1e-5)
    query = world.graph(
        "MATCH (u:User)-[:ASKED]->(q:Query)-[:OF_TASK]->(t:Task) WHERE q.id = $q "
        "RETURN u.id AS user, q.text AS text, q.embedding AS emb, t.id AS task",
        q=qid,
    )
    assert len(query) == 1 and query[0]["user"] == "user-0001" and query[0]["text"] == text
    assert query[0]["task"] == "math" and len(query[0]["emb"]) == world.embedder.dim


def test_an_explicit_llm_passes_through_and_unknown_models_are_404(world):
    llm = sorted(world.upstreams)[-1]
    text = "Summarise the plot of Hamlet in one line"
    done = client(world).chat.completions.create(model=llm, messages=ask(text), user="walk-in")
    assert done.model == llm and done.choices[0].message.content == answer_text(f"up-{llm}", text)
    assert world.upstream.calls[-1] == (f"up-{llm}", False)
    qid = query_id(text)
    assert set(answered(world, qid)) == {llm}
    assert world.graph("MATCH ()-[r:ROUTED_TO]->() WHERE r.query_id = $q RETURN r", q=qid) == []
    emb = world.graph("MATCH (q:Query) WHERE q.id = $q RETURN q.embedding AS e", q=qid)
    assert len(emb[0]["e"]) == world.embedder.dim  # embedded by the recorder, off the path
    with pytest.raises(openai.NotFoundError) as err:
        client(world).chat.completions.create(model="no-such-llm", messages=ask("hi"))
    assert "unknown model" in str(err.value)
    with pytest.raises(openai.NotFoundError):
        client(world).chat.completions.create(model="prouter:v-not-loaded", messages=ask("hi"))
    listed = {m.id for m in client(world).models.list()}
    assert listed == {"prouter", f"prouter:{world.gw.router.version}", *world.upstreams}


def test_streaming_relays_the_answer_and_records_its_usage(world):
    text = "Write a haiku about graphs"
    expected = world.gw.router.service.route("user-0002", text, None)
    with client(world).chat.completions.with_streaming_response.create(
        model="prouter", messages=ask(text), user="user-0002", stream=True
    ) as raw:
        headers = raw.headers
        chunks = list(raw.parse())
    best = expected.best.llm_id
    assert headers["x-prouter-llm"] == best
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content.strip() == answer_text(f"up-{best}", text)
    assert {c.model for c in chunks} == {best}
    assert {c.id for c in chunks} == {headers["x-prouter-response-id"]}
    assert all(c.usage is None for c in chunks)  # not asked for: the usage chunk is not relayed
    row = answered(world, query_id(text))[best]
    assert row["status"] == "ok" and row["response"].strip() == content.strip()
    assert row["tout"] == len(answer_text(f"up-{best}", text).split())
    # asked for: relayed
    stream = client(world).chat.completions.create(
        model="prouter",
        messages=ask(text),
        user="user-0002",
        stream=True,
        stream_options={"include_usage": True},
    )
    usages = [c.usage for c in stream if c.usage is not None]
    assert len(usages) == 1 and usages[0].completion_tokens == row["tout"]


@pytest.mark.parametrize("failure", ["500", "slow"])
@pytest.mark.parametrize("stream", [False, True])
def test_upstream_failure_falls_back_to_the_next_ranked(world, failure, stream):
    text = f"Fallback question ({failure}, stream={stream})"
    ranking = [r.llm_id for r in world.gw.router.service.route("user-0003", text, "qa").ranking]
    world.upstream.behaviour[f"up-{ranking[0]}"] = failure
    try:
        raw = client(world).chat.completions.with_raw_response.create(
            model="prouter",
            messages=ask(text),
            user="user-0003",
            metadata={"task": "qa"},
            stream=stream,
        )
        done = raw.parse()
        if stream:
            content = "".join(c.choices[0].delta.content or "" for c in done if c.choices)
        else:
            content = done.choices[0].message.content
    finally:
        world.upstream.behaviour.clear()
    assert raw.headers["x-prouter-llm"] == ranking[1] and raw.headers["x-prouter-rank"] == "2"
    assert raw.headers["x-prouter-attempts"] == "2"
    assert content.strip() == answer_text(f"up-{ranking[1]}", text)
    rows = answered(world, query_id(text))
    kind = "http 500" if failure == "500" else "timeout"
    assert rows[ranking[0]]["status"] == kind and rows[ranking[0]]["tin"] is None
    assert rows[ranking[1]]["status"] == "ok"


def test_all_upstreams_failing_is_a_502_with_every_failure_recorded(world):
    text = "Nobody can answer this"
    ranking = [r.llm_id for r in world.gw.router.service.route("user-0000", text, "qa").ranking]
    for llm in ranking:
        world.upstream.behaviour[f"up-{llm}"] = "500"
    try:
        with pytest.raises(openai.APIStatusError) as err:
            client(world).chat.completions.create(
                model="prouter", messages=ask(text), user="user-0000", metadata={"task": "qa"}
            )
    finally:
        world.upstream.behaviour.clear()
    assert err.value.status_code == 502 and "every upstream failed" in str(err.value)
    rows = answered(world, query_id(text))
    assert set(rows) == set(ranking[: world.gw.max_attempts])  # bounded
    assert {r["status"] for r in rows.values()} == {"http 500"}


def test_an_upstream_refusal_is_passed_on_without_fallback(world):
    llm = sorted(world.upstreams)[0]
    world.upstream.behaviour[f"up-{llm}"] = "400"
    calls = len(world.upstream.calls)
    try:
        with pytest.raises(openai.BadRequestError) as err:
            client(world).chat.completions.create(model=llm, messages=ask("refuse me"))
    finally:
        world.upstream.behaviour.clear()
    assert "bad request upstream" in str(err.value) and len(world.upstream.calls) == calls + 1
