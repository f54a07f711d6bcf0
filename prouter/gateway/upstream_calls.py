"""Calls to OpenAI-compatible upstreams (httpx, async): plain and streaming (SSE).

A 5xx, a 429, a timeout or a connection error is an :class:`UpstreamFailure`
(the gateway falls back to the next-ranked LLM); any other error status is an
:class:`UpstreamRefusal` (the request itself was refused; passed to the client).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from prouter.gateway.upstreams import Upstream

__all__ = ["Completion", "Stream", "UpstreamFailure", "UpstreamRefusal", "complete", "open_stream"]


class UpstreamFailure(Exception):
    """The upstream failed (retry elsewhere); ``kind`` says how, e.g. ``http 502``."""

    def __init__(self, kind: str, latency_ms: float) -> None:
        super().__init__(kind)
        self.kind, self.latency_ms = kind, latency_ms


class UpstreamRefusal(Exception):
    """The upstream refused the request (4xx other than 429): its status and JSON body."""

    def __init__(self, status: int, body: Any, latency_ms: float) -> None:
        super().__init__(f"http {status}")
        self.status, self.body, self.latency_ms = status, body, latency_ms


@dataclass
class Completion:
    """A non-streamed answer: the upstream's JSON and the call's wall time."""

    body: dict[str, Any]
    latency_ms: float


@dataclass
class Stream:
    """An open streamed answer; iterate :meth:`events` for the parsed ``data:`` chunks."""

    response: httpx.Response
    started: float
    text: list[str] = field(default_factory=list)
    usage: dict[str, Any] | None = None

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """Each JSON chunk (``[DONE]`` ends it); collects the answer's text and usage."""
        async for line in self.response.aiter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                return
            try:
                chunk = json.loads(data)
            except ValueError:
                continue
            if not isinstance(chunk, dict):
                continue
            if isinstance(chunk.get("usage"), dict):
                self.usage = chunk["usage"]
            for choice in chunk.get("choices") or []:
                delta = choice.get("delta") if isinstance(choice, dict) else None
                if isinstance(delta, dict) and isinstance(delta.get("content"), str):
                    self.text.append(delta["content"])
            yield chunk

    @property
    def latency_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000.0

    async def aclose(self) -> None:
        await self.response.aclose()


def _request(client: httpx.AsyncClient, up: Upstream, payload: dict[str, Any]) -> httpx.Request:
    headers = {"Content-Type": "application/json"}
    key = up.api_key()
    if key:
        headers["Authorization"] = f"Bearer {key}"
    body = {**payload, "model": up.model}
    return client.build_request(
        "POST", f"{up.base_url}/chat/completions", json=body, headers=headers
    )


async def _send(
    client: httpx.AsyncClient, up: Upstream, payload: dict[str, Any], stream: bool
) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    try:
        response = await client.send(_request(client, up, payload), stream=stream)
    except httpx.TimeoutException:
        raise UpstreamFailure("timeout", (time.perf_counter() - started) * 1000) from None
    except httpx.HTTPError as exc:
        kind = "connect error" if isinstance(exc, httpx.ConnectError) else "transport error"
        raise UpstreamFailure(kind, (time.perf_counter() - started) * 1000) from None
    if response.status_code >= 500 or response.status_code == 429:
        await response.aclose()
        raise UpstreamFailure(
            f"http {response.status_code}", (time.perf_counter() - started) * 1000
        )
    if response.status_code >= 400:
        raw = await response.aread()
        await response.aclose()
        try:
            body = json.loads(raw)
        except ValueError:
            body = {"error": {"message": f"upstream answered {response.status_code}"}}
        raise UpstreamRefusal(response.status_code, body, (time.perf_counter() - started) * 1000)
    return response, started


async def complete(client: httpx.AsyncClient, up: Upstream, payload: dict[str, Any]) -> Completion:
    """POST a non-streamed chat completion to ``up``."""
    response, started = await _send(client, up, payload, stream=False)
    try:
        body = response.json()
    except ValueError:
        raise UpstreamFailure("bad json", (time.perf_counter() - started) * 1000) from None
    if not isinstance(body, dict):
        raise UpstreamFailure("bad json", (time.perf_counter() - started) * 1000)
    return Completion(body, (time.perf_counter() - started) * 1000)


async def open_stream(client: httpx.AsyncClient, up: Upstream, payload: dict[str, Any]) -> Stream:
    """Start a streamed chat completion (status checked; the body not yet read)."""
    response, started = await _send(client, up, payload, stream=True)
    return Stream(response, started)
