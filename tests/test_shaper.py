"""The benchmark harness's shaping proxy (``benchmarks/shaper.py``), against a real TCP server.

Only lower bounds are asserted on time (a busy machine makes the proxy slower, never faster):
the delay line holds every reply at least one round trip, a new connection waits its handshake,
and the token bucket keeps a large transfer to the rate. Bytes are counted exactly.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
RTT = 0.05  # seconds
RATE_MB = 20.0  # MB/s per connection and direction


class _Echo(socketserver.BaseRequestHandler):
    """Answers each line ``N`` with N bytes; closes on an empty line."""

    def handle(self) -> None:
        file = self.request.makefile("rb")
        for line in file:
            if not line.strip():
                break
            self.request.sendall(b"x" * int(line))


@pytest.fixture(scope="module")
def harness() -> ModuleType:
    import sys

    sys.path.insert(0, str(BENCHMARKS))
    try:
        import _harness
    finally:
        sys.path.remove(str(BENCHMARKS))
    return _harness


@pytest.fixture(scope="module")
def shaped(harness: ModuleType) -> Iterator[tuple[object, tuple[str, int]]]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    upstream = f"http://127.0.0.1:{server.server_address[1]}"
    shaper = harness.Shaper(harness.Network("test", RATE_MB, RTT * 1000), [upstream])
    try:
        host, port = shaper.listeners[0].removeprefix("http://").split(":")
        yield shaper, (host, int(port))
    finally:
        shaper.close()
        server.shutdown()
        server.server_close()


def _ask(sock: socket.socket, size: int) -> float:
    """Seconds until ``size`` bytes came back for one request line."""
    start = time.perf_counter()
    sock.sendall(b"%d\n" % size)
    received = 0
    while received < size:
        chunk = sock.recv(1 << 20)
        assert chunk, "the proxy closed the connection early"
        received += len(chunk)
    return time.perf_counter() - start


def test_a_new_connection_waits_its_handshake_then_each_reply_a_round_trip(
    shaped: tuple[object, tuple[str, int]],
) -> None:
    _, address = shaped
    with socket.create_connection(address, timeout=10) as sock:
        first = _ask(sock, 10)
        again = [_ask(sock, 10) for _ in range(3)]
    assert first >= 3 * RTT * 0.95  # two round trips of handshake, one for the request
    assert min(again) >= RTT * 0.95


def test_the_rate_holds_per_connection_and_bytes_are_counted(
    shaped: tuple[object, tuple[str, int]],
) -> None:
    shaper, address = shaped
    size = 4_000_000  # 0.2 s at 20 MB/s
    before = shaper.stats()  # type: ignore[attr-defined]
    with socket.create_connection(address, timeout=10) as sock:
        seconds = _ask(sock, size)
        sock.sendall(b"\n")
    assert seconds >= size / (RATE_MB * 1e6) * 0.95 + RTT * 0.95
    deadline = time.monotonic() + 5
    while True:  # the request lines are counted once delivered
        after = shaper.stats()  # type: ignore[attr-defined]
        if after["up"] - before["up"] == len(b"%d\n" % size) + 1 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert after["down"] - before["down"] == size
    assert after["up"] - before["up"] == len(b"%d\n" % size) + 1
    assert after["connections"] - before["connections"] == 1
    assert after["cpu_seconds"] >= before["cpu_seconds"] > 0
