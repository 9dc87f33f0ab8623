"""Fault injection at every step of publishing and consuming, over the session's moto server.

One test per row of the fault table: each fault is injected into real clients (the boto3 SQS
client and the aiobotocore client of the S3 store) through botocore's own events
(:class:`s3_faults.Faults`), or by a real HTTP peer (:class:`s3_faults.CuttingProxy`,
:class:`s3_faults.ErrorStub`), and the assertion is the table's outcome column.

Proved elsewhere and not repeated here: the store-level mechanics of resumed downloads, ETag
pinning and the retry budget (``test_backend_s3.py::test_a_download_cut_mid_stream_resumes_*``,
``::test_a_download_that_keeps_failing_gives_up_after_its_budget``), aborting a multipart upload
when the writer itself fails (``::test_a_failed_write_aborts_its_multipart_upload``), signature
checks happening before any storage request (``test_signing.py``), and a refused batch entry
losing its payload (``test_sqs.py``).
"""

from __future__ import annotations

import contextlib
import inspect
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ConnectionClosedError, EndpointConnectionError, ReadTimeoutError
from s3_faults import CuttingProxy, ErrorStub, Faults, store_client
from sqs_support import new_queue, unique

from offload_backends._s3_boto3 import boto3_s3_client
from offload_backends.s3 import S3Store
from offload_core import HmacSigner
from offload_core.errors import (
    AccessDeniedError,
    IntegrityError,
    OffloadError,
    PayloadNotFoundError,
    SignatureError,
    StorageError,
    TransientStorageError,
    TransportError,
)
from offload_core.formats.native import NativeFormat
from offload_core.offloader import Offloader
from offload_core.signing import sign_pointer
from offload_core.testing.aws import MotoServer
from offload_transports.sqs import SqsMessage, SqsTransport

KiB = 1024
MiB = 1024 * KiB
PART = 5 * MiB
ENDPOINT = "http://127.0.0.1:1"
NO_RETRIES = {"retries": {"mode": "standard", "max_attempts": 1}}
SIGNER = HmacSigner("fault-key", bytes(range(32)))


@pytest.fixture(scope="module")
def bucket(moto_server: MotoServer) -> str:
    name = unique("faults")
    moto_server.client("s3").create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="module")
def s3(moto_server: MotoServer) -> Any:
    """A clean client, to look at the bucket from outside."""
    return moto_server.client("s3")


@pytest.fixture
def faults() -> Faults:
    return Faults()


@pytest.fixture
def prefix() -> str:
    return uuid.uuid4().hex


@pytest.fixture
def sqs(moto_server: MotoServer, faults: Faults) -> Any:
    """An SQS client with the test's faults, which botocore does not retry."""
    return faults.attach(moto_server.client("sqs", config=Config(**NO_RETRIES)))


@pytest.fixture
def clean_sqs(moto_server: MotoServer) -> Any:
    return moto_server.client("sqs")


@pytest.fixture
def queue_url(clean_sqs: Any) -> Iterator[str]:
    with new_queue(clean_sqs, "faults") as url:
        yield url


#: Which client the stores of a test send through: s3fs's, or a boto3 client (no s3fs).
_DRIVER = "s3fs"


@pytest.fixture(autouse=True, params=["s3fs", "boto3"])
def driver(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every fault test runs on both of the S3 store's clients."""
    global _DRIVER
    _DRIVER = request.param
    yield request.param
    _DRIVER = "s3fs"


#: The store's own options (the rest of ``s3_store``'s options configure the connection).
_OWN = frozenset(inspect.signature(S3Store.__init__).parameters) - {"self", "url", "client"}


def s3_store(
    moto: MotoServer, url: str, *, faults: Faults | None = None, **options: Any
) -> S3Store:
    """A store with its own client (so its faults reach no other store), not retrying."""
    own = {k: v for k, v in options.items() if k in _OWN}
    connection = {**moto.storage_options(), **{k: v for k, v in options.items() if k not in own}}
    if _DRIVER == "boto3":
        client = boto3_s3_client({**connection, "config_kwargs": NO_RETRIES})
        store = S3Store(url, part_size=PART, multipart_threshold=PART, client=client, **own)
    else:
        store = S3Store(
            url,
            part_size=PART,
            multipart_threshold=PART,
            skip_instance_cache=True,
            config_kwargs=NO_RETRIES,
            **connection,
            **own,
        )
        store.fs.retries = 1  # s3fs's own retries, on this store's filesystem only
    if faults is not None:
        faults.attach(store_client(store))
    return store


def objects(s3: Any, bucket: str, prefix: str) -> list[str]:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix + "/").get("Contents", [])
    return [o["Key"] for o in listed]


def uploads_in_progress(s3: Any, bucket: str, prefix: str) -> list[Any]:
    found: list[Any] = s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix + "/").get(
        "Uploads", []
    )
    return found


def waiting(sqs: Any, url: str) -> list[dict[str, Any]]:
    """Every message the queue can still deliver, left visible again (a fresh consumer's view)."""
    found: dict[str, dict[str, Any]] = {}
    for _ in range(3):
        response = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=0,
            MessageAttributeNames=["All"],
        )
        for message in response.get("Messages", []):
            found.setdefault(message["MessageId"], message)
    return list(found.values())


def text_payload(size: int) -> bytes:
    return os.urandom(size // 2).hex().encode()


def consume(queue: SqsTransport, handler: Callable[[bytes], object]) -> list[SqsMessage]:
    """One receive, as an application loop does it: handle and acknowledge each message whose
    payload resolves; leave the others (for redelivery). Returns the messages received."""
    messages = queue.receive(10, visibility_timeout=0)
    for message in messages:
        try:
            data = message.payload()
        except OffloadError:
            continue
        handler(data)
        message.ack()
    return messages


# -- upload fails or times out ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "error", "size"),
    [
        ("PutObject", lambda: ConnectionClosedError(endpoint_url=ENDPOINT), 64 * KiB),
        ("PutObject", lambda: ReadTimeoutError(endpoint_url=ENDPOINT), 64 * KiB),
        ("UploadPart", lambda: ConnectionClosedError(endpoint_url=ENDPOINT), 2 * PART),
        ("CompleteMultipartUpload", lambda: ReadTimeoutError(endpoint_url=ENDPOINT), 2 * PART),
    ],
    ids=["put-reset", "put-timeout", "part-reset", "complete-timeout"],
)
def test_an_upload_that_fails_sends_nothing_and_leaves_no_upload(
    moto_server: MotoServer,
    bucket: str,
    prefix: str,
    s3: Any,
    sqs: Any,
    queue_url: str,
    faults: Faults,
    operation: str,
    error: Callable[[], BaseException],
    size: int,
) -> None:
    store = s3_store(moto_server, f"s3://{bucket}/{prefix}", faults=faults)
    queue = SqsTransport(queue_url, Offloader(store, mode="always"), client=sqs)
    faults.inject(operation, error, times=None)
    with pytest.raises(StorageError) as raised:
        queue.send(text_payload(size))
    assert isinstance(raised.value, TransientStorageError)
    assert faults.raised[operation] >= 1
    assert faults.sent["SendMessage"] == 0
    assert objects(s3, bucket, prefix) == []
    assert uploads_in_progress(s3, bucket, prefix) == []
    if size > PART:
        assert faults.sent["CreateMultipartUpload"] == 1
        assert faults.sent["AbortMultipartUpload"] == 1


def test_a_multipart_upload_that_cannot_be_created_fails_the_write_and_sends_no_part(
    moto_server: MotoServer, bucket: str, prefix: str, s3: Any, faults: Faults
) -> None:
    """``CreateMultipartUpload`` goes out while the writer goes on filling parts; its failure
    is raised by a later write or the commit, as it was by the write that needed it."""
    store = s3_store(moto_server, f"s3://{bucket}/{prefix}", faults=faults)
    faults.inject(
        "CreateMultipartUpload", lambda: ConnectionClosedError(endpoint_url=ENDPOINT), times=None
    )
    with pytest.raises(TransientStorageError), store.open_write("k") as sink:  # noqa: PT012
        for _ in range(4):
            sink.write(os.urandom(PART))
    assert faults.raised["CreateMultipartUpload"] >= 1
    assert faults.sent["UploadPart"] == faults.sent["AbortMultipartUpload"] == 0
    assert objects(s3, bucket, prefix) == []
    assert uploads_in_progress(s3, bucket, prefix) == []


# -- upload succeeds, send fails definitely -----------------------------------------------------


@pytest.mark.parametrize("how", ["refused", "unreachable"])
def test_a_send_that_fails_definitely_removes_the_object(
    moto_server: MotoServer,
    bucket: str,
    prefix: str,
    s3: Any,
    sqs: Any,
    clean_sqs: Any,
    faults: Faults,
    how: str,
) -> None:
    store = s3_store(moto_server, f"s3://{bucket}/{prefix}", faults=faults)
    url = clean_sqs.create_queue(QueueName=unique("faults"))["QueueUrl"]
    queue = SqsTransport(url, Offloader(store, mode="always"), client=sqs)
    assert queue.info.max_message_size  # read while the queue exists
    if how == "unreachable":
        faults.inject(
            "SendMessage", lambda: EndpointConnectionError(endpoint_url=ENDPOINT), times=None
        )
    if how == "refused":
        clean_sqs.delete_queue(QueueUrl=url)
    try:
        with pytest.raises(TransportError) as raised:
            queue.send(b"payload" * 100)
    finally:
        if how == "unreachable":
            clean_sqs.delete_queue(QueueUrl=url)
    original = raised.value.__cause__
    if how == "refused":
        assert "NonExistentQueue" in str(raised.value.code)
    else:
        assert isinstance(original, EndpointConnectionError)
    assert faults.sent["PutObject"] == 1
    assert faults.sent["DeleteObject"] == 1
    assert objects(s3, bucket, prefix) == []


# -- send outcome unknown -----------------------------------------------------------------------


def test_a_send_with_an_unknown_outcome_keeps_the_object_and_a_retry_is_one_message(
    moto_server: MotoServer,
    bucket: str,
    prefix: str,
    s3: Any,
    sqs: Any,
    clean_sqs: Any,
    faults: Faults,
) -> None:
    payload = text_payload(64 * KiB)
    store = s3_store(moto_server, f"s3://{bucket}/{prefix}", faults=faults)
    off = Offloader(store, mode="always", content_addressed=True)
    with new_queue(clean_sqs, "faults", fifo=True, ContentBasedDeduplication="true") as url:
        queue = SqsTransport(url, off, client=sqs, wait_seconds=0)
        # SQS accepted the message; the answer is lost on the way back.
        faults.inject("SendMessage", lambda: ReadTimeoutError(endpoint_url=ENDPOINT), after=True)
        with pytest.raises(TransportError) as raised:
            queue.send(payload, group_id="g")
        assert raised.value.retryable
        assert objects(s3, bucket, prefix) != []  # kept: the message may be out there
        queue.send(payload, group_id="g")  # the same idempotency key
        assert faults.sent["SendMessage"] == 2
        assert len(objects(s3, bucket, prefix)) == 1
        delivered = waiting(clean_sqs, url)
        assert len(delivered) == 1
        assert off.resolve(delivered[0]["Body"], {}) == payload


def test_a_batch_with_an_unknown_outcome_keeps_its_objects(
    moto_server: MotoServer,
    bucket: str,
    prefix: str,
    s3: Any,
    sqs: Any,
    queue_url: str,
    clean_sqs: Any,
    faults: Faults,
) -> None:
    payloads = [text_payload(16 * KiB) for _ in range(3)]
    store = s3_store(moto_server, f"s3://{bucket}/{prefix}", faults=faults)
    queue = SqsTransport(queue_url, Offloader(store, mode="always"), client=sqs)
    faults.inject("SendMessageBatch", lambda: ReadTimeoutError(endpoint_url=ENDPOINT), after=True)
    with pytest.raises(TransportError):
        queue.send_batch(payloads)
    delivered = waiting(clean_sqs, queue_url)
    assert len(delivered) == 3
    assert len(objects(s3, bucket, prefix)) == 3
    off = Offloader(s3_store(moto_server, f"s3://{bucket}/{prefix}"))
    assert sorted(off.resolve(m["Body"], {}) for m in delivered) == sorted(payloads)


# -- download reset or slow mid-stream ----------------------------------------------------------


@pytest.mark.parametrize("cuts", [2, 1000], ids=["within-budget", "exhausted"])
def test_a_download_reset_mid_stream_is_resumed_or_the_message_is_kept(
    moto_server: MotoServer,
    bucket: str,
    prefix: str,
    clean_sqs: Any,
    queue_url: str,
    cuts: int,
) -> None:
    payload = text_payload(MiB)
    url = f"s3://{bucket}/{prefix}"
    publisher = Offloader(s3_store(moto_server, url), mode="always")
    SqsTransport(queue_url, publisher, client=clean_sqs).send(payload)
    proxy = CuttingProxy(moto_server.endpoint, cut_after=256 * KiB, cuts=cuts)
    try:
        store = s3_store(
            moto_server, url, endpoint_url=proxy.endpoint, read_retries=2, read_concurrency=1
        )
        queue = SqsTransport(queue_url, Offloader(store), client=clean_sqs, wait_seconds=0)
        handled: list[bytes] = []
        (message,) = consume(queue, handled.append)
    finally:
        proxy.close()
    left = waiting(clean_sqs, queue_url)
    if cuts == 2:
        assert proxy.cuts_left == 0
        assert handled == [payload]
        assert left == []
    else:
        assert handled == []
        assert isinstance(message.error, TransientStorageError)
        with pytest.raises(TransientStorageError):
            message.ack()
        assert [m["MessageId"] for m in left] == [message.message_id]


# -- payload missing, access denied, expired ----------------------------------------------------


PAST = datetime(2020, 1, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize("fault", ["missing", "denied", "expired"])
def test_missing_denied_and_expired_payloads_are_distinct_permanent_errors(
    moto_server: MotoServer,
    bucket: str,
    prefix: str,
    s3: Any,
    clean_sqs: Any,
    queue_url: str,
    fault: str,
) -> None:
    url = f"s3://{bucket}/{prefix}"
    publisher = Offloader(s3_store(moto_server, url), sign_with=SIGNER)
    pointer = sign_pointer(replace(publisher.store_payload(b"payload"), expires=PAST), SIGNER)
    if fault != "expired":
        pointer = sign_pointer(replace(pointer, expires=None), SIGNER)
    clean_sqs.send_message(QueueUrl=queue_url, MessageBody=NativeFormat().encode(pointer).body)
    if fault == "missing":
        s3.delete_object(Bucket=bucket, Key=objects(s3, bucket, prefix)[0])
    stub = ErrorStub(403, "AccessDenied")
    try:
        endpoint = stub.endpoint if fault == "denied" else moto_server.endpoint
        store = s3_store(moto_server, url, endpoint_url=endpoint)
        consumer = Offloader(store, verify_with=[SIGNER], require_signatures=True)
        queue = SqsTransport(queue_url, consumer, client=clean_sqs, delete_payload=True)
        handled: list[bytes] = []
        (message,) = consume(queue, handled.append)
    finally:
        stub.close()
    expected = {
        "missing": PayloadNotFoundError,
        "denied": AccessDeniedError,
        "expired": SignatureError,
    }
    error = message.error
    assert type(error) is expected[fault]
    others = [cls for name, cls in expected.items() if name != fault]
    assert not isinstance(error, tuple(others))
    assert error is not None
    assert not error.retryable
    if fault == "expired":
        assert isinstance(error, SignatureError)
        assert error.reason == "expired"
    assert handled == []
    with pytest.raises(type(error)):
        message.ack()
    assert [m["MessageId"] for m in waiting(clean_sqs, queue_url)] == [message.message_id]
    assert len(objects(s3, bucket, prefix)) == (0 if fault == "missing" else 1)


# -- stored bytes corrupted or truncated --------------------------------------------------------


@pytest.mark.parametrize("damage", ["corrupted", "truncated"])
def test_damaged_bytes_raise_an_integrity_error_and_the_handler_is_never_called(
    moto_server: MotoServer,
    bucket: str,
    prefix: str,
    s3: Any,
    clean_sqs: Any,
    queue_url: str,
    damage: str,
) -> None:
    payload = text_payload(64 * KiB)
    off = Offloader(s3_store(moto_server, f"s3://{bucket}/{prefix}"), mode="always")
    queue = SqsTransport(queue_url, off, client=clean_sqs, wait_seconds=0, delete_payload=True)
    queue.send(payload)
    (key,) = objects(s3, bucket, prefix)
    stored = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    if damage == "corrupted":
        bad = stored[:1000] + bytes([stored[1000] ^ 1]) + stored[1001:]
    else:
        bad = stored[: len(stored) // 2]
    s3.put_object(Bucket=bucket, Key=key, Body=bad)  # a new object, with checksums of its own
    handled: list[bytes] = []
    (message,) = consume(queue, handled.append)
    assert handled == []
    assert isinstance(message.error, IntegrityError)
    with pytest.raises(IntegrityError):
        message.ack()
    assert [m["MessageId"] for m in waiting(clean_sqs, queue_url)] == [message.message_id]
    assert objects(s3, bucket, prefix) == [key]


# -- the message's delete fails -----------------------------------------------------------------


class RefusedDeletes:
    """Makes ``DeleteMessageBatch`` refuse the entries of chosen messages, as SQS refuses an
    expired receipt handle, and really delete the others (through a clean client)."""

    def __init__(self, client: Any, clean: Any, refuse: Callable[[str], bool]) -> None:
        self._clean = clean
        self._refuse = refuse
        self._params = threading.local()
        client.meta.events.register("before-parameter-build.sqs.DeleteMessageBatch", self._capture)
        client.meta.events.register("before-call.sqs.DeleteMessageBatch", self._answer)

    def _capture(self, params: dict[str, Any], **_: Any) -> None:
        self._params.value = params

    def _answer(self, **_: Any) -> tuple[Any, dict[str, Any]]:
        params = self._params.value
        refused = [e for e in params["Entries"] if self._refuse(e["ReceiptHandle"])]
        deleted = [e for e in params["Entries"] if e not in refused]
        if deleted:
            self._clean.delete_message_batch(QueueUrl=params["QueueUrl"], Entries=deleted)
        failed = [
            {
                "Id": e["Id"],
                "Code": "ReceiptHandleIsInvalid",
                "Message": "The receipt handle has expired.",
                "SenderFault": True,
            }
            for e in refused
        ]
        return _Ok(), {"Successful": [{"Id": e["Id"]} for e in deleted], "Failed": failed}


class _Ok:
    status_code = 200


def test_a_failed_message_delete_keeps_the_payload_and_the_redelivery_resolves(
    moto_server: MotoServer,
    bucket: str,
    prefix: str,
    s3: Any,
    sqs: Any,
    clean_sqs: Any,
    queue_url: str,
) -> None:
    payload = text_payload(64 * KiB)
    off = Offloader(s3_store(moto_server, f"s3://{bucket}/{prefix}"), mode="always")
    queue = SqsTransport(queue_url, off, client=sqs, wait_seconds=0, delete_payload=True)
    queue.send(payload)
    RefusedDeletes(sqs, clean_sqs, lambda handle: True)
    (message,) = queue.receive(1, visibility_timeout=0)
    assert message.payload() == payload
    with pytest.raises(TransportError, match="ReceiptHandleIsInvalid"):
        message.ack()
    assert len(objects(s3, bucket, prefix)) == 1
    fresh = SqsTransport(queue_url, off, client=clean_sqs, wait_seconds=0, delete_payload=True)
    (again,) = fresh.receive(1)
    assert again.message_id == message.message_id
    assert again.payload() == payload
    again.ack()
    assert objects(s3, bucket, prefix) == []
    assert waiting(clean_sqs, queue_url) == []


# -- a batch delete partly fails ----------------------------------------------------------------


def test_a_partly_failed_batch_delete_deletes_only_the_deleted_entries_payloads(
    moto_server: MotoServer,
    bucket: str,
    prefix: str,
    s3: Any,
    sqs: Any,
    clean_sqs: Any,
    queue_url: str,
) -> None:
    payloads = [text_payload(16 * KiB) for _ in range(4)]
    off = Offloader(s3_store(moto_server, f"s3://{bucket}/{prefix}"), mode="always")
    queue = SqsTransport(queue_url, off, client=sqs, wait_seconds=0, delete_payload=True)
    sent = {queue.send(p).message_id: p for p in payloads}
    received: list[SqsMessage] = []
    while len(received) < len(payloads):
        received += queue.receive(10)
    refused = {m.receipt_handle for m in received[1::2]}
    RefusedDeletes(sqs, clean_sqs, refused.__contains__)
    assert all(m.payload() == sent[m.message_id] for m in received)
    failed = queue.acknowledge(received)
    assert sorted(f.id for f in failed) == ["1", "3"]
    assert {f.code for f in failed} == {"ReceiptHandleIsInvalid"}
    kept = {m.pointer.location.rsplit("/", 1)[-1] for m in received[1::2] if m.pointer}
    assert {k.rsplit("/", 1)[-1] for k in objects(s3, bucket, prefix)} == kept
    for message in received[1::2]:  # their visibility timeout runs out
        message.release()
    left = waiting(clean_sqs, queue_url)
    assert {m["MessageId"] for m in left} == {m.message_id for m in received[1::2]}
    assert all(off.resolve(m["Body"], {}) == sent[m["MessageId"]] for m in left)


# -- crash-point enumeration --------------------------------------------------------------------


class Crash(BaseException):
    """The process is killed: nothing after it runs (not even ``except Exception`` blocks)."""


class Killed(Exception):
    """The same kill seen from the store's event loop thread, where a ``BaseException`` would
    take fsspec's loop down instead; once killed, no later request reaches the server."""


class CrashAt:
    """Kills the "process" at one step: before request number ``step`` leaves, or after its
    response arrived; from then on every request of every attached client fails."""

    def __init__(self, step: int | None, *, after: bool) -> None:
        self.step = step
        self.after = after
        self.dead = False
        self.log: list[str] = []

    def attach(self, client: Any, error: type[BaseException]) -> Any:
        def before(event_name: str, **_: Any) -> None:
            if self.dead:
                raise error("killed")
            if not self.after and len(self.log) == self.step:
                self.dead = True
                raise error("killed")
            self.log.append(event_name.rsplit(".", 1)[-1])

        def after(**_: Any) -> None:
            if self.after and not self.dead and len(self.log) == self.step + 1:
                self.dead = True
                raise error("killed")

        client.meta.events.register("before-send", before)
        client.meta.events.register("after-call", after)
        return client


def publish_and_consume(
    moto_server: MotoServer, url: str, queue_url: str, crash: CrashAt, payload: bytes
) -> None:
    """One process: publish a payload, then consume it with ``delete_payload``."""
    store = s3_store(moto_server, url)
    crash.attach(store_client(store), Killed)
    sqs = crash.attach(moto_server.client("sqs", config=Config(**NO_RETRIES)), Crash)
    off = Offloader(store, mode="always")
    publisher = SqsTransport(queue_url, off, client=sqs, wait_seconds=0)
    consumer = SqsTransport(queue_url, off, client=sqs, wait_seconds=0, delete_payload=True)
    publisher.send(payload)
    for message in consumer.receive(10, visibility_timeout=0):
        assert message.payload() == payload
        message.ack()


def test_a_kill_between_any_two_steps_never_leaves_a_pointer_to_a_deleted_payload(
    moto_server: MotoServer, bucket: str, s3: Any, clean_sqs: Any
) -> None:
    payload = text_payload(32 * KiB)
    with new_queue(clean_sqs, "crash") as queue_url:
        dry = CrashAt(None, after=False)
        publish_and_consume(moto_server, f"s3://{bucket}/{unique('dry')}", queue_url, dry, payload)
    steps = dry.log
    for operation in ("PutObject", "SendMessage", "GetObject", "DeleteMessageBatch"):
        assert operation in steps
    assert steps[-1] == "DeleteObject"
    outcomes: list[tuple[int, bool, int, int]] = []
    for step in range(len(steps)):
        for after in (False, True):
            prefix = unique("crash")
            url = f"s3://{bucket}/{prefix}"
            crash = CrashAt(step, after=after)
            with new_queue(clean_sqs, "crash") as queue_url:
                # Killed in the store's thread, the process may look as if it went on; it is
                # dead all the same: no request of it reaches the server any more.
                with contextlib.suppress(Crash, Killed, OffloadError):
                    publish_and_consume(moto_server, url, queue_url, crash, payload)
                assert crash.dead
                # The invariant: whatever the queue can still deliver resolves.
                survivor = Offloader(s3_store(moto_server, url))
                left = waiting(clean_sqs, queue_url)
                for message in left:
                    assert survivor.resolve(message["Body"], {}) == payload, (step, after)
                outcomes.append((step, after, len(left), len(objects(s3, bucket, prefix))))
    # Every kind of ending was reached: no message yet, message waiting, message consumed.
    assert {n for _, _, n, _ in outcomes} == {0, 1}
    assert any(n == 1 for _, _, n, _ in outcomes)
    assert outcomes[-1][2:] == (0, 0)  # killed after the last step: all done and cleaned up
