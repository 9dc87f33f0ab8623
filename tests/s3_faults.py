"""Real HTTP peers for failures moto cannot produce: a relay that cuts responses mid-body and
an endpoint that answers every request with one S3 error; and :class:`Faults`, which makes real
clients (boto3, and the aiobotocore client of an S3 store) fail chosen requests through
botocore's own events, before the request leaves or after its response arrived."""

from __future__ import annotations

import contextlib
import http.server
import random
import socket
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

__all__ = ["CuttingProxy", "ErrorStub", "Faults", "store_client"]


class CuttingProxy:
    """A TCP relay to moto that drops a connection once it has relayed ``cut_after`` response
    bytes on it, ``cuts`` times: a real network failure in the middle of a response body."""

    def __init__(self, upstream: str, *, cut_after: int, cuts: int) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.cut_after = cut_after
        self.cuts_left = cuts
        #: Called before a connection is dropped.
        self.on_cut: Callable[[], object] | None = None
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._server.close()
        for sock in self._sockets:
            sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._upstream)
            self._sockets += [client, upstream]
            threading.Thread(target=self._requests, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._responses, args=(upstream, client), daemon=True).start()

    def _requests(self, source: socket.socket, sink: socket.socket) -> None:
        while data := _receive(source):
            if data[:4] in (b"GET ", b"HEAD", b"PUT ", b"POST", b"DELE"):
                with self._lock:
                    self.requests.append(data.split(b"\r\n\r\n", 1)[0].decode("latin-1"))
            if not _send(sink, data):
                break
        _shutdown(sink)

    def _responses(self, source: socket.socket, sink: socket.socket) -> None:
        relayed = 0
        while data := _receive(source):
            with self._lock:
                cut = self.cuts_left > 0 and relayed + len(data) > self.cut_after
                self.cuts_left -= cut
            if cut:
                _send(sink, data[: self.cut_after - relayed])
                if self.on_cut is not None:
                    self.on_cut()
                _shutdown(sink)
                _shutdown(source)
                return
            if not _send(sink, data):
                break
            relayed += len(data)
        _shutdown(sink)


def _receive(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""


def _send(sock: socket.socket, data: bytes) -> bool:
    try:
        sock.sendall(data)
    except OSError:
        return False
    return True


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class ErrorStub:
    """An HTTP endpoint that answers every request with one S3 error, for errors moto never
    sends (throttling, 5xx, ACLs refused by Object Ownership)."""

    def __init__(self, status: int, code: str) -> None:
        #: Requests answered so far.
        self.requests = 0
        stub = self
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
            f"<Message>{code} from the stub</Message><RequestId>1</RequestId></Error>"
        ).encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                stub.requests += 1
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def store_client(store: Any) -> Any:
    """The client every request of an S3 store goes through: its boto3 client, or s3fs's
    aiobotocore one (create the store with ``skip_instance_cache=True`` so that handlers on it
    reach no other store)."""
    from fsspec.asyn import sync

    if store.fs is None:
        return store.client
    return sync(store.fs.loop, store.fs.set_session)


@dataclass
class _Rule:
    operation: str
    error: Callable[[], BaseException]
    after: bool
    times: int | None
    probability: float


class Faults:
    """Fails chosen requests of the clients it is attached to, through botocore's events.

    A fault ``before`` a request raises in ``before-send``: nothing reaches the server. A fault
    ``after`` raises in ``after-call``: the server acted, and the caller never learns it. Every
    request that reached the server is counted in :attr:`sent` and listed in :attr:`log`."""

    def __init__(self, seed: int = 0) -> None:
        self._rules: list[_Rule] = []
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        #: Requests that reached the server, by operation name.
        self.sent: Counter[str] = Counter()
        #: Operation names of requests that reached the server, in order.
        self.log: list[str] = []
        #: Faults raised, by operation name.
        self.raised: Counter[str] = Counter()

    def attach(self, client: Any) -> Any:
        client.meta.events.register("before-send", self._before_send)
        client.meta.events.register("after-call", self._after_call)
        return client

    def inject(
        self,
        operation: str,
        error: Callable[[], BaseException],
        *,
        after: bool = False,
        times: int | None = 1,
        probability: float = 1.0,
    ) -> None:
        """Fail ``operation`` (``"*"``: any) ``times`` times (``None``: every time), each time
        with ``probability``, by raising ``error()``."""
        with self._lock:
            self._rules.append(_Rule(operation, error, after, times, probability))

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def _fault(self, operation: str, after: bool) -> BaseException | None:
        with self._lock:
            for rule in self._rules:
                if rule.after != after or rule.operation not in ("*", operation):
                    continue
                if rule.times == 0 or self._random.random() >= rule.probability:
                    continue
                if rule.times is not None:
                    rule.times -= 1
                self.raised[operation] += 1
                return rule.error()
            if not after:
                self.sent[operation] += 1
                self.log.append(operation)
        return None

    def _before_send(self, event_name: str, **_: Any) -> None:
        fault = self._fault(event_name.rsplit(".", 1)[-1], after=False)
        if fault is not None:
            raise fault

    def _after_call(self, model: Any, **_: Any) -> None:
        fault = self._fault(model.name, after=True)
        if fault is not None:
            raise fault
