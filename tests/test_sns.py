"""The SNS transport over a real moto server: the topic's limit, raw and enveloped SQS
subscribers, the official SQS extended client as a subscriber, batches, FIFO topics."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from lambda_support import subscribe
from sqs_support import Calls, new_queue, offloader, stored, unique
from test_interop_aws import peer

from offload_core import Attribute, Plugins
from offload_core.errors import IncompatibleOptionsError
from offload_core.offloader import Offloader
from offload_core.testing.aws import MotoServer
from offload_transports.sns import BatchEntry, SnsTransport
from offload_transports.sqs import SqsTransport

KIB = 1024
LIMIT = 262_144  # moto's topics do not report MaximumMessageSize: the AWS default applies


@pytest.fixture
def off(moto_server: MotoServer, bucket: str) -> Offloader:
    return offloader(moto_server, f"s3://{bucket}/{unique('sns')}")


@pytest.fixture
def topic(topic_arn: str, off: Offloader, sns: Any) -> SnsTransport:
    return SnsTransport(topic_arn, off, client=sns)


@pytest.fixture
def raw_queue(sqs: Any, sns: Any, topic_arn: str) -> Iterator[str]:
    with new_queue(sqs, "sns-raw") as url:
        subscribe(sns, sqs, topic_arn, url, raw=True)
        yield url


def test_plugin_registers_both_transports_and_the_detail_format_lazily() -> None:
    code = (
        "import sys, offload_transports.plugin as p\n"
        "from offload_core import Plugins\n"
        "registry = Plugins.from_modules(p).registry\n"
        "print(registry.get('transport', 'sns').target, "
        "registry.get('transport', 'eventbridge').target, "
        "registry.get('pointer_format', 'eventbridge').target, "
        "sorted(m for m in sys.modules if m == 'boto3' or m.startswith('offload_transports.')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == [
        "offload_transports.sns:SnsTransport",
        "offload_transports.eventbridge:EventBridgeTransport",
        "offload_transports.eventbridge_detail:DetailFormat",
        "['offload_transports.plugin']",
    ]
    plugins = Plugins.from_entry_points(env={})
    assert plugins.get("transport", "sns") is SnsTransport


def test_topic_limit_is_read_once_defaults_and_counts_attributes(
    topic: SnsTransport, sns: Any, sqs: Any, raw_queue: str
) -> None:
    calls = Calls(sns)
    attrs = {"trace": Attribute.string("t" * 20)}  # 5 + 6 + 20 bytes
    fits = "x" * (LIMIT - 31)
    assert topic.send(fits, attributes=attrs).pointer is None
    assert topic.send(fits + "x", attributes=attrs).pointer is not None
    assert topic.send("é" * (LIMIT // 2 + 1)).pointer is not None  # counted in UTF-8 bytes
    assert calls["GetTopicAttributes"] == 1
    assert topic.limits.max_size == LIMIT
    consumer = SqsTransport(raw_queue, topic.offloader, client=sqs, wait_seconds=1)
    sizes = sorted(len(m.payload()) for m in _consume(consumer, 3))
    assert sizes == [LIMIT - 31, LIMIT - 30, LIMIT + 2]


def test_raw_and_enveloped_subscribers_resolve_inline_and_offloaded(
    topic: SnsTransport, sns: Any, sqs: Any, topic_arn: str, raw_queue: str, off: Offloader
) -> None:
    data = json.dumps({"lines": [f"line {i}" for i in range(40_000)]})
    attrs = {"kind": Attribute.string("order"), "n": Attribute.number(3)}
    with new_queue(sqs, "sns-envelope") as enveloped:
        subscribe(sns, sqs, topic_arn, enveloped, raw=False)
        assert topic.publish("small", attributes=attrs).pointer is None
        assert topic.publish(data, attributes=attrs).pointer is not None
        for url, raw in ((raw_queue, True), (enveloped, False)):
            consumer = SqsTransport(url, off, client=sqs, wait_seconds=1)
            got = {m.payload(): m for m in _consume(consumer, 2)}
            assert set(got) == {b"small", data.encode()}
            for message in got.values():
                assert message.attributes == attrs
                assert ('"TopicArn"' in message.raw["Body"]) is not raw
            assert got[data.encode()].offloaded
    assert len(stored(off)) == 1  # subscribers never delete the payload


def test_official_sqs_extended_client_reads_raw_delivery(
    moto_server: MotoServer, sns: Any, sqs: Any, topic_arn: str, raw_queue: str, bucket: str
) -> None:
    off = offloader(moto_server, f"s3://{bucket}/{unique('official')}")
    topic = SnsTransport(topic_arn, off, client=sns)
    large = "large text, é included. " * 15_000
    for name, body in (("small", "small text"), ("large", large)):
        topic.send(body, attributes={"kind": Attribute.string(name)})
    (received,) = peer(
        moto_server, [{"op": "receive", "queue": raw_queue, "count": 2, "bucket": bucket}]
    )
    bodies = {m["MessageAttributes"]["kind"]["StringValue"]: m["Body"] for m in received}
    assert bodies == {"small": "small text", "large": large}


def test_batch_fits_the_total_and_a_refused_entry_loses_its_payload(
    topic: SnsTransport, sns: Any, sqs: Any, raw_queue: str, off: Offloader
) -> None:
    calls = Calls(sns)
    payloads = [bytes([65 + i]) * (60 * KIB - i) for i in range(9)]
    refused = BatchEntry(
        b"r" * (300 * KIB), id="refused", deduplication_id="not-on-a-standard-topic"
    )
    result = topic.publish_batch([*payloads, refused])
    assert calls["PublishBatch"] == 1
    assert [f.id for f in result.failed] == ["refused"]
    assert result.failed[0].sender_fault
    inline = [r.id for r in result.successful if r.pointer is None]
    assert len(inline) == 4  # 9 x 60 KiB: the five largest are stored until the total fits
    kept = {r.pointer.location.rsplit("/", 1)[1] for r in result.successful if r.pointer}
    assert {key.rsplit("/", 1)[1] for key in stored(off)} == kept
    consumer = SqsTransport(raw_queue, off, client=sqs, wait_seconds=1)
    assert {m.payload() for m in _consume(consumer, 9)} == set(payloads)


def test_fifo_topic_deduplicates_offloaded_payloads_by_digest(
    sns: Any, sqs: Any, off: Offloader
) -> None:
    attributes = {"FifoTopic": "true", "ContentBasedDeduplication": "true"}
    arn = sns.create_topic(Name=unique("topic") + ".fifo", Attributes=attributes)["TopicArn"]
    try:
        with new_queue(sqs, "sns-fifo", fifo=True) as url:
            subscribe(sns, sqs, arn, url, raw=True)
            topic = SnsTransport(arn, off, client=sns)
            data = b"same order " * 40_000
            first = topic.send(data, group_id="orders")
            second = topic.send(data, group_id="orders")  # a retry: a new key, the same payload
            assert first.pointer is not None
            assert second.pointer is not None
            assert first.pointer.location != second.pointer.location
            consumer = SqsTransport(url, off, client=sqs, wait_seconds=1)
            (message,) = _consume(consumer, 1)
            assert message.system_attributes["MessageGroupId"] == "orders"
            assert message.payload() == data
            assert consumer.receive(10, wait_seconds=0) == []
    finally:
        sns.delete_topic(TopicArn=arn)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"request": {"MessageStructure": "json"}}, "MessageStructure"),
        ({"attributes": {"AWS.trace": Attribute.string("t")}}, "not a valid SNS"),
    ],
    ids=["message-structure", "attribute-name"],
)
def test_what_sns_cannot_take_fails_before_anything_is_stored(
    topic: SnsTransport, sns: Any, off: Offloader, options: dict[str, Any], match: str
) -> None:
    calls = Calls(sns)
    with pytest.raises(IncompatibleOptionsError, match=match):
        topic.send(b"x" * (300 * KIB), **options)
    with pytest.raises(IncompatibleOptionsError, match="delivery delay"):
        topic.send_batch([BatchEntry(b"x" * (300 * KIB), delay_seconds=5)])
    assert calls["Publish"] + calls["PublishBatch"] == 0
    assert stored(off) == []


def _consume(queue: SqsTransport, count: int) -> list[Any]:
    """Receive (and acknowledge) exactly ``count`` messages."""
    got: list[Any] = []
    for _ in range(count + 2):
        if len(got) >= count:
            break
        batch = queue.receive(10, wait_seconds=1)
        got += batch
        queue.acknowledge(batch)
    assert len(got) == count, f"expected {count} messages, got {len(got)}"
    return got


def test_binary_payloads_need_the_native_format_on_sns_too(
    topic_arn: str, sns: Any, sqs: Any, raw_queue: str, off: Offloader, moto_server: MotoServer
) -> None:
    data = bytes(range(256)) * 2048  # not UTF-8: the core refuses it for the AWS format
    with pytest.raises(IncompatibleOptionsError, match="UTF-8"):
        SnsTransport(topic_arn, off, client=sns).send(data)
    assert stored(off) == []
    native = offloader(moto_server, off.store.url, pointer_format="native")
    assert SnsTransport(topic_arn, native, client=sns).send(data).pointer is not None
    consumer = SqsTransport(raw_queue, native, client=sqs, wait_seconds=1)
    (message,) = _consume(consumer, 1)
    assert message.payload() == data
