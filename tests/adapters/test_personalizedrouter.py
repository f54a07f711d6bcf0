"""PersonalizedRouter query pool adapter on the real files."""

from __future__ import annotations

import pytest

from prcore.errors import ValidationError
from workloads.adapters.base import load
from workloads.adapters.personalizedrouter import load_personalizedrouter, query_id


def test_query_pool_and_llm_pool(store, personalizedrouter_dir):
    result = load_personalizedrouter(personalizedrouter_dir)
    assert len(result.records) == 240
    report = load(store, result)
    assert report.duplicates_merged == 3
    counts = store.counts()
    assert (counts["Task"], counts["Query"], counts["LLM"], counts["OF_TASK"]) == (4, 237, 10, 237)
    llms = {r["id"]: r for r in store.export_nodes("LLM").to_pylist()}
    assert llms["LLaMA-3 (70b)"]["input_price"] == 0.9
    assert {r["input_price"] for r in llms.values()} == {0.2, 0.6, 0.9}
    assert all(r["description"] and "\n" not in r["description"] for r in llms.values())
    tasks = {r["id"] for r in store.export_nodes("Task").to_pylist()}
    assert tasks == {"alpaca_data", "GSM8K", "multi_news", "SQUAD"}


def test_v2_pool_and_stable_ids(personalizedrouter_dir):
    result = load_personalizedrouter(personalizedrouter_dir, llm_pool="v2")
    assert "Ministral-8b" in result.llms.column("id").to_pylist()
    assert query_id("SQUAD", "Who?") == query_id("SQUAD", "Who?") != query_id("SQUAD", "Why?")
    with pytest.raises(ValidationError, match="valid pools: v1, v2"):
        load_personalizedrouter(personalizedrouter_dir, llm_pool="v3")
