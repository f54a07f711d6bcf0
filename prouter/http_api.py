"""A small HTTP JSON API over a warm :class:`gnn.serving.RoutingService` (stdlib only).

Endpoints:

* ``GET /health`` -> ``{"status": "ok", "model_version", "tasks", "llms", "users", ...}``
* ``POST /route`` with ``{"user": ..., "query": ..., "task": ... (optional),
  "top": N (optional)}`` -> the :class:`gnn.serving.RouteResult` as JSON
  (ranked LLMs and the explanation).

Errors are JSON ``{"error": message}``: 400 for a bad request (invalid JSON,
missing fields, unknown task), 404 for an unknown path, 405 for a wrong method,
500 for anything unexpected. Requests are served on threads
(``ThreadingHTTPServer``); the service serialises model inference itself.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from prcore.errors import ProuterError

if TYPE_CHECKING:
    from gnn.serving import RoutingService

__all__ = ["MAX_BODY", "make_server", "serve_until_signalled"]

log = logging.getLogger(__name__)
MAX_BODY = 1 << 20  # bytes of one request body
ENDPOINTS = "GET /health, POST /route"


class _BadRequest(Exception):
    pass


def _request_fields(body: bytes) -> tuple[str, str, str | None, int | None]:
    try:
        payload = json.loads(body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _BadRequest(f"the body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise _BadRequest('the body must be a JSON object: {"user": ..., "query": ...}')
    unknown = sorted(set(payload) - {"user", "query", "task", "top"})
    if unknown:
        raise _BadRequest(f"unknown fields {unknown}; valid: user, query, task, top")
    user, query, task, top = (payload.get(k) for k in ("user", "query", "task", "top"))
    for name, value in (("user", user), ("query", query)):
        if not isinstance(value, str) or not value.strip():
            raise _BadRequest(f"{name!r} is required and must be a non-empty string")
    if task is not None and not isinstance(task, str):
        raise _BadRequest("'task' must be a string")
    if top is not None and (not isinstance(top, int) or isinstance(top, bool) or top < 0):
        raise _BadRequest("'top' must be a non-negative integer")
    return user, query, task, top


class _Handler(BaseHTTPRequestHandler):
    server_version = "prouter"
    protocol_version = "HTTP/1.1"
    service: RoutingService  # set on the subclass made by make_server

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload, ensure_ascii=False, allow_nan=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, message: str) -> None:
        self._send(status, {"error": message, "status": status})

    def do_GET(self) -> None:
        if self.path == "/health":
            self._send(HTTPStatus.OK, self.service.health())
        elif self.path == "/route":
            self._error(HTTPStatus.METHOD_NOT_ALLOWED, "use POST /route with a JSON body")
        else:
            self._error(HTTPStatus.NOT_FOUND, f"no endpoint {self.path!r}; try {ENDPOINTS}")

    def do_POST(self) -> None:
        if self.path != "/route":
            self._error(HTTPStatus.NOT_FOUND, f"no endpoint POST {self.path!r}; try {ENDPOINTS}")
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self.close_connection = True
            self._error(HTTPStatus.BAD_REQUEST, f"Content-Length must be 0..{MAX_BODY}")
            return
        body = self.rfile.read(length)
        try:
            user, query, task, top = _request_fields(body)
            result = self.service.route(user, query, task)
        except (_BadRequest, ProuterError) as exc:
            self._error(HTTPStatus.BAD_REQUEST, str(exc))
            return
        except Exception as exc:  # the server keeps serving; the client gets a 500
            log.exception("POST /route failed")
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(exc).__name__}: {exc}")
            return
        self._send(HTTPStatus.OK, result.to_dict(top or None))

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)


def make_server(service: RoutingService, host: str = "127.0.0.1", port: int = 8765):  # type: ignore[no-untyped-def]
    """A ``ThreadingHTTPServer`` bound to (host, port) answering with ``service``.

    Port 0 picks a free port (see ``server.server_address``). Call
    ``serve_forever()`` to serve, ``shutdown()`` and ``server_close()`` to stop.
    """
    handler = type("RouteHandler", (_Handler,), {"service": service})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def serve_until_signalled(
    server: ThreadingHTTPServer, on_ready: Callable[[], None] | None = None
) -> None:
    """Serve until SIGINT or SIGTERM, then stop accepting, finish and close the socket.

    Must run on the main thread (it installs the signal handlers and restores
    the previous ones on return).
    """
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    thread = threading.Thread(target=server.serve_forever, name="prouter-http", daemon=True)
    thread.start()
    try:
        if on_ready is not None:
            on_ready()
        while not stop.wait(0.5):
            if not thread.is_alive():
                break
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
