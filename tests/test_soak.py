"""A bounded soak over the session's moto server: publisher and consumer threads over SQS directly
and SNS to two SQS subscribers (raw and enveloped), mixed sizes (most inline, some offloaded),
with random transient faults injected with a fixed seed (:class:`s3_faults.Faults`): connections
reset before a request leaves (retried by botocore and s3fs) and answers lost after SQS or SNS
acted (retried by the publisher, so a message may arrive twice).

At the end every message was delivered at least once to every queue meant to get it and resolved
intact, none was lost, no payload was missing when a consumer needed it, and the memory held by
the library's own code stayed flat. ``pytest -s`` prints the counts and the rate.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ConnectionClosedError, ReadTimeoutError
from lambda_support import subscribe
from s3_faults import Faults, store_client
from sqs_support import new_queue, unique

from offload_backends.s3 import S3Store
from offload_core.errors import (
    IntegrityError,
    OffloadError,
    PayloadNotFoundError,
    TransportError,
)
from offload_core.offloader import Offloader
from offload_core.testing.aws import MotoServer
from offload_transports.sns import SnsTransport
from offload_transports.sqs import BatchEntry, SqsMessage, SqsTransport

KiB = 1024
MiB = 1024 * KiB
SEED = 20261127
DIRECT = 800  # messages sent to a queue
FANNED = 400  # messages published to the topic, each delivered to two queues
OFFLOADED_SHARE = 0.05
QUEUE_LIMIT = 256 * KiB
DEADLINE = 150.0  # seconds: a guard against a hang, far above the usual run time
RETRIES = Config(retries={"mode": "standard", "max_attempts": 4})


def payload_of(ident: str, size: int) -> bytes:
    """A text payload that names its message and can be recomputed from the name and size."""
    head = f"{ident}:{size}:".encode()
    block = hashlib.sha256(head).hexdigest().encode()
    body = (block * (size // len(block) + 1))[: max(size - len(head), 0)]
    return head + body


def expected(data: bytes) -> bytes:
    ident, size, _ = data.split(b":", 2)
    return payload_of(ident.decode(), int(size))


class Soak:
    """The shared state of one run: what was sent, what each queue delivered, what went wrong."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sizes: dict[str, int] = {}
        self.delivered: dict[str, Counter[str]] = {}
        self.bad: list[str] = []
        self.transient = 0
        #: Payloads deleted with their message (``delete_payload``), and later deliveries of
        #: those messages (an earlier receive's visibility ran out while it was handled).
        self.consumed: set[str] = set()
        self.late_duplicates = 0
        self.offloaded = 0
        self.done = threading.Event()

    def record(self, queue: str, data: bytes, offloaded: bool) -> None:
        ident = data.split(b":", 1)[0].decode()
        with self.lock:
            if data != expected(data):
                self.bad.append(f"{queue}: {ident} altered")
            self.delivered[queue][ident] += 1
            self.offloaded += offloaded

    def failed(self, queue: str, message: SqsMessage, exc: OffloadError) -> None:
        with self.lock:
            pointer = message.pointer
            if (
                isinstance(exc, PayloadNotFoundError)
                and pointer
                and pointer.location in self.consumed
            ):
                self.late_duplicates += 1
            elif isinstance(exc, (PayloadNotFoundError, IntegrityError)) or not exc.retryable:
                self.bad.append(f"{queue}: {message.message_id}: {exc!r}")
            else:
                self.transient += 1


def plan(rng: random.Random, prefix: str, count: int) -> list[tuple[str, int]]:
    items = []
    for n in range(count):
        if rng.random() < OFFLOADED_SHARE:
            size = rng.randrange(QUEUE_LIMIT + 8 * KiB, 384 * KiB)
        else:
            size = rng.randrange(64, 4 * KiB)
        items.append((f"{prefix}{n}", size))
    return items


def publish(
    transport: SqsTransport | SnsTransport, items: list[tuple[str, int]], soak: Soak
) -> None:
    """Batches of ten; an entry refused, or a batch whose outcome is unknown, is sent again."""
    for start in range(0, len(items), 10):
        pending = items[start : start + 10]
        for _ in range(20):
            entries = [BatchEntry(payload_of(i, s), id=str(k)) for k, (i, s) in enumerate(pending)]
            try:
                result = transport.send_batch(entries)
            except TransportError as exc:
                if not exc.retryable:
                    raise
                continue
            pending = [pending[int(f.id)] for f in result.failed]
            if not pending:
                break
        assert not pending, f"could not send {pending}"


def consume(name: str, transport: SqsTransport, soak: Soak, want: set[str]) -> None:
    """Receive, resolve, record, acknowledge, until every wanted message came (or time is up)."""
    while not soak.done.is_set():
        try:
            messages = transport.receive(10, wait_seconds=0, visibility_timeout=3)
        except TransportError:
            continue
        good = []
        for message in messages:
            try:
                data = message.payload()
            except OffloadError as exc:
                soak.failed(name, message, exc)
                continue
            soak.record(name, data, message.offloaded)
            good.append(message)
        if good:
            if transport.delete_payload:  # before the delete: another delivery may then miss it
                with soak.lock:
                    soak.consumed.update(m.pointer.location for m in good if m.pointer)
            # A lost answer: the messages come again later, or were deleted.
            with contextlib.suppress(TransportError):
                transport.acknowledge(good)
        with soak.lock:
            if want <= soak.delivered[name].keys():
                return
        if not messages:
            time.sleep(0.05)


def resident() -> int:
    """This process's resident set size in bytes (moto runs in it too)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


@pytest.fixture
def topic(moto_server: MotoServer) -> Iterator[str]:
    sns = moto_server.client("sns")
    arn: str = sns.create_topic(Name=unique("soak"))["TopicArn"]
    yield arn
    sns.delete_topic(TopicArn=arn)


@pytest.mark.slow
def test_soak_delivers_every_message_intact_under_transient_faults(
    moto_server: MotoServer, topic: str
) -> None:
    rng = random.Random(SEED)
    faults = Faults(seed=SEED)
    for operation in ("*",):
        faults.inject(
            operation,
            lambda: ConnectionClosedError(endpoint_url="http://soak"),
            times=None,
            probability=0.02,
        )
    for operation in ("SendMessageBatch", "PublishBatch", "DeleteMessageBatch"):
        faults.inject(
            operation,
            lambda: ReadTimeoutError(endpoint_url="http://soak"),
            after=True,
            times=None,
            probability=0.02,
        )

    def client(service: str) -> Any:
        return faults.attach(moto_server.client(service, config=RETRIES))

    bucket = unique("soak")
    moto_server.client("s3").create_bucket(Bucket=bucket)

    def store(prefix: str) -> S3Store:
        s = S3Store(
            f"s3://{bucket}/{prefix}", skip_instance_cache=True, **moto_server.storage_options()
        )
        faults.attach(store_client(s))
        return s

    direct_store = store("direct")
    fanned_store = store("fanned")
    direct_off = Offloader(direct_store, compression="zstd")  # native pointers
    fanned_off = Offloader(fanned_store)  # AWS pointers
    consumer_off = Offloader(direct_store, allow=[fanned_store])
    sqs = moto_server.client("sqs")
    sns = moto_server.client("sns")
    soak = Soak()
    limit = {"MaximumMessageSize": str(QUEUE_LIMIT)}
    with (
        new_queue(sqs, "soak-direct", **limit) as direct,
        new_queue(sqs, "soak-raw") as raw,
        new_queue(sqs, "soak-enveloped") as enveloped,
    ):
        subscribe(sns, sqs, topic, raw, raw=True)
        subscribe(sns, sqs, topic, enveloped, raw=False)
        direct_items = plan(rng, "d", DIRECT)
        fanned_items = plan(rng, "f", FANNED)
        want = {
            "direct": {i for i, _ in direct_items},
            "raw": {i for i, _ in fanned_items},
            "enveloped": {i for i, _ in fanned_items},
        }
        soak.delivered = {name: Counter() for name in want}
        work: list[Callable[[], None]] = []
        for part in (direct_items[0::2], direct_items[1::2]):
            sender = SqsTransport(direct, direct_off, client=client("sqs"))
            work.append(lambda s=sender, p=part: publish(s, p, soak))
        for part in (fanned_items[0::2], fanned_items[1::2]):
            topic_sender = SnsTransport(topic, fanned_off, client=client("sns"))
            work.append(lambda s=topic_sender, p=part: publish(s, p, soak))
        consumers = [("direct", direct, True), ("direct", direct, True)]
        consumers += [("raw", raw, False), ("enveloped", enveloped, False)]
        for name, url, delete in consumers:
            receiver = SqsTransport(url, consumer_off, client=client("sqs"), delete_payload=delete)
            work.append(lambda n=name, r=receiver: consume(n, r, soak, want[n]))

        errors: list[BaseException] = []

        def run(job: Callable[[], None]) -> None:
            try:
                job()
            except BaseException as exc:
                errors.append(exc)
                soak.done.set()

        try:
            start = time.perf_counter()
            threads = [threading.Thread(target=run, args=(job,), daemon=True) for job in work]
            for thread in threads:
                thread.start()
            warm = None
            total = sum(len(w) for w in want.values())
            while any(t.is_alive() for t in threads):
                time.sleep(0.5)
                with soak.lock:
                    progress = sum(len(c) for c in soak.delivered.values())
                if warm is None and progress >= total // 4:
                    warm = resident()
                if time.perf_counter() - start > DEADLINE:
                    soak.done.set()
            elapsed = time.perf_counter() - start
            end = resident()
        finally:
            soak.done.set()

    assert errors == []
    deliveries = sum(sum(c.values()) for c in soak.delivered.values())
    duplicates = deliveries - sum(len(c) for c in soak.delivered.values())
    print(
        f"\nsoak: {DIRECT + FANNED} messages published ({DIRECT} to SQS, {FANNED} to SNS fanned "
        f"out to 2 queues), {total} deliveries expected, {deliveries} made "
        f"({duplicates} duplicates, {soak.offloaded} offloaded), {soak.transient} transient read "
        f"failures redelivered, {soak.late_duplicates} late duplicates of consumed messages, "
        f"faults injected {sum(faults.raised.values())} "
        f"({dict(faults.raised)}), {elapsed:.1f} s, {deliveries / elapsed:.0f} deliveries/s; "
        f"RSS {(warm or 0) / MiB:.0f} -> {end / MiB:.0f} MiB"
    )
    assert soak.bad == []
    for name, wanted in want.items():
        missing = wanted - soak.delivered[name].keys()
        assert not missing, f"{name}: {len(missing)} never delivered, e.g. {sorted(missing)[:5]}"
    assert soak.offloaded >= (DIRECT + 2 * FANNED) * OFFLOADED_SHARE / 2
    assert sum(faults.raised.values()) > 0
    assert warm is not None
    assert end - warm < 96 * MiB  # payloads are up to 384 KiB; moto keeps the fanned-out ones
