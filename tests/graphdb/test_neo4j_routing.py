"""Neo4j past one machine, against the real local server: a ``neo4j://`` routing URI with
managed transactions, the shared bookmark manager, and transient failures (a dropped or
refused connection) retried, then raised as StoreError, never leaked."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from urllib.parse import urlparse

import neo4j
import pytest

from graphdb.backends.neo4j import Neo4jStore
from graphdb.store import open_store
from prcore.errors import StoreError

pytestmark = pytest.mark.neo4j


class Proxy:
    """A TCP relay in front of the server that can drop every connection or go away."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def drop_connections(self) -> None:
        with self.lock:
            conns, self.conns = self.conns, []
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):  # wakes the blocked accept(): the port closes
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.drop_connections()


@pytest.fixture
def proxy(neo4j_server) -> Iterator[Proxy]:
    url = urlparse(neo4j_server["uri"])
    p = Proxy((url.hostname, url.port))
    yield p
    p.close()


def _auth(server: dict[str, str]) -> tuple[str, str]:
    return (server["username"], server["password"])


def test_a_routing_uri_writes_and_reads_with_bookmarks(neo4j_server):
    routed = neo4j_server["uri"].replace("bolt://", "neo4j://")
    store = open_store(routed, username=neo4j_server["username"], password=neo4j_server["password"])
    try:
        store.clear()
        before = set(store._bookmarks.get_bookmarks())
        assert before  # the clearing write left its bookmark in the shared manager
        store.write_nodes("User", [{"id": "u-routed", "persona": "routed"}])
        after_write = set(store._bookmarks.get_bookmarks())
        assert after_write and after_write != before
        # the read runs on a reader holding the write's bookmark: it sees the node
        assert store.node_ids("User") == ["u-routed"]
    finally:
        store.clear()
        store.close()


def test_dropped_connections_are_retried(neo4j_server, proxy):
    store = Neo4jStore.connect(f"bolt://127.0.0.1:{proxy.port}", _auth(neo4j_server))
    try:
        store.clear()
        store.write_nodes("User", [{"id": "u-1"}])
        for _ in range(3):  # every pooled connection dies between two calls
            proxy.drop_connections()
            assert store.node_ids("User") == ["u-1"]
        proxy.drop_connections()
        assert store.write_nodes("User", [{"id": "u-2"}]).created == 1
        assert sorted(store.node_ids("User")) == ["u-1", "u-2"]
    finally:
        store.clear()
        store.close()


def test_an_unavailable_server_is_a_store_error_after_bounded_retries(neo4j_server, proxy):
    store = Neo4jStore.connect(
        f"bolt://127.0.0.1:{proxy.port}",
        _auth(neo4j_server),
        retry_attempts=2,
        transaction_retry_time=0.5,
    )
    try:
        assert store.read("RETURN 1 AS one").to_pylist() == [{"one": 1}]
        proxy.close()  # nothing listens any more
        with pytest.raises(StoreError, match="unavailable after 2 attempts") as err:
            store.read("RETURN 1 AS one")
        assert isinstance(err.value.__cause__, neo4j.exceptions.ServiceUnavailable)
        with pytest.raises(StoreError):
            store.write_nodes("User", [{"id": "u-3"}])
    finally:
        store.close()
