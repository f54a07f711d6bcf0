"""New users and new LLMs join a trained router without retraining; checkpoints round-trip."""

from __future__ import annotations

import numpy as np
import pytest

from gnn.checkpoint import load_checkpoint, save_checkpoint
from gnn.evaluate import evaluate
from gnn.fewshot import (
    _without_llm,
    held_out_users,
    most_chosen_llm,
    new_llm_evaluation,
    new_user_baselines,
    new_user_evaluation,
    summarise_baselines,
    table,
)
from gnn.routers.baselines import BestLLMPerUserTaskRouter, KNNOutcomesRouter
from gnn.train import GNNRouter

FAST = {"epochs": 60, "patience": 20, "hidden": 32}


@pytest.fixture(scope="module")
def reference(routing_data, routing_split):
    return GNNRouter(seed=0, **FAST).fit(routing_data, routing_split)


def test_new_users_start_from_the_prior_and_learn_from_their_shots(
    reference, routing_data, routing_split
):
    data = routing_data
    users = held_out_users(data, seed=0)
    assert len(users) == 3
    result = new_user_evaluation(data, routing_split, reference, users, shots=(0, 1, 10))
    assert result.dropped_decisions == int(np.isin(data.dec_user, users).sum())
    assert np.isin(data.dec_user[result.idx], users).all()
    assert routing_split.test[data.dec_query[result.idx]].all()
    # Without shots, a held-out user is unknown: every one of them gets the same pick.
    zero = result.picks[0]
    for q in np.unique(data.dec_query[result.idx]):
        assert len(set(zero[data.dec_query[result.idx] == q].tolist())) == 1
    # Their own decisions make the picks personal.
    assert not np.array_equal(result.picks[10], zero)
    assert result.reference.reward == pytest.approx(
        np.mean(
            data.reward(data.dec_user[result.idx], data.dec_query[result.idx])[
                np.arange(len(result.idx)), result.reference_picks
            ]
        )
    )
    assert all(np.isfinite(result.reward_fraction(k)) for k in (0, 1, 10))


def test_baselines_onboard_new_users_with_the_same_shots(reference, routing_data, routing_split):
    """One logged reward fixes a cost-efficiency user's weight, so an outcome baseline
    given one decision routes exactly like itself trained with every user."""
    data = routing_data
    users = held_out_users(data, seed=0)
    result = new_user_evaluation(data, routing_split, reference, users, shots=(0, 1, 3))
    assert [len(result.shot_decisions[k]) for k in (0, 1, 3)] == [0, len(users), 3 * len(users)]
    assert np.isin(data.dec_user[result.shot_decisions[3]], users).all()
    routers = {
        cls.name: cls(seed=0).fit(data, routing_split)
        for cls in (BestLLMPerUserTaskRouter, KNNOutcomesRouter)
    }
    new_user_baselines(result, data, routing_split, routers)
    for name, router in routers.items():
        trained = router.route(data, data.dec_user[result.idx], data.dec_query[result.idx])
        ref = result.baseline_reference[name]
        assert ref.reward == pytest.approx(
            np.mean(
                data.reward(data.dec_user[result.idx], data.dec_query[result.idx])[
                    np.arange(len(result.idx)), trained
                ]
            )
        )
        assert result.baseline_fraction(name, 1) == pytest.approx(1.0, abs=1e-9)
        assert result.baselines[name][0] != ref  # at k = 0 they have the prior's weight
        # The routers themselves keep their trained weights.
        np.testing.assert_allclose(router.weights_.of(users), data.user_alpha[users], atol=0.05)
    summary = result.summary()["baselines"]
    assert summary["knn_outcomes"]["shots"][1]["of_trained"] == pytest.approx(1.0)
    means = summarise_baselines([result, result])
    assert means["best_llm_per_user_task"][3]["of_trained"] == pytest.approx((1.0, 0.0))
    assert "best_llm_per_user_task" in table([result])
    from gnn.fewshot import FewShotResult

    again = FewShotResult.from_plain(result.to_plain())
    assert again.baselines["knn_outcomes"][3] == result.baselines["knn_outcomes"][3]
    np.testing.assert_array_equal(again.shot_decisions[3], result.shot_decisions[3])


def test_a_new_llm_is_routed_to_after_a_few_outcomes(reference, routing_data, routing_split):
    data = routing_data
    llm = most_chosen_llm(data, routing_split)
    result = new_llm_evaluation(data, routing_split, reference, llm, shots=(0, 10))
    # Simulated users' decisions for the held-out LLM are re-made among the others.
    assert result.dropped_decisions == 0
    view = _without_llm(data, llm)
    assert len(view.dec_llm) == len(data.dec_llm) and not (view.dec_llm == llm).any()
    kept = data.dec_llm != llm
    np.testing.assert_array_equal(view.dec_llm[kept], data.dec_llm[kept])
    assert np.isnan(view.performance[:, llm]).all()
    trained = evaluate(reference, data, routing_split, "test")
    assert (result.reference.n, result.reference.reward) == (trained.n, trained.reward)
    assert (result.picks[10] == llm).any()
    assert not np.array_equal(result.picks[0], result.picks[10])


def test_checkpoint_state_round_trips(reference, routing_data, routing_split, tmp_path):
    data = routing_data
    save_checkpoint(tmp_path, "model", reference.state())
    state = load_checkpoint(tmp_path, "model")
    # Serving uses every decision in the graph; with only the training ones it is the same router.
    train = routing_split.train[data.dec_query]
    same_decisions = data.with_decisions(train)
    loaded = GNNRouter.from_state(state, same_decisions, device="cpu")
    idx = np.flatnonzero(routing_split.test[data.dec_query])[:200]
    users, queries = data.dec_user[idx], data.dec_query[idx]
    np.testing.assert_allclose(
        loaded.score(data, users, queries), reference.score(data, users, queries), atol=1e-5
    )


def test_predict_scores_new_query_texts_like_graph_queries(reference, routing_data, routing_split):
    data = routing_data
    idx = np.flatnonzero(routing_split.test[data.dec_query])[:50]
    users, queries = data.dec_user[idx], data.dec_query[idx]
    tasks = [data.task_ids[t] for t in data.query_task[queries]]
    pred = reference.predict(data.query_emb[queries], tasks, users)
    np.testing.assert_allclose(pred.utility, reference.score(data, users, queries), atol=1e-5)
    assert ((pred.performance >= 0) & (pred.performance <= 1)).all()
    # An unknown user gets the population prior: the same scores whatever the "user".
    prior = reference.predict(data.query_emb[queries[:2]], tasks[:2], np.array([-1, -1]))
    assert prior.utility.shape == (2, data.num_llms)
    with pytest.raises(Exception, match="unknown tasks"):
        reference.predict(data.query_emb[:1], ["no-such-task"], np.array([0]))
