"""Clear one-line errors instead of tracebacks (issue #14 item 10).

Inputs that used to crash the reader or the store (a token count of 10^30, a
timestamp past year 9999 in UTC, a lone surrogate) are line-numbered
rejections, so ``--skip-invalid`` still loads the rest; training or routing on
an empty graph says so; an embedding cache that cannot be written (read-only
file system) is skipped with a warning.
"""

from __future__ import annotations

import logging
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from reliability_helpers import ANSWER, OTHER, is_empty, write_jsonl

from gnn.pipeline import train_and_record
from gnn.serving import RoutingService
from graphdb.ingest import ingest_files, write_tables
from graphdb.store import open_store
from graphdb.tables import embedding_array
from prcore.errors import ProuterError, ValidationError
from prouter.cli import cli
from workloads.embeddings import Embedder
from workloads.synthetic import generate

BAD = [
    ({"input_tokens": 10**30}, "input_tokens", "must be at most"),
    ({"output_tokens": "1e30"}, "output_tokens", "must be at most"),
    ({"input_tokens": 10**400}, "input_tokens", "is too large"),
    ({"cost": 10**400}, "cost", "is too large"),
    (
        {"timestamp": "9999-12-31T23:59:59-05:00"},
        "timestamp",
        "'9999-12-31T23:59:59-05:00' is out of range (years 1970 to 2200)",
    ),
    (
        {"timestamp": "0001-01-01T00:00:00+05:00"},
        "timestamp",
        "'0001-01-01T00:00:00+05:00' is out of range (years 1970 to 2200)",
    ),
    ({"query_text": "bad \ud800 text"}, "query_text", "is not valid Unicode (lone surrogate"),
    ({"llm_id": "m\udfff"}, "llm_id", "is not valid Unicode (lone surrogate"),
]


@pytest.mark.parametrize(("change", "field", "message"), BAD, ids=lambda v: ascii(v)[:40])
def test_crashing_values_are_line_numbered_rejections(store, tmp_path, change, field, message):
    path = write_jsonl(tmp_path / "in.jsonl", [OTHER, ANSWER | change])
    with pytest.raises(ValidationError) as info:
        ingest_files(store, [path])
    assert f"{path}, line 2, field {field!r}: {message}" in str(info.value)
    assert is_empty(store)
    report = ingest_files(store, [path], skip_invalid=True, report_path=tmp_path / "r.jsonl")
    assert (report.records_loaded, report.records_rejected) == (1, 1)
    assert store.node_ids("Query") == ["q2"]


# What training or routing on a graph with nothing to learn from says.
EMPTY = (
    "no query with outcomes (ANSWERED_BY), decisions (CHOSE) or judgements (PREFERRED) in the graph"
)


def test_cli_prints_the_rejection_not_a_traceback(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [ANSWER | {"query_text": "\ud800"}])
    store = f"ladybug:{tmp_path / 'g.lbug'}"
    result = CliRunner().invoke(cli, ["--store", store, "ingest", "canonical", str(path)])
    assert result.exit_code == 1 and "lone surrogate" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_training_on_an_empty_graph_says_so(store, tmp_path):
    with pytest.raises(ProuterError, match="^" + re.escape(EMPTY)):
        train_and_record(store, seed=0, model_dir=tmp_path / "models", config={"epochs": 1})


def test_cli_train_on_an_empty_graph_is_one_line(tmp_path):
    store = f"ladybug:{tmp_path / 'g.lbug'}"
    args = ["--store", store, "train", "--model-dir", str(tmp_path / "m")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert result.output.strip() == f"Error: {EMPTY}"


class _Embedder:
    """Deterministic stand-in text embeddings of the trained width (no model download)."""

    model_id = "stand-in"

    def __init__(self, dim: int) -> None:
        self.dim = dim

    def embed(self, texts, progress=True):  # type: ignore[no-untyped-def]
        rng = np.random.default_rng(len(texts))
        return rng.normal(size=(len(texts), self.dim)).astype(np.float32)


def test_routing_with_a_model_on_an_empty_graph_says_so(tmp_path):
    dim = 16
    workload = generate(n_queries=60, n_users=3, n_llms=3, users_per_query=2, seed=2)
    tables = workload.tables(embedding_dim=dim)
    rng = np.random.default_rng(0)
    tables["LLM"] = tables["LLM"].append_column(
        "embedding", embedding_array(rng.normal(size=(3, dim)))
    )
    with open_store(f"ladybug:{tmp_path / 'trained.lbug'}") as trained:
        write_tables(trained, tables)
        version = train_and_record(
            trained, seed=0, model_dir=tmp_path / "m", config={"epochs": 2, "hidden": 8}
        ).version
    with (
        open_store(f"ladybug:{tmp_path / 'empty.lbug'}") as empty,
        pytest.raises(ProuterError) as info,
    ):
        RoutingService(empty, _Embedder(dim), model_dir=tmp_path / "m", version=version)
    assert "\n" not in str(info.value)
    assert EMPTY in str(info.value)


def _read_only_dir(tmp_path: Path) -> Path | None:
    """A real read-only file system (a tmpfs mounted ro), or None where mounting is not allowed."""
    target = tmp_path / "ro"
    target.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(target)],
        capture_output=True,
        check=False,
    )
    return target if done.returncode == 0 else None


@pytest.mark.parametrize("where", ["read-only-fs", "parent-is-a-file"])
def test_an_unwritable_embedding_cache_falls_back_to_no_cache(tmp_path, caplog, where):
    if where == "read-only-fs":
        folder = _read_only_dir(tmp_path)
        if folder is None:
            pytest.skip("cannot mount a read-only tmpfs here (needs root)")
        cache = folder / "cache" / "embeddings.sqlite"
    else:
        (tmp_path / "file").write_text("not a folder")
        cache = tmp_path / "file" / "embeddings.sqlite"
    try:
        embedder = Embedder(cache_path=cache)
        with caplog.at_level(logging.WARNING, logger="workloads.embeddings"):
            first = embedder.embed(["what is 2+2?", "hello"], progress=False)
            again = embedder.embed(["what is 2+2?"], progress=False)
    finally:
        if where == "read-only-fs":
            subprocess.run(["umount", str(tmp_path / "ro")], check=False)
    assert first.shape[0] == 2 and np.allclose(again[0], first[0], atol=1e-5)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and f"cannot use the embedding cache {str(cache)!r}" in warnings[0]
    assert "embeddings are not cached" in warnings[0]
