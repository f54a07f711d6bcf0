"""Serving the trained router: rank the LLMs for a user's new query, and say why.

:class:`RoutingService` loads, once, the latest (or a named) trained router
from its checkpoint, the graph as it is now (:class:`gnn.data.RoutingData`,
query texts, who asked what) and a text embedder; then
:meth:`RoutingService.route` answers ``(user, query text, task)`` with every
candidate LLM ranked by the user's expected utility, plus an explanation drawn
from the graph:

* a known user (one with decisions or preference judgements in the graph):
  their most similar past queries (by embedding, among the queries they asked
  or judged), the LLM they chose on each and that LLM's outcome there
  (``ANSWERED_BY`` performance and cost), and their preferences there;
* a new user: routed with the population prior; the explanation lists the
  known users' most common choices on the most similar known queries.

A missing task is inferred from the most similar known queries. The graph is
read when the service is built, and the store is not used afterwards (the
embedded store stays free for other processes); build a new service to see
later changes. :meth:`RoutingService.route_many` is thread-safe.
"""

from __future__ import annotations

import functools
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from gnn.compat import ModelMismatchError, check_finite_weights, check_graph
from gnn.cost_estimate import ESTIMATED, KNOWN, UNKNOWN, estimate_costs, price_costs
from gnn.data import RoutingData, load_routing_data
from gnn.neighbours import NeighbourIndex, nearest, unit_rows
from graphdb.store import GraphStore
from prcore.errors import ProuterError
from prcore.utility import normalise_cost, task_cost_range, utility
from prcore.values import finite_or_none

__all__ = [
    "Explanation",
    "PastQuery",
    "PriorChoice",
    "RankedLLM",
    "RouteRequest",
    "RouteResult",
    "RoutingService",
    "TextEmbedder",
    "resolve_version",
]


class TextEmbedder(Protocol):
    """What the service needs from an embedder (:class:`workloads.embeddings.Embedder`)."""

    def embed(self, texts: Sequence[str], progress: bool = True) -> np.ndarray: ...


@dataclass(frozen=True)
class RouteRequest:
    """One query to route: who asks, the text, and the task (None: infer it)."""

    user: str
    query: str
    task: str | None = None


@dataclass(frozen=True)
class RankedLLM:
    """One candidate LLM: its rank (1 = best) and what the router expects of it."""

    rank: int
    llm_id: str
    utility: float  # the user's expected utility, higher is better
    performance: float  # predicted probability of success / score
    cost: float | None  # predicted or estimated cost in USD; None when unknown
    # "known": predicted from the task's logged outcome costs; "estimated": from the LLMs'
    # prices and the query's length (votes-only tasks, gnn.cost_estimate); "unknown": left
    # out of the utility.
    cost_source: str = KNOWN


@dataclass(frozen=True)
class PastQuery:
    """A graph query near the new one; for a known user, one they asked or decided on."""

    query_id: str
    text: str | None
    task_id: str
    similarity: float  # cosine similarity to the new query
    chosen_llm: str | None  # the LLM the user chose there (None: no decision recorded)
    performance: float | None  # ANSWERED_BY performance of the chosen LLM on that query
    cost: float | None  # ANSWERED_BY cost (USD) of the chosen LLM on that query
    preferred: list[tuple[str, str]] = field(default_factory=list)  # (winner, loser) judgements


@dataclass(frozen=True)
class PriorChoice:
    """How often known users chose an LLM on the queries most similar to the new one."""

    llm_id: str
    decisions: int
    share: float
    users: list[str]


@dataclass(frozen=True)
class Explanation:
    """Why the ranking looks as it does, from the graph."""

    known_user: bool
    message: str
    quality_weight: float  # the user's learned weight on quality vs cost (new user: the prior)
    past_queries: list[PastQuery] = field(default_factory=list)  # known user: their nearest
    prior_queries: list[str] = field(default_factory=list)  # new user: the queries considered
    prior_choices: list[PriorChoice] = field(default_factory=list)  # new user
    task_note: str | None = None  # how the task was inferred, when it was


@dataclass(frozen=True)
class RouteResult:
    """The answer to one :class:`RouteRequest`."""

    user: str
    query: str
    task: str
    task_inferred: bool
    model_version: str
    ranking: list[RankedLLM]
    explanation: Explanation

    @property
    def best(self) -> RankedLLM:
        """The top-ranked LLM."""
        return self.ranking[0]

    def to_dict(self, top: int | None = None) -> dict[str, Any]:
        """JSON-ready form; ``top`` keeps only the best ``top`` LLMs of the ranking."""
        out = asdict(self)
        out["ranking"] = out["ranking"][:top] if top else out["ranking"]
        return out


def resolve_version(store: GraphStore) -> str:
    """The version of the latest RouterModel in the graph (by ``created_at``)."""
    table = store.query("latest_router_model")
    if table.num_rows == 0:
        raise ProuterError(
            "no trained router model in the graph (no RouterModel node): "
            "train one first with `prouter train`"
        )
    return str(table.column("version")[0].as_py())


class RoutingService:
    """A trained router with its graph context and an embedder, ready to route.

    ``version`` None means the latest RouterModel of the graph; its checkpoint
    is ``model_dir/<version>.pt``. ``similar`` past queries are listed per
    explanation; the task is inferred from the ``infer_k`` most similar known
    queries, and a new user's prior is explained with the ``prior_k`` most
    similar queries that have decisions. Raises :class:`ProuterError` when no
    model was trained, its checkpoint is missing, or the graph has no routing data.
    """

    def __init__(
        self,
        store: GraphStore,
        embedder: TextEmbedder,
        *,
        model_dir: Path,
        version: str | None = None,
        device: str = "cpu",
        similar: int = 3,
        infer_k: int = 10,
        prior_k: int = 5,
    ) -> None:
        from gnn.checkpoint import load_checkpoint
        from gnn.experiment import router_registry

        self.version = version or resolve_version(store)
        state = load_checkpoint(model_dir, self.version)
        registry = router_registry()
        kind = str(state.get("router", "gnn"))
        if kind not in registry or not hasattr(registry[kind], "from_state"):
            raise ProuterError(f"checkpoint {self.version!r} holds an unservable router {kind!r}")
        check_finite_weights(state)
        try:
            self.data = load_routing_data(store, tasks=list(state["task_ids"]))
        except ProuterError as exc:
            raise ModelMismatchError(
                f"model {self.version} does not fit this graph ({exc}): it was trained on "
                "another graph; retrain on this one with `prouter train`"
            ) from exc
        #: What the caller should know about the model on this graph (e.g. LLMs it never saw).
        self.warnings: list[str] = check_graph(
            state,
            task_ids=self.data.task_ids,
            llm_ids=self.data.llm_ids,
            query_ids=self.data.query_ids,
        )
        try:
            self.router = registry[kind].from_state(
                state, self.data, device=device, exports=Path(model_dir) / "exports"
            )
        except ProuterError as exc:
            if set(self.data.llm_ids) == set(state["llm_ids"]):
                raise
            raise ModelMismatchError(
                f"model {self.version} cannot serve this graph's LLMs "
                f"({'; '.join(self.warnings)}); retrain with `prouter train`"
            ) from exc
        self.embedder = embedder
        self.model_dir = Path(model_dir)
        self.similar, self.infer_k, self.prior_k = similar, infer_k, prior_k
        self._read_context(store)

    @classmethod
    def assemble(
        cls,
        *,
        version: str,
        data: RoutingData,
        router: Any,
        embedder: TextEmbedder,
        query_text: list[str | None],
        user_queries: dict[int, np.ndarray],
        warnings: list[str],
        model_dir: Path,
        similar: int = 3,
        infer_k: int = 10,
        prior_k: int = 5,
    ) -> RoutingService:
        """A service from parts read elsewhere (``gnn.light``: a route snapshot and a
        numpy router), without a store or a checkpoint; ``user_queries`` maps a user row
        to the query rows it asked or judged (:attr:`_user_queries`)."""
        self = cls.__new__(cls)
        self.version, self.data, self.router, self.embedder = version, data, router, embedder
        self.warnings = list(warnings)
        self.model_dir = Path(model_dir)
        self.similar, self.infer_k, self.prior_k = similar, infer_k, prior_k
        self._build_context(query_text, user_queries)
        return self

    # -- graph context ------------------------------------------------------------
    def _read_context(self, store: GraphStore) -> None:
        data = self.data
        q_index = {q: i for i, q in enumerate(data.query_ids)}
        user_row = {u: i for i, u in enumerate(data.user_ids)}
        texts = store.export_nodes("Query", ["text"])
        by_id = dict(
            zip(texts.column("id").to_pylist(), texts.column("text").to_pylist(), strict=True)
        )
        asked = store.export_edges("ASKED", [])
        mine: dict[int, set[int]] = {}
        for u, q in zip(
            asked.column("src").to_pylist(), asked.column("dst").to_pylist(), strict=True
        ):
            if u in user_row and q in q_index:
                mine.setdefault(user_row[u], set()).add(q_index[q])
        self._build_context(
            [by_id.get(q) for q in data.query_ids],
            {u: np.array(sorted(qs), dtype=np.int64) for u, qs in mine.items()},
        )

    def _build_context(
        self, query_text: list[str | None], user_queries: dict[int, np.ndarray]
    ) -> None:
        """Everything routing reads besides the router: indexes, who decided what."""
        data = self.data
        self._lock = threading.Lock()
        self.query_text = query_text
        self._unit = unit_rows(data.query_emb)
        # Task inference searches every known query (approximately on large graphs).
        self._index = NeighbourIndex(self._unit, normalised=True)
        self._pools: dict[int, tuple[np.ndarray, NeighbourIndex, bool]] = {}
        self._user_row = {u: i for i, u in enumerate(data.user_ids)}
        self._choice = {
            (int(u), int(q)): int(m)
            for u, q, m in zip(data.dec_user, data.dec_query, data.dec_llm, strict=True)
        }
        mine = {u: set(qs.tolist()) for u, qs in user_queries.items()}
        self._prefs: dict[tuple[int, int], list[tuple[str, str]]] = {}
        for u, q, win, lose in zip(
            data.pref_user, data.pref_query, data.pref_win, data.pref_lose, strict=True
        ):
            pair = (data.llm_ids[int(win)], data.llm_ids[int(lose)])
            self._prefs.setdefault((int(u), int(q)), []).append(pair)
        judged_users = np.concatenate([data.dec_user, data.pref_user])
        judged_queries = np.concatenate([data.dec_query, data.pref_query])
        for u, q in zip(judged_users, judged_queries, strict=True):
            mine.setdefault(int(u), set()).add(int(q))
        self._user_queries = {u: np.array(sorted(qs), dtype=np.int64) for u, qs in mine.items()}
        # Users the model has a state for: decisions (CHOSE) or preference judgements.
        self._decided_users = set(np.unique(judged_users).tolist())
        order = np.argsort(data.dec_query, kind="stable")
        self._dec_order = order
        self._dec_bounds = np.searchsorted(
            data.dec_query[order], np.arange(len(data.query_ids) + 1)
        )
        self._has_decisions = np.diff(self._dec_bounds) > 0
        self._model_tasks = set(self.router.task_ids)
        self._weights = self.router.preferences()
        self._prior_weight = self.router.prior_preference()
        if not (np.isfinite(self._weights).all() and np.isfinite(self._prior_weight)):
            raise ModelMismatchError(
                f"model {self.version} learned non-finite quality weights (NaN or infinity): "
                "it was trained on out-of-range data; fix the outcomes and retrain"
            )

    def health(self) -> dict[str, Any]:
        """What the service serves: model, tasks, LLMs and graph sizes."""
        return {
            "status": "ok",
            "model_version": self.version,
            "tasks": list(self.router.task_ids),
            "llms": list(self.router.llm_ids),
            "users": len(self.data.user_ids),
            "queries": len(self.data.query_ids),
            "decisions": len(self.data.dec_user),
            "warnings": list(self.warnings),
        }

    # -- routing ------------------------------------------------------------------
    def route(self, user: str, query: str, task: str | None = None) -> RouteResult:
        """Rank the LLMs for ``user``'s ``query`` (task inferred when None), with a reason."""
        return self.route_many([RouteRequest(user, query, task)])[0]

    def route_many(self, requests: Sequence[RouteRequest]) -> list[RouteResult]:
        """:meth:`route` for many requests at once (one embedding call, one forward pass)."""
        if not requests:
            return []
        for i, req in enumerate(requests):
            self._check(req, i if len(requests) > 1 else None)
        emb = self._embed([r.query for r in requests])
        unit = unit_rows(emb)
        found = self._index.search(unit, self.infer_k, normalised=True)
        tasks, notes = [], []
        for i, req in enumerate(requests):
            task, note = (
                (req.task, None)
                if req.task
                else self._infer_task(found.indices[i], found.similarities[i])
            )
            tasks.append(task)
            notes.append(note)
        rows = np.array(
            [self._user_row[r.user] if self._known(r.user) else -1 for r in requests],
            dtype=np.int64,
        )
        with self._lock:
            pred = self.router.predict(emb, tasks, rows)
        for name in ("utility", "performance", "cost"):
            if not np.isfinite(getattr(pred, name)).all():
                raise ModelMismatchError(
                    f"model {self.version} predicts non-finite {name} (NaN or infinity) for "
                    "this request: it was trained on out-of-range data; fix the outcomes and "
                    "retrain with `prouter train`"
                )
        return [
            self._result(req, tasks[i], notes[i], rows[i], unit[i], pred, i)
            for i, req in enumerate(requests)
        ]

    def warm_up(self) -> None:
        """Load the embedding model now and check it matches the graph's embeddings, and
        build the router's standing neighbour index (a minute on a graph of 100k
        queries), so that no request waits for either."""
        self.router.features.neighbours(self._embed(["warm-up"]))

    def _embed(self, texts: list[str]) -> np.ndarray:
        emb = np.asarray(self.embedder.embed(texts, progress=False), dtype=np.float32)
        if emb.ndim != 2 or emb.shape[1] != self.data.query_emb.shape[1]:
            raise ProuterError(
                f"the embedder makes {emb.shape[-1]}-d vectors but the graph's query embeddings "
                f"are {self.data.query_emb.shape[1]}-d: embed the graph with the same model "
                "(`prouter embed --recompute --model ...`) or pick that model here"
            )
        return emb

    def _check(self, req: RouteRequest, line: int | None) -> None:
        where = f"request {line + 1}: " if line is not None else ""
        if not isinstance(req.user, str) or not req.user.strip():
            raise ProuterError(f"{where}the user id is missing or empty")
        if not isinstance(req.query, str) or not req.query.strip():
            raise ProuterError(f"{where}the query text is missing or empty")
        if req.task is not None and req.task not in self._model_tasks:
            raise ProuterError(
                f"{where}unknown task {req.task!r}; the model knows: "
                f"{', '.join(self.router.task_ids)}"
            )

    def _known(self, user: str) -> bool:
        row = self._user_row.get(user)
        return row is not None and row in self._decided_users

    def _infer_task(self, near: np.ndarray, sims: np.ndarray) -> tuple[str, str]:
        """The task of most of the nearest known queries ``near`` (similarities ``sims``)."""
        k = len(near)
        votes: Counter[str] = Counter()
        weight: dict[str, float] = {}
        for q, sim in zip(near, sims, strict=True):
            t = self.data.task_ids[int(self.data.query_task[q])]
            votes[t] += 1
            weight[t] = weight.get(t, 0.0) + max(float(sim), 0.0)
        task = max(votes, key=lambda t: (votes[t], weight[t]))
        note = (
            f"task {task!r} inferred from the {k} most similar known queries "
            f"({votes[task]} of {k} are {task!r})"
        )
        return task, note

    @functools.cached_property
    def _priced_tasks(self) -> set[str]:
        """Tasks with at least one outcome cost in the graph (read at start-up)."""
        known = ~np.isnan(self.data.cost).all(axis=1)
        return {self.data.task_ids[t] for t in np.unique(self.data.query_task[known])}

    @functools.cached_property
    def _estimated_range(self) -> np.ndarray:
        """(T, 2) each task's min and max cost estimated from prices and query lengths over
        the graph's queries (gnn.cost_estimate): the scale of votes-only tasks' costs."""
        chars = np.array([np.nan if not t else float(len(t)) for t in self.query_text])
        blank = replace(self.data, cost=np.full_like(self.data.cost, np.nan))
        est = estimate_costs(blank, chars)
        return task_cost_range(est.cost, self.data.query_task, len(self.data.task_ids))

    def _costs(
        self, req: RouteRequest, task: str, row: int, pred: Any, i: int
    ) -> tuple[np.ndarray, np.ndarray, str]:
        """(utility, USD cost or NaN, cost source) of every LLM for one request.

        Tasks with logged outcome costs: the router's predictions. Votes-only tasks
        have no cost to learn from: where every LLM has a price, the cost is estimated
        from the prices and the query's length and replaces the router's (unlearned)
        cost in the utility; otherwise it is unknown and left out."""
        if task in self._priced_tasks:
            return pred.utility[i], pred.cost[i], KNOWN
        row_of = {m: j for j, m in enumerate(self.data.llm_ids)}
        price = np.array(
            [
                self.data.llm_price[row_of[m]] if m in row_of else (np.nan,) * 2
                for m in self.router.llm_ids
            ]
        )
        est = price_costs(np.array([float(len(req.query))]), price)[0]
        if not np.isfinite(est).all():
            return pred.utility[i], np.full(len(est), np.nan), UNKNOWN
        t = self.data.task_ids.index(task)
        norm = normalise_cost(est[None], np.array([t]), self._estimated_range)[0]
        weight = self._weights[row] if row >= 0 else self._prior_weight
        return utility(float(weight), pred.performance[i], norm), est, ESTIMATED

    def _result(
        self,
        req: RouteRequest,
        task: str,
        note: str | None,
        row: int,
        unit: np.ndarray,
        pred: Any,
        i: int,
    ) -> RouteResult:
        values, cost, source = self._costs(req, task, int(row), pred, i)
        order = np.argsort(-values, kind="stable")
        ranking = [
            RankedLLM(
                rank=r + 1,
                llm_id=self.router.llm_ids[m],
                utility=float(values[m]),
                performance=float(pred.performance[i, m]),
                cost=finite_or_none(cost[m]),
                cost_source=source,
            )
            for r, m in enumerate(order)
        ]
        if row >= 0:
            explanation = self._explain_known(req.user, int(row), unit, note)
        else:
            explanation = self._explain_new(req.user, task, unit, note)
        return RouteResult(
            user=req.user,
            query=req.query,
            task=task,
            task_inferred=req.task is None,
            model_version=self.version,
            ranking=ranking,
            explanation=explanation,
        )

    # -- explanations ---------------------------------------------------------------
    def _past_query(self, user: int, q: int, sim: float) -> PastQuery:
        llm = self._choice.get((user, q))
        data = self.data
        return PastQuery(
            query_id=data.query_ids[q],
            text=self.query_text[q],
            task_id=data.task_ids[int(data.query_task[q])],
            similarity=float(sim),
            chosen_llm=None if llm is None else data.llm_ids[llm],
            performance=None if llm is None else finite_or_none(data.performance[q, llm]),
            cost=None if llm is None else finite_or_none(data.cost[q, llm]),
            preferred=self._prefs.get((user, q), []),
        )

    def _explain_known(
        self, user: str, row: int, unit: np.ndarray, note: str | None
    ) -> Explanation:
        queries = self._user_queries.get(row, np.zeros(0, dtype=np.int64))
        near = nearest(unit[None], self._unit[queries], self.similar, normalised=True)
        past = [
            self._past_query(row, int(queries[j]), sim)
            for j, sim in zip(near.indices[0], near.similarities[0], strict=True)
        ]
        n_dec = int((self.data.dec_user == row).sum())
        n_pref = int((self.data.pref_user == row).sum())
        weight = float(self._weights[row])
        message = (
            f"{user} is a known user ({n_dec} decisions, {n_pref} preference judgements, "
            f"{len(queries)} past queries); ranked for them, with their learned weight on "
            f"quality vs cost {weight:.2f} (new users: {self._prior_weight:.2f}). "
            f"Their {len(past)} most similar past queries are listed with what they chose."
        )
        return Explanation(
            known_user=True,
            message=message,
            quality_weight=weight,
            past_queries=past,
            task_note=note,
        )

    def _prior_pool(self, task: str) -> tuple[np.ndarray, NeighbourIndex, bool]:
        """The queries with decisions of ``task`` (all of them when it has none), indexed;
        and whether they are of that task."""
        t = self.data.task_ids.index(task)
        if t not in self._pools:
            pool = np.flatnonzero(self._has_decisions)
            same_task = pool[self.data.query_task[pool] == t]
            chosen = same_task if len(same_task) else pool
            index = NeighbourIndex(self._unit[chosen], normalised=True)
            self._pools[t] = (chosen, index, len(same_task) > 0)
        return self._pools[t]

    def _explain_new(self, user: str, task: str, unit: np.ndarray, note: str | None) -> Explanation:
        data = self.data
        with self._lock:  # the pools are built once, on first use
            pool, index, of_task = self._prior_pool(task)
        found = index.search(unit[None], self.prior_k, normalised=True).indices[0]
        nearest = pool[found]
        counts: Counter[int] = Counter()
        users: dict[int, set[str]] = {}
        for q in nearest:
            for d in self._dec_order[self._dec_bounds[q] : self._dec_bounds[q + 1]]:
                m = int(data.dec_llm[d])
                counts[m] += 1
                users.setdefault(m, set()).add(data.user_ids[int(data.dec_user[d])])
        total = sum(counts.values())
        choices = [
            PriorChoice(data.llm_ids[m], n, n / total, sorted(users[m]))
            for m, n in sorted(counts.items(), key=lambda kv: (-kv[1], data.llm_ids[kv[0]]))
        ]
        why = (
            "has no decisions or preferences in the graph"
            if user in self._user_row
            else "is not in the graph"
        )
        message = (
            f"{user} is a new user ({why}): routed with the population prior (weight on "
            f"quality vs cost {self._prior_weight:.2f}), which reflects known users' choices "
            f"({total} decisions) on the {len(nearest)} most similar known queries"
            + (f" of task {task!r}." if of_task else ".")
        )
        return Explanation(
            known_user=False,
            message=message,
            quality_weight=self._prior_weight,
            prior_queries=[data.query_ids[int(q)] for q in nearest],
            prior_choices=choices,
            task_note=note,
        )
