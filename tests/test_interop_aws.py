"""Wire interop with the official AWS extended clients from PyPI, over a real moto server.

The official clients run in a child process (``data/sqs/official_peer.py``): importing them
replaces ``boto3.Session`` for the whole process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqs_support import new_queue, offloader, stored, unique

from offload_core import Attribute
from offload_core.offloader import Offloader
from offload_core.testing.aws import FAKE_CREDENTIALS, MotoServer
from offload_transports.extended import SnsExtendedClient, SqsExtendedClient, split_receipt_handle
from offload_transports.sqs import SqsMessage, SqsTransport, to_boto_attributes

PEER = Path(__file__).parent / "data" / "sqs" / "official_peer.py"
#: Over the official clients' fixed 256 KiB threshold, so they offload these.
LARGE_TEXT = "large text payload, é and ü included. " * 8_000
LARGE_JSON = json.dumps({"orders": [{"id": i, "sku": f"SKU-{i:06d}"} for i in range(12_000)]})
SMALL_TEXT = "small text"
SMALL_JSON = '{"id": 1, "status": "ok"}'
BODIES = {"small-text": SMALL_TEXT, "small-json": SMALL_JSON}
BODIES |= {"large-text": LARGE_TEXT, "large-json": LARGE_JSON}


def peer(moto: MotoServer, steps: list[dict[str, Any]]) -> list[Any]:
    """Run the official clients through ``steps``; their results, in order."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {
        "AWS_ENDPOINT_URL": moto.endpoint,
        "AWS_DEFAULT_REGION": moto.region,
        "AWS_ACCESS_KEY_ID": FAKE_CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": FAKE_CREDENTIALS["aws_secret_access_key"],
    }
    result = subprocess.run(
        [sys.executable, str(PEER)],
        input=json.dumps(steps),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out: list[Any] = json.loads(result.stdout)
    return out


@pytest.fixture(scope="module")
def sqs(moto_server: MotoServer) -> Any:
    return moto_server.client("sqs")


@pytest.fixture
def queue_url(sqs: Any) -> Iterator[str]:
    with new_queue(sqs, "interop") as url:
        yield url


@pytest.fixture
def bucket_offloader(moto_server: MotoServer, bucket: str) -> Offloader:
    """Our offloader on the whole bucket: the official clients store at its root."""
    return offloader(moto_server, f"s3://{bucket}")


def kind_attribute(name: str) -> dict[str, Attribute]:
    return {"kind": Attribute.string(name)}


def test_our_sender_official_receiver_and_its_delete_of_our_payload(
    moto_server: MotoServer, sqs: Any, queue_url: str, bucket: str
) -> None:
    off = offloader(moto_server, f"s3://{bucket}/{unique('ours')}")
    queue = SqsTransport(queue_url, off, client=sqs, max_message_size=262_144)
    for name, body in BODIES.items():
        queue.send(body, attributes=kind_attribute(name))
    assert len(stored(off)) == 2
    (received,) = peer(
        moto_server, [{"op": "receive", "queue": queue_url, "count": 4, "bucket": bucket}]
    )
    by_kind = {m["MessageAttributes"]["kind"]["StringValue"]: m for m in received}
    assert {k: m["Body"] for k, m in by_kind.items()} == BODIES
    for message in received:  # the official client removes its marker attribute
        assert set(message["MessageAttributes"]) == {"kind"}
    handle = by_kind["large-json"]["ReceiptHandle"]
    assert split_receipt_handle(handle)[1] is not None
    steps = [
        {"op": "delete", "queue": queue_url, "handle": m["ReceiptHandle"], "bucket": bucket}
        | {"delete_payload": True}
        for m in received
    ]
    peer(moto_server, steps)
    assert stored(off) == []
    assert queue.receive(10, wait_seconds=0) == []


@pytest.mark.parametrize("legacy", [False, True], ids=["exact", "exact-legacy-attribute"])
def test_exact_aws_bytes_on_request_are_read_by_the_official_receiver(
    moto_server: MotoServer, sqs: Any, queue_url: str, bucket: str, legacy: bool
) -> None:
    """With ``extension_fields=False`` the body is what the Java client writes, byte for byte;
    with ``legacy_attribute`` the size goes in ``SQSLargePayloadSize``, the only name Java 1.x
    and npm ``sns-sqs-big-payload`` readers ask for."""
    options = {"extension_fields": False, "legacy_attribute": legacy}
    prefix = unique("exact")
    off = offloader(moto_server, f"s3://{bucket}/{prefix}", pointer_format_options=options)
    SqsTransport(queue_url, off, client=sqs, max_message_size=262_144).send(LARGE_TEXT)
    (raw,) = sqs.receive_message(QueueUrl=queue_url, MessageAttributeNames=["All"])["Messages"]
    (key,) = stored(off)
    assert raw["Body"] == (
        '["software.amazon.payloadoffloading.PayloadS3Pointer",'
        f'{{"s3BucketName":"{bucket}","s3Key":"{prefix}/{key}"}}]'
    )
    size = str(len(LARGE_TEXT.encode()))
    name = "SQSLargePayloadSize" if legacy else "ExtendedPayloadSize"
    assert raw["MessageAttributes"] == {name: {"StringValue": size, "DataType": "Number"}}
    sqs.change_message_visibility(
        QueueUrl=queue_url, ReceiptHandle=raw["ReceiptHandle"], VisibilityTimeout=0
    )
    (received,) = peer(
        moto_server, [{"op": "receive", "queue": queue_url, "count": 1, "bucket": bucket}]
    )
    assert received[0]["Body"] == LARGE_TEXT
    peer(
        moto_server, [{"op": "delete", "queue": queue_url, "handle": received[0]["ReceiptHandle"]}]
    )


@pytest.mark.parametrize("legacy", [False, True], ids=["default", "legacy-attribute"])
def test_official_sender_our_receiver(
    moto_server: MotoServer,
    sqs: Any,
    queue_url: str,
    bucket: str,
    bucket_offloader: Offloader,
    legacy: bool,
) -> None:
    steps = [
        {
            "op": "send",
            "queue": queue_url,
            "body": body,
            "attributes": to_boto_attributes(kind_attribute(name)),
            "bucket": bucket,
            "legacy": legacy,
        }
        for name, body in BODIES.items()
    ]
    peer(moto_server, steps)
    queue = SqsTransport(queue_url, bucket_offloader, client=sqs, wait_seconds=1)
    got = _receive(queue, 4)
    marker = "SQSLargePayloadSize" if legacy else "ExtendedPayloadSize"
    for message in got:
        name = message.attributes["kind"].value
        assert message.payload() == BODIES[str(name)].encode()
        assert message.attributes == kind_attribute(str(name))
        assert message.offloaded == str(name).startswith("large")
        if message.offloaded:
            assert marker in message.raw["MessageAttributes"]
            assert message.pointer is not None
            assert message.pointer.dialect == "aws"
            assert message.pointer.digest is None  # the official clients send no digest
    queue.acknowledge(got)


def test_official_receipt_handle_deleted_by_our_client_and_ours_by_theirs(
    moto_server: MotoServer, sqs: Any, queue_url: str, bucket: str, bucket_offloader: Offloader
) -> None:
    send = {"op": "send", "queue": queue_url, "body": LARGE_TEXT, "bucket": bucket}
    before = set(stored(bucket_offloader))
    peer(moto_server, [send, send])
    assert len(set(stored(bucket_offloader)) - before) == 2
    # Their receive, our delete: the handle they embedded tells our client which payload to drop.
    (received,) = peer(
        moto_server, [{"op": "receive", "queue": queue_url, "count": 1, "bucket": bucket}]
    )
    ours = SqsExtendedClient(sqs, bucket_offloader, delete_payload=True)
    handle = received[0]["ReceiptHandle"]
    assert handle.startswith("-..s3BucketName..-")
    ours.delete_message(QueueUrl=queue_url, ReceiptHandle=handle)
    assert len(set(stored(bucket_offloader)) - before) == 1
    # Our receive, their delete.
    response = ours.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1)
    (message,) = response["Messages"]
    assert message["Body"] == LARGE_TEXT
    delete = {"op": "delete", "queue": queue_url, "handle": message["ReceiptHandle"]}
    peer(moto_server, [delete | {"bucket": bucket, "delete_payload": True}])
    assert set(stored(bucket_offloader)) - before == set()
    assert sqs.receive_message(QueueUrl=queue_url).get("Messages") is None


@pytest.mark.parametrize("raw", [True, False], ids=["raw", "envelope"])
def test_official_sns_publisher_through_a_topic_to_our_receiver(
    moto_server: MotoServer,
    sqs: Any,
    queue_url: str,
    bucket: str,
    bucket_offloader: Offloader,
    raw: bool,
) -> None:
    sns = moto_server.client("sns")
    topic = sns.create_topic(Name=unique("interop"))["TopicArn"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=arn["Attributes"]["QueueArn"],
        Attributes={"RawMessageDelivery": str(raw).lower()},
    )
    steps = [
        {
            "op": "publish",
            "topic": topic,
            "message": body,
            "attributes": to_boto_attributes(kind_attribute(name)),
            "bucket": bucket,
        }
        for name, body in BODIES.items()
    ]
    try:
        peer(moto_server, steps)
    finally:
        sns.delete_topic(TopicArn=topic)
    queue = SqsTransport(queue_url, bucket_offloader, client=sqs, wait_seconds=1)
    got = _receive(queue, 4)
    for message in got:
        name = str(message.attributes["kind"].value)
        assert message.attributes == kind_attribute(name)
        assert message.payload() == BODIES[name].encode()
        assert message.offloaded == name.startswith("large")
        assert ('"TopicArn"' in message.raw["Body"]) is not raw
    queue.acknowledge(got)


def _receive(queue: SqsTransport, count: int) -> list[SqsMessage]:
    got: list[SqsMessage] = []
    while len(got) < count:
        batch = queue.receive(10)
        assert batch, f"expected {count} messages, got {len(got)}"
        got += batch
    return got


def test_our_sns_drop_in_through_a_topic_to_the_official_receiver(
    moto_server: MotoServer, sqs: Any, queue_url: str, bucket: str, topic_arn: str
) -> None:
    """Our boto3-shaped SNS drop-in publishes (one by one and in a batch, with an ``S3Key`` of
    the sender's choosing on one message); the official SQS client reads every body back."""
    sns = moto_server.client("sns")
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=arn["Attributes"]["QueueArn"],
        Attributes={"RawMessageDelivery": "true"},
    )
    off = offloader(moto_server, f"s3://{bucket}")
    client = SnsExtendedClient(sns, off)
    chosen = f"{unique('chosen')}/large-text.txt"
    for name, body in BODIES.items():
        attributes = to_boto_attributes(kind_attribute(name))
        if name == "large-text":
            attributes["S3Key"] = {"DataType": "String", "StringValue": chosen}
        assert "MessageId" in client.publish(
            TopicArn=topic_arn, Message=body, MessageAttributes=attributes
        )
    entries = [
        {"Id": f"b{i}", "Message": body, "MessageAttributes": to_boto_attributes(kind_attribute(n))}
        for i, (n, body) in enumerate(BODIES.items())
    ]
    answer = client.publish_batch(TopicArn=topic_arn, PublishBatchRequestEntries=entries)
    assert sorted(ok["Id"] for ok in answer["Successful"]) == ["b0", "b1", "b2", "b3"]
    (received,) = peer(
        moto_server, [{"op": "receive", "queue": queue_url, "count": 8, "bucket": bucket}]
    )
    bodies = sorted((m["MessageAttributes"]["kind"]["StringValue"], m["Body"]) for m in received)
    assert bodies == sorted([*BODIES.items(), *BODIES.items()])
    s3 = moto_server.client("s3")
    assert s3.get_object(Bucket=bucket, Key=chosen)["Body"].read() == LARGE_TEXT.encode()
    with_key = [m for m in received if "S3Key" in m["MessageAttributes"]]
    assert [m["MessageAttributes"]["S3Key"]["StringValue"] for m in with_key] == [chosen]
    peer(
        moto_server,
        [{"op": "delete", "queue": queue_url, "handle": m["ReceiptHandle"]} for m in received],
    )


def test_an_s3key_attribute_names_the_object_for_both_clients(
    moto_server: MotoServer, sqs: Any, queue_url: str, bucket: str, bucket_offloader: Offloader
) -> None:
    ours, theirs = unique("ours") + "/payload.txt", unique("theirs") + "/payload.txt"

    def keyed(key: str) -> dict[str, Any]:
        return {"S3Key": {"DataType": "String", "StringValue": key}}

    # The official client's fixed threshold; ours follows the queue's MaximumMessageSize.
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"MaximumMessageSize": "262144"})
    client = SqsExtendedClient(sqs, bucket_offloader)
    client.send_message(QueueUrl=queue_url, MessageBody=LARGE_TEXT, MessageAttributes=keyed(ours))
    step = {"op": "send", "queue": queue_url, "body": LARGE_JSON, "attributes": keyed(theirs)}
    peer(moto_server, [step | {"bucket": bucket}])
    assert {ours, theirs} <= set(stored(bucket_offloader))
    queue = SqsTransport(queue_url, bucket_offloader, client=sqs, wait_seconds=1)
    got = {m.pointer.location if m.pointer else "": m for m in _receive(queue, 2)}
    assert set(got) == {f"s3://{bucket}/{ours}", f"s3://{bucket}/{theirs}"}
    assert got[f"s3://{bucket}/{ours}"].payload() == LARGE_TEXT.encode()
    assert got[f"s3://{bucket}/{theirs}"].payload() == LARGE_JSON.encode()
    queue.acknowledge(got.values())
