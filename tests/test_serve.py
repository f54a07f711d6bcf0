"""The HTTP routing API: same answers as the service, clean errors, clean shutdown."""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from test_route import TRAIN, StandInEmbedder, write_workload

from gnn.pipeline import train_and_record
from gnn.serving import RoutingService
from graphdb.store import open_store
from prouter.http_api import make_server

REPO = Path(__file__).resolve().parent.parent


def call(base: str, path: str, payload: object = None, *, raw: bytes | None = None):  # type: ignore[no-untyped-def]
    """(status, JSON body) of a GET (no payload) or POST to the server."""
    data = raw if raw is not None else None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(
        base + path, data=data, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def port_is_free(port: int) -> bool:
    """Whether a new server could listen on ``port`` (no socket listens there any more)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as http.server does
        try:
            s.bind(("127.0.0.1", port))
            s.listen()
        except OSError:
            return False
        return True


def start(service: RoutingService):  # type: ignore[no-untyped-def]
    server = make_server(service, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A routing service on a small trained LadybugDB workload, behind a live server."""
    tmp = tmp_path_factory.mktemp("serve")
    with open_store(f"ladybug:{tmp / 'g.lbug'}") as store:
        write_workload(store)
        train_and_record(store, seed=0, model_dir=tmp / "models", config=TRAIN)
        embedder = StandInEmbedder(store)
        service = RoutingService(store, embedder, model_dir=tmp / "models")
    server, thread, base = start(service)
    yield service, base, sorted(embedder.known)
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_health_describes_the_model(served):
    service, base, _ = served
    status, body = call(base, "/health")
    assert status == 200
    assert body["status"] == "ok" and body["model_version"] == service.version
    assert body["llms"] == service.router.llm_ids and body["users"] == 4


def test_concurrent_requests_get_the_same_answers_as_the_service(served):
    service, base, texts = served
    requests = [
        {"user": user, "query": text, **({"task": "math"} if i % 3 == 0 else {})}
        for i, (user, text) in enumerate(
            (user, text)
            for text in [*texts[:8], "a brand new question", "another one"]
            for user in ("user-0000", "user-0002", "newcomer")
        )
    ]
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda r: call(base, "/route", r), requests * 2))
    for request, (status, body) in zip(requests * 2, answers, strict=True):
        assert status == 200, body
        direct = service.route(request["user"], request["query"], request.get("task"))
        assert body == json.loads(json.dumps(direct.to_dict()))
    assert {b["explanation"]["known_user"] for _, b in answers} == {True, False}
    status, body = call(base, "/route", {"user": "user-0000", "query": texts[0], "top": 2})
    assert status == 200 and [r["rank"] for r in body["ranking"]] == [1, 2]


def test_errors_are_json_with_the_right_status(served):
    service, base, _ = served
    cases = [
        ("/route", None, b"{not json", 400, "not valid JSON"),
        ("/route", {"query": "hi"}, None, 400, "'user' is required"),
        ("/route", {"user": "u", "query": "hi", "colour": 1}, None, 400, "unknown fields"),
        ("/route", {"user": "u", "query": "hi", "top": -1}, None, 400, "'top' must be"),
        ("/route", {"user": "u", "query": "hi", "task": "poetry"}, None, 400, "unknown task"),
        ("/nowhere", {"user": "u", "query": "hi"}, None, 404, "no endpoint"),
    ]
    for path, payload, raw, code, message in cases:
        status, body = call(base, path, payload, raw=raw)
        assert (status, body["status"]) == (code, code), (path, payload, body)
        assert message in body["error"]
    status, body = call(base, "/missing")
    assert status == 404 and "POST /route" in body["error"]
    status, body = call(base, "/route")
    assert status == 405

    class Broken:
        def embed(self, texts, progress=True):  # type: ignore[no-untyped-def]
            raise RuntimeError("model exploded")

    broken = copy.copy(service)
    broken.embedder = Broken()
    server, thread, other = start(broken)
    try:
        status, body = call(other, "/route", {"user": "u", "query": "hi"})
        assert status == 500 and body["error"] == "RuntimeError: model exploded"
        assert call(other, "/health")[0] == 200  # still serving
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert not thread.is_alive()
    assert port_is_free(server.server_address[1])


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    """A LadybugDB workload embedded with the real all-MiniLM-L6-v2 model, and trained."""
    from workloads.embeddings import Embedder, embed_graph

    tmp = tmp_path_factory.mktemp("serve-cli")
    url, cache = f"ladybug:{tmp / 'g.lbug'}", tmp / "cache.sqlite"
    with open_store(url) as store, Embedder(cache_path=cache) as embedder:
        write_workload(store, dim=None)
        embed_graph(store, embedder, progress=False)
        train_and_record(store, seed=0, model_dir=tmp / "models", config=TRAIN)
    return url, tmp / "models", cache


def test_prouter_serve_answers_and_stops_cleanly_on_sigterm(embedded):
    from workloads.embeddings import Embedder

    url, model_dir, cache = embedded
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "prouter"),
            "--store",
            url,
            "serve",
            "--port",
            "0",
            "--model-dir",
            str(model_dir),
            "--cache",
            str(cache),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        match = re.search(r"on http://127\.0\.0\.1:(\d+) ", line)
        assert match, line + proc.stderr.read()  # type: ignore[union-attr]
        port = int(match.group(1))
        base = f"http://127.0.0.1:{port}"
        request = {"user": "user-0001", "query": "Fix this Python regex that never matches"}
        status, body = call(base, "/route", request)
        assert status == 200, body
        with open_store(url, read_only=True) as store:
            direct = RoutingService(store, Embedder(cache_path=cache), model_dir=model_dir)
        expected = json.loads(json.dumps(direct.route(request["user"], request["query"]).to_dict()))
        assert [r["llm_id"] for r in body["ranking"]] == [r["llm_id"] for r in expected["ranking"]]
        assert body["explanation"] == expected["explanation"]
        assert [r["utility"] for r in body["ranking"]] == pytest.approx(
            [r["utility"] for r in expected["ranking"]], abs=1e-5
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert "stopped" in proc.stderr.read()  # type: ignore[union-attr]
        deadline = time.monotonic() + 5
        while not port_is_free(port) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert port_is_free(port)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
