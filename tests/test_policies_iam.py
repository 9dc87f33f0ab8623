"""The identity policies ``offload policy`` prints, proven on a moto server with IAM enforced.

Each role is a role in moto whose only permissions are the document generated for it, and runs
the library's real operations: the publisher through SQS, SNS and EventBridge (a multipart
upload, an aborted one, and sends that fail and so remove their payload), the consumer and the
deleting consumer through SQS, and a Lambda function's role doing what the event source mapping
and the handler do. Every call a role makes is recorded and none may be denied; then a call
outside its policy must be, with the library's typed error.

What moto cannot show, and only real AWS can: moto evaluates no resource policy (bucket, access
point, key, topic, queue, bus), so everything here is in one account and cross-account grants
are not exercised; it checks SNS, EventBridge and KMS actions but not the resource they name
(:func:`~offload_core.testing.aws.moto_policy` widens those statements to ``*``); its S3 never
calls KMS, so the KMS grants are not exercised; and it cannot check the SigV4A signatures of
MRAP requests, so the MRAP documents are checked only as documents (tests/test_policies.py).
moto takes each API operation's name for the IAM action (``s3:UploadPart``,
``sqs:SendMessageBatch``) where AWS authorizes it as another (``s3:PutObject``,
``sqs:SendMessage``); ``moto_policy`` adds those names.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fsspec.asyn import sync
from lambda_support import queue_arn, route, sqs_event, subscribe
from sqs_support import new_queue, unique

from offload_core.errors import AccessDeniedError, TransportError
from offload_core.offloader import Offloader
from offload_core.testing.aws import DEFAULT_ACCOUNT, MotoServer
from offload_transports.aws_lambda import Record, batch_handler
from offload_transports.eventbridge import LEGACY_MAX_ENTRY_SIZE, EventBridgeTransport
from offload_transports.policies import access_policies
from offload_transports.sns import SnsTransport
from offload_transports.sqs import SqsMessage, SqsTransport

MiB = 1024 * 1024
#: The queues' limit: the AWS default, where moto's is SQS's 1 MiB ceiling.
LIMIT = "262144"
#: Over the 256 KiB limit of the queues and topics here: stored with one PutObject.
STORED = json.dumps({"lines": ["x" * 100] * 3000})
#: Over the 5 MiB multipart threshold the stores here use: three parts.
MULTIPART = "y" * (11 * MiB)


class Calls:
    """Every AWS call made through the clients watched: operation and HTTP status."""

    def __init__(self) -> None:
        self.made: list[tuple[str, int]] = []

    def watch(self, client: Any) -> Any:
        client.meta.events.register("after-call", self._after)
        return client

    def watch_store(self, offloader: Offloader) -> Offloader:
        """Watch the s3fs client of the offloader's S3 store."""
        fs = offloader.store.fs  # type: ignore[attr-defined]
        self.watch(sync(fs.loop, fs.set_session))
        return offloader

    def _after(self, http_response: Any, model: Any, **_: Any) -> None:
        self.made.append((model.name, http_response.status_code))

    @property
    def operations(self) -> set[str]:
        return {name for name, _ in self.made}

    @property
    def denied(self) -> list[str]:
        return [name for name, status in self.made if status == 403]


def documents(bucket: str, prefix: str, **resources: str) -> dict[str, Any]:
    """The policies for one account that publishes, consumes and deletes (moto evaluates only
    identity policies, and those are per role)."""
    return access_policies(
        publisher=DEFAULT_ACCOUNT,
        subscribers=[DEFAULT_ACCOUNT],
        deleting_subscribers=[DEFAULT_ACCOUNT],
        bucket=bucket,
        prefix=prefix,
        **resources,
    )


def offloader_as(
    moto: MotoServer, url: str, credentials: dict[str, str], **options: Any
) -> Offloader:
    """An Offloader whose store signs with ``credentials``; parts of 5 MiB past 5 MiB."""
    storage = {
        **moto.storage_options(credentials=credentials),
        "part_size": 5 * MiB,
        "multipart_threshold": 5 * MiB,
        "skip_instance_cache": True,
    }
    return Offloader(url, storage_options=storage, **options)


def keys(moto: MotoServer, bucket: str, prefix: str) -> set[str]:
    listed = moto.client("s3").list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/")
    return {item["Key"] for item in listed.get("Contents", [])}


def object_key(bucket: str, location: str) -> str:
    return location.removeprefix(f"s3://{bucket}/")


def receive(transport: SqsTransport, count: int) -> list[SqsMessage]:
    got: list[SqsMessage] = []
    for _ in range(count + 2):
        if len(got) >= count:
            break
        got += transport.receive(count - len(got), wait_seconds=1)
    assert len(got) == count
    return got


def abort_midway(offloader: Offloader) -> None:
    """Upload two parts, then fail, so that the store aborts the multipart upload."""
    with offloader.store.open_write("aborted") as sink:
        sink.write(b"z" * 11 * MiB)
        raise RuntimeError("the payload's source failed")


@contextmanager
def topic(moto: MotoServer) -> Iterator[str]:
    sns = moto.client("sns")
    arn = str(sns.create_topic(Name=unique("iam-topic"))["TopicArn"])
    try:
        yield arn
    finally:
        sns.delete_topic(TopicArn=arn)


# -- SQS ----------------------------------------------------------------------------------------


def test_the_publisher_sends_through_sqs_and_removes_what_it_could_not_send(
    moto_server: MotoServer, bucket: str, sqs: Any
) -> None:
    prefix = unique("iam-sqs")
    url = f"s3://{bucket}/{prefix}"
    with new_queue(sqs, "iam-direct", MaximumMessageSize=LIMIT) as queue:
        docs = documents(bucket, prefix, queue=queue_arn(sqs, queue))
        role = moto_server.role_with_policy(docs["publisher_identity_policy"])
        calls = Calls()
        publisher = calls.watch_store(offloader_as(moto_server, url, role))
        client = calls.watch(moto_server.client("sqs", **role))
        transport = SqsTransport(queue, publisher, client=client)
        with moto_server.iam_enforced():
            assert transport.send("small").pointer is None
            large = transport.send(MULTIPART).pointer
            batch = transport.send_batch(["small", STORED])
            with pytest.raises(TransportError, match="DelaySeconds"):
                transport.send(STORED, delay_seconds=901)  # SQS refuses it: the payload goes
            with pytest.raises(RuntimeError):
                abort_midway(publisher)
            assert not calls.denied, calls.made
            assert large is not None
            with pytest.raises(AccessDeniedError):
                publisher.read_pointer(large)  # not a reader: s3:GetObject is not granted
        # A read sends its first ranges together: how many 403s arrive before the first one
        # cancels the rest is timing, so only which operation was denied is asserted.
        assert set(calls.denied) == {"GetObject"}
        assert calls.operations == {
            "GetQueueAttributes", "SendMessage", "SendMessageBatch", "PutObject",
            "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload",
            "AbortMultipartUpload", "DeleteObject", "GetObject",
        }  # fmt: skip
    (entry,) = [r for r in batch.successful if r.pointer is not None]
    assert entry.pointer is not None
    sent = {object_key(bucket, p.location) for p in (large, entry.pointer)}
    assert keys(moto_server, bucket, prefix) == sent  # the refused send's payload was removed
    uploads = moto_server.client("s3").list_multipart_uploads(Bucket=bucket, Prefix=prefix)
    assert not uploads.get("Uploads")


def test_a_content_addressed_publisher_writes_once_without_reading(
    moto_server: MotoServer, bucket: str
) -> None:
    """Its HeadObject (skip the upload if the object is there) needs s3:GetObject, which a
    publisher is not given: the 403 is taken for "not there", and S3's conditional write keeps
    the object written first."""
    prefix = unique("iam-addressed")
    url = f"s3://{bucket}/{prefix}"
    docs = documents(bucket, prefix)
    role = moto_server.role_with_policy(docs["publisher_identity_policy"])
    calls = Calls()
    publisher = calls.watch_store(offloader_as(moto_server, url, role, content_addressed=True))
    with moto_server.iam_enforced():
        first = publisher.store_payload(STORED)
        again = publisher.store_payload(STORED)
    assert again.location == first.location
    assert calls.made == [
        ("HeadObject", 403),
        ("PutObject", 200),
        ("HeadObject", 403),
        ("PutObject", 412),  # If-None-Match: the first write stays
    ]
    assert keys(moto_server, bucket, prefix) == {object_key(bucket, first.location)}


def _publish(moto: MotoServer, url: str, queue: str, payloads: list[str]) -> None:
    """Sent with the server's own credentials, before IAM is enforced."""
    admin = Offloader(url, storage_options=moto.storage_options())
    transport = SqsTransport(queue, admin, client=moto.client("sqs"))
    for payload in payloads:
        transport.send(payload)


def test_the_consumer_resolves_and_acknowledges_and_may_not_write_or_delete(
    moto_server: MotoServer, bucket: str, sqs: Any
) -> None:
    prefix = unique("iam-consumer")
    url = f"s3://{bucket}/{prefix}"
    with new_queue(sqs, "iam-consumer", MaximumMessageSize=LIMIT) as queue:
        docs = documents(bucket, prefix, queue=queue_arn(sqs, queue))
        _publish(moto_server, url, queue, ["small", STORED])
        stored = keys(moto_server, bucket, prefix)
        role = moto_server.role_with_policy(docs["subscriber_identity_policy"])
        calls = Calls()
        consumer = calls.watch_store(offloader_as(moto_server, url, role))
        client = calls.watch(moto_server.client("sqs", **role))
        transport = SqsTransport(queue, consumer, client=client)
        with moto_server.iam_enforced():
            messages = receive(transport, 2)
            assert sorted(m.payload().decode() for m in messages) == sorted(["small", STORED])
            messages[0].extend(60)
            assert transport.acknowledge(messages) == []
            assert not calls.denied, calls.made
            with pytest.raises(AccessDeniedError):
                consumer.store_payload(b"not mine to write")  # s3:PutObject is not granted
            (pointer,) = [m.pointer for m in messages if m.pointer is not None]
            key = consumer.store.key_for(pointer.location)
            assert key is not None
            with pytest.raises(AccessDeniedError):
                consumer.store.delete(key)  # nor s3:DeleteObject: other subscribers need it
        assert calls.denied == ["PutObject", "DeleteObject"]
        assert calls.operations == {
            "ReceiveMessage", "ChangeMessageVisibility", "DeleteMessageBatch", "GetObject",
            "PutObject", "DeleteObject",
        }  # fmt: skip
    assert keys(moto_server, bucket, prefix) == stored


def test_the_deleting_consumer_removes_payloads_it_acknowledged(
    moto_server: MotoServer, bucket: str, sqs: Any
) -> None:
    prefix = unique("iam-deleting")
    url = f"s3://{bucket}/{prefix}"
    with new_queue(sqs, "iam-deleting", MaximumMessageSize=LIMIT) as queue:
        docs = documents(bucket, prefix, queue=queue_arn(sqs, queue))
        _publish(moto_server, url, queue, [STORED, MULTIPART])
        assert len(keys(moto_server, bucket, prefix)) == 2
        role = moto_server.role_with_policy(docs["deleting_subscriber_identity_policy"])
        calls = Calls()
        consumer = calls.watch_store(offloader_as(moto_server, url, role))
        client = calls.watch(moto_server.client("sqs", **role))
        transport = SqsTransport(
            queue, consumer, client=client, delete_payload=True, max_message_size=262_144
        )
        with moto_server.iam_enforced():
            messages = receive(transport, 2)
            with messages[0].open() as stream:  # verified as it is read, to its end
                while stream.read(MiB):
                    pass
            assert messages[1].payload()
            assert transport.acknowledge(messages) == []
            assert not calls.denied, calls.made
            with pytest.raises(TransportError) as refused:
                transport.send("a reply")  # a consumer: sqs:SendMessage is not granted
            assert refused.value.operation == "SendMessage"
        assert calls.denied == ["SendMessage"]
        assert calls.operations == {
            "ReceiveMessage", "GetObject", "DeleteMessageBatch", "DeleteObject", "SendMessage",
        }  # fmt: skip
    assert keys(moto_server, bucket, prefix) == set()


# -- SNS ----------------------------------------------------------------------------------------


def test_the_publisher_publishes_through_sns_and_a_consumer_reads_the_fan_out(
    moto_server: MotoServer, bucket: str, sqs: Any, sns: Any, caplog: pytest.LogCaptureFixture
) -> None:
    prefix = unique("iam-sns")
    url = f"s3://{bucket}/{prefix}"
    with (
        topic(moto_server) as topic_arn,
        new_queue(sqs, "iam-fanout", MaximumMessageSize=LIMIT) as queue,
    ):
        subscribe(sns, sqs, topic_arn, queue, raw=True)
        docs = documents(bucket, prefix, topic=topic_arn, queue=queue_arn(sqs, queue))
        publisher_role = moto_server.role_with_policy(docs["publisher_identity_policy"])
        consumer_role = moto_server.role_with_policy(docs["subscriber_identity_policy"])
        calls = Calls()
        publisher = calls.watch_store(offloader_as(moto_server, url, publisher_role))
        client = calls.watch(moto_server.client("sns", **publisher_role))
        transport = SnsTransport(topic_arn, publisher, client=client)
        consumer = offloader_as(moto_server, url, consumer_role)
        consumer_sns = moto_server.client("sns", **consumer_role)
        reader = SqsTransport(queue, consumer, client=moto_server.client("sqs", **consumer_role))
        with moto_server.iam_enforced(), caplog.at_level(logging.WARNING):
            stored = transport.send(STORED).pointer
            batch = transport.publish_batch(["small", "tiny"])
            with pytest.raises(TransportError, match="Subject"):
                transport.send(STORED, request={"Subject": "s" * 101})  # SNS refuses it
            assert not calls.denied, calls.made
            # sns:GetTopicAttributes is granted: the topic's own limit was read, not assumed.
            assert not [r for r in caplog.records if "cannot read the attributes" in r.message]
            messages = receive(reader, 3)
            assert sorted(m.payload().decode() for m in messages) == sorted(
                ["small", STORED, "tiny"]
            )
            assert reader.acknowledge(messages) == []
            replying = SnsTransport(
                topic_arn, consumer, client=consumer_sns, max_message_size=262_144
            )
            with pytest.raises(TransportError) as refused:
                replying.send("a reply")  # a consumer: sns:Publish is not granted
            assert refused.value.operation == "Publish"
        assert calls.operations == {
            "GetTopicAttributes", "Publish", "PublishBatch", "PutObject", "DeleteObject"
        }  # fmt: skip
    assert stored is not None
    assert len(batch.successful) == 2
    assert keys(moto_server, bucket, prefix) == {object_key(bucket, stored.location)}


# -- EventBridge and Lambda ---------------------------------------------------------------------


def test_the_publisher_puts_events_and_a_lambda_role_reads_them_from_a_rule_target_queue(
    moto_server: MotoServer, bucket: str, sqs: Any
) -> None:
    prefix = unique("iam-events")
    url = f"s3://{bucket}/{prefix}"
    events = moto_server.client("events")
    bus = unique("iam-bus")
    bus_arn = str(events.create_event_bus(Name=bus)["EventBusArn"])
    try:
        with new_queue(sqs, "iam-events", MaximumMessageSize=LIMIT) as queue:
            route(events, sqs, bus, {"source": ["iam.test"]}, queue)
            docs = documents(bucket, prefix, event_bus=bus_arn, queue=queue_arn(sqs, queue))
            publisher_role = moto_server.role_with_policy(docs["publisher_identity_policy"])
            function_role = moto_server.role_with_policy(docs["lambda_execution_policy"])
            calls = Calls()
            publisher = calls.watch_store(
                offloader_as(moto_server, url, publisher_role, pointer_format="native")
            )
            client = calls.watch(moto_server.client("events", **publisher_role))
            transport = EventBridgeTransport(
                bus_arn, publisher, client=client, max_entry_size=LEGACY_MAX_ENTRY_SIZE
            )
            missing = EventBridgeTransport(
                f"{bus}-gone", publisher, client=client, max_entry_size=LEGACY_MAX_ENTRY_SIZE
            )
            function = offloader_as(moto_server, url, function_role)
            mapping = moto_server.client("sqs", **function_role)  # the event source mapping
            seen: list[bytes] = []

            @batch_handler(function)
            def handler(payload: bytes, record: Record) -> None:
                seen.append(payload)

            with moto_server.iam_enforced():
                stored = transport.send(STORED, source="iam.test", detail_type="order").pointer
                transport.send('{"small":true}', source="iam.test", detail_type="order")
                with pytest.raises(TransportError, match="does not exist"):
                    missing.send(STORED, source="iam.test", detail_type="order")
                assert not calls.denied, calls.made
                mapping.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])
                received = mapping.receive_message(
                    QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1
                )["Messages"]
                assert handler(sqs_event(received, mapping, queue), None) == {
                    "batchItemFailures": []
                }
                mapping.delete_message_batch(
                    QueueUrl=queue,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(received)
                    ],
                )
                assert stored is not None
                key = function.store.key_for(stored.location)
                assert key is not None
                with pytest.raises(AccessDeniedError):
                    function.store.delete(key)  # s3:DeleteObject is not granted
            assert sorted(seen) == sorted([STORED.encode(), b'{"small":true}'])
            assert calls.operations == {"PutEvents", "PutObject", "DeleteObject"}
        assert keys(moto_server, bucket, prefix) == {object_key(bucket, stored.location)}
    finally:
        events.delete_event_bus(Name=bus)
