"""uvicorn's httptools protocol with a header read timeout.

uvicorn times out idle keep-alive connections but not a request whose
headers never finish arriving: each such connection would be held forever.
This protocol closes a connection whose request line and headers are not
complete ``header_timeout`` seconds after its first byte (or its opening).
Body reads are bounded separately by the app (408).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["header_timeout_protocol"]


def header_timeout_protocol(header_timeout: float) -> type[asyncio.Protocol]:
    """An HTTP protocol class for ``uvicorn.Config(http=...)``."""

    class HeaderTimeoutProtocol(HttpToolsProtocol):
        _timer: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            if self._timer is None:
                self._timer = self.loop.call_later(header_timeout, self._expired)

        def _disarm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _expired(self) -> None:
            self._timer = None
            if not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self.cycle is None or self.cycle.response_complete:
                self._arm()  # between requests: the next one's headers must come in time
            super().data_received(data)

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return HeaderTimeoutProtocol
