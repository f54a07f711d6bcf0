"""`prouter serve` as a process: real embedder, SIGTERM flushes, a hard crash loses one window."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import openai
import pytest
from gateway_support import FakeUpstream, answer_text, serving
from test_http_api import call
from test_route import TRAIN, write_workload

from gnn.pipeline import train_and_record
from gnn.serving import RoutingService
from graphdb.store import open_store
from prouter.gateway.app import query_id

REPO = Path(__file__).resolve().parents[2]
PROUTER = str(Path(sys.executable).parent / "prouter")


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
        llms = store.node_ids("LLM")
    return url, tmp / "models", cache, llms


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen()
        except OSError:
            return False
        return True


def start(embedded, tmp: Path, upstream_base: str, *extra: str):  # type: ignore[no-untyped-def]
    url, model_dir, _, llms = embedded
    spec = {"llms": {m: {"base_url": upstream_base + "/v1", "model": f"up-{m}"} for m in llms}}
    (tmp / "upstreams.json").write_text(json.dumps(spec))
    proc = subprocess.Popen(
        [
            PROUTER,
            "--store",
            url,
            "serve",
            "--port",
            "0",
            "--model-dir",
            str(model_dir),
            "--upstreams",
            str(tmp / "upstreams.json"),
            "--keys",
            str(tmp / "none.json"),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    line = proc.stdout.readline()  # type: ignore[union-attr]
    match = re.search(r"on http://127\.0\.0\.1:(\d+) ", line)
    if not match:
        proc.kill()
        raise AssertionError(line + proc.stderr.read())  # type: ignore[union-attr]
    return proc, int(match.group(1))


def chat(port: int, text: str):  # type: ignore[no-untyped-def]
    c = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0)
    return c.chat.completions.create(
        model="prouter", messages=[{"role": "user", "content": text}], user="user-0001"
    )


def recorded(url: str, text: str) -> dict[str, int] | None:
    """ASKED / ANSWERED_BY / ROUTED_TO edges of the served query (None: the store is busy)."""
    try:
        with open_store(url, read_only=True) as store:
            q = {"q": query_id(text)}
            out = {}
            for rel, where in (
                ("ASKED", "d.id"),
                ("ANSWERED_BY", "s.id"),
                ("ROUTED_TO", "r.query_id"),
            ):
                rows = store.read(
                    f"MATCH (s)-[r:{rel}]->(d) WHERE {where} = $q RETURN count(r) AS n", q
                )
                out[rel] = rows.column(0)[0].as_py()
            return out
    except Exception:  # the server holds the file for a write: try again
        return None


@pytest.mark.slow
def test_prouter_serve_routes_answers_and_flushes_on_sigterm(embedded, tmp_path):
    from workloads.embeddings import Embedder

    url, model_dir, cache, llms = embedded
    upstream = FakeUpstream()
    with serving(upstream.app) as up:
        proc, port = start(embedded, tmp_path, up, "--record-interval", "60")
        try:
            base = f"http://127.0.0.1:{port}"
            request = {"user": "user-0001", "query": "Fix this Python regex that never matches"}
            status, body = call(base, "/route", request)
            assert status == 200, body
            with open_store(url, read_only=True) as store:
                direct = RoutingService(store, Embedder(cache_path=cache), model_dir=model_dir)
            expected = direct.route(request["user"], request["query"])
            assert [r["llm_id"] for r in body["ranking"]] == [r.llm_id for r in expected.ranking]
            assert [r["utility"] for r in body["ranking"]] == pytest.approx(
                [r.utility for r in expected.ranking], abs=1e-5
            )
            text = "Fix this Python regex that never matches, please"
            done = chat(port, text)
            assert done.choices[0].message.content == answer_text(f"up-{done.model}", text)
            proc.send_signal(signal.SIGTERM)  # before the 60 s window: only the shutdown writes
            assert proc.wait(timeout=60) == 0
            assert "stopped" in proc.stderr.read()  # type: ignore[union-attr]
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert recorded(url, text) == {"ASKED": 1, "ANSWERED_BY": 1, "ROUTED_TO": len(llms)}
    deadline = time.monotonic() + 5
    while not port_is_free(port) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert port_is_free(port)


@pytest.mark.slow
def test_a_hard_crash_loses_at_most_the_last_window_and_never_half_a_batch(embedded, tmp_path):
    url, _, _, llms = embedded
    full = {"ASKED": 1, "ANSWERED_BY": 1, "ROUTED_TO": len(llms)}
    upstream = FakeUpstream()
    with serving(upstream.app) as up:
        proc, port = start(embedded, tmp_path, up, "--record-interval", "0.2")
        try:
            chat(port, "Before the crash: what is 6 times 7?")
            deadline = time.monotonic() + 60
            while recorded(url, "Before the crash: what is 6 times 7?") != full:
                assert time.monotonic() < deadline, "not written within the window"
                time.sleep(0.2)
            chat(port, "At the crash: what is 6 times 8?")
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert recorded(url, "Before the crash: what is 6 times 7?") == full
    lost_or_whole = recorded(url, "At the crash: what is 6 times 8?")
    assert lost_or_whole in ({"ASKED": 0, "ANSWERED_BY": 0, "ROUTED_TO": 0}, full)
