"""The two ways in from outside: the webserver's GraphQL API and ``dagster asset materialize``."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from dagster_test_support import EXPECTED_ASSETS, FEW_SHOT, TRAINING, WORKLOAD

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A clean environment: a temporary DAGSTER_HOME and a store under ``tmp_path``."""
    home = tmp_path / "dagster-home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEO4J_", "PROUTER_"))}
    return (
        env
        | {
            "DAGSTER_HOME": str(home),
            "PROUTER_STORE": f"ladybug:{tmp_path / 'graph.lbug'}",
            "PROUTER_MODEL_DIR": str(tmp_path / "models"),
            "PROUTER_EMBEDDING_MODEL": "hashing",
            "PROUTER_DEVICE": "cpu",
            "OPENBLAS_NUM_THREADS": "1",
        }
        | extra
    )


def _graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_webserver_lists_the_assets_over_graphql(tmp_path):
    port = _free_port()
    proc = subprocess.Popen(
        [BIN / "dagster-webserver", "-m", "dagster_project", "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO,
        env=_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, so the code server goes with it
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                assert time.monotonic() < deadline, "the webserver did not answer in 120 s"
                time.sleep(0.5)
        nodes = _graphql(
            port, "{ assetNodes { assetKey { path } dependencyKeys { path } jobNames } }"
        )["data"]["assetNodes"]
        by_key = {"/".join(n["assetKey"]["path"]): n for n in nodes}
        assert set(by_key) == EXPECTED_ASSETS
        assert [d["path"] for d in by_key["trained_model"]["dependencyKeys"]] == [
            ["training_subgraph"]
        ]
        assert "retrain_job" in by_key["trained_model"]["jobNames"]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        for _ in range(50):  # the code server child may exit just after its parent
            if not _group_alive(proc.pid):
                break
            time.sleep(0.2)
    assert proc.returncode is not None
    assert not _group_alive(proc.pid), "a webserver process was left running"


@pytest.mark.slow
def test_cli_materialises_the_pipeline(backend, tmp_path):
    extra = {}
    if backend.name == "neo4j":  # credentials only through the environment
        extra = {
            "PROUTER_STORE": "neo4j",
            "NEO4J_URI": backend.url,
            "NEO4J_USERNAME": backend.username,
            "NEO4J_PASSWORD": backend.password,
        }
    config = {
        "ops": {
            "interaction_sources": {"config": WORKLOAD},
            "trained_model": {"config": TRAINING},
            "few_shot_evaluation": {"config": FEW_SHOT},
        }
    }
    done = subprocess.run(
        [
            BIN / "dagster",
            "asset",
            "materialize",
            "-m",
            "dagster_project",
            "--select",
            "*router_report",
            "--config-json",
            json.dumps(config),
        ],
        cwd=REPO,
        env=_env(tmp_path, **extra),
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "RUN_SUCCESS" in output
    if backend.password:
        assert backend.password not in output
    store_url = backend.url if backend.name == "neo4j" else f"ladybug:{tmp_path / 'graph.lbug'}"
    from graphdb.store import open_store

    with open_store(store_url, username=backend.username, password=backend.password) as store:
        counts = store.counts()
    assert counts["Query"] == WORKLOAD["synthetic_queries"]
    assert counts["RouterModel"] == 1
    # general: one per user; few-shot: one held-out user and every user (new LLM), per k.
    n_users = WORKLOAD["synthetic_users"]
    assert counts["EVALUATED"] == n_users + len(FEW_SHOT["shots"]) * (1 + n_users)
    k = min(3, WORKLOAD["synthetic_llms"])  # the default top-k of the write-back
    assert counts["ROUTED_TO"] > 0 and counts["ROUTED_TO"] % k == 0
    assert len(list((tmp_path / "models" / "reports").glob("gnn-*.md"))) == 1
