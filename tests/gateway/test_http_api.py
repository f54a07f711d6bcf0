"""/route, /health and refusals: the service's answers, JSON errors, nothing recorded."""

from __future__ import annotations

import http.client
import json
import socket
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest


def call(
    base: str,
    path: str,
    payload: object = None,
    *,
    raw: bytes | None = None,
    method: str | None = None,
    headers: dict | None = None,
):  # type: ignore[no-untyped-def]
    """(status, JSON body) of a request to the gateway."""
    data = raw if raw is not None else None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(
        base + path,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def declare_only(base: str, path: str, length: int):  # type: ignore[no-untyped-def]
    """(status, JSON body) of a POST that declares a ``length``-byte body and sends none:
    a body over the limit is refused from its Content-Length, before it is read (sending
    it would race the server closing the connection: a broken pipe on a loaded machine)."""
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.putrequest("POST", path)
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(length))
        conn.endheaders()
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_health_describes_the_model(world):
    status, body = call(world.base, "/health")
    assert status == 200 and body["model_version"] == world.gw.router.version
    assert body["llms"] == world.gw.router.service.router.llm_ids and body["users"] == 4
    assert body["upstreams"] == sorted(world.upstreams)


def test_concurrent_routes_get_the_same_answers_as_the_service(world):
    service = world.gw.router.service
    texts = [*sorted(world.embedder.known)[:6], "a brand new question", "another one"]
    requests = [
        {"user": user, "query": text, **({"task": "math"} if i % 3 == 0 else {})}
        for i, (user, text) in enumerate(
            (u, t) for t in texts for u in ("user-0000", "user-0002", "newcomer")
        )
    ]
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda r: call(world.base, "/route", r), requests * 2))
    for request, (status, body) in zip(requests * 2, answers, strict=True):
        assert status == 200, body
        direct = service.route(request["user"], request["query"], request.get("task"))
        expected = json.loads(json.dumps(direct.to_dict()))
        assert [r["llm_id"] for r in body["ranking"]] == [r["llm_id"] for r in expected["ranking"]]
        assert [r["utility"] for r in body["ranking"]] == pytest.approx(
            [r["utility"] for r in expected["ranking"]], abs=1e-5
        )
        assert body["explanation"]["message"] == expected["explanation"]["message"]
    status, body = call(world.base, "/route", {"user": "user-0000", "query": texts[0], "top": 2})
    assert status == 200 and [r["rank"] for r in body["ranking"]] == [1, 2]


def counts(world) -> dict[str, int]:  # type: ignore[no-untyped-def]
    world.gw.recorder.flush()
    with world.access(read_only=True) as store:
        return store.counts()


def test_refused_requests_are_json_errors_and_record_nothing(world):
    before = counts(world)
    big = json.dumps({"user": "u", "query": "x" * (world.gw.max_body + 10)}).encode()
    deep = b'{"user": "u", "query": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    chat = "/v1/chat/completions"
    cases = [
        ("/route", None, b"{not json", None, 400, "not valid JSON"),
        ("/route", {"query": "hi"}, None, None, 400, "'user' is required"),
        ("/route", {"user": "u", "query": "hi", "colour": 1}, None, None, 400, "unknown fields"),
        ("/route", {"user": "u", "query": "hi", "top": -1}, None, None, 400, "'top' must be"),
        ("/route", {"user": "u", "query": "hi", "task": "poetry"}, None, None, 400, "unknown task"),
        ("/route", None, b'{"user": "u", "query": "\\ud800"}', None, 400, "not valid Unicode"),
        ("/route", None, deep, None, 400, "JSON"),
        (chat, None, b"[1, 2", None, 400, "not valid JSON"),
        (chat, {"model": "prouter"}, None, None, 400, "'messages'"),
        (
            chat,
            {"model": "prouter", "messages": [{"role": "user", "content": "hi"}], "stream": "yes"},
            None,
            None,
            400,
            "'stream'",
        ),
        (
            chat,
            {"model": "prouter", "messages": [{"role": "user", "content": "\ud800"}]},
            None,
            None,
            400,
            "not valid Unicode",
        ),
        ("/nowhere", {"user": "u"}, None, None, 404, "no endpoint"),
        ("/route", None, None, "GET", 405, "use POST /route"),
        ("/v1/models", None, b"{}", "POST", 405, "use GET"),
        ("/route", None, None, "PATCH", 405, "use POST"),
        (
            "/feedback",
            {"response_id": "chatcmpl-nope", "thumbs": "up"},
            None,
            None,
            404,
            "no served",
        ),
        ("/feedback", {"thumbs": "up", "rating": 3}, None, None, 400, "exactly one"),
    ]
    for path, payload, raw, method, code, message in cases:
        if payload is not None and "\ud800" in json.dumps(payload):
            raw = json.dumps(payload).encode()  # JSON escapes the lone surrogate
        status, body = call(world.base, path, payload, raw=raw, method=method)
        assert (status, body["status"]) == (code, code), (path, payload, body)
        assert message in body["error"]["message"], (path, body)
    for path in ("/route", "/v1/chat/completions"):
        status, body = declare_only(world.base, path, len(big))
        assert (status, body["status"]) == (413, 413) and "at most" in body["error"]["message"]
    assert counts(world) == before


def test_an_internal_error_is_a_500_that_does_not_echo_internals(world):
    service = world.gw.router.service

    class Broken:
        def embed(self, texts, progress=True):  # type: ignore[no-untyped-def]
            raise RuntimeError("secret internal detail")

    real, service.embedder = service.embedder, Broken()
    try:
        status, body = call(world.base, "/route", {"user": "u", "query": "explode please"})
    finally:
        service.embedder = real
    assert status == 500 and "secret" not in json.dumps(body)
    assert call(world.base, "/health")[0] == 200  # still serving


def test_a_half_sent_body_times_out(world):
    host, port = world.base.removeprefix("http://").split(":")
    old, world.gw.read_timeout = world.gw.read_timeout, 0.5
    try:
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(
                b"POST /route HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b'Content-Length: 100\r\n\r\n{"user"'
            )
            reply = sock.recv(4096).decode()
    finally:
        world.gw.read_timeout = old
    assert reply.startswith("HTTP/1.1 408") and "not received within" in reply


def test_route_cli_asks_a_running_gateway_and_falls_back_when_unreachable(world, tmp_path):
    from click.testing import CliRunner

    from prouter.cli import cli

    text = sorted(world.embedder.known)[0]
    runner = CliRunner()
    args = ["route", "--server", world.base, "--user", "user-0000", "--task", "math"]
    got = runner.invoke(cli, [*args, "--json", "--top", "0", text])
    assert got.exit_code == 0, got.output
    direct = world.gw.router.service.route("user-0000", text, "math")
    body = json.loads(got.stdout)
    assert [r["llm_id"] for r in body["ranking"]] == [r.llm_id for r in direct.ranking]
    shown = runner.invoke(cli, [*args, text])
    assert shown.exit_code == 0 and direct.best.llm_id in shown.stdout.splitlines()[2]
    assert direct.explanation.message in shown.stdout
    refused = runner.invoke(
        cli, ["route", "--server", world.base, "--user", "u", "--task", "x", "q"]
    )
    assert refused.exit_code == 1 and "unknown task 'x'" in refused.output
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"  # nothing listens there
    env = {"PROUTER_SERVER": dead}
    local = runner.invoke(
        cli,
        [
            "--store",
            f"ladybug:{tmp_path / 'empty.lbug'}",
            "route",
            "--user",
            "u",
            "--model-dir",
            str(tmp_path),
            "q",
        ],
        env=env,
    )
    assert "not reachable" in local.output and "routing locally" in local.output
    assert local.exit_code == 1 and "no LadybugDB database" in local.output  # the local path ran


def test_half_sent_headers_are_cut_off_and_complete_ones_served():
    from gateway_support import serving
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from prouter.gateway.protocol import header_timeout_protocol

    app = Starlette(routes=[Route("/", lambda request: PlainTextResponse("hi"))])
    with serving(app, http=header_timeout_protocol(0.5)) as base:
        host, port = base.removeprefix("http://").split(":")
        held = []
        for _ in range(20):
            sock = socket.create_connection((host, int(port)), timeout=10)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # never finished
            held.append(sock)
        for sock in held:
            assert sock.recv(1024) == b""  # closed by the server, not by our 10 s timeout
            sock.close()
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(1024).startswith(b"HTTP/1.1 200")
            sock.sendall(b"GET / HTTP/1.1\r\nHo")  # a second request on the same connection
            assert sock.recv(1024) == b""
