"""The protocol's paired comparison against global Bradley-Terry: per vote on the same
votes, pooled over the seeds, with a standard error (whether a router wins or loses by
more than the votes' noise; the seeds' spread of the means cannot tell)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from preference_support import ingest_mtbench

from gnn.data import load_routing_data
from gnn.preference.protocol import compare_on_preferences
from graphdb.store import open_store


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("paired")
    with open_store(f"ladybug:{tmp / 'g.lbug'}") as store:
        ingest_mtbench(store, tmp, n_questions=80, judges=6, contrarians=3)
        data = load_routing_data(store)
    return compare_on_preferences(data, ["bt", "bt_task", "bt_user"], [0, 1], shots=(0,))


def test_paired_differences_pool_the_seeds_votes(result):
    paired = result.paired()
    assert set(paired) == {"bt_task", "bt_user"}  # the reference is not compared to itself
    for name in paired:
        runs, ref = result.by_query[name], result.by_query["bt"]
        n = np.array([m.n for m in runs])
        for metric in ("accuracy", "log_loss"):
            pairs = zip(runs, ref, strict=True)
            gap = np.array([getattr(a, metric) - getattr(b, metric) for a, b in pairs])
            mean, se = paired[name][metric]
            assert mean == pytest.approx(float((gap * n).sum() / n.sum()), abs=1e-12)
            assert 0 < se < 1
    # Half the judges rank the LLMs the other way round: following each judge wins by
    # far more than the votes' noise.
    gain, se = paired["bt_user"]["accuracy"]
    assert gain > 3 * se


def test_paired_differences_are_printed_and_in_the_json(result):
    table = result.table()
    assert "paired against bt" in table and "bt_user" in table.split("paired against bt")[1]
    saved = json.loads(json.dumps(result.as_dict()))
    assert saved["paired_against_bt"]["bt_user"]["log_loss"] == pytest.approx(
        list(result.paired()["bt_user"]["log_loss"])
    )


def test_without_the_reference_nothing_is_paired(result):
    without = replace(result, votes={k: v for k, v in result.votes.items() if k != "bt"})
    assert without.paired() == {} and "paired against" not in without.table()
