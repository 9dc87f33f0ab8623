"""The demo's payloads: JSON documents and random bytes of an exact size, made as streams and
hashed as they pass, so that even a 2 GiB payload never sits in memory."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import IO, Literal

__all__ = [
    "CHUNK",
    "ROUTING",
    "KiB",
    "MiB",
    "Payload",
    "Progress",
    "Tally",
    "bar",
    "size_label",
    "tiers",
]

KiB = 1024
MiB = 1024 * KiB
#: Bytes generated, hashed and read at a time.
CHUNK = 8 * MiB
#: Transfers at least this large get a progress bar.
BAR_FROM = 16 * MiB

#: ``progress(total, what)``: a context giving a callback that is told each transferred byte
#: count, such as the CLI's tqdm bar.
Progress = Callable[[int | None, str], AbstractContextManager[Callable[[int], None]]]

#: The routing fields every JSON payload starts with; EventBridge rules match on them, and they
#: stay inline beside the pointer of a stored detail.
ROUTING = {"type": "order-batch", "tenant": "acme"}

_HEAD = (json.dumps(ROUTING, separators=(",", ":"))[:-1] + ',"orders":[').encode()
_PAD = b'],"pad":"'
_END = b'"}'
_ORDERS_PER_BLOCK = 32
# A block of orders, filled in with its number and a random trace id per order (so the JSON
# compresses about as well as real records do, not as well as a repeated block would).
# Integers and plain ASCII only: the document is canonical compact JSON, so a consumer that
# re-serialises it (Lambda's EventBridge records give the detail as json.dumps(...,
# separators=(",", ":"))) gets the very same bytes.
_ORDERS = ",".join(
    f'{{"order":"%09d-{j:02d}","sku":"SKU-{j * 7919 % 977:05d}","quantity":{j % 7 + 1},'
    f'"cents":{j * 3719 % 100_000},"trace":"%s","note":"deliver to dock {j % 13}"}}'
    for j in range(_ORDERS_PER_BLOCK)
)


def size_label(size: int) -> str:
    """``4 KiB``, ``5 MiB``, ``2 GiB``; bytes when not a whole number of KiB."""
    for unit, factor in (("GiB", 1024 * MiB), ("MiB", MiB), ("KiB", KiB)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size:,} B"


def tiers(big: int, small: int = 4 * KiB, medium: int = 5 * MiB) -> list[int]:
    """The payload sizes of a run: a small one that travels inline, a medium and a big one."""
    return sorted({small, min(medium, big), big})


@dataclass(frozen=True)
class Payload:
    """One payload of the demo: JSON or random bytes of an exact size."""

    kind: Literal["JSON", "binary"]
    size: int

    @property
    def name(self) -> str:
        return f"{self.kind} {size_label(self.size)}"

    @property
    def content_type(self) -> str:
        return "application/json" if self.kind == "JSON" else "application/octet-stream"

    def chunks(self) -> Iterator[bytes]:
        """The payload, a chunk at a time."""
        return _json_chunks(self.size) if self.kind == "JSON" else _random_chunks(self.size)


def _json_chunks(size: int) -> Iterator[bytes]:
    """A JSON object of exactly ``size`` bytes: the routing fields, orders, then padding."""
    room = size - len(_HEAD) - len(_PAD) - len(_END)
    if room < 0:
        raise ValueError(f"a JSON payload of the demo is at least {size - room} bytes")
    held, ready, block = [_HEAD], len(_HEAD), 0
    while True:
        trace = os.urandom(8 * _ORDERS_PER_BLOCK).hex()
        values = (v for j in range(_ORDERS_PER_BLOCK) for v in (block, trace[16 * j : 16 * j + 16]))
        piece = (_ORDERS % tuple(values)).encode()
        if block:
            piece = b"," + piece
        if len(piece) > room:
            break
        held.append(piece)
        ready += len(piece)
        room -= len(piece)
        block += 1
        if ready >= CHUNK:
            yield b"".join(held)
            held, ready = [], 0
    held += [_PAD, b"x" * room, _END]
    yield b"".join(held)


def _random_chunks(size: int) -> Iterator[bytes]:
    while size > 0:
        n = min(CHUNK, size)
        size -= n
        yield os.urandom(n)


class Tally:
    """The size and SHA-256 of the bytes that pass through, told to a progress callback."""

    def __init__(self, progress: Callable[[int], None] | None = None) -> None:
        self.size = 0
        self._sha256 = hashlib.sha256()
        self.progress = progress

    @property
    def digest(self) -> str:
        return self._sha256.hexdigest()

    def add(self, chunk: bytes) -> None:
        self._sha256.update(chunk)
        self.size += len(chunk)
        if self.progress is not None:
            self.progress(len(chunk))

    def through(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """The chunks, counted and hashed as they are taken."""
        for chunk in chunks:
            self.add(chunk)
            yield chunk

    def drain(
        self,
        stream: IO[bytes],
        *,
        progress: Progress | None = None,
        total: int | None = None,
        what: str = "",
    ) -> None:
        """Read ``stream`` to its end (where offload's verifying readers check the digest),
        drawing a bar for ``what`` if it is long."""
        with bar(progress, total, what) as update:
            self.progress = update
            while chunk := stream.read(CHUNK):
                self.add(chunk)


def bar(
    progress: Progress | None, total: int | None, what: str
) -> AbstractContextManager[Callable[[int], None] | None]:
    """A progress bar for a long transfer; nothing for short ones."""
    if progress is None or total is None or total < BAR_FROM:
        return nullcontext()
    return progress(total, what)
