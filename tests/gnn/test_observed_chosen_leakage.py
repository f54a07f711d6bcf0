"""With outcomes observed only where users chose (`simulate cost-efficiency --observed
chosen`), the test queries keep all their outcomes to score routers: no router may read
them. The outcomes are changed in the graph itself and every router refitted."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import torch
from tests_gnn_support import build_store

from gnn.data import load_routing_data, split_queries
from gnn.experiment import router_registry
from gnn.routers.baselines import OUTCOME_BASELINES
from graphdb.store import open_store
from workloads.simulate import fixed_test_queries, hide_unchosen_outcomes, load_outcomes

ROUTERS = ["gnn", "gnn_nonpersonal", *OUTCOME_BASELINES]
CONFIG: dict[str, dict] = {
    "gnn": {"epochs": 30, "patience": 10, "hidden": 16},
    "gnn_nonpersonal": {"epochs": 30, "patience": 10, "hidden": 16},
    "mlp_outcomes": {"epochs": 30, "patience": 5},
    "mf_outcomes": {"epochs": 30, "patience": 5},
}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """The same chosen-only graph twice; in the second, every test outcome is changed."""
    urls = []
    for name in ("clean", "changed"):
        url = build_store(tmp_path_factory.mktemp(name), n_queries=160, n_users=4, seed=3)
        with open_store(url) as store:
            test = fixed_test_queries(store)
            hidden = hide_unchosen_outcomes(store, load_outcomes(store), test)
            assert hidden.removed > 0
            if name == "changed":
                edges = store.export_edges("ANSWERED_BY", ["performance", "cost"])
                on_test = np.isin(np.asarray(edges.column("src").to_pylist()), list(test))
                rng = np.random.default_rng(7)
                store.write_edges(
                    "ANSWERED_BY",
                    pa.table(
                        {
                            "src": edges.column("src").filter(pa.array(on_test)),
                            "dst": edges.column("dst").filter(pa.array(on_test)),
                            "performance": rng.random(int(on_test.sum())),
                            "cost": rng.random(int(on_test.sum())) * 0.01,
                        }
                    ),
                )
        urls.append(url)
    return urls


def test_training_queries_hold_only_chosen_outcomes(stores):
    with open_store(stores[0]) as store:
        data = load_routing_data(store)
    split = split_queries(data, seed=0)
    chosen = np.zeros(data.performance.shape, dtype=bool)
    chosen[data.dec_query, data.dec_llm] = True
    known = ~np.isnan(data.performance)
    assert (known[~split.test] == chosen[~split.test]).all()
    assert known[split.test].all()


@pytest.mark.parametrize("name", ROUTERS)
def test_no_router_reads_the_kept_test_outcomes(name, stores):
    scores, outcomes = [], []
    for url in stores:
        with open_store(url) as store:
            data = load_routing_data(store)
        split = split_queries(data, seed=0)
        router = router_registry()[name](seed=0, **CONFIG.get(name, {})).fit(data, split)
        idx = np.flatnonzero(split.test[data.dec_query])
        scores.append(router.score(data, data.dec_user[idx], data.dec_query[idx]))
        outcomes.append(data.performance[split.test])
    assert np.isfinite(outcomes[1]).all()
    assert not np.allclose(outcomes[1], outcomes[0])  # the test outcomes did change
    np.testing.assert_allclose(scores[1], scores[0], rtol=0, atol=1e-6)
