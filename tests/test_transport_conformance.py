"""Every built-in transport passes the transport conformance suite, over the session's moto server.

SQS is received from the queue itself. SNS and EventBridge push, so what they deliver is read
from a queue subscribed to the topic (SNS envelope, the AWS default) or targeted by a rule on
the bus (the EventBridge event, whose detail is the payload). Failures are injected into the
transport's own boto3 client through botocore's events (:class:`s3_faults.Faults`): a refused
call never reaches moto; a call whose answer is lost reached it and acted.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from lambda_support import queue_arn, route, sqs_event, subscribe
from s3_faults import Faults
from sqs_support import new_queue, offloader, unique

from offload_core.delivery import Delivery
from offload_core.errors import ConfigurationError
from offload_core.message import Attribute
from offload_core.offloader import Offloader
from offload_core.testing.aws import MotoServer
from offload_core.testing.transports import Fault, TransportConformance
from offload_transports.aws_lambda import records
from offload_transports.eventbridge import LEGACY_MAX_ENTRY_SIZE, BusOptions, EventBridgeTransport
from offload_transports.sns import SnsTransport
from offload_transports.sqs import SqsTransport, to_boto_attributes

NO_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1})
#: Queues that receive what a topic or bus delivers take a whole 1 MiB message and envelope.
BIG_QUEUE = {"MaximumMessageSize": "1048576"}
SOURCE, DETAIL_TYPE = "offload.conformance", "Payload"
TOPIC = "arn:aws:sns:us-east-1:123456789012:by-name"
#: The suite's bus: the older entry limit, and the suite's source and detail type.
BUS: BusOptions = {
    "max_entry_size": LEGACY_MAX_ENTRY_SIZE,
    "source": SOURCE,
    "detail_type": DETAIL_TYPE,
}


def faulting(client: Any, operations: Sequence[str]) -> Callable[[Fault], Any]:
    """``fault(kind)`` for the suite: the next call of ``operations`` is refused before it
    is sent, or its answer is lost after the service acted."""
    faults = Faults()
    faults.attach(client)

    @contextlib.contextmanager
    def inject(kind: Fault) -> Iterator[None]:
        for operation in operations:
            if kind == "refused":
                faults.inject(operation, lambda: EndpointConnectionError(endpoint_url="moto"))
            else:
                faults.inject(operation, lambda: ReadTimeoutError(endpoint_url="moto"), after=True)
        try:
            yield
        finally:
            faults.clear()

    return inject


@contextlib.contextmanager
def topic_to(client: Any, sqs: Any, queue: str) -> Iterator[str]:
    """A fresh topic whose messages reach ``queue`` in their SNS envelope; deleted after."""
    topic = client.create_topic(Name=unique("conformance"))["TopicArn"]
    subscribe(client, sqs, topic, queue, raw=False)
    try:
        yield topic
    finally:
        client.delete_topic(TopicArn=topic)


@contextlib.contextmanager
def bus_to(client: Any, sqs: Any, queue: str) -> Iterator[str]:
    """A fresh event bus whose rule sends the suite's events to ``queue``; deleted after."""
    bus = unique("conformance")
    client.create_event_bus(Name=bus)
    route(client, sqs, bus, {"source": [SOURCE]}, queue)
    try:
        yield bus
    finally:
        for rule in client.list_rules(EventBusName=bus)["Rules"]:
            client.remove_targets(Rule=rule["Name"], EventBusName=bus, Ids=["queue"])
            client.delete_rule(Name=rule["Name"], EventBusName=bus)
        client.delete_event_bus(Name=bus)


@pytest.fixture
def s3_offloader(moto_server: MotoServer, bucket: str) -> Offloader:
    return offloader(moto_server, f"s3://{bucket}/{unique('conformance')}")


class TestSqsTransport(TransportConformance):
    @pytest.fixture
    def offloader(self, s3_offloader: Offloader) -> Offloader:
        return s3_offloader

    @pytest.fixture
    def client(self, moto_server: MotoServer) -> Any:
        return moto_server.client("sqs", config=NO_RETRIES)

    @pytest.fixture
    def transport(self, offloader: Offloader, client: Any) -> Iterator[SqsTransport]:
        with new_queue(client, "conformance") as url:
            yield SqsTransport(url, offloader, client=client, wait_seconds=1)

    @pytest.fixture
    def send_raw(self, transport: SqsTransport, client: Any) -> Callable[..., None]:
        def send(body: str, attributes: Mapping[str, Attribute]) -> None:
            client.send_message(
                QueueUrl=transport.queue_url,
                MessageBody=body,
                MessageAttributes=to_boto_attributes(attributes),
            )

        return send

    @pytest.fixture
    def fault(self, client: Any) -> Callable[[Fault], Any]:
        return faulting(client, ["SendMessage", "SendMessageBatch"])


class TestSnsTransport(TransportConformance):
    @pytest.fixture
    def offloader(self, s3_offloader: Offloader) -> Offloader:
        return s3_offloader

    @pytest.fixture
    def client(self, moto_server: MotoServer) -> Any:
        return moto_server.client("sns", config=NO_RETRIES)

    @pytest.fixture
    def subscribed(self, sqs: Any) -> Iterator[str]:
        with new_queue(sqs, "on-topic", **BIG_QUEUE) as url:
            yield url

    @pytest.fixture
    def transport(
        self, offloader: Offloader, client: Any, sqs: Any, subscribed: str
    ) -> Iterator[SnsTransport]:
        with topic_to(client, sqs, subscribed) as topic:
            yield SnsTransport(topic, offloader, client=client)

    @pytest.fixture
    def receive(
        self, offloader: Offloader, sqs: Any, subscribed: str
    ) -> Callable[[int], list[Any]]:
        queue = SqsTransport(subscribed, offloader, client=sqs, wait_seconds=1)
        return lambda n: list(queue.receive(n))

    @pytest.fixture
    def send_raw(self, transport: SnsTransport, client: Any) -> Callable[..., None]:
        def send(body: str, attributes: Mapping[str, Attribute]) -> None:
            client.publish(
                TopicArn=transport.topic_arn,
                Message=body,
                MessageAttributes=to_boto_attributes(attributes),
            )

        return send

    @pytest.fixture
    def fault(self, client: Any) -> Callable[[Fault], Any]:
        return faulting(client, ["Publish", "PublishBatch"])


class TestEventBridgeTransport(TransportConformance):
    """Details go through EventBridge as JSON, which AWS re-serialises: compared parsed."""

    exact_bytes = False

    @pytest.fixture
    def offloader(self, moto_server: MotoServer, bucket: str) -> Offloader:
        url = f"s3://{bucket}/{unique('conformance')}"
        return offloader(moto_server, url, pointer_format="native")

    @pytest.fixture
    def client(self, moto_server: MotoServer) -> Any:
        return moto_server.client("events", config=NO_RETRIES)

    @pytest.fixture
    def target(self, sqs: Any) -> Iterator[str]:
        with new_queue(sqs, "on-bus", **BIG_QUEUE) as url:
            yield url

    @pytest.fixture
    def transport(
        self, offloader: Offloader, client: Any, sqs: Any, target: str
    ) -> Iterator[EventBridgeTransport]:
        with bus_to(client, sqs, target) as bus:
            yield EventBridgeTransport(bus, offloader, client=client, **BUS)

    @pytest.fixture
    def receive(self, offloader: Offloader, sqs: Any, target: str) -> Callable[[int], list[Any]]:
        """What the rule's queue got, read as a Lambda function reads it: the detail."""
        assert queue_arn(sqs, target)

        def receive(n: int) -> list[Delivery]:
            response = sqs.receive_message(
                QueueUrl=target, MaxNumberOfMessages=n, WaitTimeSeconds=1
            )
            messages = response.get("Messages", [])
            for message in messages:
                sqs.delete_message(QueueUrl=target, ReceiptHandle=message["ReceiptHandle"])
            return list(records(sqs_event(messages, sqs, target), offloader)) if messages else []

        return receive

    @pytest.fixture
    def send_raw(self, transport: EventBridgeTransport, client: Any) -> Callable[..., None]:
        def send(body: str, attributes: Mapping[str, Attribute]) -> None:
            entry = {"Source": SOURCE, "DetailType": DETAIL_TYPE, "Detail": body}
            client.put_events(Entries=[{**entry, "EventBusName": transport.destination}])

        return send

    @pytest.fixture
    def fault(self, client: Any) -> Callable[[Fault], Any]:
        return faulting(client, ["PutEvents"])


def test_every_built_in_transport_is_opened_by_name(
    moto_server: MotoServer, s3_offloader: Offloader, sqs: Any
) -> None:
    from offload_core import Plugins

    plugins = Plugins.from_entry_points(env={})
    native = Offloader(s3_offloader.store, pointer_format="native")
    with new_queue(sqs, "by-name") as url:
        opened = {
            "sqs": plugins.open_transport("sqs", url, s3_offloader, client=sqs),
            "sns": plugins.open_transport("sns", TOPIC, native, client=moto_server.client("sns")),
            "eventbridge": plugins.open_transport(
                "eventbridge", None, native, client=moto_server.client("events")
            ),
        }
        with pytest.raises(ConfigurationError, match="does not take these options"):
            plugins.open_transport("sqs", url, s3_offloader, client=sqs, colour="red")
    assert {name: type(t).__name__ for name, t in opened.items()} == {
        "sqs": "SqsTransport",
        "sns": "SnsTransport",
        "eventbridge": "EventBridgeTransport",
    }
    assert [t.destination for t in opened.values()] == [url, TOPIC, "default"]
