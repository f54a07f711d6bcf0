"""HTTP plumbing of the gateway: bounded body reads, strict JSON in, finite JSON out."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from prcore.values import finite_or_none

__all__ = ["HttpError", "error_response", "json_response", "read_json", "safe_header"]


class HttpError(Exception):
    """An error answered as JSON with ``status``; ``message`` is safe to show the client."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind


def dumps(payload: Any) -> bytes:
    return json.dumps(finite_or_none(payload), ensure_ascii=False, allow_nan=False).encode()


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(dumps(payload), status, headers, media_type="application/json")


def error_response(status: int, message: str, kind: str = "invalid_request_error") -> Response:
    """``{"error": {"message", "type", "code"}, "status"}`` (OpenAI's shape, plus the status)."""
    body = {"error": {"message": message, "type": kind, "code": status}, "status": status}
    return json_response(body, status)


def _check_text(value: Any, where: str = "body") -> None:
    """Refuse lone surrogates (they cannot be encoded and would fail later)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise HttpError(400, f"the {where} holds text that is not valid Unicode") from None
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_text(k, where)
            _check_text(v, where)
    elif isinstance(value, list):
        for v in value:
            _check_text(v, where)


async def read_json(request: Request, limit: int, timeout: float) -> Any:
    """The request's JSON body: 413 over ``limit`` bytes, 408 after ``timeout`` s, 400 if bad."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise HttpError(413, f"the body must be at most {limit} bytes", "request_too_large")
    chunks: list[bytes] = []

    async def collect() -> None:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HttpError(413, f"the body must be at most {limit} bytes", "request_too_large")
            chunks.append(chunk)

    try:
        await asyncio.wait_for(collect(), timeout)
    except TimeoutError:
        raise HttpError(408, f"the body was not received within {timeout:g} s") from None
    try:
        payload = json.loads(b"".join(chunks) or b"null")
    except (ValueError, RecursionError):
        raise HttpError(400, "the body is not valid JSON") from None
    try:
        _check_text(payload)
    except RecursionError:
        raise HttpError(400, "the body is nested too deeply") from None
    return payload


def safe_header(text: str, limit: int = 200) -> str:
    """Printable ASCII only (a header value must not carry newlines or non-Latin-1)."""
    out = "".join(c if 32 <= ord(c) < 127 else "?" for c in text)
    return out[:limit]
