"""Test support: a fake OpenAI-compatible upstream and servers on 127.0.0.1 threads."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


def answer_text(model: str, question: str) -> str:
    """What the fake upstream answers: depends on the model and the question."""
    return f"{model} says: {question[::-1][:40]}"


class FakeUpstream:
    """Chat completions for any model name; ``behaviour[model]`` = "ok" | "500" | "slow" | "400".

    Usage: prompt tokens = words of the last message, completion tokens = words of the answer.
    ``calls`` lists (model, stream) of every request received.
    """

    def __init__(self, slow_seconds: float = 3.0) -> None:
        self.behaviour: dict[str, str] = {}
        self.calls: list[tuple[str, bool]] = []
        self.slow_seconds = slow_seconds
        self.app = Starlette(routes=[Route("/v1/chat/completions", self.chat, methods=["POST"])])

    async def chat(self, request: Request) -> Response:
        body = await request.json()
        model, stream = body["model"], bool(body.get("stream"))
        self.calls.append((model, stream))
        mode = self.behaviour.get(model, "ok")
        if mode == "500":
            return JSONResponse({"error": {"message": "upstream exploded"}}, 500)
        if mode == "400":
            return JSONResponse({"error": {"message": "bad request upstream"}}, 400)
        if mode == "slow":
            await asyncio.sleep(self.slow_seconds)
        question = body["messages"][-1]["content"]
        text = answer_text(model, question)
        usage = {
            "prompt_tokens": len(question.split()),
            "completion_tokens": len(text.split()),
            "total_tokens": len(question.split()) + len(text.split()),
        }
        base = {"id": "up-1", "created": 1, "model": model}
        if not stream:
            message = {"role": "assistant", "content": text}
            choice = {"index": 0, "message": message, "finish_reason": "stop"}
            return JSONResponse(
                base | {"object": "chat.completion", "choices": [choice], "usage": usage}
            )
        include_usage = (body.get("stream_options") or {}).get("include_usage")

        async def events():  # type: ignore[no-untyped-def]
            for word in text.split(" "):
                delta = {"index": 0, "delta": {"content": word + " "}, "finish_reason": None}
                chunk = base | {"object": "chat.completion.chunk", "choices": [delta]}
                yield f"data: {json.dumps(chunk)}\n\n"
            end = {"index": 0, "delta": {}, "finish_reason": "stop"}
            last = base | {"object": "chat.completion.chunk", "choices": [end]}
            yield f"data: {json.dumps(last)}\n\n"
            if include_usage:
                last = base | {"object": "chat.completion.chunk", "choices": [], "usage": usage}
                yield f"data: {json.dumps(last)}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")


@contextmanager
def serving(app: Any, **options: Any) -> Iterator[str]:
    """Run an ASGI app with uvicorn on a thread on a free 127.0.0.1 port; yields its base URL."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", lifespan="on", **options
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
