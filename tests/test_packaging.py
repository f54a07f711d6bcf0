"""The built wheel carries what the product needs at run time (named queries, schema DDL,
the Neo4j pom) and works from outside the repository."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.slow
def test_wheel_installs_and_serves_queries_and_schema_outside_the_repo(tmp_path):
    uv = (sys.executable, "-m", "uv")
    _run(*uv, "build", "--wheel", "--out-dir", str(tmp_path / "dist"), str(REPO), cwd=tmp_path)
    wheel = next((tmp_path / "dist").glob("personalized_router-*.whl"))
    venv = tmp_path / "venv"
    _run(*uv, "venv", "--python", sys.executable, str(venv), cwd=tmp_path)
    python = venv / "bin" / "python"
    _run(*uv, "pip", "install", "--python", str(python), "--no-deps", str(wheel), cwd=tmp_path)
    # The dependencies come from this environment's site-packages (a PYTHONPATH entry does
    # not run its .pth files, so the repository's editable install stays out of reach).
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROUTER_")}
    env["PYTHONPATH"] = sysconfig.get_paths()["purelib"]
    work = tmp_path / "elsewhere"
    work.mkdir()
    listed = _run(str(venv / "bin" / "prouter"), "cypher", "list", cwd=work, env=env)
    assert "similar_users" in listed and "latest_router_model" in listed
    script = (
        f"import graphdb, neo4j_local\n"
        "from graphdb.store import open_store\n"
        f"assert str(graphdb.__file__).startswith({str(venv)!r}), graphdb.__file__\n"
        "assert neo4j_local.POM.is_file(), neo4j_local.POM\n"
        "s = open_store('ladybug:g.lbug')\n"
        "s.apply_schema()\n"
        "print(s.query('llm_outcomes_by_task').num_rows)\n"
        "s.close()\n"
    )
    assert _run(str(python), "-c", script, cwd=work, env=env).strip() == "0"
