"""Costs of the candidate LLMs on queries without logged outcome costs (votes only).

Votes carry no cost. Each query's costs are:

* **known**: the query has logged outcome costs (``ANSWERED_BY.cost``);
* **estimated**: no logged cost, but one can be estimated for *every* LLM,

  1. from the mean logged cost of that LLM on the same task's queries with
     outcomes (mixed graphs: ``method = "task mean"``), else
  2. from the LLMs' prices (``LLM.input_price`` / ``output_price``, USD per 1M
     tokens) and the query text's length: ``ceil(chars / 4)`` input tokens
     (:data:`CHARS_PER_TOKEN`) and a fixed :data:`OUTPUT_TOKENS` output tokens
     (``method = "price x length"``);

* **unknown**: neither (an LLM without a price, or no text): the cost stays
  out of the utility, as for a preference-only graph without prices.

An estimate is made for all LLMs of a query or for none, so an unpriced LLM
never looks free next to priced ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gnn.data import RoutingData
from graphdb.store import GraphStore

__all__ = [
    "CHARS_PER_TOKEN",
    "ESTIMATED",
    "KNOWN",
    "OUTPUT_TOKENS",
    "UNKNOWN",
    "CostEstimate",
    "estimate_costs",
    "price_costs",
    "query_text_chars",
]

KNOWN, ESTIMATED, UNKNOWN = "known", "estimated", "unknown"
#: Characters per token of the length-based estimate (English text, BPE tokenizers).
CHARS_PER_TOKEN = 4.0
#: Output tokens assumed per answer by the length-based estimate.
OUTPUT_TOKENS = 256
TASK_MEAN, PRICE_LENGTH = "task mean", "price x length"


def price_costs(chars: np.ndarray, price: np.ndarray) -> np.ndarray:
    """(N, L) USD of answering texts of ``chars`` characters (N,) with LLMs priced ``price``
    (L, 2: input / output USD per 1M tokens); NaN where the length or a price is unknown."""
    chars = np.asarray(chars, dtype=float)
    with np.errstate(invalid="ignore"):
        tokens = np.maximum(np.ceil(chars / CHARS_PER_TOKEN), 1.0)
    return (tokens[:, None] * price[None, :, 0] + OUTPUT_TOKENS * price[None, :, 1]) / 1e6


@dataclass(frozen=True)
class CostEstimate:
    """Per query: costs in USD (Q, L; NaN unknown), where they come from and how."""

    cost: np.ndarray
    source: np.ndarray  # (Q,) KNOWN / ESTIMATED / UNKNOWN
    method: np.ndarray  # (Q,) TASK_MEAN / PRICE_LENGTH for estimated queries, else ""

    def counts(self) -> dict[str, int]:
        """How many queries have known, estimated and unknown costs."""
        return {s: int((self.source == s).sum()) for s in (KNOWN, ESTIMATED, UNKNOWN)}

    def methods(self) -> dict[str, int]:
        """How many estimated queries each method covers."""
        est = self.method[self.source == ESTIMATED]
        return {m: int((est == m).sum()) for m in (TASK_MEAN, PRICE_LENGTH) if (est == m).any()}

    def note(self) -> str:
        """One line: which costs are known, estimated (how) and unknown."""
        c = self.counts()
        how = ", ".join(f"{n} from the {m}" for m, n in self.methods().items())
        return (
            f"costs: known (logged outcomes) for {c[KNOWN]} queries, estimated for "
            f"{c[ESTIMATED]}" + (f" ({how})" if how else "") + f", unknown for {c[UNKNOWN]} "
            "(left out of the utility)"
        )


def estimate_costs(
    data: RoutingData, chars: np.ndarray | None = None, reference: np.ndarray | None = None
) -> CostEstimate:
    """The :class:`CostEstimate` of every query of ``data`` (see the module docstring);
    ``chars`` (Q,) are the query texts' lengths (NaN: no text), ``reference`` the queries
    whose logged costs the task means may use (default: all; pass the training mask)."""
    n_q = len(data.query_ids)
    known = np.isfinite(data.cost).any(axis=1)
    cost = np.where(known[:, None], data.cost, np.nan)
    source = np.where(known, KNOWN, UNKNOWN).astype(object)
    method = np.full(n_q, "", dtype=object)
    pool = known if reference is None else known & reference
    for t in np.unique(data.query_task[~known]):
        rows = pool & (data.query_task == t)
        if not rows.any():
            continue
        logged = data.cost[rows]
        counted = np.isfinite(logged).sum(axis=0)
        if (counted == 0).any():
            continue
        mean = np.nansum(logged, axis=0) / counted
        todo = ~known & (data.query_task == t)
        cost[todo] = mean
        source[todo], method[todo] = ESTIMATED, TASK_MEAN
    todo = np.flatnonzero(source == UNKNOWN)
    if len(todo) and chars is not None:
        priced = price_costs(np.asarray(chars, dtype=float)[todo], data.llm_price)
        ok = np.isfinite(priced).all(axis=1)
        cost[todo[ok]] = priced[ok]
        source[todo[ok]], method[todo[ok]] = ESTIMATED, PRICE_LENGTH
    return CostEstimate(cost, source, method)


def query_text_chars(store: GraphStore, data: RoutingData) -> np.ndarray:
    """(Q,) the length of each query's text in the graph (NaN where it has none)."""
    table = store.export_nodes("Query", ["text"])
    by_id = dict(zip(table.column("id").to_pylist(), table.column("text").to_pylist(), strict=True))
    return np.array([np.nan if not by_id.get(q) else float(len(by_id[q])) for q in data.query_ids])
