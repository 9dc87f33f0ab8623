"""How each demo message goes: it is published while hashed, then every consumer reads it and
is judged on the bytes it got; and, at the end, whether the stored payloads are all still there."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Protocol

from offload_core.errors import LocationNotAllowedError, OffloadError
from offload_core.pointer import Pointer
from offload_core.store import Store

from ._payloads import Payload, Progress, Tally, bar
from ._report import Check, Expected, Report, Resolution, Row, Table, summary_lines

__all__ = [
    "Consumer",
    "attempt",
    "conclude",
    "kept_check",
    "message_row",
    "refusal_row",
    "tabulate",
]


class Consumer(Protocol):
    """An application that receives the next message and reads its payload."""

    label: str

    def take(self, expected: Expected) -> Resolution: ...


def attempt(label: str, expected: Expected, read: Callable[[Tally], None]) -> Resolution:
    """Judge what ``read`` puts in a tally: the payload, a refused location, or an error."""
    got = Tally()
    start = time.perf_counter()
    try:
        # A refusal the run expects is reported in its table, not logged as well.
        with _quiet() if expected.refusal else nullcontext():
            read(got)
    except LocationNotAllowedError:
        return expected.judge(label, time.perf_counter() - start, refused=True)
    except OffloadError as exc:
        error = f"{type(exc).__name__}: {exc}"
        return expected.judge(label, time.perf_counter() - start, error=error)
    return expected.judge(label, time.perf_counter() - start, got.size, got.digest)


@contextmanager
def _quiet() -> Iterator[None]:
    """Only errors from offload's loggers, for a while."""
    logs = [logging.getLogger(name) for name in ("offload_core", "offload_transports")]
    levels = [log.level for log in logs]
    for log in logs:
        log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for log, level in zip(logs, levels, strict=True):
            log.setLevel(level)


def message_row(
    via: str,
    payload: Payload,
    send: Callable[[Iterator[bytes]], Pointer | None],
    pointer_format: str,
    consumers: Sequence[Consumer],
    progress: Progress | None,
) -> Row:
    """Publish ``payload`` with ``send`` (which returns the pointer of a stored payload), then
    let every consumer take it."""
    start = time.perf_counter()
    sent = Tally()
    try:
        with bar(progress, payload.size, f"A publishes {payload.name}") as update:
            sent.progress = update
            pointer = send(sent.through(payload.chunks()))
    except OffloadError as exc:
        error = f"{type(exc).__name__}: {exc}"
        return Row(payload.name, via, payload.size, False, None, "-", "-", (), 0.0, error=error)
    expected = Expected(payload.name, sent.size, sent.digest)
    resolutions = tuple(consumer.take(expected) for consumer in consumers)
    return Row(
        payload.name,
        via,
        payload.size,
        pointer is not None,
        pointer.stored_size if pointer else None,
        pointer.codec if pointer else "-",
        pointer_format if pointer else "-",
        resolutions,
        time.perf_counter() - start,
    )


def refusal_row(
    via: str, pointer_format: str, send: Callable[[], object], consumers: Sequence[Consumer]
) -> Row:
    """Send a forged pointer with ``send``; every consumer must refuse it before any I/O."""
    start = time.perf_counter()
    send()
    resolutions = tuple(c.take(Expected("forged pointer")) for c in consumers)
    seconds = time.perf_counter() - start
    return Row(
        "forged pointer", via, None, True, None, "-", pointer_format, resolutions, seconds, True
    )


def kept_check(store: Store, pointers: Sequence[Pointer]) -> Check:
    """Whether every stored payload is still in the store after every consumer read it."""
    keys = {info.key for info in store.list()}
    kept = sum(1 for p in pointers if store.key_for(p.location) in keys)
    return Check(
        "payloads kept",
        kept == len(pointers) > 0,
        f"{kept} of {len(pointers)} stored payloads are still in {store.url}: consumers never "
        "delete them (expiry belongs to the store's lifecycle)",
    )


def tabulate(report: Report, table: Table, rows: Iterable[Row], say: Callable[[str], None]) -> None:
    """Add each row to the report, and say it as soon as it is there."""
    say("")
    say(table.header())
    for row in rows:
        report.rows.append(row)
        say(table.line(row))


def conclude(report: Report, say: Callable[[str], None]) -> None:
    """Say the problems, checks, notes and verdict."""
    say("")
    for line in summary_lines(report):
        say(line)
