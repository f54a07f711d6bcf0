"""LLM-as-a-Judge user simulation (strategy 2 of *PersonalizedRouter*).

Where a data set has candidate LLM responses but no users, the paper simulates
user groups with a judge model: one persona (:mod:`workloads.personas`) is the
judge's system prompt, and for every query the judge picks the candidate
response that person would like best. Each persona becomes one simulated user,
``judge-<persona id>``, whose pick is a ``chose`` decision in the graph.

The flow:

1. :class:`JudgeItem` holds a query and its candidates (LLM ids and responses).
2. :func:`judge_choices` builds, for every (persona, item), the judge prompt
   (:func:`judge_messages`) with the candidates in a shuffled order, to avoid
   position bias. The order comes from a ``random.Random`` seeded with the
   SHA-256 of ``(seed, persona id, query id)``, so it is the same on every run,
   machine and Python process, and differs between personas and queries.
3. :class:`JudgeClient` sends the prompts to any OpenAI-compatible
   ``/chat/completions`` endpoint (temperature 0), concurrently, with retries
   on connection errors, timeouts, HTTP 429 and 5xx, and an optional sqlite
   cache of raw replies keyed by (model, messages), so a re-run (or another
   process) asks nothing twice.
4. :func:`parse_choice` accepts only a reply that is exactly a response number
   (``2``, ``Response 2``, ``**2**``, ``"2."``); the number is mapped back
   through the shuffle to the right LLM id. Anything else (prose, several
   numbers, out of range, empty) and every transport error becomes a
   :class:`JudgeFailure` that keeps the raw reply: a reply is never guessed
   into a decision.
5. :func:`decisions_to_records` turns the decisions into canonical interaction
   records (``graphdb.canonical``) ready to ingest; :func:`write_failures`
   writes the failures as JSONL for inspection.

The API key is sent only in the ``Authorization`` header: it never appears in
a repr, a log line or an error message (endpoint error bodies are redacted).
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import logging
import os
import random
import re
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import closing
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from prcore.errors import ConfigError, ProuterError
from workloads.personas import Persona

if TYPE_CHECKING:
    from graphdb.store import GraphStore

__all__ = [
    "ENV_API_KEY",
    "ENV_BASE_URL",
    "ENV_MODEL",
    "JudgeClient",
    "JudgeDecision",
    "JudgeError",
    "JudgeFailure",
    "JudgeItem",
    "JudgeParseError",
    "decisions_to_records",
    "judge_choices",
    "judge_messages",
    "judge_user_id",
    "load_judge_items",
    "parse_choice",
    "shuffled_order",
    "write_failures",
]

log = logging.getLogger(__name__)

ENV_BASE_URL = "PROUTER_JUDGE_BASE_URL"
ENV_MODEL = "PROUTER_JUDGE_MODEL"
ENV_API_KEY = "PROUTER_JUDGE_API_KEY"

_EXCERPT_CHARS = 200
_ERROR_BODY_BYTES = 4096
_REDACTED = "***"

Message = dict[str, str]


class JudgeError(ProuterError):
    """A judge request failed (HTTP error, connection error, timeout, malformed reply).

    ``status`` is the HTTP status when there was one; ``retryable`` says whether
    the failure was of a kind that is retried (it is raised only once retries
    are exhausted).
    """

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable


class JudgeParseError(ProuterError):
    """A judge reply is not exactly one response number in range; ``reply`` is the raw text."""

    def __init__(self, message: str, reply: str | None = None) -> None:
        super().__init__(message)
        self.reply = reply


def _excerpt(text: str, limit: int = _EXCERPT_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


# -- the HTTP client -------------------------------------------------------------
class JudgeClient:
    """A client for an OpenAI-compatible chat completions endpoint.

    ``POST {base_url}/chat/completions`` with ``{"model", "messages",
    "temperature": 0}``; ``Authorization: Bearer <api_key>`` when a key is given.
    The transport and the retries are the official ``openai`` client's: a request
    is tried once plus up to ``max_retries`` times on connection errors,
    timeouts, HTTP 408, 409, 429 and 5xx, sleeping ``backoff * 2**attempt``
    seconds (with jitter) or the server's ``Retry-After``, never more than
    ``max_backoff``.
    Other 4xx responses and malformed bodies fail at once. With ``cache_path``
    the raw reply of every successful request is stored in a sqlite file, keyed
    by the SHA-256 of the canonical JSON of ``(model, messages)``, and reused
    without a request, also by other processes.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        timeout: float = 60,
        max_retries: int = 4,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        concurrency: int = 4,
        cache_path: str | Path | None = None,
    ) -> None:
        if not isinstance(base_url, str) or not re.match(r"https?://[^/\s]", base_url):
            raise ConfigError(
                f"judge base URL must start with http:// or https://, got {base_url!r:.80}"
            )
        if not isinstance(model, str) or not model.strip():
            raise ConfigError("judge model must be a non-empty string")
        if timeout <= 0:
            raise ConfigError(f"judge timeout must be positive, got {timeout!r}")
        if max_retries < 0:
            raise ConfigError(f"judge max_retries must be at least 0, got {max_retries!r}")
        if backoff < 0 or max_backoff < 0:
            raise ConfigError("judge backoff and max_backoff must not be negative")
        if concurrency < 1:
            raise ConfigError(f"judge concurrency must be at least 1, got {concurrency!r}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._api_key = api_key or None
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.concurrency = int(concurrency)
        self.cache_path = Path(cache_path) if cache_path is not None else None
        self._jitter = random.Random()
        self._openai = _openai_client(self)
        self._cache_lock = threading.Lock()
        if self.cache_path is not None:
            self._init_cache()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **kwargs: Any) -> JudgeClient:
        """A client from ``PROUTER_JUDGE_BASE_URL``, ``_MODEL`` and (optional) ``_API_KEY``.

        ``kwargs`` go to the constructor (``cache_path``, ``concurrency``, ...).
        A missing or empty base URL or model raises :class:`ConfigError`.
        """
        env = os.environ if environ is None else environ
        values = {}
        for name in (ENV_BASE_URL, ENV_MODEL):
            value = (env.get(name) or "").strip()
            if not value:
                raise ConfigError(f"{name} is not set; the judge needs an endpoint and a model")
            values[name] = value
        api_key = (env.get(ENV_API_KEY) or "").strip() or None
        return cls(values[ENV_BASE_URL], values[ENV_MODEL], api_key, **kwargs)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, model={self.model!r}, "
            f"api_key={'<set>' if self._api_key else None}, timeout={self.timeout:g}, "
            f"max_retries={self.max_retries}, concurrency={self.concurrency}, "
            f"cache_path={str(self.cache_path) if self.cache_path else None!r})"
        )

    # -- public ------------------------------------------------------------------
    def cache_key(self, messages: Sequence[Message]) -> str:
        """The cache key of a request: SHA-256 of the canonical JSON of (model, messages)."""
        canonical = json.dumps(
            [self.model, list(messages)], sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def complete(self, messages: Sequence[Message]) -> str:
        """The reply text to one conversation; :class:`JudgeError` once retries are exhausted."""
        result = self.complete_many([messages], progress=False)[0]
        if isinstance(result, Exception):
            raise result
        return result

    def complete_many(
        self, conversations: Sequence[Sequence[Message]], progress: bool = True
    ) -> list[str | Exception]:
        """Reply texts to many conversations, in input order.

        Cached replies are used first; the rest are requested with at most
        ``concurrency`` requests in flight (identical conversations are asked
        once). An item that failed after its retries holds the
        :class:`JudgeError` instead of a text. ``progress`` shows a tqdm bar
        of the requests (only on a terminal).
        """
        keys = [self.cache_key(m) for m in conversations]
        first: dict[str, int] = {}
        for index, key in enumerate(keys):
            first.setdefault(key, index)
        results: dict[str, str | Exception] = dict(self._cache_get(first))
        todo = [(key, index) for key, index in first.items() if key not in results]
        if results:
            log.info("judge cache: %d of %d replies reused", len(results), len(first))
        if todo:
            self._run(conversations, todo, results, progress)
        return [results[key] for key in keys]

    # -- requests ----------------------------------------------------------------
    def _run(
        self,
        conversations: Sequence[Sequence[Message]],
        todo: list[tuple[str, int]],
        results: dict[str, str | Exception],
        progress: bool,
    ) -> None:
        bar = tqdm(total=len(todo), desc="judge", unit="req", disable=None if progress else True)
        pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="judge")
        try:
            pending: dict[Future[str], str] = {
                pool.submit(self._request, conversations[index]): key for key, index in todo
            }
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    key = pending.pop(future)
                    try:
                        reply = future.result()
                    except JudgeError as exc:
                        results[key] = exc
                    else:
                        results[key] = reply
                        self._cache_put(key, reply)
                    bar.update(1)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            bar.close()

    def _request(self, messages: Sequence[Message]) -> str:
        """One conversation, with the client's retries; the reply text or JudgeError."""
        import openai

        url = f"{self.base_url}/chat/completions"
        attempts = f"gave up after {self.max_retries + 1} attempts"
        try:
            raw = self._openai.chat.completions.with_raw_response.create(
                model=self.model,
                messages=list(messages),
                temperature=0,  # type: ignore[arg-type]
            )
        except openai.APIStatusError as exc:
            status = exc.status_code
            detail = self._redact(" ".join(exc.response.text[:_ERROR_BODY_BYTES].split()))
            retryable = status in _RETRIED or status >= 500
            raise JudgeError(
                f"judge endpoint {url} returned HTTP {status}"
                + (f": {_excerpt(detail)}" if detail else "")
                + (f" ({attempts})" if retryable else ""),
                status=status,
                retryable=retryable,
            ) from None
        except openai.APIConnectionError as exc:  # timeouts included
            cause = exc.__cause__ or exc
            reason = self._redact(str(cause)) or type(cause).__name__
            raise JudgeError(
                f"cannot reach judge endpoint {url}: {reason} ({attempts})", retryable=True
            ) from None
        return self._reply_text(raw.http_response.content, url)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds before retry ``attempt`` (0-based): Retry-After, else jittered backoff."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_backoff)
        delay = min(self.backoff * 2.0 ** min(attempt, 30), self.max_backoff)
        return delay * self._jitter.uniform(0.5, 1.0)

    def _reply_text(self, raw: bytes, url: str) -> str:
        text = raw.decode("utf-8", "replace")
        try:
            content = json.loads(text)["choices"][0]["message"]["content"]
        except (ValueError, LookupError, TypeError):
            excerpt = _excerpt(self._redact(" ".join(text.split())))
            raise JudgeError(
                f"malformed chat completion from {url}: {excerpt or '<empty body>'}"
            ) from None
        if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}]
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        if not isinstance(content, str):
            raise JudgeError(f"chat completion from {url} has no text content: {content!r:.80}")
        return content

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, _REDACTED) if self._api_key else text

    # -- cache -------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        assert self.cache_path is not None
        return sqlite3.connect(self.cache_path, timeout=30)

    def _init_cache(self) -> None:
        assert self.cache_path is not None
        try:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            with closing(self._connect()) as conn, conn:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS judge_replies ("
                    "key TEXT PRIMARY KEY, model TEXT NOT NULL, reply TEXT NOT NULL, "
                    "created_at TEXT NOT NULL)"
                )
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"cannot open judge cache {self.cache_path}: {exc}") from None

    def _cache_get(self, keys: Iterable[str]) -> Iterable[tuple[str, str]]:
        if self.cache_path is None:
            return []
        found = []
        with closing(self._connect()) as conn:
            for key in keys:
                row = conn.execute(
                    "SELECT reply FROM judge_replies WHERE key = ?", (key,)
                ).fetchone()
                if row is not None:
                    found.append((key, row[0]))
        return found

    def _cache_put(self, key: str, reply: str) -> None:
        if self.cache_path is None:
            return
        now = datetime.now(UTC).isoformat()
        with self._cache_lock, closing(self._connect()) as conn, conn:
            conn.execute(
                "INSERT OR REPLACE INTO judge_replies (key, model, reply, created_at) "
                "VALUES (?, ?, ?, ?)",
                (key, self.model, reply, now),
            )


_RETRIED = (408, 409, 429)  # and every 5xx: what the openai client retries


def _openai_client(judge: JudgeClient) -> Any:
    """An ``openai.OpenAI`` for ``judge``: its timeout, retries and backoff policy."""
    import openai

    class Client(openai.OpenAI):
        def _calculate_retry_timeout(  # the judge's backoff and Retry-After cap
            self, remaining_retries: int, options: Any, response_headers: Any = None
        ) -> float:
            attempt = options.get_max_retries(self.max_retries) - remaining_retries
            return judge._delay(attempt, _retry_after(response_headers))

        def _auth_headers(self, security: Any) -> dict[str, str]:  # no key: no header at all
            return super()._auth_headers(security) if judge._api_key else {}

        def _validate_headers(self, headers: Any, custom_headers: Any) -> None:
            if judge._api_key:
                super()._validate_headers(headers, custom_headers)

        def _should_retry(self, response: Any) -> bool:  # a long Retry-After is capped, not final
            if response.headers.get("x-should-retry") == "false":
                return False
            return response.status_code in _RETRIED or response.status_code >= 500

    return Client(
        base_url=judge.base_url,
        api_key=judge._api_key or "unused",
        timeout=judge.timeout,
        max_retries=judge.max_retries,
    )


def _retry_after(headers: Any) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date), or None."""
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max((moment - datetime.now(UTC)).total_seconds(), 0.0)


# -- prompts and parsing -----------------------------------------------------------
def judge_messages(persona: Persona, query_text: str, responses: Sequence[str]) -> list[Message]:
    """The judge conversation: the persona as system prompt, the query and numbered responses."""
    if not responses:
        raise ValueError("judge_messages needs at least one response")
    n = len(responses)
    parts = [
        f"Here is a question and {n} candidate responses to it.",
        f"[Question]\n{query_text}",
        *(f"[Response {i}]\n{text}" for i, text in enumerate(responses, start=1)),
        "[End of responses]",
        f"Which response would you, as the person described above, like best? "
        f"Answer with ONLY the number of that response (1 to {n}), nothing else.",
    ]
    return [
        {"role": "system", "content": persona.system_prompt},
        {"role": "user", "content": "\n\n".join(parts)},
    ]


_WRAPPERS = (("**", "**"), ("__", "__"), ('"', '"'), ("'", "'"), ("“", "”"), ("‘", "’"))
_CHOICE = re.compile(r"(?:response\s+)?([0-9]{1,6})", re.IGNORECASE | re.ASCII)


def parse_choice(reply: str, n: int) -> int:
    """The 0-based index of the response a judge reply names.

    Accepted, after stripping whitespace, surrounding quotes or markdown bold and
    one trailing period: ``K`` or ``Response K`` (any case) with ``1 <= K <= n``.
    Anything else raises :class:`JudgeParseError` with the raw reply.
    """
    if n < 1:
        raise ValueError(f"parse_choice needs n >= 1, got {n}")
    if not isinstance(reply, str):
        raise JudgeParseError(f"judge reply is not text: {reply!r:.200}", None)
    text = reply.strip()
    period = False
    changed = True
    while changed and text:
        changed = False
        if text.endswith(".") and not period:
            text, period, changed = text[:-1].rstrip(), True, True
        for start, end in _WRAPPERS:
            if len(text) >= len(start) + len(end) and text.startswith(start) and text.endswith(end):
                text, changed = text[len(start) : -len(end)].strip(), True
    match = _CHOICE.fullmatch(text)
    if match is None:
        raise JudgeParseError(
            f"judge reply is not a single response number 1..{n}: {_excerpt(reply)!r}", reply
        )
    k = int(match.group(1))
    if not 1 <= k <= n:
        raise JudgeParseError(
            f"judge reply names response {k}, but there are only {n}: {_excerpt(reply)!r}", reply
        )
    return k - 1


# -- the simulation ----------------------------------------------------------------
@dataclass
class JudgeItem:
    """A query and its candidates: ``responses[i]`` is the answer of ``llm_ids[i]``."""

    query_id: str
    task_id: str
    query_text: str
    llm_ids: list[str]
    responses: list[str]


@dataclass
class JudgeDecision:
    """A simulated user (one persona) chose ``llm_id`` for a query."""

    user_id: str
    persona_id: str
    query_id: str
    task_id: str
    llm_id: str


@dataclass
class JudgeFailure:
    """No decision for (persona, query): why, and the judge's raw reply when there was one."""

    user_id: str
    persona_id: str
    query_id: str
    reason: str
    raw_reply: str | None = None


def judge_user_id(persona: Persona) -> str:
    """The simulated user id of a persona: ``judge-<persona id>``."""
    return f"judge-{persona.id}"


def shuffled_order(seed: int, persona_id: str, query_id: str, n: int) -> list[int]:
    """The candidate order shown to the judge: position ``p`` shows candidate ``order[p]``.

    A ``random.Random`` seeded with the SHA-256 of ``(seed, persona_id,
    query_id)`` shuffles ``range(n)``: the same on every run and process.
    """
    material = json.dumps([seed, persona_id, query_id], ensure_ascii=False).encode("utf-8")
    rng = random.Random(int.from_bytes(hashlib.sha256(material).digest(), "big"))
    order = list(range(n))
    rng.shuffle(order)
    return order


def _item_problem(item: JudgeItem) -> str | None:
    if len(item.llm_ids) != len(item.responses):
        return (
            f"item has {len(item.llm_ids)} llm_ids but {len(item.responses)} responses; "
            "they must pair up"
        )
    if len(item.llm_ids) < 2:
        return f"needs at least 2 candidate responses to choose from, got {len(item.llm_ids)}"
    if len(set(item.llm_ids)) != len(item.llm_ids):
        return f"duplicate llm_ids among the candidates: {item.llm_ids!r:.200}"
    return None


def judge_choices(
    items: Iterable[JudgeItem],
    personas: Iterable[Persona],
    client: JudgeClient,
    *,
    seed: int = 0,
    progress: bool = True,
) -> tuple[list[JudgeDecision], list[JudgeFailure]]:
    """Ask the judge, for every (persona, item), which candidate that persona likes best.

    Candidates are shown in :func:`shuffled_order` and the parsed answer is
    mapped back to its LLM id. Items with unusable candidates, failed requests
    and replies :func:`parse_choice` rejects become failures, never decisions.
    Both lists follow (persona, item) order.
    """
    items = list(items)
    personas = list(personas)
    ids = [p.id for p in personas]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"duplicate persona ids: {ids}")
    outcomes: list[JudgeDecision | JudgeFailure | None] = []
    asked: list[tuple[int, Persona, JudgeItem, list[int]]] = []
    conversations: list[list[Message]] = []
    for persona in personas:
        for item in items:
            problem = _item_problem(item)
            if problem is not None:
                outcomes.append(
                    JudgeFailure(judge_user_id(persona), persona.id, item.query_id, problem)
                )
                continue
            order = shuffled_order(seed, persona.id, item.query_id, len(item.llm_ids))
            asked.append((len(outcomes), persona, item, order))
            outcomes.append(None)
            shown = [item.responses[i] for i in order]
            conversations.append(judge_messages(persona, item.query_text, shown))
    replies = client.complete_many(conversations, progress=progress) if conversations else []
    for (slot, persona, item, order), reply in zip(asked, replies, strict=True):
        user_id = judge_user_id(persona)
        if isinstance(reply, Exception):
            reason = f"judge request failed: {reply}"
            outcomes[slot] = JudgeFailure(user_id, persona.id, item.query_id, reason)
            continue
        try:
            position = parse_choice(reply, len(order))
        except JudgeParseError as exc:
            outcomes[slot] = JudgeFailure(user_id, persona.id, item.query_id, str(exc), reply)
            continue
        llm_id = item.llm_ids[order[position]]
        outcomes[slot] = JudgeDecision(user_id, persona.id, item.query_id, item.task_id, llm_id)
    decisions = [o for o in outcomes if isinstance(o, JudgeDecision)]
    failures = [o for o in outcomes if isinstance(o, JudgeFailure)]
    log.info(
        "judge: %d decisions, %d failures over %d personas x %d items",
        len(decisions),
        len(failures),
        len(personas),
        len(items),
    )
    return decisions, failures


def decisions_to_records(decisions: Iterable[JudgeDecision]) -> list[dict[str, Any]]:
    """Canonical interaction records (``graphdb.canonical``): one ``chose`` per decision."""
    return [
        {
            "task_id": d.task_id,
            "query_id": d.query_id,
            "user_id": d.user_id,
            "llm_id": d.llm_id,
            "decision": "chose",
        }
        for d in decisions
    ]


def write_failures(failures: Iterable[JudgeFailure], path: str | Path) -> Path:
    """Write failures as JSONL (one object per failure) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for failure in failures:
            fh.write(json.dumps(asdict(failure), ensure_ascii=False) + "\n")
    return path


def load_judge_items(
    store: GraphStore, *, split: str | None = None, limit: int | None = None
) -> list[JudgeItem]:
    """Queries whose candidate LLMs have stored responses (ingest them with responses)."""
    table = store.read(
        "MATCH (t:Task)<-[:OF_TASK]-(q:Query)-[a:ANSWERED_BY]->(l:LLM) "
        "WHERE a.response IS NOT NULL AND ($split IS NULL OR q.split = $split) "
        "RETURN q.id AS query_id, t.id AS task_id, q.text AS text, l.id AS llm_id, "
        "a.response AS response ORDER BY query_id, llm_id",
        {"split": split},
    ).to_pylist()
    items: dict[str, JudgeItem] = {}
    for row in table:
        item = items.get(row["query_id"])
        if item is None:
            if limit is not None and len(items) >= limit:
                break
            item = items[row["query_id"]] = JudgeItem(
                row["query_id"], row["task_id"], row["text"] or "", [], []
            )
        item.llm_ids.append(row["llm_id"])
        item.responses.append(row["response"])
    return list(items.values())
