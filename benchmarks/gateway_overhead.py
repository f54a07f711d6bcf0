"""Gateway overhead: what `prouter serve` adds on top of the upstream, and recording throughput.

Builds the synthetic store of ``route_latency`` (real all-MiniLM-L6-v2
embeddings, a trained GNN), starts a fake OpenAI-compatible upstream (a
separate process answering at once) and ``prouter serve`` in front of it, then
sends ``model: "prouter"`` chat completions with new texts (every request is
embedded, routed, forwarded and recorded) from 1 and from ``--clients``
concurrent clients, then the same texts again (their vectors are in the
gateway's in-memory cache: what the gateway adds besides encoding a text).
The overhead of a request is its latency at the client minus the upstream's
latency as the gateway measured it
(``x-prouter-upstream-ms``); each scenario also reports the gateway process's user +
system CPU per request (what a request costs, less sensitive than latency to other
load on the machine). Also: warm ``POST /route``, a cold
``prouter route --server`` process, and how many served requests per second
the recorder writes to each backend (``--neo4j`` adds Neo4j).

    .venv/bin/python benchmarks/gateway_overhead.py
    .venv/bin/python benchmarks/gateway_overhead.py --clients 32 --requests 20 --neo4j
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, fresh_store_url
from route_latency import PROUTER, build, percentile, texts

UPSTREAM = """
import sys, uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
async def chat(request):
    body = await request.json()
    return JSONResponse({"id": "x", "object": "chat.completion", "created": 1,
        "model": body["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11}})
app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def load(base: str, clients: int, per_client: int, tag: str, path: str) -> tuple[list, float]:
    """(per-request (latency s, upstream ms), wall s) of ``clients`` sequential senders."""
    import httpx

    users = ["user-0000", "user-0001", "newcomer"]
    out: list[tuple[float, float]] = []
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=httpx.Limits()) as client:

        async def one(i: int) -> None:
            for text in texts(per_client, f"{tag}-{i}"):
                if path == "/route":
                    body = {"user": users[i % 3], "query": text}
                else:
                    body = {"model": "prouter", "user": users[i % 3],
                            "messages": [{"role": "user", "content": text}]}  # fmt: skip
                t0 = time.perf_counter()
                r = await client.post(path, json=body)
                elapsed = time.perf_counter() - t0
                r.raise_for_status()
                out.append((elapsed, float(r.headers.get("x-prouter-upstream-ms", 0.0))))

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(clients)))
    return out, time.perf_counter() - t0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (all its threads; NaN off Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def recording_rate(backend: str, n: int, llms: int) -> float:
    """Served requests per second the recorder writes into an empty store of ``backend``."""
    from contextlib import contextmanager

    from graphdb.store import open_store
    from prouter.gateway.recorder import Attempt, Recorder, Served

    with fresh_store_url(backend) as (url, user, password, _, _):
        kw = {"username": user, "password": password} if user else {}

        @contextmanager
        def opened():  # type: ignore[no-untyped-def]
            with open_store(url, **kw) as store:
                yield store

        recorder = Recorder(opened, interval=3600, max_batch=10**9)
        ts = time.strftime("%Y-%m-%dT%H:%M:%S+00:00")
        for i in range(n):
            recorder.submit(Served(
                ts=ts, user=f"user-{i % 50}", query_id=f"gw-{i}", text=f"query {i}", task="qa",
                embedding=[0.01 * (i % 7)] * 384, model_version="v1",
                ranking=[(f"llm-{m}", 0.5 - 0.1 * m) for m in range(llms)],
                attempts=[Attempt("llm-0", "ok", 20.0, 100, 200, 0.001, "answer")],
            ))  # fmt: skip
        t0 = time.perf_counter()
        written = recorder.flush()
        elapsed = time.perf_counter() - t0
        assert written == n, "the recording failed (see the log)"
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=300, help="synthetic queries")
    parser.add_argument("--llms", type=int, default=5, help="synthetic LLMs")
    parser.add_argument("--epochs", type=int, default=40, help="training epochs")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients")
    parser.add_argument("--requests", type=int, default=10, help="requests per client")
    parser.add_argument("--single", type=int, default=100, help="requests of the 1-client run")
    parser.add_argument("--record", type=int, default=2000, help="requests per recording run")
    parser.add_argument("--neo4j", action="store_true", help="also time recording into Neo4j")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="prouter-gateway-bench-"))
    procs: list[subprocess.Popen] = []
    try:
        t0 = time.perf_counter()
        url, model_dir = build(tmp, args.queries, 6, args.llms, args.epochs)
        print(f"built and trained a synthetic store in {time.perf_counter() - t0:.1f} s")
        port = free_port()
        procs.append(subprocess.Popen([sys.executable, "-c", UPSTREAM, str(port)]))
        from graphdb.store import open_store

        with open_store(url, read_only=True) as store:
            ups = {m: {"base_url": f"http://127.0.0.1:{port}/v1"} for m in store.node_ids("LLM")}
        (tmp / "upstreams.json").write_text(json.dumps({"llms": ups}))
        server = subprocess.Popen(
            [PROUTER, "--store", url, "serve", "--port", "0", "--model-dir", str(model_dir),
             "--upstreams", str(tmp / "upstreams.json"), "--keys", str(tmp / "none.json")],
            stdout=subprocess.PIPE, text=True, cwd=REPO,
            env=os.environ | {"PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        procs.append(server)
        line = server.stdout.readline()  # type: ignore[union-attr]
        match = re.search(r"http://[\d.]+:(\d+)", line)
        if not match:
            raise SystemExit(f"prouter serve did not start: {line!r}")
        base = f"http://127.0.0.1:{match.group(1)}"
        asyncio.run(load(base, 4, 5, "warm-up", "/v1/chat/completions"))

        rows = []
        for clients, per in ((1, args.single), (args.clients, args.requests)):
            for path in ("/v1/chat/completions", "/route"):
                for repeat in (False, True):  # new texts; the same texts again (cached vectors)
                    tag = f"{path}-{clients}"
                    cpu = cpu_seconds(server.pid)
                    got, wall = asyncio.run(load(base, clients, per, tag, path))
                    cpu = 1e3 * (cpu_seconds(server.pid) - cpu) / len(got)
                    over = [1e3 * s - up for s, up in got]
                    name = f"{path}, {clients} client(s), {'repeated' if repeat else 'new'} texts"
                    rows.append((name, len(got), percentile(over, 50), percentile(over, 99),
                                 len(got) / wall, cpu))  # fmt: skip
        cold = []
        for i in range(3):
            t0 = time.perf_counter()
            subprocess.run(
                [PROUTER, "route", "--server", base, "--user", "user-0000", "--json",
                 f"cold question {i}"], check=True, capture_output=True, cwd=REPO,
            )  # fmt: skip
            cold.append(time.perf_counter() - t0)
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=60)

        load_avg = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"\n{os.cpu_count()} CPUs, load average {load_avg}; gateway exited {code}")
        print("overhead = latency at the client - upstream latency (/route: the whole latency);")
        print("CPU = the gateway's user + system CPU per request (less sensitive to other load)")
        head = f"{'scenario':<52} {'requests':>8} {'p50 ms':>9} {'p99 ms':>9} {'req/s':>8}"
        head += f" {'CPU ms':>7}"
        print(head + "\n" + "-" * len(head))
        for name, n, p50, p99, rate, cpu in rows:
            print(f"{name:<52} {n:>8} {p50:>9.1f} {p99:>9.1f} {rate:>8.1f} {cpu:>7.1f}")
        print(f"cold `prouter route --server`: {', '.join(f'{c:.2f}' for c in cold)} s")
        for backend in ["ladybug"] + (["neo4j"] if args.neo4j else []):
            rate = recording_rate(backend, args.record, args.llms)
            print(
                f"recording into {backend}: {rate:.0f} served requests/s "
                f"({args.record} in one batch)"
            )
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
