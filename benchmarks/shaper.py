"""A shaping TCP proxy: a network profile in front of local endpoints, in a process of its own.

Usage::

    python benchmarks/shaper.py --rate-mb 90 --rtt-ms 2 http://127.0.0.1:PORT [...]

For every upstream URL it listens on 127.0.0.1 and a free port and prints one line of JSON
(``{"listeners": ["http://127.0.0.1:...", ...]}``). Every connection made to a listener is
forwarded to its upstream, each direction on its own:

* a **delay line**: a chunk read at time t leaves no earlier than t + RTT/2;
* then a **token bucket** of ``--rate-mb`` MB/s per connection and direction (what one TCP
  stream to S3 gets: about 85-90 MB/s in the same region): a chunk of n bytes leaves n / rate
  after the one before it, so the last byte of a burst arrives when it would on the wire;
* a **new connection** waits ``--handshake-rtts`` round trips (default 2: TCP and TLS 1.3)
  before its first byte goes upstream, as a new HTTPS connection does;
* at most rate x RTT/2 + 1 MiB waits in the proxy per direction; beyond that it stops reading,
  so the sender's socket fills up and it slows down, as TCP's window makes it.

It does not model packet loss, TCP slow start or a shared bottleneck link: each connection gets
the full rate, as connections to S3's many front ends do.

Reading a line ``stats`` on stdin prints the counters as one JSON line: bytes delivered to the
client (``down``) and to the upstream (``up``), connections opened, and the proxy's own CPU
seconds (user + system), so a harness can tell what a scenario moved and whether the proxy
itself was the limit; a connection to the ``control`` address it prints gets the same line
(:class:`Wire` reads it around a timed part). It stops when its stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import resource
import socket
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

#: The environment variable through which a harness tells a measured child the shaper's
#: control address (``host:port``).
CONTROL_ENV = "OFFLOAD_BENCH_SHAPER"
#: Bytes read from a socket at once.
READ_SIZE = 256 * 1024


@dataclass
class Profile:
    """Per connection and direction: the rate (bytes/s), half the round trip, the handshake."""

    rate: float
    one_way: float
    handshake: float

    @property
    def queue_limit(self) -> int:
        return int(self.rate * self.one_way) + 1024 * 1024


@dataclass
class Counters:
    up: int = 0
    down: int = 0
    connections: int = 0
    open: int = 0
    by_listener: dict[str, list[int]] = field(default_factory=dict)


class Direction:
    """One direction of one connection: reads ``reader``, delivers to ``writer`` on schedule."""

    def __init__(
        self,
        profile: Profile,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        count: list[int],
        index: int,
        start: float,
    ) -> None:
        self.profile = profile
        self.reader = reader
        self.writer = writer
        self.count = count
        self.index = index
        self.queue: collections.deque[tuple[float, bytes]] = collections.deque()
        self.queued = 0
        self.readable = asyncio.Event()
        self.readable.set()
        self.arrived = asyncio.Event()
        self.eof = False
        #: When the link is next free: chunks leave one after another at the rate.
        self.free = start

    async def read(self) -> None:
        try:
            while True:
                await self.readable.wait()
                chunk = await self.reader.read(READ_SIZE)
                if not chunk:
                    break
                self.queue.append((time.monotonic(), chunk))
                self.queued += len(chunk)
                if self.queued >= self.profile.queue_limit:
                    self.readable.clear()
                self.arrived.set()
        except (ConnectionError, OSError):
            pass
        finally:
            self.eof = True
            self.arrived.set()

    async def deliver(self) -> None:
        profile = self.profile
        try:
            while True:
                if not self.queue:
                    if self.eof:
                        break
                    self.arrived.clear()
                    await self.arrived.wait()
                    continue
                read_at, chunk = self.queue.popleft()
                start = max(self.free, read_at + profile.one_way)
                self.free = start + len(chunk) / profile.rate
                wait = self.free - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                self.writer.write(chunk)
                self.count[self.index] += len(chunk)
                self.queued -= len(chunk)
                if self.queued < self.profile.queue_limit:
                    self.readable.set()
                await self.writer.drain()
            if self.writer.can_write_eof():
                self.writer.write_eof()
        except (ConnectionError, OSError):
            pass


class Shaper:
    def __init__(self, profile: Profile, upstreams: list[str]) -> None:
        self.profile = profile
        self.upstreams = upstreams
        self.counters = Counters()
        self.servers: list[asyncio.Server] = []
        #: The running pumps (the event loop keeps only weak references to tasks).
        self.tasks: set[asyncio.Future[None]] = set()
        self.listeners: list[str] = []

    async def start(self) -> None:
        for upstream in self.upstreams:
            url = urlsplit(upstream)
            host, port = url.hostname or "127.0.0.1", url.port or 80
            count = self.counters.by_listener.setdefault(upstream, [0, 0])

            async def handle(
                reader: asyncio.StreamReader,
                writer: asyncio.StreamWriter,
                host: str = host,
                port: int = port,
                count: list[int] = count,
            ) -> None:
                await self.connection(reader, writer, host, port, count)

            server = await asyncio.start_server(handle, "127.0.0.1", 0, limit=READ_SIZE)
            self.servers.append(server)
            bound = server.sockets[0].getsockname()[1]
            self.listeners.append(f"{url.scheme or 'http'}://127.0.0.1:{bound}")

    async def connection(
        self,
        client_reader: asyncio.StreamReader,
        client_writer: asyncio.StreamWriter,
        host: str,
        port: int,
        count: list[int],
    ) -> None:
        accepted = time.monotonic()
        self.counters.connections += 1
        self.counters.open += 1
        upstream_writer: asyncio.StreamWriter | None = None
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                host, port, limit=READ_SIZE
            )
            for writer in (client_writer, upstream_writer):
                sock = writer.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # The request leaves once the handshake is done and reaches the server half a
            # round trip later; the reply's link is free from the start.
            first = accepted + self.profile.handshake + self.profile.one_way
            up = Direction(self.profile, client_reader, upstream_writer, count, 0, first)
            down = Direction(self.profile, upstream_reader, client_writer, count, 1, accepted)
            # The connection ends when the reply direction does: the server closed and all it
            # sent was delivered, or the client went away; then the rest stops with it.
            pumps = {asyncio.ensure_future(c) for c in (up.read(), up.deliver(), down.read())}
            self.tasks |= pumps
            try:
                await down.deliver()
            finally:
                for task in pumps:
                    task.cancel()
                await asyncio.gather(*pumps, return_exceptions=True)
                self.tasks -= pumps
        except (ConnectionError, OSError):
            pass
        finally:
            self.counters.open -= 1
            client_writer.close()
            if upstream_writer is not None:
                upstream_writer.close()

    def stats(self) -> dict[str, object]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        up = sum(c[0] for c in self.counters.by_listener.values())
        down = sum(c[1] for c in self.counters.by_listener.values())
        return {
            "up": up,
            "down": down,
            "connections": self.counters.connections,
            "open": self.counters.open,
            "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "by_listener": {
                url: {"up": up, "down": down}
                for url, (up, down) in self.counters.by_listener.items()
            },
        }


async def serve(profile: Profile, upstreams: list[str]) -> None:
    shaper = Shaper(profile, upstreams)
    await shaper.start()

    async def control(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(json.dumps(shaper.stats()).encode() + b"\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(control, "127.0.0.1", 0)
    address = f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    print(json.dumps({"listeners": shaper.listeners, "control": address}), flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        if line.strip() == "stats":
            print(json.dumps(shaper.stats()), flush=True)
    os._exit(0)  # connections still open end with the process, not one by one


def read_stats(address: str) -> dict[str, object]:
    """The counters of the shaper whose control address (``host:port``) is ``address``; a
    process being measured reads them around its timed part."""
    host, _, port = address.partition(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return dict(json.loads(data))


class Wire:
    """The bytes a shaper moved, and its CPU time, between :meth:`start` and :meth:`stop`
    (summed over every such span); nothing when ``address`` is ``None`` (no shaper)."""

    def __init__(self, address: str | None) -> None:
        self.address = address
        self._before: dict[str, object] = {}
        self.figures: dict[str, float] = {}

    def start(self) -> None:
        if self.address:
            self._before = read_stats(self.address)

    def stop(self) -> None:
        if self.address:
            after = read_stats(self.address)
            pairs = (
                ("wire_up", "up"),
                ("wire_down", "down"),
                ("shaper_cpu_seconds", "cpu_seconds"),
            )
            for name, key in pairs:  # summed over every start/stop
                moved = float(after[key]) - float(self._before[key])  # type: ignore[arg-type]
                self.figures[name] = self.figures.get(name, 0.0) + moved


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("upstreams", nargs="+", help="http://host:port of each endpoint")
    parser.add_argument("--rate-mb", type=float, required=True, help="MB/s per connection")
    parser.add_argument("--rtt-ms", type=float, required=True, help="round trip time")
    parser.add_argument("--handshake-rtts", type=float, default=2.0)
    args = parser.parse_args()
    rtt = args.rtt_ms / 1000
    profile = Profile(args.rate_mb * 1e6, rtt / 2, args.handshake_rtts * rtt)
    asyncio.run(serve(profile, args.upstreams))


if __name__ == "__main__":
    main()
