"""RoutingData + Split -> a PyG ``HeteroData`` graph for the personalized router.

Node types: ``user``, ``query``, ``llm``, ``task``. Edge types (constants below):

* ``SIMILAR``: query -> query, each query's k nearest *training* queries by
  embedding (a query is never its own neighbour), weighted by cosine similarity;
  this is how a query with unknown outcomes hears about similar ones (found by
  :func:`gnn.neighbours.nearest`: exact, or approximate on large graphs). The
  query's ``neighbour_outcomes`` (Q, L, 3) are those messages per LLM: for each
  LLM, the similarity-weighted mean [performance, normalised cost] of its
  training outcomes on the k most similar training queries *it answered*, and
  their mean similarity (see :func:`neighbour_outcomes`). Nothing in the
  features is indexed by LLM, so an LLM added later (with a few outcomes) is
  encoded like the others.
* ``ANSWERED_BY``: query -> llm, the outcomes of *training* queries only, with
  edge features [performance, normalised cost]; the outcomes of validation and
  test queries are what the router must predict and never enter the graph.
* ``CHOSE``: user -> llm, one edge per *training* decision, carrying the query
  it was made on (``query`` attribute); these are both the messages that
  describe a user and the supervision targets (the model masks each target's
  own edge while scoring it).
* ``OF_TASK``: query -> task.

Reverse edges carry no labels.
"""

from __future__ import annotations

import numpy as np
import torch
from torch_geometric.data import HeteroData

from gnn.data import RoutingData, Split
from gnn.neighbours import Neighbours, nearest, unit_rows
from gnn.outcome_neighbours import (  # re-exported; torch-free for the light route path
    OutcomeNeighbourhood,
    neighbour_outcomes,
)

__all__ = [
    "ANSWERED_BY",
    "CHOSE",
    "OF_TASK",
    "SIMILAR",
    "OutcomeNeighbourhood",
    "build_graph",
    "knn_train_neighbours",
    "neighbour_outcomes",
    "reference_outcomes",
    "train_search",
]

SIMILAR = ("query", "similar", "query")
ANSWERED_BY = ("query", "answered_by", "llm")
CHOSE = ("user", "chose", "llm")
OF_TASK = ("query", "of_task", "task")


def reference_outcomes(
    data: RoutingData, train: np.ndarray, cost_norm: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(Q, L) performance and normalised cost of the training outcomes; NaN elsewhere."""
    known = train[:, None] & ~np.isnan(data.performance)
    return np.where(known, data.performance, np.nan), np.where(known, cost_norm, np.nan)


def train_search(
    emb: np.ndarray, train: np.ndarray, k: int, batch: int = 2048
) -> Neighbours | None:
    """For every query, its ``k`` most similar training queries, not itself (positions in
    ``np.flatnonzero(train)``; -1 where an approximate search came up short); None when
    there is no other training query to be a neighbour."""
    train_idx = np.flatnonzero(train)
    k = min(k, len(train_idx) - 1)
    if k < 1 or len(emb) == 0:
        return None
    unit = unit_rows(emb)
    pos = np.full(len(emb), -1)
    pos[train_idx] = np.arange(len(train_idx))  # never your own neighbour
    return nearest(unit, unit[train_idx], k, exclude=pos, batch=batch, normalised=True)


def knn_train_neighbours(
    emb: np.ndarray, train: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(src, dst, weight): for every query, its k most similar training queries (not itself)."""
    return _similar_edges(train_search(emb, train, k), train)


def _similar_edges(
    found: Neighbours | None, train: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(src, dst, weight) of a :func:`train_search`."""
    if found is None:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    ok = found.indices >= 0  # all of them, unless an approximate search came up short
    src = np.flatnonzero(train)[found.indices[ok]]
    dst = np.repeat(np.arange(len(found.indices)), found.indices.shape[1])
    return src, dst.reshape(found.indices.shape)[ok], found.similarities[ok].astype(np.float32)


def build_graph(data: RoutingData, split: Split, *, k: int = 10) -> HeteroData:
    """The message-passing graph of one split (see the module docstring)."""
    g = HeteroData()
    cost_norm = np.nan_to_num(data.cost_norm(split.train), nan=0.0)
    train = split.train
    g["query"].x = torch.tensor(data.query_emb, dtype=torch.float32)
    g["query"].task = torch.from_numpy(data.query_task)
    g["query"].train_mask = torch.from_numpy(train)
    g["query"].val_mask = torch.from_numpy(split.val)
    g["query"].test_mask = torch.from_numpy(split.test)
    g["llm"].x = torch.tensor(data.llm_emb, dtype=torch.float32)
    g["task"].num_nodes = len(data.task_ids)
    g["user"].num_nodes = len(data.user_ids)

    # One search serves the SIMILAR edges and, where the outcomes are on every training
    # query, the neighbours' outcome messages.
    found = train_search(data.query_emb, train, k)
    src, dst, w = _similar_edges(found, train)
    g[SIMILAR].edge_index = torch.from_numpy(np.stack([src, dst]))
    g[SIMILAR].edge_weight = torch.from_numpy(w)
    ref_perf, ref_cost = reference_outcomes(data, train, cost_norm)
    g["query"].neighbour_outcomes = torch.from_numpy(
        neighbour_outcomes(
            data.query_emb,
            data.query_emb,
            ref_perf,
            ref_cost,
            k=k,
            same=np.arange(len(train)),
            searched=None if found is None else (np.flatnonzero(train), found),
        )
    )

    q, m = np.nonzero(train[:, None] & ~np.isnan(data.performance))
    g[ANSWERED_BY].edge_index = torch.from_numpy(np.stack([q, m]))
    g[ANSWERED_BY].edge_attr = torch.from_numpy(
        np.stack([data.performance[q, m], cost_norm[q, m]], axis=1)
    ).float()
    g["llm", "rev_answered_by", "query"].edge_index = g[ANSWERED_BY].edge_index.flip(0)

    d = np.flatnonzero(train[data.dec_query])
    g[CHOSE].edge_index = torch.from_numpy(np.stack([data.dec_user[d], data.dec_llm[d]]))
    g[CHOSE].query = torch.from_numpy(data.dec_query[d])
    g["llm", "rev_chose", "user"].edge_index = g[CHOSE].edge_index.flip(0)

    g[OF_TASK].edge_index = torch.from_numpy(
        np.stack([np.arange(len(data.query_ids)), data.query_task])
    )
    return g
