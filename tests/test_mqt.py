"""Reading what Node's message-queue-toolkit publishes: ``payloadRef`` pointers (and the older
two-field form) to a named payload store, on SQS, through an SNS envelope and in a Lambda
event, from messages its published packages produced (``data/mqt/generate.mjs``), over moto."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import zstandard
from lambda_support import receive, sqs_event, subscribe
from sqs_support import new_queue, unique

from offload_core import Attribute
from offload_core.errors import (
    ConfigurationError,
    LocationNotAllowedError,
    PointerError,
    SizeMismatchError,
)
from offload_core.offloader import Offloader
from offload_core.testing.aws import MotoServer
from offload_transports.aws_lambda import batch_handler
from offload_transports.sqs import SqsTransport

SAMPLES = json.loads((Path(__file__).parent / "data" / "mqt" / "samples.json").read_text())
SIZE = "payloadOffloading.size"


def consumer(moto: MotoServer, bucket: str, **aliases: str) -> Offloader:
    return Offloader(
        f"s3://{bucket}",
        storage_options=moto.storage_options(),
        aliases=aliases or {"mqt://s3/": f"s3://{bucket}/"},
    )


def put(moto: MotoServer, bucket: str, key: str, data: bytes) -> None:
    moto.client("s3").put_object(Bucket=bucket, Key=key, Body=data)


def pointer_message(
    ref: dict[str, Any], *, legacy: bool = False
) -> tuple[str, dict[str, Attribute]]:
    """A message built as message-queue-toolkit's ``buildPointer`` builds it."""
    body: dict[str, Any] = {} if legacy else {"payloadRef": ref}
    body |= {"offloadedPayloadPointer": ref["id"], "offloadedPayloadSize": ref["size"]}
    body |= {"id": "o-9", "timestamp": "2026-12-06T12:00:00.000Z", "type": "order.created"}
    return json.dumps(body, separators=(",", ":")), {SIZE: Attribute("Number", str(ref["size"]))}


def test_messages_its_published_publisher_sent_are_read_from_sqs(
    moto_server: MotoServer, bucket: str, sqs: Any
) -> None:
    off = consumer(moto_server, bucket)
    expected = {}
    with new_queue(sqs, "mqt") as url:
        for sample in SAMPLES["samples"]:
            stored = sample["object"]
            if stored is not None:
                data = base64.b64decode(stored["base64"])
                put(moto_server, bucket, stored["key"], data)
            else:
                data = sample["MessageBody"].encode()
            sent = sqs.send_message(
                QueueUrl=url,
                MessageBody=sample["MessageBody"],
                MessageAttributes=sample["MessageAttributes"],
            )
            expected[sent["MessageId"]] = (data, stored)
        queue = SqsTransport(url, off, client=sqs, wait_seconds=1)
        got = []
        while len(got) < len(expected):
            got += queue.receive(10)
        for message in got:
            data, stored = expected[message.message_id]
            assert message.payload() == data
            if stored is None:
                assert message.pointer is None
            else:
                assert message.pointer is not None
                assert message.pointer.dialect == "message-queue-toolkit"
                assert message.pointer.location == f"mqt://s3/{stored['key']}"
                assert json.loads(data)["type"] == "order.created"  # the whole message
        queue.acknowledge(got)
    assert sum(s["object"] is not None for s in SAMPLES["samples"]) == 2


def test_through_an_sns_envelope_to_a_lambda_function(
    moto_server: MotoServer, bucket: str, sqs: Any, sns: Any, topic_arn: str
) -> None:
    sample = next(s for s in SAMPLES["samples"] if s["object"] is not None)
    data = base64.b64decode(sample["object"]["base64"])
    put(moto_server, bucket, sample["object"]["key"], data)
    with new_queue(sqs, "mqt-sns") as url:
        subscribe(sns, sqs, topic_arn, url, raw=False)
        sns.publish(
            TopicArn=topic_arn,
            Message=sample["MessageBody"],
            MessageAttributes=sample["MessageAttributes"],
        )
        event = sqs_event(receive(sqs, url, 1), sqs, url)
    got: list[bytes] = []
    handler = batch_handler(consumer(moto_server, bucket))(lambda p, r: got.append(p))
    assert handler(event) == {"batchItemFailures": []}
    assert got == [data]


def test_zstd_and_the_older_two_field_form(moto_server: MotoServer, bucket: str) -> None:
    original = json.dumps({"id": "o-9", "lines": ["ligne é"] * 5000}).encode()
    compressed = zstandard.ZstdCompressor().compress(original)  # a standard frame, as Node's
    put(moto_server, bucket, "orders/z", compressed)
    put(moto_server, bucket, "legacy/k", original)
    off = consumer(
        moto_server,
        bucket,
        **{"mqt://s3/": f"s3://{bucket}/", "mqt://default/": f"s3://{bucket}/"},
    )
    ref = {"id": "orders/z", "store": "s3", "size": len(compressed), "codec": "zstd"}
    assert off.resolve(*pointer_message(ref)) == original
    legacy = {"id": "legacy/k", "size": len(original)}
    body, attributes = pointer_message(legacy, legacy=True)
    assert off.parse(body, attributes).pointer.location == "mqt://default/legacy/k"  # type: ignore[union-attr]
    assert off.resolve(body, attributes) == original


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"store": "elsewhere"}, LocationNotAllowedError),  # no alias: nothing read
        ({"store": "a/b"}, PointerError),
        ({"id": "../escape"}, PointerError),
        ({"id": "/abs"}, PointerError),
        ({"codec": "gzip"}, PointerError),
        ({"size": -1}, PointerError),
        ({"size": 3}, SizeMismatchError),  # a size smaller than the object
    ],
)
def test_what_it_refuses(
    moto_server: MotoServer, bucket: str, change: dict[str, Any], error: type[Exception]
) -> None:
    put(moto_server, bucket, "orders/x", b'{"id":"o-1"}')
    ref = {"id": "orders/x", "store": "s3", "size": 12} | change
    with pytest.raises(error):
        consumer(moto_server, bucket).resolve(*pointer_message(ref))


def test_a_disagreeing_size_attribute_and_a_marked_non_pointer_are_errors(
    moto_server: MotoServer, bucket: str
) -> None:
    off = consumer(moto_server, bucket)
    body, attributes = pointer_message({"id": "orders/x", "store": "s3", "size": 12})
    attributes[SIZE] = Attribute("Number", "13")
    with pytest.raises(PointerError, match="says 13"):
        off.resolve(body, attributes)
    with pytest.raises(PointerError, match=r"payloadOffloading\.size"):
        off.resolve('{"id": "o-1"}', attributes)
    assert off.resolve('{"payloadRef": 1}') == b'{"payloadRef": 1}'  # no attribute: a payload


def test_an_alias_grants_nothing_the_consumer_does_not_trust(
    moto_server: MotoServer, bucket: str
) -> None:
    other = unique("not-trusted")
    with pytest.raises(ConfigurationError, match="trusts nothing"):
        consumer(moto_server, bucket, **{"mqt://s3/": f"s3://{other}/"})
    with pytest.raises(ConfigurationError, match="already serves"):
        consumer(moto_server, bucket, **{f"s3://{bucket}/": f"s3://{bucket}/"})
