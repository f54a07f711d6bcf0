"""Costs on votes-only queries: known, estimated (task mean / price x length) or unknown."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from preference_support import LLMS, ingest_mtbench

from gnn.cost_estimate import (
    CHARS_PER_TOKEN,
    ESTIMATED,
    KNOWN,
    OUTPUT_TOKENS,
    UNKNOWN,
    estimate_costs,
    query_text_chars,
)
from gnn.data import load_routing_data

PRICES = {"strong": (10.0, 30.0), "middle": (1.0, 2.0), "weak": (0.1, 0.2)}


def set_prices(store, prices) -> None:  # type: ignore[no-untyped-def]
    ids = list(prices)
    store.write_nodes(
        "LLM",
        {
            "id": ids,
            "input_price": [prices[m][0] for m in ids],
            "output_price": [prices[m][1] for m in ids],
        },
    )


@pytest.fixture
def voted(store, tmp_path):  # type: ignore[no-untyped-def]
    ingest_mtbench(store, tmp_path, n_questions=20, judges=2)
    return store


def test_votes_only_costs_are_estimated_from_prices_and_text_length(voted):
    set_prices(voted, PRICES)
    data = load_routing_data(voted)
    chars = query_text_chars(voted, data)
    assert np.isfinite(chars).all() and (chars > 0).all()
    est = estimate_costs(data, chars)
    assert est.counts() == {KNOWN: 0, ESTIMATED: 20, UNKNOWN: 0}
    assert est.methods() == {"price x length": 20}
    q = 3
    for m, llm in enumerate(data.llm_ids):
        tokens = math.ceil(chars[q] / CHARS_PER_TOKEN)
        expected = (tokens * PRICES[llm][0] + OUTPUT_TOKENS * PRICES[llm][1]) / 1e6
        assert est.cost[q, m] == pytest.approx(expected, rel=1e-9)
    longer = estimate_costs(data, chars * 10)
    assert (longer.cost > est.cost).all()  # input tokens grow with the text
    assert "estimated for 20 (20 from the price x length)" in est.note()


def test_one_unpriced_llm_leaves_every_cost_unknown(voted):
    set_prices(voted, {m: PRICES[m] for m in LLMS[:2]})
    data = load_routing_data(voted)
    est = estimate_costs(data, query_text_chars(voted, data))
    assert est.counts() == {KNOWN: 0, ESTIMATED: 0, UNKNOWN: 20}
    assert np.isnan(est.cost).all()
    assert estimate_costs(data, None).counts()[UNKNOWN] == 20  # no texts: unknown too
    assert "unknown for 20 (left out of the utility)" in est.note()


def test_mixed_graph_uses_the_task_mean_of_logged_costs(voted):
    """Queries with outcomes keep theirs; votes-only queries of a task with logged costs
    get each LLM's mean there; a task without logged costs falls back to the prices."""
    set_prices(voted, PRICES)
    data = load_routing_data(voted)
    cost = np.full_like(data.cost, np.nan)
    task0 = np.flatnonzero(data.query_task == 0)
    logged, votes_only = task0[:4], task0[4:]
    cost[logged] = np.arange(4)[:, None] + np.array([1.0, 2.0, 3.0])[None, :]
    mixed = replace(data, cost=cost)
    reference = np.zeros(len(cost), dtype=bool)
    reference[logged[:2]] = True  # the training queries
    est = estimate_costs(mixed, query_text_chars(voted, data), reference)
    assert (est.source[logged] == KNOWN).all()
    np.testing.assert_allclose(est.cost[logged], cost[logged])
    assert (est.source[votes_only] == ESTIMATED).all() and (
        est.method[votes_only] == "task mean"
    ).all()
    np.testing.assert_allclose(est.cost[votes_only], np.tile([1.5, 2.5, 3.5], (len(votes_only), 1)))
    other = data.query_task == 1
    assert (est.method[other] == "price x length").all()
    assert est.counts() == {KNOWN: 4, ESTIMATED: 16, UNKNOWN: 0}


def _trained(tmp_path, prices):  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from graphdb.store import open_store
    from prouter.cli import cli

    url = f"ladybug:{tmp_path / 'g.lbug'}"
    with open_store(url) as store:
        ingest_mtbench(store, tmp_path, n_questions=40, judges=4)
        if prices:
            set_prices(store, prices)
    model_dir = tmp_path / "models"
    args = ["--store", url, "train", "--epochs", "30", "--model-dir", str(model_dir)]
    trained = CliRunner().invoke(cli, args)
    assert trained.exit_code == 0, trained.output
    return url, model_dir


class _Embedder:
    def embed(self, texts, progress=True):  # type: ignore[no-untyped-def]
        return np.array([[1.0 if "math" in t else -1.0] + [0.0] * 7 for t in texts])


def test_route_on_a_votes_only_task_uses_estimated_costs_in_the_utility(tmp_path):
    from gnn.serving import RoutingService
    from graphdb.store import open_store
    from prcore.utility import utility

    url, model_dir = _trained(tmp_path, PRICES)
    with open_store(url) as store:
        service = RoutingService(store, _Embedder(), model_dir=model_dir)
    short = service.route("judge0", "a math question", "math")
    long = service.route("judge0", "a math question " + "with many words " * 50, "math")
    assert {r.cost_source for r in short.ranking} == {ESTIMATED}
    by_llm = {r.llm_id: r for r in short.ranking}
    assert by_llm["strong"].cost > by_llm["middle"].cost > by_llm["weak"].cost > 0
    assert by_llm["strong"].cost < {r.llm_id: r for r in long.ranking}["strong"].cost
    weight = short.explanation.quality_weight
    lo, hi = service._estimated_range[service.data.task_ids.index("math")]
    for r in short.ranking:
        norm = (r.cost - lo) / (hi - lo)
        assert r.utility == pytest.approx(utility(weight, r.performance, norm), abs=1e-6)
    assert [r.utility for r in short.ranking] == sorted(
        (r.utility for r in short.ranking), reverse=True
    )
    new = service.route("somebody-new", "a writing question", "writing")
    assert new.ranking[0].cost_source == ESTIMATED and new.ranking[0].cost is not None
    from prouter.commands.route import format_result

    assert any("costs estimated from the LLMs' prices" in line for line in format_result(short))


def test_route_without_prices_says_the_cost_is_unknown(tmp_path):
    from gnn.serving import RoutingService
    from graphdb.store import open_store

    url, model_dir = _trained(tmp_path, None)
    with open_store(url) as store:
        service = RoutingService(store, _Embedder(), model_dir=model_dir)
    result = service.route("judge0", "a math question", "math")
    assert all(r.cost is None and r.cost_source == UNKNOWN for r in result.ranking)
    assert result.to_dict()["ranking"][0]["cost_source"] == UNKNOWN
    from prouter.commands.route import format_result

    assert any("cost unknown" in line for line in format_result(result))


def test_evaluate_says_which_costs_were_known_estimated_or_unknown(tmp_path):
    import json

    from click.testing import CliRunner

    from graphdb.store import open_store
    from prouter.cli import cli

    url = f"ladybug:{tmp_path / 'g.lbug'}"
    with open_store(url) as store:
        ingest_mtbench(store, tmp_path, n_questions=30, judges=4)
    args = ["--store", url, "evaluate", "--routers", "bt", "--seeds", "0", "--shots", "0"]
    runner = CliRunner()
    unpriced = runner.invoke(cli, args)
    assert unpriced.exit_code == 0, unpriced.output
    assert "estimated for 0, unknown for 30 (left out of the utility)" in unpriced.output
    with open_store(url) as store:
        set_prices(store, PRICES)
    priced = runner.invoke(cli, [*args, "--json"])
    assert priced.exit_code == 0, priced.output
    costs = json.loads(priced.stdout)["costs"]
    assert costs == {
        "counts": {KNOWN: 0, ESTIMATED: 30, UNKNOWN: 0},
        "estimated_by": {"price x length": 30},
    }
    assert "`prouter route` uses the estimated costs" in json.loads(priced.stdout)["note"]
