"""A streamed answer is recorded before its client sees the end of the stream.

``test_chat.py::test_upstream_failure_falls_back_to_the_next_ranked[True-*]`` failed
under load (sessions 8 and 12): the client had read ``[DONE]``, flushed the recorder
and found neither attempt in the graph. The gateway recorded a streamed request only
when the relay was resumed after ``[DONE]``, so a client (or test) that read the graph
right after the stream could miss it. Now the event is recorded before ``[DONE]`` is sent.
"""

from __future__ import annotations

import asyncio
import json
import time
from types import SimpleNamespace

import httpx

from prouter.gateway.app import _Chat, _relay
from prouter.gateway.recorder import Attempt
from prouter.gateway.upstream_calls import Stream
from prouter.gateway.upstreams import Upstream

DONE = b"data: [DONE]\n\n"


def _upstream_body() -> bytes:
    chunks = [{"choices": [{"delta": {"content": word}}]} for word in ("an ", "answer")]
    chunks.append({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}})
    return b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + DONE


def test_the_stream_is_recorded_before_done_is_sent():
    recorded: list = []
    gw = SimpleNamespace(
        upstreams={"m": Upstream("m", "http://127.0.0.1:9/v1", "up-m", None, 1.0, 2.0)},
        record=recorded.append,
    )
    stream = Stream(httpx.Response(200, content=_upstream_body()), time.perf_counter())
    chat = _Chat("ann", "a question", None, "prouter", True, {}, wants_usage=False)
    served = {"ts": "2026-01-01T00:00:00+00:00", "user": "ann", "query_id": "q1"}
    served |= {"text": "a question", "task": None}
    failed = [Attempt("other", "timeout", 5000.0)]

    async def relay() -> list[bytes]:
        sent = []
        async for chunk in _relay(gw, stream, "m", "resp-1", chat, served, failed):
            if chunk == DONE:  # the client can now see the end: the event must be in
                assert len(recorded) == 1
            sent.append(chunk)
        return sent

    sent = asyncio.run(relay())
    assert sent[-1] == DONE and len(sent) == 3  # two content chunks; the usage one not asked
    (event,) = recorded
    assert [(a.llm_id, a.status) for a in event.attempts] == [("other", "timeout"), ("m", "ok")]
    ok = event.attempts[1]
    assert (ok.input_tokens, ok.output_tokens, ok.response) == (3, 2, "an answer")
    assert ok.cost is not None and abs(ok.cost - (3 * 1.0 + 2 * 2.0) / 1000) < 1e-12
