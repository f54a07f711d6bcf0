"""gnn.neighbours: the exact path equals brute force, the approximate one recalls, auto switches."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from gnn import neighbours
from gnn.neighbours import NeighbourConfig, NeighbourIndex, NeighbourSearchError, nearest, using
from prcore.settings import DEFAULT_NEIGHBOURS_APPROX_FROM, Settings


def _brute_force(queries: np.ndarray, base: np.ndarray, k: int, exclude=None):
    """Reference: full cosine matrix (float64), stable descending sort per row."""
    q = queries / np.linalg.norm(queries.astype(np.float64), axis=1, keepdims=True)
    b = base / np.linalg.norm(base.astype(np.float64), axis=1, keepdims=True)
    sim = q @ b.T
    if exclude is not None:
        for i, e in enumerate(exclude):
            if e >= 0:
                sim[i, e] = -np.inf
    order = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(sim, order, axis=1)


def _assert_same_neighbours(found, ref_idx, ref_sim) -> None:
    """Same similarities; same neighbours in the same order wherever float32 rounding
    cannot swap two (reference neighbours more than 1e-5 apart)."""
    np.testing.assert_allclose(found.similarities, ref_sim, atol=1e-5)
    gap = np.diff(ref_sim, axis=1, prepend=np.inf, append=-np.inf)
    clear = (np.abs(gap[:, :-1]) > 1e-5) & (np.abs(gap[:, 1:]) > 1e-5)
    np.testing.assert_array_equal(found.indices[clear], ref_idx[clear])
    assert clear.mean() > 0.9


def _clustered(n: int, dim: int, seed: int) -> np.ndarray:
    """Unit vectors around 40 centres: structure like text embeddings have."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(40, dim))
    x = centres[rng.integers(0, 40, n)] + 0.35 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def small() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    base = rng.normal(size=(300, 12)).astype(np.float32)
    base[17] = base[4]  # an exact tie: the lower row must win
    queries = rng.normal(size=(45, 12)).astype(np.float32)
    queries[0] = base[4]
    return queries, base


@pytest.mark.parametrize("k", [1, 5, 300, 400])
def test_exact_equals_brute_force(small, k):
    queries, base = small
    found = nearest(queries, base, k, mode="exact", batch=7)  # several chunks
    ref_idx, ref_sim = _brute_force(queries, base, k)
    assert found.method == "exact"
    assert found.indices.shape == (45, min(k, 300))
    _assert_same_neighbours(found, ref_idx, ref_sim)
    assert found.indices[0, 0] == 4  # the query equals base rows 4 and 17: a tie
    if k > 1:
        assert found.indices[0, 1] == 17  # ... goes to the lower row first


def test_exact_exclude_skips_own_row_and_pads(small):
    _, base = small
    exclude = np.arange(len(base))
    found = nearest(base, base, 10, exclude=exclude, mode="exact")
    ref_idx, ref_sim = _brute_force(base, base, 10, exclude=exclude)
    _assert_same_neighbours(found, ref_idx, ref_sim)
    assert not (found.indices == exclude[:, None]).any()
    # k as large as the base: the excluded row leaves one slot, padded with -1 / -inf
    full = nearest(base[:3], base, 300, exclude=np.array([0, -1, 2]), mode="exact")
    assert (full.indices[[0, 2], -1] == -1).all() and np.isneginf(full.similarities[0, -1])
    assert (full.indices[1] >= 0).all()


def test_approx_recall_on_seeded_fixture():
    base = _clustered(3000, 32, seed=3)
    queries = _clustered(300, 32, seed=4)
    with using(mode="approx"):
        found = nearest(queries, base, 10)
        again = NeighbourIndex(base).search(queries, 10)
    ref_idx, _ = _brute_force(queries, base, 10)
    recall = np.mean(
        [len(set(a) & set(b)) / 10 for a, b in zip(found.indices, ref_idx, strict=True)]
    )
    assert found.method == "approx"
    assert recall >= 0.95
    np.testing.assert_array_equal(found.indices, again.indices)  # reproducible
    # similarities are the exact cosines of the neighbours found, best first
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    exact = np.einsum("bd,bkd->bk", q, base[found.indices])
    np.testing.assert_allclose(found.similarities, exact, atol=1e-5)
    assert (np.diff(found.similarities, axis=1) <= 1e-7).all()


def test_approx_answers_do_not_depend_on_the_search_threads():
    """Searches use every core by default (at 1M queries, the serving rebuild after
    training searched all of them on one thread for about 15 minutes of the scale
    benchmark); each query's answer is its own."""
    base = _clustered(3000, 32, seed=3)
    queries = _clustered(2000, 32, seed=4)
    assert NeighbourConfig().threads == 0  # 0: all cores
    answers = []
    for threads in (1, 2, 0):
        with using(mode="approx", threads=threads):
            answers.append(nearest(queries, base, 10))
    for other in answers[1:]:
        np.testing.assert_array_equal(other.indices, answers[0].indices)
        np.testing.assert_array_equal(other.similarities, answers[0].similarities)


def test_approx_exclude_never_returns_own_row():
    base = _clustered(2000, 16, seed=5)
    found = nearest(base, base, 5, exclude=np.arange(2000), mode="approx")
    assert not (found.indices == np.arange(2000)[:, None]).any()
    assert (found.indices >= 0).all()


def test_auto_switches_at_the_threshold():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(120, 8)).astype(np.float32)
    queries = rng.normal(size=(120, 8)).astype(np.float32)
    with using(mode="auto", approx_from=120):
        assert NeighbourIndex(base).method == "approx"
        assert NeighbourIndex(base[:119]).method == "exact"
        assert nearest(queries, base, 3).method == "approx"  # 120 x 120 pairs
        assert nearest(queries[:119], base, 3).method == "exact"  # too few pairs
        assert nearest(queries, base, 3, mode="exact").method == "exact"
    with using(mode="exact", approx_from=2):
        assert NeighbourIndex(base).method == "exact"
    with using(mode="approx"):
        assert NeighbourIndex(base[:5]).method == "approx"


def test_auto_thresholds_as_documented():
    """auto: approximate from 50,000 base rows, for a one-off search when queries x base
    reach 50,000 squared (README, prcore.settings)."""
    cfg = neighbours.NeighbourConfig()  # the defaults
    assert cfg.mode == "auto" and cfg.approx_from == 50_000
    choose = neighbours.choose_method
    assert choose(49_999, config=cfg) == "exact"
    assert choose(50_000, config=cfg) == "approx"
    assert choose(50_000, 50_000, config=cfg) == "approx"
    assert choose(50_000, 49_999, config=cfg) == "exact"
    assert choose(1_000_000, 2_500, config=cfg) == "approx"  # 2.5e9 pairs
    assert choose(1_000_000, 2_499, config=cfg) == "exact"
    assert choose(0, 10**9, config=replace(cfg, mode="approx")) == "exact"  # nothing to index
    assert choose(10, 1, config=replace(cfg, mode="approx")) == "approx"
    assert choose(10**9, 10**9, config=replace(cfg, mode="exact")) == "exact"


def test_default_threshold_comes_from_the_settings(monkeypatch):
    assert neighbours.APPROX_FROM == DEFAULT_NEIGHBOURS_APPROX_FROM
    monkeypatch.setenv("PROUTER_NEIGHBOURS", "approx")
    monkeypatch.setenv("PROUTER_NEIGHBOURS_APPROX_FROM", "1234")
    cfg = neighbours.settings_config()
    assert (cfg.mode, cfg.approx_from) == ("approx", 1234)
    monkeypatch.setenv("PROUTER_NEIGHBOURS", "fast")
    with pytest.raises(Exception, match="neighbours"):
        Settings.load()


@pytest.mark.parametrize(
    ("queries", "base", "k", "message"),
    [
        (np.ones((2, 3)), np.ones((4, 3)), 0, "k must be an integer >= 1"),
        (np.ones((2, 3)), np.ones((4, 3)), -2, "k must be an integer >= 1"),
        (np.ones((2, 3)), np.ones((4, 5)), 1, "3-d but the base is 5-d"),
        (np.ones(3), np.ones((4, 3)), 1, "2-d matrix"),
        (np.array([[1.0, np.nan, 0.0]]), np.ones((4, 3)), 1, "the queries holds NaN"),
        (np.ones((2, 3)), np.array([[np.inf, 0.0, 1.0]]), 1, "the base holds NaN"),
    ],
)
@pytest.mark.parametrize("mode", ["exact", "approx"])
def test_bad_input_is_a_clear_error(queries, base, k, message, mode):
    with pytest.raises(NeighbourSearchError, match=message):
        nearest(queries, base, k, mode=mode)


def test_bad_mode_and_exclude_are_clear_errors():
    with pytest.raises(NeighbourSearchError, match="unknown neighbour search mode 'fast'"):
        nearest(np.ones((1, 2)), np.ones((3, 2)), 1, mode="fast")
    with pytest.raises(NeighbourSearchError, match="exclude needs one base row"):
        nearest(np.ones((2, 2)), np.ones((3, 2)), 1, exclude=np.array([0]))


def test_exact_ties_go_to_the_lower_row():
    base = np.array([[0, 1], [1, 0], [0, 1], [1, 0], [1, 0], [-1, 0]], dtype=np.float32)
    found = nearest(np.array([[2.0, 0.0], [0.0, 3.0]]), base, 2, mode="exact")
    np.testing.assert_array_equal(found.indices, [[1, 3], [0, 2]])
    np.testing.assert_allclose(found.similarities, [[1, 1], [1, 1]])
    wide = nearest(np.array([[2.0, 0.0]]), base, 4, mode="exact")
    np.testing.assert_array_equal(wide.indices, [[1, 3, 4, 0]])


def test_cli_flag_sets_the_mode(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from prouter.cli import cli

    store = f"ladybug:{tmp_path / 'g.lbug'}"
    monkeypatch.setenv("PROUTER_NEIGHBOURS_APPROX_FROM", "777")
    with using():  # the CLI configures the process: restore it afterwards
        result = CliRunner().invoke(
            cli, ["--store", store, "--neighbours", "approx", "cypher", "list"]
        )
        assert result.exit_code == 0, result.output
        assert (neighbours.current_config().mode, neighbours.current_config().approx_from) == (
            "approx",
            777,
        )
    result = CliRunner().invoke(cli, ["--neighbours", "fast", "cypher"])
    assert (
        result.exit_code == 2 and "'fast' is not one of 'auto', 'exact', 'approx'" in result.output
    )


@pytest.mark.parametrize("n_base", [30, 300])
def test_a_standing_approx_index_answers_a_single_query(n_base):
    """Route lookups search a kept index one query at a time: usearch then answers with a
    single-row result (no per-row counts, fewer keys than asked for a small base)."""
    rng = np.random.default_rng(3)
    base = rng.normal(size=(n_base, 8))
    index = NeighbourIndex(base, mode="approx")
    for row in (0, n_base - 1):
        found = index.search(base[row : row + 1], 50)
        exact = nearest(base[row : row + 1], base, 50, mode="exact")
        assert found.indices.shape == exact.indices.shape == (1, min(50, n_base))
        assert found.indices[0, 0] == row
        np.testing.assert_allclose(found.similarities[0, 0], 1.0, atol=1e-5)
