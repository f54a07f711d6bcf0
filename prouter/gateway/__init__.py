"""The OpenAI-compatible routing gateway behind ``prouter serve``.

Modules: ``app`` (the Starlette app and its endpoints), ``router`` (batched
inference and hot reload), ``upstreams`` (the upstreams file), ``upstream_calls``
(httpx calls with fallback signals), ``recorder`` (batched graph writes),
``feedback``, ``keys`` (API keys, hashes only), ``metrics`` (Prometheus),
``embedding`` (a bounded in-memory embedding cache), ``http`` (body limits,
strict JSON), ``server`` (building and running it all).
"""
