"""``offload demo --local``: the same payloads through a local directory store and a 256 KiB
message limit (SQS's default), with no AWS and no moto: a publisher, and a consumer that trusts
only that directory."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from offload_core.message import OutgoingMessage
from offload_core.offloader import Offloader
from offload_core.pointer import Pointer
from offload_core.policy import Limits

from ._flow import attempt, conclude, kept_check, message_row, refusal_row, tabulate
from ._payloads import MiB, Payload, Progress, Tally, tiers
from ._report import Expected, Report, Resolution, Row, Table

__all__ = ["run_local"]

_LIMITS = Limits(max_size=262_144)


def run_local(
    big_size: int = 200 * MiB,
    *,
    store_dir: Path | None = None,
    progress: Progress | None = None,
    echo: Callable[[str], None] | None = None,
) -> Report:
    """Publish JSON and binary payloads up to ``big_size`` bytes into ``store_dir`` (a temporary
    directory by default), have a consumer resolve and verify each, and refuse a pointer to
    ``/etc/passwd``. ``echo`` gets the report as text as the run goes."""
    say = echo or (lambda line: None)
    with tempfile.TemporaryDirectory(prefix="offload-demo-") as tmp:
        local = _Local((store_dir or Path(tmp) / "store").resolve().as_uri(), progress)
        payloads = [Payload(kind, size) for size in tiers(big_size) for kind in ("JSON", "binary")]
        say(f"offload demo --local: a publisher and a consumer sharing {local.url}")
        tabulate(local.report, Table(payloads, ["local"], ["consumer"]), local.rows(payloads), say)
        local.report.checks.append(kept_check(local.consumer.store, local.pointers))
        conclude(local.report, say)
        return local.report


class _Local:
    """A publisher (JSON compressed with zstd) and a consumer sharing one directory."""

    label = "consumer"

    def __init__(self, url: str, progress: Progress | None) -> None:
        self.url = url
        self.progress = progress
        self.publishers = {"JSON": Offloader(url, compression="zstd"), "binary": Offloader(url)}
        self.consumer = Offloader(url)
        self.report = Report("offload demo --local")
        self.pointers: list[Pointer] = []
        self._outbox: list[OutgoingMessage] = []

    def rows(self, payloads: list[Payload]) -> Iterator[Row]:
        for payload in payloads:
            publisher = self.publishers[payload.kind]

            def send(chunks: Iterator[bytes], off: Offloader = publisher) -> Pointer | None:
                message = off.prepare(chunks, limits=_LIMITS)
                self._outbox.append(message)
                if message.pointer:
                    self.pointers.append(message.pointer)
                return message.pointer

            fmt = publisher.pointer_format
            yield message_row("local", payload, send, fmt, [self], self.progress)
        native = self.publishers["binary"]
        forged = native.encode(Pointer("file:///etc/passwd", size=1))
        message = OutgoingMessage(forged.body, forged.attributes)
        yield refusal_row(
            "local", native.pointer_format, lambda: self._outbox.append(message), [self]
        )

    def take(self, expected: Expected) -> Resolution:
        """The consumer's side: read the message the publisher left, verified."""
        message = self._outbox.pop()

        def read(got: Tally) -> None:
            with self.consumer.open(message.body, message.attributes) as stream:
                got.drain(
                    stream,
                    progress=self.progress,
                    total=expected.size if message.pointer else None,
                    what=f"consumer reads {expected.name}",
                )

        return attempt(self.label, expected, read)
