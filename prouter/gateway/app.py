"""The gateway's ASGI app (Starlette): OpenAI-compatible chat, routing, feedback, metrics.

Endpoints (JSON errors ``{"error": {"message", "type", "code"}, "status"}``):

* ``POST /v1/chat/completions`` OpenAI schema, streamed (SSE) or not. ``model``
  ``"prouter"`` (or ``"prouter:<version>"``, which must be the loaded version)
  routes; an LLM id of the upstreams file passes straight through. The user is
  the key's bound user, else ``user``, else the ``X-Prouter-User`` header; the
  task is ``metadata.task`` or ``X-Prouter-Task`` (else inferred). On an
  upstream 5xx / 429 / timeout it falls back to the next-ranked LLM (at most
  ``max_attempts`` LLMs). The route is in ``x-prouter-*`` headers.
* ``GET /v1/models``, ``POST /route`` (as ``prouter route --json``), ``GET /health``,
  ``POST /feedback``, ``GET /metrics``, ``POST /admin/reload``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from prcore.errors import ProuterError
from prouter.gateway.feedback import Answer, Answers, FeedbackError, feedback_events
from prouter.gateway.http import (
    HttpError,
    dumps,
    error_response,
    json_response,
    read_json,
    safe_header,
)
from prouter.gateway.keys import ApiKey, KeyRing
from prouter.gateway.metrics import CONTENT_TYPE_LATEST, Metrics
from prouter.gateway.recorder import Attempt, Recorder, Served
from prouter.gateway.router import MAX_EMBED_CHARS, Router
from prouter.gateway.upstream_calls import (
    UpstreamFailure,
    UpstreamRefusal,
    complete,
    open_stream,
)
from prouter.gateway.upstreams import Upstream

__all__ = ["Gateway", "create_app", "query_id"]

log = logging.getLogger(__name__)
ROUTED = "prouter"


@dataclass
class Gateway:
    """Everything one gateway app serves with."""

    router: Router
    upstreams: dict[str, Upstream] = field(default_factory=dict)
    recorder: Recorder | None = None
    keys: KeyRing | None = None  # None: no authentication (keep it on 127.0.0.1)
    max_body: int = 1 << 20
    read_timeout: float = 10.0
    upstream_timeout: float = 60.0
    max_attempts: int = 3
    reload_interval: float = 0.0  # seconds between polls for a newer model (0: no polling)
    answers: Answers = field(default_factory=Answers)
    on_close: list[Any] = field(default_factory=list)  # called last at shutdown
    metrics: Metrics = field(init=False)

    def __post_init__(self) -> None:
        recorder = self.recorder
        self.metrics = Metrics(lambda: float(recorder.depth) if recorder else 0.0)
        if recorder is not None:
            recorder._on_written = self.metrics.recorded.inc
            recorder._on_failed = self.metrics.record_failures.inc

    def record(self, event: Any) -> None:
        if self.recorder is not None:
            self.recorder.submit(event)


def query_id(text: str) -> str:
    """Served queries are keyed by their text: the same text is one Query node."""
    return "gw-" + hashlib.sha256(text.encode()).hexdigest()[:24]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


# -- auth ---------------------------------------------------------------------------
def _authenticate(gw: Gateway, request: Request, admin: bool = False) -> ApiKey | None:
    if gw.keys is None:
        if admin and (request.client is None or request.client.host not in ("127.0.0.1", "::1")):
            raise HttpError(403, "admin endpoints without API keys answer on loopback only")
        return None
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header[:7].lower() == "bearer " else None
    key = gw.keys.check(token)
    if key is None:
        raise HttpError(401, "a valid API key is required (Authorization: Bearer ...)", "auth")
    if admin and not key.admin:
        raise HttpError(403, "this key may not use admin endpoints", "auth")
    return key


def _user(key: ApiKey | None, given: Any) -> str:
    if given is not None and (not isinstance(given, str) or not given.strip()):
        raise HttpError(400, "'user' must be a non-empty string")
    if key is not None and key.user is not None:
        if given is not None and given != key.user:
            raise HttpError(403, "this API key is bound to another user", "auth")
        return key.user
    return given or "anonymous"


# -- /route, /health, /v1/models ----------------------------------------------------------
async def route(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    key = _authenticate(gw, request)
    payload = await read_json(request, gw.max_body, gw.read_timeout)
    if not isinstance(payload, dict):
        raise HttpError(400, 'the body must be a JSON object: {"user": ..., "query": ...}')
    unknown = sorted(set(payload) - {"user", "query", "task", "top"})
    if unknown:
        raise HttpError(400, f"unknown fields {unknown}; valid: user, query, task, top")
    query, task, top = payload.get("query"), payload.get("task"), payload.get("top")
    if not isinstance(payload.get("user"), str) or not payload["user"].strip():
        raise HttpError(400, "'user' is required and must be a non-empty string")
    user = _user(key, payload["user"])
    if not isinstance(query, str) or not query.strip():
        raise HttpError(400, "'query' is required and must be a non-empty string")
    if task is not None and not isinstance(task, str):
        raise HttpError(400, "'task' must be a string")
    if top is not None and (not isinstance(top, int) or isinstance(top, bool) or top < 0):
        raise HttpError(400, "'top' must be a non-negative integer")
    result = await _route(gw, user, query, task)
    return json_response(result.to_dict(top or None))


async def _route(gw: Gateway, user: str, query: str, task: str | None) -> Any:
    try:
        return await gw.router.route(user, query, task)
    except ProuterError as exc:
        raise HttpError(400, str(exc)) from None


async def health(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    body = gw.router.service.health()
    body["upstreams"] = sorted(gw.upstreams)
    body["write_queue"] = gw.recorder.depth if gw.recorder else 0
    return json_response(body)


async def models(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    _authenticate(gw, request)
    created = int(time.time())
    ids = [ROUTED, f"{ROUTED}:{gw.router.version}", *sorted(gw.upstreams)]
    data = [{"id": m, "object": "model", "created": created, "owned_by": "prouter"} for m in ids]
    return json_response({"object": "list", "data": data})


# -- /v1/chat/completions -----------------------------------------------------------------
def _last_user_text(messages: Any) -> str:
    if not isinstance(messages, list) or not messages:
        raise HttpError(400, "'messages' must be a non-empty list")
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                text = content
            elif isinstance(content, list):
                text = "\n".join(
                    p["text"]
                    for p in content
                    if isinstance(p, dict)
                    and p.get("type") == "text"
                    and isinstance(p.get("text"), str)
                )
            else:
                text = ""
            if text.strip():
                return text
            break
    raise HttpError(400, "the last user message must have text content")


@dataclass
class _Chat:
    user: str
    text: str
    task: str | None
    model: str
    stream: bool
    payload: dict[str, Any]
    wants_usage: bool


def _chat_request(gw: Gateway, request: Request, key: ApiKey | None, body: Any) -> _Chat:
    if not isinstance(body, dict):
        raise HttpError(400, "the body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise HttpError(400, "'model' is required: 'prouter' routes, an LLM id passes through")
    user = _user(key, body.get("user") or request.headers.get("x-prouter-user"))
    metadata = body.get("metadata")
    task = metadata.get("task") if isinstance(metadata, dict) else None
    task = task or request.headers.get("x-prouter-task")
    if task is not None and (not isinstance(task, str) or not task.strip()):
        raise HttpError(400, "the task must be a non-empty string")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise HttpError(400, "'stream' must be true or false")
    payload = {k: v for k, v in body.items() if k not in ("metadata",)}
    options = body.get("stream_options")
    wants_usage = isinstance(options, dict) and options.get("include_usage") is True
    if stream:  # ask for usage (cost recording); the chunk is dropped unless asked for
        payload["stream_options"] = {
            **(options if isinstance(options, dict) else {}),
            "include_usage": True,
        }
    return _Chat(
        user, _last_user_text(body.get("messages")), task, model, stream, payload, wants_usage
    )


def _candidates(gw: Gateway, chat: _Chat, result: Any) -> list[str]:
    if result is None:
        if chat.model not in gw.upstreams:
            raise HttpError(
                404,
                f"unknown model {chat.model[:80]!r}; GET /v1/models lists them",
                "model_not_found",
            )
        return [chat.model]
    ranked = [r.llm_id for r in result.ranking if r.llm_id in gw.upstreams]
    if not ranked:
        raise HttpError(
            503, "no upstream is configured for any LLM the router ranks", "no_upstream"
        )
    return ranked[: gw.max_attempts]


def _route_headers(result: Any, llm: str, response_id: str, attempts: int) -> dict[str, str]:
    headers = {
        "x-prouter-llm": safe_header(llm),
        "x-prouter-response-id": response_id,
        "x-prouter-attempts": str(attempts),
    }
    if result is not None:
        ranked = next(r for r in result.ranking if r.llm_id == llm)
        headers |= {
            "x-prouter-model-version": safe_header(result.model_version),
            "x-prouter-rank": str(ranked.rank),
            "x-prouter-utility": f"{ranked.utility:.6g}",
            "x-prouter-task": safe_header(result.task),
            "x-prouter-explanation": safe_header(result.explanation.message),
        }
    return headers


def _usage(body: Any) -> tuple[int | None, int | None]:
    usage = body if isinstance(body, dict) else {}
    values = []
    for name in ("prompt_tokens", "completion_tokens"):
        v = usage.get(name)
        ok = isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1 << 40
        values.append(v if ok else None)
    return values[0], values[1]


def _answer_text(body: dict[str, Any]) -> str | None:
    choices = body.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        message = choices[0].get("message")
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            return message["content"]
    return None


async def chat_completions(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    key = _authenticate(gw, request)
    chat = _chat_request(gw, request, key, await read_json(request, gw.max_body, gw.read_timeout))
    routed = chat.model == ROUTED or chat.model.startswith(ROUTED + ":")
    result = None
    if routed:
        wanted = chat.model.partition(":")[2]
        if wanted and wanted != gw.router.version:
            raise HttpError(
                404,
                f"model version {wanted[:80]!r} is not loaded (serving {gw.router.version})",
                "model_not_found",
            )
        result = await _route(gw, chat.user, chat.text, chat.task)
    candidates = _candidates(gw, chat, result)
    response_id = "chatcmpl-" + uuid.uuid4().hex
    qid = query_id(chat.text)
    emb = gw.router.service.embedder
    vector = (
        emb.cached(chat.text[:MAX_EMBED_CHARS])
        if result is not None and hasattr(emb, "cached")
        else None
    )
    served = dict(
        ts=_now(),
        user=chat.user,
        query_id=qid,
        text=chat.text,
        task=result.task if result is not None else chat.task,
        embedding=None if vector is None else [float(x) for x in vector],
        model_version=result.model_version if result is not None else None,
        ranking=[(r.llm_id, r.utility) for r in result.ranking] if result is not None else [],
    )
    mode = "routed" if routed else "direct"
    attempts: list[Attempt] = []
    client: httpx.AsyncClient = request.app.state.http
    for llm in candidates:
        up = gw.upstreams[llm]
        try:
            if chat.stream:
                stream = await open_stream(client, up, chat.payload)
            else:
                done = await complete(client, up, chat.payload)
        except UpstreamFailure as fail:
            gw.metrics.upstream_errors.labels(llm, fail.kind).inc()
            attempts.append(Attempt(llm, fail.kind, fail.latency_ms))
            continue
        except UpstreamRefusal as refusal:
            gw.metrics.upstream_errors.labels(llm, f"http {refusal.status}").inc()
            attempts.append(Attempt(llm, f"http {refusal.status}", refusal.latency_ms))
            gw.record(Served(**served, attempts=attempts))
            body = (
                refusal.body
                if isinstance(refusal.body, dict)
                else {"error": {"message": "refused"}}
            )
            return json_response(
                body, refusal.status, _route_headers(result, llm, response_id, len(attempts))
            )
        gw.metrics.routes.labels(llm, mode).inc()
        gw.answers.add(response_id, Answer(chat.user, qid, llm))
        headers = _route_headers(result, llm, response_id, len(attempts) + 1)
        upstream_ms = stream.latency_ms if chat.stream else done.latency_ms
        headers["x-prouter-upstream-ms"] = f"{upstream_ms:.3f}"  # until the answer / first byte
        if chat.stream:
            return StreamingResponse(
                _relay(gw, stream, llm, response_id, chat, served, attempts),
                media_type="text/event-stream",
                headers=headers | {"cache-control": "no-cache"},
            )
        body = done.body
        tokens_in, tokens_out = _usage(body.get("usage"))
        attempts.append(
            Attempt(
                llm,
                "ok",
                done.latency_ms,
                tokens_in,
                tokens_out,
                up.cost(tokens_in, tokens_out),
                _answer_text(body),
                response_id,
            )
        )
        gw.record(Served(**served, attempts=attempts))
        return json_response(body | {"id": response_id, "model": llm}, 200, headers)
    gw.record(Served(**served, attempts=attempts))
    tried = ", ".join(f"{a.llm_id} ({a.status})" for a in attempts)
    raise HttpError(502, f"every upstream failed: {tried}", "upstream_error")


async def _relay(
    gw: Gateway,
    stream: Any,
    llm: str,
    response_id: str,
    chat: _Chat,
    served: dict[str, Any],
    attempts: list[Attempt],
):  # type: ignore[no-untyped-def]
    """The upstream's chunks under our id and model; the request is recorded when the
    upstream has finished, *before* ``[DONE]`` goes out (a client that has read the whole
    stream and flushes the recorder finds it), or when the stream breaks."""

    async def finish(status: str) -> None:
        await stream.aclose()
        tokens_in, tokens_out = _usage(stream.usage)
        up = gw.upstreams[llm]
        attempts.append(
            Attempt(
                llm,
                status,
                stream.latency_ms,
                tokens_in,
                tokens_out,
                up.cost(tokens_in, tokens_out),
                "".join(stream.text),
                response_id,
            )
        )
        gw.record(Served(**served, attempts=attempts))

    finished = False
    status = "ok"
    try:
        async for chunk in stream.events():
            if not chunk.get("choices") and "usage" in chunk and not chat.wants_usage:
                continue
            yield b"data: " + dumps(chunk | {"id": response_id, "model": llm}) + b"\n\n"
        await finish(status)
        finished = True
        yield b"data: [DONE]\n\n"
    except httpx.HTTPError:
        status = "stream broken"
        gw.metrics.upstream_errors.labels(llm, status).inc()
    except BaseException:
        status = "client disconnected"
        raise
    finally:
        if not finished:
            await finish(status)


# -- feedback, metrics, admin ---------------------------------------------------------------
async def feedback(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    key = _authenticate(gw, request)
    body = await read_json(request, gw.max_body, gw.read_timeout)
    try:
        # off the event loop: an answer served before a restart is looked up in the graph
        events = await asyncio.to_thread(
            feedback_events, body, gw.answers, _now(), key.user if key else None
        )
    except FeedbackError as exc:
        raise HttpError(exc.status, str(exc)) from None
    for event in events:
        gw.record(event)
    return json_response({"recorded": len(events)})


async def metrics(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    _authenticate(gw, request)
    return Response(gw.metrics.render(), media_type=CONTENT_TYPE_LATEST)


async def reload(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    _authenticate(gw, request, admin=True)
    body = await read_json(request, gw.max_body, gw.read_timeout)
    version = body.get("version") if isinstance(body, dict) else None
    if version is not None and not isinstance(version, str):
        raise HttpError(400, "'version' must be a string")
    try:
        swapped = await asyncio.to_thread(gw.router.reload, version)
    except ProuterError as exc:
        raise HttpError(409, f"reload failed, still serving {gw.router.version}: {exc}") from None
    if swapped:
        gw.metrics.reloads.inc()
    return json_response({"model_version": gw.router.version, "reloaded": swapped})


async def _poll(gw: Gateway) -> None:
    while True:
        await asyncio.sleep(gw.reload_interval)
        try:
            if await asyncio.to_thread(gw.router.reload, None):
                gw.metrics.reloads.inc()
        except Exception:
            log.exception("polling for a newer router model failed")


class _Measured:
    """ASGI middleware: request counts by endpoint and status, and wall time to the last byte."""

    def __init__(self, app: Any, gw: Gateway) -> None:
        self.app, self.gw = app, gw

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"] if scope["path"] in ENDPOINTS else "other"
        started = time.perf_counter()
        status = 500

        async def sending(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            metrics = self.gw.metrics
            metrics.requests.labels(path, str(status)).inc()
            metrics.latency.labels(path).observe(time.perf_counter() - started)


# -- the app ------------------------------------------------------------------------------
ENDPOINTS = {
    "/route": ["POST"],
    "/health": ["GET"],
    "/v1/models": ["GET"],
    "/v1/chat/completions": ["POST"],
    "/feedback": ["POST"],
    "/metrics": ["GET"],
    "/admin/reload": ["POST"],
}


def create_app(gw: Gateway) -> Starlette:
    """The ASGI app serving ``gw``; its lifespan starts and stops the workers and the recorder."""

    @asynccontextmanager
    async def lifespan(app: Starlette):  # type: ignore[no-untyped-def]
        timeout = httpx.Timeout(gw.upstream_timeout, connect=min(gw.upstream_timeout, 10.0))
        app.state.http = httpx.AsyncClient(
            timeout=timeout, limits=httpx.Limits(max_connections=512)
        )
        gw.router.start()
        if gw.recorder is not None:
            gw.recorder.start()
        poller = asyncio.create_task(_poll(gw)) if gw.reload_interval > 0 else None
        try:
            yield
        finally:
            if poller is not None:
                poller.cancel()
            await gw.router.stop()
            await app.state.http.aclose()
            if gw.recorder is not None:
                await asyncio.to_thread(gw.recorder.close)
            for close in gw.on_close:
                close()

    handlers = {
        "/route": route,
        "/health": health,
        "/v1/models": models,
        "/v1/chat/completions": chat_completions,
        "/feedback": feedback,
        "/metrics": metrics,
        "/admin/reload": reload,
    }
    routes = [Route(path, handlers[path], methods=methods) for path, methods in ENDPOINTS.items()]

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HttpError)
        return error_response(exc.status, exc.message, exc.kind)

    async def starlette_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 405:
            allowed = ENDPOINTS.get(request.url.path, [])
            return error_response(
                405, f"use {' or '.join(allowed)} {request.url.path}", "method_not_allowed"
            )
        if exc.status_code == 404:
            listing = ", ".join(f"{m[0]} {p}" for p, m in ENDPOINTS.items())
            return error_response(
                404, f"no endpoint {request.url.path[:80]!r}; try {listing}", "not_found"
            )
        return error_response(exc.status_code, "request refused")

    async def internal_error(request: Request, exc: Exception) -> Response:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal error (logged by the server)", "internal_error")

    app = Starlette(
        routes=routes,
        middleware=[Middleware(_Measured, gw=gw)],
        lifespan=lifespan,
        exception_handlers={
            HttpError: http_error,
            HTTPException: starlette_error,
            Exception: internal_error,
        },
    )
    app.state.gateway = gw
    return app
