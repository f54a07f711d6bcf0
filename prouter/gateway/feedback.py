"""``POST /feedback``: users' judgements of served answers, as graph events.

Each served answer has a response id (``id`` of the completion, also the
``x-prouter-response-id`` header). A feedback body is one of::

    {"response_id": "chatcmpl-...", "thumbs": "up" | "down"}   -> ANSWERED_BY.performance 1 / 0
    {"response_id": "chatcmpl-...", "rating": 1..5}             -> ANSWERED_BY.performance (r-1)/4
    {"response_id": "chatcmpl-...", "chosen": true}             -> CHOSE (the user took this answer)
    {"preferred": "chatcmpl-A", "over": "chatcmpl-B", "tie": false}  -> PREFERRED (same query)

Thumbs and ratings label the answer's quality (the router's performance
target); "chosen" and preferences are the user's decisions, which train the
user's preferences. The gateway remembers the last ``capacity`` answers it
served (in memory); older ones, and those a previous gateway process served,
are looked up in the graph (:func:`stored_answer`), where the recorder keeps
the response id of the *latest* answer of each LLM to a query (on
``ANSWERED_BY``) and of the latest answer each user got to it (on ``ASKED``).
An id that a later answer replaced there, or never recorded, is refused with 404.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prouter.gateway.recorder import Choice, Event, Outcome, Preference

if TYPE_CHECKING:
    from graphdb.store import GraphStore

__all__ = ["Answer", "Answers", "FeedbackError", "feedback_events", "stored_answer"]

RESPONSE_ID = re.compile(r"chatcmpl-[0-9A-Za-z_-]{1,64}")  # what the gateway serves under


@dataclass(frozen=True)
class Answer:
    """What the gateway served under one response id."""

    user: str
    query_id: str
    llm_id: str


class FeedbackError(Exception):
    """A refused feedback body; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def stored_answer(store: GraphStore, response_id: str) -> Answer | None:
    """The recorded answer served under ``response_id``, or None when the graph has no
    (or no longer the) answer with that id. The user is the one whose ``ASKED`` edge
    carries the id, else the query's only asker."""
    found = store.read(
        "MATCH (q:Query)-[a:ANSWERED_BY]->(l:LLM) WHERE a.response_id = $rid "
        "RETURN q.id AS query, l.id AS llm",
        {"rid": response_id},
    ).to_pylist()
    if len(found) != 1:
        return None
    query, llm = found[0]["query"], found[0]["llm"]
    askers = store.read(
        "MATCH (u:User)-[k:ASKED]->(q:Query) WHERE q.id = $q "
        "RETURN u.id AS user, k.response_id AS rid",
        {"q": query},
    ).to_pylist()
    users = [a["user"] for a in askers if a["rid"] == response_id] or [
        a["user"] for a in askers if len(askers) == 1
    ]
    return Answer(users[0], query, llm) if len(users) == 1 else None


class Answers:
    """The last ``capacity`` served answers by response id (thread-safe, LRU); ``lookup``
    (e.g. :func:`stored_answer` on the graph) finds the ones not in memory."""

    def __init__(
        self,
        capacity: int = 100_000,
        lookup: Callable[[str], Answer | None] | None = None,
    ) -> None:
        self.capacity = capacity
        self.lookup = lookup
        self._items: OrderedDict[str, Answer] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def add(self, response_id: str, answer: Answer) -> None:
        with self._lock:
            self._items[response_id] = answer
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def get(self, response_id: Any) -> Answer:
        if not isinstance(response_id, str):
            raise FeedbackError(400, "response ids must be strings")
        with self._lock:
            answer = self._items.get(response_id)
        if answer is None and self.lookup is not None and RESPONSE_ID.fullmatch(response_id):
            answer = self.lookup(response_id)
        if answer is None:
            raise FeedbackError(404, f"no served response {response_id[:80]!r} (or too old)")
        return answer


_KINDS = ("thumbs", "rating", "chosen", "preferred")


def feedback_events(
    body: Any, answers: Answers, ts: str, bound_user: str | None = None
) -> list[Event]:
    """The graph events of one feedback body; :class:`FeedbackError` when it is refused."""
    if not isinstance(body, dict):
        raise FeedbackError(400, "the body must be a JSON object")
    kinds = [k for k in _KINDS if k in body]
    if len(kinds) != 1:
        raise FeedbackError(400, f"give exactly one of {', '.join(_KINDS)}")
    kind = kinds[0]
    allowed = {"preferred", "over", "tie"} if kind == "preferred" else {"response_id", kind}
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise FeedbackError(400, f"unknown fields {unknown} for {kind} feedback")
    if kind == "preferred":
        win, lose = answers.get(body.get("preferred")), answers.get(body.get("over"))
        tie = body.get("tie", False)
        if not isinstance(tie, bool):
            raise FeedbackError(400, "'tie' must be true or false")
        if win.query_id != lose.query_id or win.user != lose.user:
            raise FeedbackError(400, "a preference compares two answers to one user's same query")
        if win.llm_id == lose.llm_id:
            raise FeedbackError(400, "both answers come from the same LLM; nothing to prefer")
        _own(win, bound_user)
        return [Preference(win.user, win.llm_id, win.query_id, lose.llm_id, tie, ts)]
    answer = answers.get(body.get("response_id"))
    _own(answer, bound_user)
    value = body[kind]
    if kind == "thumbs":
        if value not in ("up", "down"):
            raise FeedbackError(400, '\'thumbs\' must be "up" or "down"')
        return [Outcome(answer.query_id, answer.llm_id, 1.0 if value == "up" else 0.0)]
    if kind == "rating":
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
            raise FeedbackError(400, "'rating' must be an integer 1..5")
        return [Outcome(answer.query_id, answer.llm_id, (value - 1) / 4)]
    if value is not True:
        raise FeedbackError(400, "'chosen' must be true")
    return [Choice(answer.user, answer.llm_id, answer.query_id, ts)]


def _own(answer: Answer, bound_user: str | None) -> None:
    if bound_user is not None and answer.user != bound_user:
        raise FeedbackError(403, "this key may only give feedback on its own user's answers")
