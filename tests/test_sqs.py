"""The SQS transport over a real moto server: limits, batches, FIFO, receiving, acknowledging,
and bad input that must fail with a typed error and lose nothing."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ReadTimeoutError
from s3_faults import Faults
from sqs_support import Calls, drain, new_queue, offloader, stored, unique

from offload_core import Attribute, Plugins
from offload_core.aws.limits import sqs_message_size
from offload_core.errors import (
    DigestMismatchError,
    IncompatibleOptionsError,
    IntegrityError,
    LocationNotAllowedError,
    MessageTooLargeError,
    PayloadNotFoundError,
    PointerError,
    TransportError,
)
from offload_core.offloader import Offloader, Payload
from offload_core.testing.aws import MotoServer
from offload_transports.sqs import (
    SQS_MAX_MESSAGE_SIZE,
    BatchEntry,
    SqsMessage,
    SqsTransport,
    from_boto_attributes,
    to_boto_attributes,
)

KIB = 1024


@pytest.fixture
def off(moto_server: MotoServer, bucket: str) -> Offloader:
    """An offloader on its own prefix of the module's bucket."""
    return offloader(moto_server, f"s3://{bucket}/{unique('p')}")


@pytest.fixture
def queue_url(sqs: Any) -> Iterator[str]:
    with new_queue(sqs) as url:
        yield url


@pytest.fixture
def queue(queue_url: str, off: Offloader, sqs: Any) -> SqsTransport:
    return SqsTransport(queue_url, off, client=sqs, wait_seconds=0)


def receive_one(queue: SqsTransport) -> SqsMessage:
    (message,) = queue.receive(1)
    return message


# -- the plugin ----------------------------------------------------------------------------


def test_plugin_registers_sqs_lazily_without_importing_boto3() -> None:
    code = (
        "import sys, offload_transports.plugin as p\n"
        "from offload_core import Plugins\n"
        "entry = Plugins.from_modules(p).registry.get('transport', 'sqs')\n"
        "print(entry.target, entry.extra, 'boto3' in sys.modules, "
        "'offload_transports.sqs' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == ["offload_transports.sqs:SqsTransport", "aws", "False", "False"]


def test_registered_transport_is_the_class() -> None:
    import offload_transports.plugin

    plugins = Plugins.from_entry_points(env={})
    if not plugins.pm.has_plugin("transports"):
        plugins.register(offload_transports.plugin, name="transports")
    assert plugins.get("transport", "sqs") is SqsTransport


# -- sending and the limit ------------------------------------------------------------------


def test_small_payload_travels_inline_with_its_attributes(
    queue: SqsTransport, off: Offloader
) -> None:
    attributes = {"kind": Attribute.string("order"), "n": Attribute.number(7)}
    sent = queue.send('{"id": 1}', attributes=attributes)
    assert sent.pointer is None
    assert stored(off) == []
    message = receive_one(queue)
    assert message.payload() == b'{"id": 1}'
    assert message.attributes == attributes
    assert not message.offloaded
    message.ack()


def test_queue_limit_is_read_once_and_counts_attributes(
    sqs: Any, off: Offloader, moto_server: MotoServer
) -> None:
    with new_queue(sqs, MaximumMessageSize="1024") as url:
        calls = Calls(sqs)
        queue = SqsTransport(url, off, client=sqs, wait_seconds=0)
        attrs = {"trace": Attribute.string("t" * 20)}  # 5 + 6 + 20 bytes
        fits = "x" * (1024 - 31)
        assert queue.send(fits, attributes=attrs).pointer is None
        assert queue.send(fits + "x", attributes=attrs).pointer is not None
        assert queue.send("é" * 600).pointer is not None  # 600 characters, 1200 bytes
        assert calls["GetQueueAttributes"] == 1
        assert queue.limits.max_size == 1024
        assert sorted(len(m.payload()) for m in _consume(queue, 3)) == [993, 994, 1200]


def test_limit_is_capped_at_one_mebibyte(queue_url: str, off: Offloader, sqs: Any) -> None:
    queue = SqsTransport(queue_url, off, client=sqs, max_message_size=4 * SQS_MAX_MESSAGE_SIZE)
    assert queue.limits.max_size == SQS_MAX_MESSAGE_SIZE


@pytest.mark.parametrize("kind", ["bytes", "file"])
def test_large_payload_round_trip_as_bytes_and_verified_stream(
    queue: SqsTransport, off: Offloader, kind: str
) -> None:
    data = (b'{"order": 12345, "lines": ["widget", "gadget"]}\n' * 60_000)[: 3 * 2**20 + 5]
    sent = queue.send(_payload(kind, data), attributes={"kind": Attribute.string("big")})
    assert sent.pointer is not None
    assert sent.pointer.size == len(data)
    message = receive_one(queue)
    assert message.offloaded
    assert message.attributes == {"kind": Attribute.string("big")}
    assert "ExtendedPayloadSize" in message.raw["MessageAttributes"]
    assert message.payload() == data
    with message.open() as stream:
        assert stream.read() == data
    message.ack()
    assert len(stored(off)) == 1  # fan-out safe: acknowledging leaves the payload


def test_body_sqs_would_refuse_is_stored_instead(queue: SqsTransport) -> None:
    text = "line one\x00\x07line two"
    assert queue.send(text).pointer is not None
    message = receive_one(queue)
    assert message.payload() == text.encode()
    message.ack()


# -- batches --------------------------------------------------------------------------------


def test_batch_of_ten_900_kib_messages_fits_by_storing_the_largest(
    queue: SqsTransport, sqs: Any
) -> None:
    calls = Calls(sqs)
    payloads = [bytes([65 + i]) * (900 * KIB - i) for i in range(10)]
    result = queue.send_batch(payloads)
    assert result.failed == []
    assert calls["SendMessageBatch"] == 1
    assert [r.id for r in result.successful] == [str(i) for i in range(10)]
    inline = [r.id for r in result.successful if r.pointer is None]
    assert inline == ["9"]  # the smallest stays inline; the nine largest were stored
    received = {m.payload() for m in _consume(queue, 10)}
    assert received == set(payloads)


def test_batch_of_small_entries_stores_nothing(queue: SqsTransport, off: Offloader) -> None:
    entries = [
        BatchEntry(f"message {i}", attributes={"i": Attribute.number(i)}, id=f"m{i}")
        for i in range(12)
    ]
    result = queue.send_batch(entries)  # two calls: ten, then two
    assert len(result.successful) == 12
    assert stored(off) == []
    got = {m.attributes["i"].value: m.payload() for m in _consume(queue, 12)}
    assert got == {str(i): f"message {i}".encode() for i in range(12)}


def test_batch_entry_sqs_refuses_loses_its_stored_payload_only(
    queue: SqsTransport, off: Offloader
) -> None:
    result = queue.send_batch(
        [
            BatchEntry(b"k" * (2 * 2**20), id="kept"),
            BatchEntry(b"r" * (2 * 2**20), id="refused", delay_seconds=1000),
        ]
    )
    assert [f.id for f in result.failed] == ["refused"]
    assert result.failed[0].sender_fault
    (ok,) = result.successful
    assert ok.pointer is not None
    assert stored(off) == [ok.pointer.location.rsplit(f"{off.store.url}/", 1)[1]]
    assert receive_one(queue).payload() == b"k" * (2 * 2**20)


def test_batch_over_the_limit_with_offloading_off_fails_before_sqs(
    queue_url: str, sqs: Any, moto_server: MotoServer, bucket: str
) -> None:
    off = offloader(moto_server, f"s3://{bucket}/never-batch", mode="never")
    queue = SqsTransport(queue_url, off, client=sqs)
    calls = Calls(sqs)
    with pytest.raises(MessageTooLargeError) as info:
        queue.send_batch(["x" * (600 * KIB), "y" * (600 * KIB)])
    assert info.value.limit == SQS_MAX_MESSAGE_SIZE
    assert calls["SendMessageBatch"] == 0
    assert stored(off) == []


# -- FIFO -----------------------------------------------------------------------------------


def test_fifo_content_deduplication_uses_the_payload_digest(off: Offloader, sqs: Any) -> None:
    with new_queue(sqs, fifo=True, ContentBasedDeduplication="true") as url:
        queue = SqsTransport(url, off, client=sqs, wait_seconds=0)
        data = b"same order " * 200_000
        first = queue.send(data, group_id="orders")
        second = queue.send(data, group_id="orders")  # a retry: a new key, the same payload
        assert first.pointer is not None
        assert second.pointer is not None
        assert first.pointer.location != second.pointer.location
        assert first.response.get("SequenceNumber")
        messages = queue.receive(10)
        assert len(messages) == 1
        assert messages[0].system_attributes["MessageGroupId"] == "orders"
        assert messages[0].payload() == data
        queue.acknowledge(messages)


def test_fifo_caller_deduplication_id_wins(off: Offloader, sqs: Any) -> None:
    with new_queue(sqs, fifo=True, ContentBasedDeduplication="true") as url:
        queue = SqsTransport(url, off, client=sqs, wait_seconds=0)
        data = b"same order " * 200_000
        queue.send(data, group_id="g", deduplication_id="one")
        queue.send(data, group_id="g", deduplication_id="two")
        assert len(_consume(queue, 2)) == 2


# -- acknowledging --------------------------------------------------------------------------


def test_delete_payload_on_ack_only_for_messages_sqs_deleted(
    queue_url: str, sqs: Any, off: Offloader
) -> None:
    queue = SqsTransport(queue_url, off, client=sqs, delete_payload=True, wait_seconds=0)
    queue.send_batch([b"a" * (2 * 2**20), b"b" * (2 * 2**20)])
    good, other = queue.receive(10)
    stale = SqsMessage(queue, {**other.raw, "ReceiptHandle": "not-a-valid-handle"})
    failed = queue.acknowledge([good, stale])
    assert [f.code for f in failed] == ["ReceiptHandleIsInvalid"]
    assert good.pointer is not None
    assert other.pointer is not None
    remaining = stored(off)
    assert len(remaining) == 1
    assert other.pointer.location.endswith(remaining[0])
    other.ack()
    assert stored(off) == []


def test_release_makes_a_message_visible_again_and_extend_hides_it(
    queue: SqsTransport,
) -> None:
    queue.send("again")
    message = queue.receive(1, visibility_timeout=600)[0]
    message.extend(600)
    assert queue.receive(1) == []
    message.release()
    again = receive_one(queue)
    assert again.system_attributes["ApproximateReceiveCount"] == "2"
    again.ack()


def test_a_stream_must_be_verified_before_ack(queue: SqsTransport) -> None:
    queue.send(b"s" * (2 * 2**20))
    message = receive_one(queue)
    with message.open() as stream:
        stream.read(10)
        with pytest.raises(IntegrityError, match="not verified"):
            message.ack()
        stream.read()
    message.ack()


# -- bad input: typed errors, nothing lost --------------------------------------------------


def _corrupt_and_consume(
    queue: SqsTransport, moto_server: MotoServer, change: str
) -> tuple[SqsMessage, type[Exception]]:
    data = b"p" * (2 * 2**20)
    sent = queue.send(data)
    assert sent.pointer is not None
    bucket, _, key = sent.pointer.location.removeprefix("s3://").partition("/")
    s3 = moto_server.client("s3")
    if change == "missing":
        s3.delete_object(Bucket=bucket, Key=key)
        return receive_one(queue), PayloadNotFoundError
    s3.put_object(Bucket=bucket, Key=key, Body=b"q" * len(data))
    return receive_one(queue), DigestMismatchError


@pytest.mark.parametrize("change", ["missing", "corrupt"])
def test_missing_or_corrupt_payload_is_never_delivered_nor_acknowledged(
    queue: SqsTransport, moto_server: MotoServer, change: str
) -> None:
    message, error = _corrupt_and_consume(queue, moto_server, change)
    with pytest.raises(error):
        message.payload()
    assert isinstance(message.error, error)
    with pytest.raises(error):
        message.ack()
    message.release()
    assert receive_one(queue).message_id == message.message_id  # still there
    message.ack(force=True)


def test_pointer_outside_the_allowlist_is_refused_and_kept(
    queue_url: str, sqs: Any, moto_server: MotoServer, bucket: str
) -> None:
    publisher = SqsTransport(queue_url, offloader(moto_server, f"s3://{bucket}/other"), client=sqs)
    publisher.send(b"x" * (2 * 2**20))
    consumer = SqsTransport(
        queue_url, offloader(moto_server, f"s3://{bucket}/mine"), client=sqs, wait_seconds=0
    )
    message = receive_one(consumer)
    with pytest.raises(LocationNotAllowedError) as info:
        message.open()
    assert info.value.location.startswith(f"s3://{bucket}/other/")
    with pytest.raises(LocationNotAllowedError):
        message.ack()
    assert drain(sqs, queue_url) == 0  # in flight, not deleted


def test_malformed_pointer_with_a_marker_is_an_error_not_a_payload(
    queue: SqsTransport, sqs: Any
) -> None:
    sqs.send_message(
        QueueUrl=queue.queue_url,
        MessageBody='["software.amazon.payloadoffloading.PayloadS3Pointer", {"s3Key": "k"}]',
        MessageAttributes={"ExtendedPayloadSize": {"DataType": "Number", "StringValue": "10"}},
    )
    message = receive_one(queue)
    assert isinstance(message.error, PointerError)
    assert message.attributes == {}
    with pytest.raises(PointerError):
        message.payload()
    with pytest.raises(PointerError):
        message.ack()
    message.ack(force=True)


def test_over_the_limit_with_offloading_off_fails_before_calling_sqs(
    queue_url: str, sqs: Any, moto_server: MotoServer, bucket: str
) -> None:
    off = offloader(moto_server, f"s3://{bucket}/never", mode="never")
    queue = SqsTransport(queue_url, off, client=sqs)
    calls = Calls(sqs)
    with pytest.raises(MessageTooLargeError):
        queue.send("x" * (SQS_MAX_MESSAGE_SIZE + 1))
    assert calls["SendMessage"] == 0
    assert stored(off) == []


@pytest.mark.parametrize(
    ("attributes", "match"),
    [
        ({f"a{i}": Attribute.string("v") for i in range(11)}, "allows 10"),
        ({"ExtendedPayloadSize": Attribute.number(1)}, "reserved"),
        ({"AWS.TraceHeader": Attribute.string("t")}, "not a valid SQS message attribute"),
        ({"bad name": Attribute.string("t")}, "not a valid SQS message attribute"),
    ],
    ids=["eleven", "marker", "aws-prefix", "space"],
)
def test_attribute_mistakes_fail_before_calling_sqs(
    queue: SqsTransport, sqs: Any, off: Offloader, attributes: dict[str, Attribute], match: str
) -> None:
    calls = Calls(sqs)
    with pytest.raises(IncompatibleOptionsError, match=match):
        queue.send(b"x" * (2 * 2**20), attributes=attributes)
    assert calls["SendMessage"] == 0
    assert stored(off) == []


@pytest.mark.parametrize("size", [100, 1100 * KIB], ids=["inline", "stored"])
def test_attributes_as_plain_values_and_as_boto3_shapes(
    queue: SqsTransport, off: Offloader, size: int
) -> None:
    attributes = {
        "kind": "order",
        "count": 3,
        "ratio": 0.5,
        "blob": b"\x00\x01",
        "boto": {"DataType": "String", "StringValue": "from boto3"},
        "boto-number": {"DataType": "Number.int", "StringValue": "12"},
        "boto-binary": {"DataType": "Binary", "BinaryValue": b"\xff"},
        "typed": Attribute.string("as before"),
    }
    payload = "x" * size
    assert (queue.send(payload, attributes=attributes).pointer is None) is (size == 100)
    message = receive_one(queue)
    assert message.payload() == payload.encode()
    assert message.attributes == {
        "kind": Attribute("String", "order"),
        "count": Attribute("Number", "3"),
        "ratio": Attribute("Number", "0.5"),
        "blob": Attribute("Binary", b"\x00\x01"),
        "boto": Attribute("String", "from boto3"),
        "boto-number": Attribute("Number.int", "12"),
        "boto-binary": Attribute("Binary", b"\xff"),
        "typed": Attribute("String", "as before"),
    }
    message.ack()


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (True, r"Attribute\.string\('true'\)"),
        (None, "NoneType"),
        ({"DataType": "String"}, "boto3's shape"),
        ({"DataType": "String", "StringListValues": ["a"]}, "list values"),
        ({"DataType": "Binary", "BinaryValue": "text"}, "BinaryValue must be bytes"),
        (float("nan"), "finite"),
    ],
    ids=["bool", "none", "no-value", "list-value", "binary-as-text", "nan"],
)
def test_attribute_values_it_cannot_send_are_refused_before_anything_is_stored(
    queue: SqsTransport, sqs: Any, off: Offloader, value: Any, match: str
) -> None:
    calls = Calls(sqs)
    with pytest.raises((TypeError, ValueError), match=match):
        queue.send("x" * (1100 * KIB), attributes={"a": value})
    with pytest.raises((TypeError, ValueError), match=match):
        queue.send_batch([BatchEntry("x" * (1100 * KIB), attributes={"a": value})])
    assert calls["SendMessage"] == calls["SendMessageBatch"] == 0
    assert stored(off) == []


LARGE_DICT = {"lines": ["x" * 100] * 12_000}


@pytest.mark.parametrize(
    ("payload", "expected", "content_type"),
    [
        ({"id": 1, "name": "café"}, '{"id":1,"name":"café"}', None),
        ([{"id": 1}, {"id": 2}], '[{"id":1},{"id":2}]', None),
        (LARGE_DICT, json.dumps(LARGE_DICT, separators=(",", ":")), "application/json"),
        ([b"chunks ", b"stay ", b"bytes"], "chunks stay bytes", None),
    ],
    ids=["dict", "list", "large-dict", "list-of-chunks"],
)
def test_dict_and_list_payloads_are_sent_as_json(
    queue: SqsTransport, payload: Any, expected: str, content_type: str | None
) -> None:
    sent = queue.send(payload)
    message = receive_one(queue)
    assert message.payload() == expected.encode()
    assert (sent.pointer.content_type if sent.pointer else None) == content_type
    message.ack()


def test_ten_attributes_and_the_marker_are_too_many_for_a_pointer(
    queue: SqsTransport, off: Offloader
) -> None:
    ten = {f"a{i}": Attribute.string("v") for i in range(10)}
    queue.send("small", attributes=ten)  # inline: fine
    with pytest.raises(IncompatibleOptionsError, match="native"):
        queue.send("x" * (SQS_MAX_MESSAGE_SIZE + 1), attributes=ten)
    assert stored(off) == []
    assert receive_one(queue).attributes == ten


def _payload(kind: str, data: bytes) -> Payload:
    if kind == "bytes":
        return data
    if kind == "file":
        return io.BytesIO(data)
    return iter([data[:1000], data[1000:]])


@pytest.mark.parametrize("kind", ["bytes", "file", "chunks"])
def test_binary_payload_needs_the_native_format(
    queue_url: str, sqs: Any, off: Offloader, moto_server: MotoServer, bucket: str, kind: str
) -> None:
    data = os.urandom(3 * 2**20)
    queue = SqsTransport(queue_url, off, client=sqs)
    assert off.pointer_format == "aws"
    with pytest.raises(IncompatibleOptionsError, match="UTF-8"):
        queue.send(_payload(kind, data))
    assert stored(off) == []
    native = offloader(moto_server, f"s3://{bucket}/native-{kind}", pointer_format="native")
    queue = SqsTransport(queue_url, native, client=sqs, wait_seconds=0)
    queue.send(_payload(kind, data))
    message = receive_one(queue)
    assert message.payload() == data
    message.ack()


def test_compressed_payloads_use_the_native_format(
    queue_url: str, sqs: Any, moto_server: MotoServer, bucket: str
) -> None:
    off = offloader(moto_server, f"s3://{bucket}/zstd", compression="zstd")
    queue = SqsTransport(queue_url, off, client=sqs, wait_seconds=0)
    data = json.dumps([{"id": i, "name": f"item {i}"} for i in range(100_000)]).encode()
    sent = queue.send(data)
    assert sent.pointer is not None
    assert sent.pointer.codec == "zstd"
    assert sent.pointer.stored_size is not None
    assert sent.pointer.stored_size < len(data) // 4
    assert receive_one(queue).payload() == data


def test_send_that_sqs_refuses_removes_the_stored_payload(
    off: Offloader, sqs: Any, queue_url: str
) -> None:
    missing = queue_url.rsplit("/", 1)[0] + "/no-such-queue"
    queue = SqsTransport(missing, off, client=sqs, max_message_size=SQS_MAX_MESSAGE_SIZE)
    with pytest.raises(TransportError) as info:
        queue.send(b"x" * (2 * 2**20))
    assert info.value.operation == "SendMessage"
    assert info.value.retryable is False
    assert "NonExistentQueue" in str(info.value.code)
    assert "check the name or URL, the region" in str(info.value)
    assert stored(off) == []


# -- SNS envelopes --------------------------------------------------------------------------


def test_sns_envelope_is_unwrapped_with_the_envelope_attributes(
    queue: SqsTransport, off: Offloader, moto_server: MotoServer, sqs: Any
) -> None:
    sns = moto_server.client("sns")
    topic = sns.create_topic(Name=unique("topic"))["TopicArn"]
    arn = sqs.get_queue_attributes(QueueUrl=queue.queue_url, AttributeNames=["QueueArn"])
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn["Attributes"]["QueueArn"])
    data = b"envelope " * 100_000
    message = off.prepare(data, attributes={"k": Attribute.string("v")})
    sns.publish(
        TopicArn=topic,
        Message=message.body,
        MessageAttributes=to_boto_attributes(message.attributes),
    )
    received = receive_one(queue)
    assert json.loads(received.raw["Body"])["Type"] == "Notification"
    assert received.offloaded
    assert received.attributes == {"k": Attribute.string("v")}
    assert received.payload() == data
    received.ack()
    sns.delete_topic(TopicArn=topic)


def test_attribute_conversion_round_trips() -> None:
    attrs = {
        "s": Attribute.string("text"),
        "n": Attribute("Number.int", "12"),
        "b": Attribute("Binary", b"\x00\x01"),
    }
    assert from_boto_attributes(to_boto_attributes(attrs)) == attrs
    assert sqs_message_size("ab", attrs) == 2 + (1 + 6 + 4) + (1 + 10 + 2) + (1 + 6 + 2)


def _consume(queue: SqsTransport, count: int) -> list[SqsMessage]:
    """Receive (and acknowledge) exactly ``count`` messages."""
    got: list[SqsMessage] = []
    while len(got) < count:
        batch = queue.receive(10, wait_seconds=1)
        assert batch, f"expected {count} messages, got {len(got)}"
        got += batch
        queue.acknowledge(batch)
    return got


def test_unreachable_endpoint_is_a_retryable_transport_error(
    moto_server: MotoServer, off: Offloader, queue_url: str
) -> None:
    from botocore.config import Config

    dead = moto_server.client(
        "sqs",
        endpoint_url="http://127.0.0.1:9",
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=2),
    )
    queue = SqsTransport(queue_url, off, client=dead, max_message_size=SQS_MAX_MESSAGE_SIZE)
    with pytest.raises(TransportError) as info:
        queue.receive(wait_seconds=0)
    assert info.value.retryable is True
    assert info.value.operation == "ReceiveMessage"


def test_utf8_check_follows_characters_across_chunks_and_rewinds() -> None:
    from offload_core._utf8 import require_utf8
    from offload_core.pipeline import iter_chunks

    text = ("é€😀 ascii " * 1000).encode()
    pieces = [text[i : i + 7] for i in range(0, len(text), 7)]  # cuts through characters
    assert b"".join(iter_chunks(require_utf8(iter(pieces)))) == text
    checked = require_utf8(io.BytesIO(text))
    assert b"".join(iter_chunks(checked)) == text
    checked.seek(0)  # type: ignore[union-attr]
    assert b"".join(iter_chunks(checked)) == text
    for bad in (text + "€".encode()[:2], text[:5] + b"\xff" + text[5:]):  # cut short; stray byte
        with pytest.raises(IncompatibleOptionsError, match="UTF-8"):
            list(iter_chunks(require_utf8(iter([bad[:4], bad[4:]]))))
        with pytest.raises(IncompatibleOptionsError, match="UTF-8"):
            require_utf8(bad)
    with pytest.raises(IncompatibleOptionsError, match="UTF-8"):
        require_utf8("lone \ud800 surrogate")


def test_a_refusal_that_follows_a_retried_timeout_keeps_the_payload(
    moto_server: MotoServer, off: Offloader
) -> None:
    """botocore retried a send whose first attempt timed out (SQS may have accepted it); the
    last attempt's definite refusal says nothing about the first, so the payload stays."""
    client = moto_server.client("sqs", config=Config(retries={"total_max_attempts": 2}))
    faults = Faults()
    faults.attach(client)
    gone = f"{moto_server.endpoint}/123456789012/{unique('never-made')}"
    queue = SqsTransport(gone, off, client=client, max_message_size=256 * KIB)
    faults.inject("SendMessage", lambda: ReadTimeoutError(endpoint_url=gone))
    with pytest.raises(TransportError) as raised:
        queue.send("x" * (300 * KIB))
    assert raised.value.outcome_unknown
    assert faults.raised["SendMessage"] == faults.sent["SendMessage"] == 1
    assert len(stored(off)) == 1
