"""LLMs and tasks without a description get an embedding of a text made from their id,
flagged ``description_inferred``; a real description replaces it. Both backends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from graphdb.store import GraphStore, open_store
from prouter.cli import cli
from workloads.embeddings import Embedder, embed_graph, inferred_text

LLAMA = "meta-llama/Llama-2-70b-chat"


@pytest.mark.parametrize(
    ("label", "node_id", "text"),
    [
        ("LLM", LLAMA, "Llama 2 70b chat by meta-llama"),
        ("LLM", "gpt-3.5-turbo-1106", "gpt 3.5 turbo 1106"),
        ("LLM", "zero-one-ai/Yi-34B-Chat", "Yi 34B Chat by zero-one-ai"),
        ("LLM", "org/sub/model_v2", "model v2 by org/sub"),
        ("LLM", "/", "/"),
        ("Task", "mmlu-high_school_physics", "mmlu high school physics"),
        ("Task", "arc-challenge", "arc challenge"),
    ],
)
def test_inferred_text(label, node_id, text):
    assert inferred_text(label, node_id) == text


@pytest.fixture(scope="module")
def embedder(tmp_path_factory) -> Iterator[Embedder]:
    with Embedder(cache_path=tmp_path_factory.mktemp("cache") / "e.sqlite") as e:
        yield e


def _graph(store: GraphStore) -> None:
    store.write_nodes("Task", [{"id": "t1", "description": "Math word problems"}, {"id": "t-2"}])
    store.write_nodes("Query", [{"id": "q1", "text": "What is 12 times 7?"}])
    store.write_nodes("LLM", [{"id": "m1", "description": "A small model."}, {"id": LLAMA}])
    # Given (e.g. learned) embedding without a description: never replaced by an inferred one.
    store.write_nodes("LLM", {"id": ["given"], "embedding": [[0.5] * 384]})


def _nodes(store: GraphStore, label: str) -> dict[str, dict]:
    table = store.export_nodes(label, ["embedding", "description_inferred"])
    return {r["id"]: r for r in table.to_pylist()}


def test_embed_graph_infers_missing_descriptions(store, embedder):
    _graph(store)
    result = embed_graph(store, embedder, progress=False)
    assert result == {"Task": 2, "Query": 1, "LLM": 2}
    assert result.inferred == {"Task": ["t-2"], "LLM": [LLAMA]}
    llms, tasks = _nodes(store, "LLM"), _nodes(store, "Task")
    want = embedder.embed(["Llama 2 70b chat by meta-llama", "t 2"], progress=False)
    np.testing.assert_allclose(llms[LLAMA]["embedding"], want[0], atol=1e-6)
    np.testing.assert_allclose(tasks["t-2"]["embedding"], want[1], atol=1e-6)
    assert llms[LLAMA]["description_inferred"] is True
    assert llms["m1"]["description_inferred"] is False
    assert tasks["t1"]["description_inferred"] is False
    assert llms["given"]["embedding"] == pytest.approx([0.5] * 384)
    assert llms["given"]["description_inferred"] is None

    again = embed_graph(store, embedder, progress=False)
    assert again == {"Task": 0, "Query": 0, "LLM": 0} and again.inferred == {}

    # A real description arrives (a later ingest): it replaces the inferred embedding.
    store.write_nodes("LLM", [{"id": LLAMA, "description": "Meta's open 70B chat model."}])
    third = embed_graph(store, embedder, progress=False)
    assert third == {"Task": 0, "Query": 0, "LLM": 1} and third.inferred == {}
    llms = _nodes(store, "LLM")
    want = embedder.embed(["Meta's open 70B chat model."], progress=False)[0]
    np.testing.assert_allclose(llms[LLAMA]["embedding"], want, atol=1e-6)
    assert llms[LLAMA]["description_inferred"] is False


def test_cli_embed_says_which_were_inferred(tmp_path: Path):
    url = f"ladybug:{tmp_path / 'g.lbug'}"
    with open_store(url) as store:
        _graph(store)
    cache = tmp_path / "cache.sqlite"
    result = CliRunner().invoke(cli, ["--store", url, "embed", "--cache", str(cache)])
    assert result.exit_code == 0, result.output
    assert "LLM           2 embeddings written (1 inferred from the id: " + LLAMA in result.output
    assert "Task          2 embeddings written (1 inferred from the id: t-2)" in result.output


def test_a_store_made_before_the_flag_gets_it(tmp_path: Path, embedder):
    import ladybug

    from graphdb.queries import schema_statements

    path = tmp_path / "old.lbug"
    db = ladybug.Database(str(path))
    conn = ladybug.Connection(db)
    for statement in schema_statements("ladybug"):
        if not statement.startswith("ALTER"):
            conn.execute(statement.replace(", description_inferred BOOL", ""))
    conn.execute("CREATE (:LLM {id: $id})", {"id": LLAMA})
    conn.close()
    db.close()
    with open_store(f"ladybug:{path}") as store:
        assert embed_graph(store, embedder, progress=False).inferred == {"LLM": [LLAMA]}
        assert _nodes(store, "LLM")[LLAMA]["description_inferred"] is True


def test_inferred_note_names_at_most_ten():
    from prouter.commands.data import inferred_note

    assert inferred_note([]) == ""
    assert inferred_note(["a", "b"]) == " (2 inferred from the id: a, b)"
    many = [f"m{i}" for i in range(12)]
    assert inferred_note(many) == (
        " (12 inferred from the id: " + ", ".join(many[:10]) + " and 2 more)"
    )
