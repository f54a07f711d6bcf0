"""The neighbours' outcome messages of a query, in numpy (no torch: the light route path).

For each LLM, among the reference queries with a known outcome for it, the query's
k most similar ones give the similarity-weighted mean [performance, normalised
cost] and their mean similarity (see :mod:`gnn.graph`, which re-exports these).
"""

from __future__ import annotations

import numpy as np

from gnn.neighbours import NeighbourIndex, Neighbours, search_config, unit_rows

__all__ = ["OutcomeNeighbourhood", "neighbour_outcomes"]


def neighbour_outcomes(
    query_emb: np.ndarray,
    ref_emb: np.ndarray,
    ref_perf: np.ndarray,
    ref_cost: np.ndarray,
    *,
    k: int,
    same: np.ndarray | None = None,
    batch: int = 2048,
    searched: tuple[np.ndarray, Neighbours] | None = None,
) -> np.ndarray:
    """(B, L, 3) per query and LLM: [performance, cost, similarity] of its k nearest outcomes.

    For each LLM, among the reference queries with a known outcome for it
    (non-NaN ``ref_perf``), the query's ``k`` most similar ones (cosine) give the
    similarity-weighted mean performance and cost, and their mean similarity
    (0 when the LLM has no reference outcome). ``same[i]`` is the reference row
    of query ``i`` itself (or -1): a query never hears its own outcomes. A one-off
    search; :class:`OutcomeNeighbourhood` keeps the reference side for many.
    ``searched`` = (reference rows, their search): see :meth:`OutcomeNeighbourhood.messages`.
    """
    references = OutcomeNeighbourhood(ref_emb, ref_perf, ref_cost, n_queries=len(query_emb))
    return references.messages(query_emb, k=k, same=same, batch=batch, searched=searched)


class OutcomeNeighbourhood:
    """The reference outcomes of :func:`neighbour_outcomes`, ready to be searched: the LLMs
    that answered the same reference queries share one :class:`gnn.neighbours.NeighbourIndex`
    of those queries' unit embeddings.

    Kept between searches (route-time lookups), it spares each lookup normalising,
    copying and (approximate search) indexing the reference queries again. With
    ``n_queries`` (a one-off search of that many queries) the exact/approximate choice
    is :func:`gnn.neighbours.nearest`'s; without, a standing index's.
    """

    def __init__(
        self,
        ref_emb: np.ndarray,
        ref_perf: np.ndarray,
        ref_cost: np.ndarray,
        *,
        n_queries: int | None = None,
    ) -> None:
        self.num_llms = ref_perf.shape[1]
        self.perf, self.cost = np.nan_to_num(ref_perf), np.nan_to_num(ref_cost)
        self.groups: list[tuple[np.ndarray, np.ndarray, NeighbourIndex]] = []
        if len(ref_emb) == 0 or n_queries == 0:
            return
        unit = unit_rows(ref_emb)
        # LLMs that answered the same reference queries share one neighbour search.
        patterns, group = np.unique(~np.isnan(ref_perf).T, axis=0, return_inverse=True)
        for g, pattern in enumerate(patterns):
            refs = np.flatnonzero(pattern)
            if len(refs) == 0:
                continue
            config = search_config(len(refs), n_queries)
            index = NeighbourIndex(unit[refs], config=config, normalised=True)
            self.groups.append((refs, np.flatnonzero(group.ravel() == g), index))

    def messages(
        self,
        query_emb: np.ndarray,
        *,
        k: int,
        same: np.ndarray | None = None,
        batch: int = 2048,
        searched: tuple[np.ndarray, Neighbours] | None = None,
    ) -> np.ndarray:
        """(B, L, 3) the messages of :func:`neighbour_outcomes` for ``query_emb``.

        ``searched`` = (reference rows, the ``k`` nearest of them for each query, each
        query's own row excluded as ``same`` says): a search already made, used for the
        LLMs whose known outcomes are on exactly those rows instead of searching again."""
        out = np.zeros((len(query_emb), self.num_llms, 3), dtype=np.float32)
        if len(query_emb) == 0 or not self.groups:
            return out
        q_unit = unit_rows(query_emb)
        for refs, cols, index in self.groups:
            exclude = None
            if same is not None:  # query i's own reference row, as a position in refs (or -1)
                pos = np.minimum(np.searchsorted(refs, same), len(refs) - 1)
                exclude = np.where(refs[pos] == same, pos, -1)
            if searched is not None and _same_search(searched, refs, len(q_unit), k):
                found = searched[1]
            else:
                found = index.search(q_unit, k, exclude=exclude, batch=batch, normalised=True)
            s = found.similarities
            valid = np.isfinite(s)
            w = np.where(valid, np.maximum(s, 0.0) + 1e-6, 0.0)
            w = w / np.maximum(w.sum(axis=1, keepdims=True), 1e-12)
            nb = refs[np.maximum(found.indices, 0)]
            out[:, cols, 0] = np.einsum("bk,bkc->bc", w, self.perf[nb][:, :, cols])
            out[:, cols, 1] = np.einsum("bk,bkc->bc", w, self.cost[nb][:, :, cols])
            mean_sim = np.where(valid, s, 0.0).sum(1) / np.maximum(valid.sum(1), 1)
            out[:, cols, 2] = mean_sim[:, None]
        return out


def _same_search(searched: tuple[np.ndarray, Neighbours], refs: np.ndarray, n: int, k: int) -> bool:
    """Whether ``searched`` is the search of ``n`` queries for their ``k`` nearest ``refs``."""
    rows, found = searched
    return found.indices.shape == (n, min(k, len(refs))) and np.array_equal(rows, refs)
