"""``offload demo``: a publisher and a consumer sharing a local store, no AWS needed.

The publisher sends payloads of several sizes through a transport limit of 256 KiB (SQS's
default); small ones travel inline, large ones are stored and replaced by a pointer. A separate
consumer, configured with the same store, resolves every message and verifies it; a hostile
pointer naming a file outside the store is refused before any I/O.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import LocationNotAllowedError, OffloadError
from .offloader import Offloader
from .policy import Limits

__all__ = ["DemoRow", "run_demo"]

MiB = 2**20
CHUNK = 4 * MiB


@dataclass(frozen=True)
class DemoRow:
    """One message of the demo and what happened to it."""

    name: str
    size: int
    offloaded: bool
    stored_size: int | None
    codec: str
    pointer_format: str
    verified: bool
    seconds: float
    error: str | None = None


def _json_chunks(size: int) -> Iterator[bytes]:
    """Deterministic JSON-lines records, ``size`` bytes in all, as a stream."""
    sent, i = 0, 0
    while sent < size:
        record = {"order": i, "sku": f"SKU-{i % 977:05d}", "qty": i % 7 + 1, "note": "demo " * 8}
        line = (json.dumps(record) + "\n").encode()[: size - sent]
        sent += len(line)
        i += 1
        yield line


def _random_chunks(size: int) -> Iterator[bytes]:
    while size > 0:
        n = min(CHUNK, size)
        size -= n
        yield os.urandom(n)


def _batched(chunks: Iterator[bytes], target: int = CHUNK) -> Iterator[bytes]:
    buf: list[bytes] = []
    held = 0
    for chunk in chunks:
        buf.append(chunk)
        held += len(chunk)
        if held >= target:
            yield b"".join(buf)
            buf, held = [], 0
    if buf:
        yield b"".join(buf)


def _hashing(chunks: Iterator[bytes], sink: Callable[[bytes], None]) -> Iterator[bytes]:
    for chunk in chunks:
        sink(chunk)
        yield chunk


def run_demo(big_size: int = 200 * MiB, store_dir: Path | None = None) -> list[DemoRow]:
    """Publish and resolve the demo payloads; every row says whether the payload verified."""
    with tempfile.TemporaryDirectory(prefix="offload-demo-") as tmp:
        root = store_dir or Path(tmp) / "store"
        url = root.resolve().as_uri()
        limits = Limits(max_size=262_144)
        publishers = {
            "zstd": Offloader(url, compression="zstd"),
            "none": Offloader(url),
        }
        consumer = Offloader(url)
        cases: list[tuple[str, int, Callable[[int], Iterator[bytes]], str]] = [
            ("small JSON", 4 * 1024, _json_chunks, "zstd"),
            ("5 MiB JSON", 5 * MiB, _json_chunks, "zstd"),
            ("5 MiB binary", 5 * MiB, _random_chunks, "zstd"),
            (f"{big_size // MiB} MiB binary", big_size, _random_chunks, "none"),
        ]
        rows = [
            _one(name, size, make, publishers[codec], consumer, limits)
            for name, size, make, codec in cases
        ]
        rows.append(_hostile(consumer))
        return rows


def _one(
    name: str,
    size: int,
    make: Callable[[int], Iterator[bytes]],
    publisher: Offloader,
    consumer: Offloader,
    limits: Limits,
) -> DemoRow:
    start = time.perf_counter()
    sent = hashlib.sha256()
    message = publisher.prepare(_hashing(_batched(make(size)), sent.update), limits=limits)
    got = hashlib.sha256()
    received = 0
    error = None
    try:
        with consumer.open(message.body, message.attributes) as stream:
            while chunk := stream.read(CHUNK):
                got.update(chunk)
                received += len(chunk)
    except OffloadError as exc:
        error = f"{type(exc).__name__}: {exc}"
    pointer = message.pointer
    return DemoRow(
        name=name,
        size=size,
        offloaded=pointer is not None,
        stored_size=pointer.stored_size if pointer else None,
        codec=pointer.codec if pointer else "-",
        pointer_format=publisher.pointer_format if pointer else "inline",
        verified=error is None and received == size and got.digest() == sent.digest(),
        seconds=time.perf_counter() - start,
        error=error,
    )


def _hostile(consumer: Offloader) -> DemoRow:
    """A pointer naming a file outside the consumer's store must be refused, not read."""
    start = time.perf_counter()
    body = json.dumps(
        {"offload_pointer": 1, "location": "file:///etc/passwd", "size": 1}, separators=(",", ":")
    )
    try:
        consumer.resolve(body)
    except LocationNotAllowedError:
        refused = True
    else:
        refused = False
    return DemoRow(
        "hostile pointer",
        0,
        True,
        None,
        "-",
        "native",
        refused,
        time.perf_counter() - start,
        None if refused else "pointer was followed",
    )
