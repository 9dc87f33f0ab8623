"""The drop-in extended client: boto3's argument names and return shapes, receipt handles that
carry the payload's location, and deleting the message before the payload."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqs_support import Calls, new_queue, offloader, stored, unique

from offload_core.errors import (
    DigestMismatchError,
    IncompatibleOptionsError,
    PayloadNotFoundError,
)
from offload_core.offloader import Offloader
from offload_core.testing.aws import MotoServer
from offload_transports.extended import (
    SnsExtendedClient,
    SqsExtendedClient,
    embed_receipt_handle,
    split_receipt_handle,
)
from offload_transports.sqs import SqsTransport, from_boto_attributes, to_boto_attributes

BIG = "big payload line\n" * 100_000
ATTRS = {"kind": {"DataType": "String", "StringValue": "order"}}


@pytest.fixture
def off(moto_server: MotoServer, bucket: str) -> Offloader:
    return offloader(moto_server, f"s3://{bucket}/{unique('drop-in')}")


@pytest.fixture
def url(sqs: Any) -> Iterator[str]:
    with new_queue(sqs, "drop-in") as queue_url:
        yield queue_url


@pytest.fixture
def client(sqs: Any, off: Offloader) -> SqsExtendedClient:
    return SqsExtendedClient(sqs, off, delete_payload=True)


def test_send_receive_delete_keep_boto3_shapes(
    client: SqsExtendedClient, sqs: Any, url: str, off: Offloader
) -> None:
    small = client.send_message(QueueUrl=url, MessageBody="small", MessageAttributes=ATTRS)
    big = client.send_message(QueueUrl=url, MessageBody=BIG, MessageAttributes=ATTRS)
    for response in (small, big):
        assert {"MessageId", "MD5OfMessageBody", "ResponseMetadata"} <= set(response)
    requested = ["kind"]
    response = client.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageAttributeNames=requested
    )
    assert requested == ["kind"]  # the caller's list is not changed
    assert "ResponseMetadata" in response
    by_body = {m["Body"]: m for m in response["Messages"]}
    assert set(by_body) == {"small", BIG}
    for message in by_body.values():
        assert message["MessageAttributes"] == ATTRS
        assert {"MessageId", "ReceiptHandle", "MD5OfBody"} <= set(message)
    _, location = split_receipt_handle(by_body[BIG]["ReceiptHandle"])
    assert location is not None
    assert location.startswith(off.store.url)
    assert split_receipt_handle(by_body["small"]["ReceiptHandle"])[1] is None
    assert len(stored(off)) == 1
    for message in by_body.values():
        client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert stored(off) == []
    assert sqs.receive_message(QueueUrl=url).get("Messages") is None


def test_batch_calls_fit_the_batch_and_delete_payloads_only_of_deleted_entries(
    client: SqsExtendedClient, url: str, off: Offloader
) -> None:
    entries = [
        {"Id": f"e{i}", "MessageBody": chr(65 + i) * 900_000, "MessageAttributes": ATTRS}
        for i in range(10)
    ]
    response = client.send_message_batch(QueueUrl=url, Entries=entries)
    assert sorted(ok["Id"] for ok in response["Successful"]) == [f"e{i}" for i in range(10)]
    assert "Failed" not in response or response["Failed"] == []
    assert len(stored(off)) == 9
    messages = []
    while len(messages) < 10:
        got = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        messages += got["Messages"]
    assert sorted(m["Body"] for m in messages) == [e["MessageBody"] for e in entries]
    offloaded = [m for m in messages if split_receipt_handle(m["ReceiptHandle"])[1]]
    kept = offloaded[0]
    stale = embed_receipt_handle("stale", split_receipt_handle(kept["ReceiptHandle"])[1] or "")
    deletes = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
    deletes[messages.index(kept)]["ReceiptHandle"] = stale
    result = client.delete_message_batch(QueueUrl=url, Entries=deletes)
    assert [f["Code"] for f in result["Failed"]] == ["ReceiptHandleIsInvalid"]
    assert len(stored(off)) == 1  # the payload of the message SQS did not delete
    client.delete_message(QueueUrl=url, ReceiptHandle=kept["ReceiptHandle"])
    assert stored(off) == []


def test_change_visibility_strips_the_embedded_location(
    client: SqsExtendedClient, sqs: Any, url: str
) -> None:
    client.send_message(QueueUrl=url, MessageBody=BIG)
    (message,) = client.receive_message(QueueUrl=url, VisibilityTimeout=600)["Messages"]
    handle = message["ReceiptHandle"]
    assert split_receipt_handle(handle)[1] is not None
    client.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
    (again,) = client.receive_message(QueueUrl=url, VisibilityTimeout=600)["Messages"]
    client.change_message_visibility_batch(
        QueueUrl=url,
        Entries=[{"Id": "a", "ReceiptHandle": again["ReceiptHandle"], "VisibilityTimeout": 0}],
    )
    (third,) = client.receive_message(QueueUrl=url)["Messages"]
    assert third["Body"] == BIG
    client.delete_message(QueueUrl=url, ReceiptHandle=third["ReceiptHandle"])


def test_receipt_handles_parse_with_the_full_pattern() -> None:
    key = "2026/11/27/a-b-c-..s3Key..-d"  # dashes, and even the marker, inside the key
    embedded = embed_receipt_handle("AQEB+x/y==-z", f"s3://my-bucket/{key}")
    assert embedded == (
        f"-..s3BucketName..-my-bucket-..s3BucketName..--..s3Key..-{key}-..s3Key..-AQEB+x/y==-z"
    )
    assert split_receipt_handle(embedded) == ("AQEB+x/y==-z", f"s3://my-bucket/{key}")
    assert split_receipt_handle("AQEBplain") == ("AQEBplain", None)
    assert embed_receipt_handle("h", "file:///srv/payloads/k") == "h"


def broken_batch(sqs: Any, url: str, off: Offloader, moto_server: MotoServer) -> None:
    """Queue a fine small message, one whose payload is corrupt and one whose payload is gone."""
    sender = SqsExtendedClient(sqs, off)
    s3 = moto_server.client("s3")
    bucket, _, prefix = off.store.url.removeprefix("s3://").partition("/")
    sender.send_message(QueueUrl=url, MessageBody="fine")
    sender.send_message(QueueUrl=url, MessageBody=BIG)
    (corrupt,) = stored(off)
    s3.put_object(Bucket=bucket, Key=f"{prefix}/{corrupt}", Body=b"x" * len(BIG))
    sender.send_message(QueueUrl=url, MessageBody=BIG.upper())
    (missing,) = set(stored(off)) - {corrupt}
    s3.delete_object(Bucket=bucket, Key=f"{prefix}/{missing}")


def in_queue(sqs: Any, url: str) -> tuple[int, int]:
    """(visible, in flight) messages of the queue."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return int(attrs[names[0]]), int(attrs[names[1]])


def test_by_default_an_undeliverable_message_is_left_and_the_rest_returned(
    sqs: Any, url: str, off: Offloader, moto_server: MotoServer
) -> None:
    broken_batch(sqs, url, off, moto_server)
    client = SqsExtendedClient(sqs, off)
    got = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30)
    assert [m["Body"] for m in got["Messages"]] == ["fine"]
    assert in_queue(sqs, url) == (0, 3)  # the two bad ones wait for redelivery (and the DLQ)
    assert len(stored(off)) == 1  # nothing deleted


def test_raising_releases_the_good_messages_at_once(
    sqs: Any, url: str, off: Offloader, moto_server: MotoServer
) -> None:
    broken_batch(sqs, url, off, moto_server)
    strict = SqsExtendedClient(sqs, off, on_error="raise")
    with pytest.raises((DigestMismatchError, PayloadNotFoundError)):
        strict.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30)
    assert in_queue(sqs, url) == (1, 2)
    again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30)
    assert [m["Body"] for m in again["Messages"]] == ["fine"]


def test_ignore_payload_not_found_deletes_only_messages_whose_payload_is_gone(
    sqs: Any, url: str, off: Offloader, moto_server: MotoServer
) -> None:
    broken_batch(sqs, url, off, moto_server)
    client = SqsExtendedClient(sqs, off, ignore_payload_not_found=True)
    got = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30)
    assert [m["Body"] for m in got["Messages"]] == ["fine"]
    assert in_queue(sqs, url) == (0, 2)  # fine (returned) and the corrupt one; the gone one left
    client.delete_message(QueueUrl=url, ReceiptHandle=got["Messages"][0]["ReceiptHandle"])
    assert in_queue(sqs, url) == (0, 1)


def test_other_calls_go_to_the_wrapped_client(client: SqsExtendedClient, url: str) -> None:
    calls = Calls(client.sqs)
    name = url.rsplit("/", 1)[1]
    assert client.get_queue_url(QueueName=name)["QueueUrl"] == url
    assert calls["GetQueueUrl"] == 1
    assert client.exceptions is client.sqs.exceptions


def test_sns_envelope_keeps_its_shape_with_the_payload_in_message(
    client: SqsExtendedClient, sqs: Any, url: str, off: Offloader, moto_server: MotoServer
) -> None:
    sns = moto_server.client("sns")
    topic = sns.create_topic(Name=unique("drop-in"))["TopicArn"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn["Attributes"]["QueueArn"])
    pointer = off.prepare(BIG, attributes=from_boto_attributes(ATTRS))
    sns.publish(
        TopicArn=topic,
        Message=pointer.body,
        MessageAttributes=to_boto_attributes(pointer.attributes),
    )
    sns.delete_topic(TopicArn=topic)
    (message,) = client.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
    envelope = json.loads(message["Body"])
    assert envelope["Type"] == "Notification"
    assert envelope["Message"] == BIG
    assert envelope["MessageAttributes"] == {"kind": {"Type": "String", "Value": "order"}}
    assert pointer.pointer is not None
    assert split_receipt_handle(message["ReceiptHandle"])[1] == pointer.pointer.location
    client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert stored(off) == []


def test_more_than_ten_batch_entries_fail_before_anything_is_stored(
    client: SqsExtendedClient, url: str, off: Offloader
) -> None:
    entries = [{"Id": str(i), "MessageBody": BIG} for i in range(11)]
    with pytest.raises(IncompatibleOptionsError, match="at most 10"):
        client.send_message_batch(QueueUrl=url, Entries=entries)
    assert stored(off) == []


def test_sqs_errors_and_answers_are_boto3_s_own(
    sqs: Any, off: Offloader, moto_server: MotoServer, url: str
) -> None:
    """Code written for boto3 catches ClientError and reads ResponseMetadata: both stay."""
    from botocore.exceptions import ClientError

    client = SqsExtendedClient(sqs, off)
    gone = f"{moto_server.endpoint}/123456789012/{unique('never-made')}"
    with pytest.raises(ClientError):
        client.send_message(QueueUrl=gone, MessageBody=BIG)
    with pytest.raises(ClientError):
        client.send_message_batch(QueueUrl=gone, Entries=[{"Id": "a", "MessageBody": BIG}])
    assert stored(off) == []  # both payloads removed again: SQS refused the calls
    entries = [{"Id": "a", "MessageBody": "small"}, {"Id": "b", "MessageBody": BIG}]
    response = client.send_message_batch(QueueUrl=url, Entries=entries)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert sorted(ok["Id"] for ok in response["Successful"]) == ["a", "b"]
    assert "Failed" not in response or response["Failed"] == []
    got = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    assert sorted(m["Body"] for m in got["Messages"]) == sorted(["small", BIG])


# -- the SNS drop-in -----------------------------------------------------------------------------


@pytest.fixture
def sns_client(moto_server: MotoServer, bucket: str) -> SnsExtendedClient:
    return SnsExtendedClient(
        moto_server.client("sns"), offloader(moto_server, f"s3://{bucket}/{unique('sns-x')}")
    )


def test_sns_publish_and_publish_batch_keep_boto3_shapes(
    sns_client: SnsExtendedClient, sqs: Any, topic_arn: str
) -> None:
    with new_queue(sqs, "sns-x") as url:
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        sns_client.subscribe(  # passed to the wrapped client
            TopicArn=topic_arn,
            Protocol="sqs",
            Endpoint=arn["Attributes"]["QueueArn"],
            Attributes={"RawMessageDelivery": "true"},
        )
        big = "b" * 300_000
        one = sns_client.publish(TopicArn=topic_arn, Message=big, Subject="s")
        assert set(one) >= {"MessageId", "ResponseMetadata"}
        entries = [{"Id": str(i), "Message": m} for i, m in enumerate(["a" * 200_000] * 2)]
        batch = sns_client.publish_batch(TopicArn=topic_arn, PublishBatchRequestEntries=entries)
        assert sorted(ok["Id"] for ok in batch["Successful"]) == ["0", "1"]
        assert len(stored(sns_client.offloader)) == 2  # the big one, and one of the batch
        received = SqsTransport(url, sns_client.offloader, client=sqs, wait_seconds=1)
        got: list[Any] = []
        while len(got) < 3:
            got += received.receive(10)
        received.acknowledge(got)
    assert sorted(len(m.payload()) for m in got) == [200_000, 200_000, 300_000]


def test_sns_messages_nothing_could_fetch_a_payload_from_are_passed_on_as_they_are(
    sns_client: SnsExtendedClient, topic_arn: str
) -> None:
    structure = json.dumps({"default": "hello", "sqs": "hello, queue"})
    sent = sns_client.publish(TopicArn=topic_arn, Message=structure, MessageStructure="json")
    assert "MessageId" in sent
    big = json.dumps({"default": "x" * 300_000})
    with pytest.raises(IncompatibleOptionsError, match="one body per protocol"):
        sns_client.publish(TopicArn=topic_arn, Message=big, MessageStructure="json")
    assert "MessageId" in sns_client.publish(PhoneNumber="+15555550123", Message="hi")
    assert stored(sns_client.offloader) == []


def test_a_non_string_s3key_is_refused_before_anything_is_stored(
    sns_client: SnsExtendedClient, topic_arn: str
) -> None:
    attributes = {"S3Key": {"DataType": "Number", "StringValue": "7"}}
    with pytest.raises(IncompatibleOptionsError, match="S3Key"):
        sns_client.publish(TopicArn=topic_arn, Message="x" * 300_000, MessageAttributes=attributes)
    assert stored(sns_client.offloader) == []


def test_two_batch_entries_choosing_one_key_are_refused_before_anything_is_stored(
    client: SqsExtendedClient, url: str
) -> None:
    same = {"S3Key": {"DataType": "String", "StringValue": "chosen/one"}}
    entries = [{"Id": str(i), "MessageBody": BIG, "MessageAttributes": same} for i in range(2)]
    with pytest.raises(IncompatibleOptionsError, match="same object key"):
        client.send_message_batch(QueueUrl=url, Entries=entries)
    assert stored(client.offloader) == []
