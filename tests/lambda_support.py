"""Lambda events built from what a moto server really delivered, and the sample events.

Lambda's event source mapping turns SQS messages into records (:func:`sqs_event`); an SNS
notification, as an SQS subscription without raw delivery receives it, is the ``Sns`` object of
an SNS record (:func:`sns_event`); an EventBridge event, as an SQS rule target receives it, is
the event a function gets directly. ``python tests/lambda_support.py`` rewrites tests/events/.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sqs_support import new_queue, unique

from offload_core.offloader import KeyRequest, Offloader
from offload_core.testing.aws import MotoServer
from offload_transports.eventbridge import LEGACY_MAX_ENTRY_SIZE, EventBridgeTransport
from offload_transports.sns import SnsTransport
from offload_transports.sqs import SqsTransport

EVENTS = Path(__file__).parent / "events"
SAMPLE_BUCKET = "offload-sample-events"
SAMPLE_KEY = "samples/large.json"
#: The payloads of the sample events: one travels inline, one is stored (over 256 KiB).
SMALL = json.dumps({"type": "order", "tenant": "acme", "id": 1}, separators=(",", ":"))
LARGE = json.dumps(
    {"type": "order", "tenant": "acme", "lines": [f"line {i:06d}" for i in range(20_000)]},
    separators=(",", ":"),
)
#: Sample file name -> the payloads its records carry, in order.
SAMPLES = {
    "sqs.json": [SMALL, LARGE],
    "sqs-sns-envelope.json": [SMALL, LARGE],
    "sns-small.json": [SMALL],
    "sns-offloaded.json": [LARGE],
    "eventbridge-small.json": [SMALL],
    "eventbridge-offloaded.json": [LARGE],
    "sqs-eventbridge.json": [SMALL, LARGE],
}


def queue_arn(sqs: Any, url: str) -> str:
    response = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(response["Attributes"]["QueueArn"])


def subscribe(sns: Any, sqs: Any, topic_arn: str, url: str, *, raw: bool) -> None:
    sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=queue_arn(sqs, url),
        Attributes={"RawMessageDelivery": str(raw).lower()},
    )


def route(events: Any, sqs: Any, bus: str, pattern: Mapping[str, Any], url: str) -> None:
    """A rule on ``bus`` matching ``pattern``, with the queue as its target."""
    rule = unique("rule")
    events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps(pattern))
    events.put_targets(
        Rule=rule, EventBusName=bus, Targets=[{"Id": "queue", "Arn": queue_arn(sqs, url)}]
    )


def receive(sqs: Any, url: str, count: int) -> list[dict[str, Any]]:
    """Exactly ``count`` messages (deleted as they come)."""
    got: list[dict[str, Any]] = []
    for _ in range(count + 2):
        if len(got) >= count:
            break
        response = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(10, count - len(got)),
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
            WaitTimeSeconds=1,
        )
        messages = response.get("Messages", [])
        if messages:
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ],
            )
        got += messages
    assert len(got) == count, f"expected {count} messages, got {len(got)}"
    return got


def delivered(sqs: Any, url: str, send: Callable[[str], object]) -> list[dict[str, Any]]:
    """What the queue receives for :data:`SMALL`, then :data:`LARGE`, each sent by ``send``."""
    out: list[dict[str, Any]] = []
    for payload in (SMALL, LARGE):
        send(payload)
        out += receive(sqs, url, 1)
    return out


def _lambda_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"stringListValues": [], "binaryListValues": []}
    if "BinaryValue" in value:
        out["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
    else:
        out["stringValue"] = value["StringValue"]
    out["dataType"] = value["DataType"]
    return out


def sqs_event(messages: list[dict[str, Any]], sqs: Any, url: str) -> dict[str, Any]:
    """The SQS event Lambda delivers for messages a queue gave out."""
    arn = queue_arn(sqs, url)
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {
                    name: _lambda_attribute(value)
                    for name, value in m.get("MessageAttributes", {}).items()
                },
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": arn.split(":")[3],
            }
            for m in messages
        ]
    }


def sns_event(envelope: Mapping[str, Any]) -> dict[str, Any]:
    """The SNS event Lambda delivers for a notification (Lambda spells two URL keys its way)."""
    renamed = {"SigningCertURL": "SigningCertUrl", "UnsubscribeURL": "UnsubscribeUrl"}
    sns = {renamed.get(k, k): v for k, v in envelope.items()}
    sns.setdefault("Subject", None)
    sns.setdefault("MessageAttributes", {})
    subscription = f"{envelope['TopicArn']}:{envelope['MessageId']}"
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": subscription,
                "Sns": sns,
            }
        ]
    }


def sample_offloader(moto: MotoServer, *, native: bool = False) -> Offloader:
    """Stores every payload at :data:`SAMPLE_KEY`, so the sample events all point there."""

    def fixed(request: KeyRequest) -> str:
        return SAMPLE_KEY

    return Offloader(
        f"s3://{SAMPLE_BUCKET}",
        storage_options=moto.storage_options(),
        key_naming=fixed,
        pointer_format="native" if native else None,
    )


def sample_store(moto: MotoServer) -> Offloader:
    """The sample bucket with the large payload at :data:`SAMPLE_KEY`."""
    s3 = moto.client("s3")
    if SAMPLE_BUCKET not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=SAMPLE_BUCKET)
    off = sample_offloader(moto)
    off.store_payload(LARGE)
    return off


def make_samples(moto: MotoServer) -> dict[str, dict[str, Any]]:
    """Every sample event, published through offload and delivered by moto."""
    sample_store(moto)
    sqs, sns, events = moto.client("sqs"), moto.client("sns"), moto.client("events")
    samples: dict[str, dict[str, Any]] = {}
    with new_queue(sqs, "sample-sqs") as url:
        queue = SqsTransport(url, sample_offloader(moto), client=sqs, max_message_size=262_144)
        samples["sqs.json"] = sqs_event(delivered(sqs, url, queue.send), sqs, url)
    topic_arn = sns.create_topic(Name=unique("sample"))["TopicArn"]
    try:
        with new_queue(sqs, "sample-sns") as url:
            subscribe(sns, sqs, topic_arn, url, raw=False)
            topic = SnsTransport(topic_arn, sample_offloader(moto), client=sns)
            messages = delivered(sqs, url, topic.send)
            samples["sqs-sns-envelope.json"] = sqs_event(messages, sqs, url)
            for name, message in zip(
                ("sns-small.json", "sns-offloaded.json"), messages, strict=True
            ):
                samples[name] = sns_event(json.loads(message["Body"]))
    finally:
        sns.delete_topic(TopicArn=topic_arn)
    bus = unique("sample-bus")
    events.create_event_bus(Name=bus)
    try:
        with new_queue(sqs, "sample-events") as url:
            route(events, sqs, bus, {"detail": {"type": ["order"]}}, url)
            transport = EventBridgeTransport(
                bus,
                sample_offloader(moto, native=True),
                client=events,
                keep=["type", "tenant"],
                max_entry_size=LEGACY_MAX_ENTRY_SIZE,
            )
            messages = delivered(
                sqs,
                url,
                lambda detail: transport.send(
                    detail, source="shop.orders", detail_type="OrderPlaced"
                ),
            )
            samples["sqs-eventbridge.json"] = sqs_event(messages, sqs, url)
            names = ("eventbridge-small.json", "eventbridge-offloaded.json")
            for name, message in zip(names, messages, strict=True):
                samples[name] = json.loads(message["Body"])
    finally:
        for rule in events.list_rules(EventBusName=bus)["Rules"]:
            targets = events.list_targets_by_rule(Rule=rule["Name"], EventBusName=bus)["Targets"]
            events.remove_targets(
                Rule=rule["Name"], EventBusName=bus, Ids=[t["Id"] for t in targets]
            )
            events.delete_rule(Name=rule["Name"], EventBusName=bus)
        events.delete_event_bus(Name=bus)
    assert set(samples) == set(SAMPLES)
    return samples


if __name__ == "__main__":
    with MotoServer() as server:
        for file_name, sample in make_samples(server).items():
            (EVENTS / file_name).write_text(json.dumps(sample, indent=2) + "\n")
            print(file_name, file=sys.stderr)


def with_a_bad_pointer(event: Mapping[str, Any]) -> dict[str, Any]:
    """``event`` with one more SQS record, ``bad-pointer``, whose pointer has an unknown
    version: a permanent failure of that record alone."""
    bad = {
        **event["Records"][0],
        "messageId": "bad-pointer",
        "body": '{"offload_pointer": 99, "location": "s3://b/k", "size": 1}',
    }
    return {"Records": [*event["Records"], bad]}
