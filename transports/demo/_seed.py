"""The seed architecture on an embedded AWS (moto): three applications in three accounts.

- Application A (account A) publishes through an SNS topic and an EventBridge bus; payloads
  that do not fit go to a central S3 bucket that A owns.
- Application B (account B) reads two SQS queues subscribed to the topic: one in the topic's
  region with raw delivery (scenario 1), one in another region with SNS envelopes (scenario 2).
- Application C (account C) is a Lambda function subscribed to the topic and, through a rule
  that forwards A's events to C's bus, to the events.

Each application signs in with credentials from STS AssumeRole into its account, and uses only
offload's public API: ``Offloader("s3://bucket/prefix", storage_options=...)`` and the built-in
transports, found through the plugin registry.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from offload_core.offloader import Offloader
from offload_core.plugins import default_plugins
from offload_core.pointer import Pointer
from offload_core.testing.aws import MotoServer

from ..policies import access_policies
from ._apps import Function, Queue, QueueApp, Trigger
from ._flow import Consumer, conclude, kept_check, message_row, refusal_row, tabulate
from ._moto import embedded_server, lambda_sns_event, link_subscriptions, moto_version
from ._payloads import ROUTING, MiB, Payload, Progress, tiers
from ._report import Account, Check, Report, Resource, Row, Table, setup_lines

__all__ = ["ACCOUNTS", "FAR", "HOME", "run_demo"]

#: The account of each application, and the role it assumes there.
ACCOUNTS = {"A": "111111111111", "B": "222222222222", "C": "333333333333"}
_ROLES = {"A": "app-a-publisher", "B": "app-b-sqs-consumer", "C": "app-c-lambda-function"}
#: The region of A's bucket, topic and bus, and of B's second queue.
HOME, FAR = "us-east-1", "eu-west-1"
_PREFIX = "payloads"
_SOURCE = "offload.demo"
_DETAIL_TYPE = "OrderBatch"


def run_demo(
    big_size: int = 200 * MiB,
    *,
    progress: Progress | None = None,
    echo: Callable[[str], None] | None = None,
    server: MotoServer | None = None,
) -> Report:
    """Set up the three accounts on a moto server (``server``, else an embedded one that stops
    on return), publish JSON and binary payloads up to ``big_size`` bytes through SNS and
    EventBridge, and have B and C resolve and verify each. ``echo`` gets the report as text,
    line by line as the run goes; ``progress`` draws long transfers."""
    say = echo or (lambda line: None)
    with embedded_server(server) as moto:
        seed = _Seed(moto, progress, uuid.uuid4().hex[:8], big_size)
        say(f"offload demo: the seed architecture on moto {moto_version()} at {moto.endpoint}")
        seed.set_up()
        for line in setup_lines(seed.report):
            say(line)
        table = Table(seed.payloads, ["SNS", "EventBridge"], seed.consumer_labels)
        tabulate(seed.report, table, seed.rows(), say)
        seed.finish()
        conclude(seed.report, say)
        return seed.report


class _Seed:
    """The three applications and their resources on one moto server."""

    def __init__(
        self, server: MotoServer, progress: Progress | None, suffix: str, big_size: int
    ) -> None:
        self.server = server
        self.progress = progress
        self.suffix = suffix
        self.report = Report("offload demo: the seed architecture")
        self.credentials = {
            label: server.assume_role(account, _ROLES[label], "offload-demo")
            for label, account in ACCOUNTS.items()
        }
        self.bucket = f"offload-demo-{suffix}"
        self.private_bucket = f"offload-demo-b-private-{suffix}"
        self.store_url = f"s3://{self.bucket}/{_PREFIX}"
        self.topic_arn = ""
        self.bus = f"orders-{suffix}"
        self.c_bus = f"from-a-{suffix}"
        sizes = tiers(big_size)
        self.sns_payloads = [Payload(kind, size) for size in sizes for kind in ("JSON", "binary")]
        self.bus_payloads = [Payload("JSON", size) for size in sizes]
        self.payloads = self.sns_payloads + self.bus_payloads
        self.consumer_labels = [f"B {HOME}", f"B {FAR}", "C Lambda"]
        self._pointers: list[Pointer] = []
        self._subscriptions: dict[str, str] = {}

    def client(self, label: str, service: str, region: str = HOME) -> Any:
        """A boto3 client acting as ``label``'s account."""
        return self.server.client(service, region=region, **self.credentials[label])

    def offloader(self, label: str, **options: Any) -> Offloader:
        """``label``'s view of the central store, with its own credentials."""
        storage = self.server.storage_options(region=HOME, credentials=self.credentials[label])
        # moto reads the whole object for every ranged GET: one stream per payload is far
        # cheaper there (a store without this option ignores it). And it assembles a multipart
        # upload in memory before it answers: tens of seconds at 2 GiB, past s3fs's 15 s.
        storage["read_concurrency"] = 1
        storage["config_kwargs"] = {"read_timeout": 300}
        return Offloader(self.store_url, storage_options=storage, **options)

    def _queue(self, label: str, region: str, name: str) -> Queue:
        sqs = self.client(label, "sqs", region)
        url: str = sqs.create_queue(QueueName=f"{name}-{self.suffix}")["QueueUrl"]
        answer = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return Queue(sqs, url, str(answer["Attributes"]["QueueArn"]))

    # -- setting up --------------------------------------------------------------------------

    def set_up(self) -> None:
        for label, role in (
            ("A", "publisher: SNS topic, EventBridge bus, central bucket"),
            ("B", "consumer of two SQS queues, in two regions"),
            ("C", "Lambda function on the topic and the events"),
        ):
            identity = self.client(label, "sts").get_caller_identity()
            self.report.accounts.append(Account(label, identity["Account"], identity["Arn"], role))
        self.client("A", "s3").create_bucket(Bucket=self.bucket)
        topic = self.client("A", "sns").create_topic(Name=f"orders-{self.suffix}")
        self.topic_arn = str(topic["TopicArn"])
        bus_arn = self.client("A", "events").create_event_bus(Name=self.bus)["EventBusArn"]
        self.b_home = self._queue("B", HOME, "orders")
        self.b_far = self._queue("B", FAR, "orders")
        self.c_topic = self._queue("C", HOME, "lambda-sns")
        self.c_events = self._queue("C", HOME, "lambda-events")
        c_bus_arn = self.client("C", "events").create_event_bus(Name=self.c_bus)["EventBusArn"]
        self._apply_policies()
        self._subscribe()
        self._route(c_bus_arn)
        self._describe(bus_arn, c_bus_arn)
        self._check_setup()
        s3 = self.client("B", "s3")  # a bucket of B's own: what the forged pointer aims at
        s3.create_bucket(Bucket=self.private_bucket)
        s3.put_object(Bucket=self.private_bucket, Key="secrets.json", Body=b'{"password":"b"}')

    def _apply_policies(self) -> None:
        """The resource policies that grant B and C access, as ``offload policy`` prints them."""
        a, b, c = ACCOUNTS.values()
        common = {"publisher": a, "bucket": self.bucket, "prefix": _PREFIX, "topic": self.topic_arn}
        docs = access_policies(subscribers=[b, c], **common)
        bucket_policy = docs["bucket_policy"]
        # moto applies a bucket policy's Deny statements to every request, reading neither
        # Principal nor Condition: "deny unless TLS" would deny all on this plain-HTTP endpoint.
        kept = [s for s in bucket_policy["Statement"] if not _conditional_deny(s)]
        left_out = [s["Sid"] for s in bucket_policy["Statement"] if _conditional_deny(s)]
        self.client("A", "s3").put_bucket_policy(
            Bucket=self.bucket, Policy=json.dumps({**bucket_policy, "Statement": kept})
        )
        if left_out:
            self.report.notes.append(
                f"moto {moto_version()} applies a bucket policy's Deny statements to every "
                "request, ignoring their Principal and Condition. The bucket policy above leaves "
                f"out {', '.join(left_out)} (deny requests not made over TLS), which would deny "
                "every request to this plain-HTTP endpoint; on AWS, keep it ('offload policy' "
                "prints it)."
            )
        self.client("A", "sns").set_topic_attributes(
            TopicArn=self.topic_arn,
            AttributeName="Policy",
            AttributeValue=json.dumps(docs["topic_policy"]),
        )
        for queue in (self.b_home, self.b_far):
            policy = access_policies(subscribers=[b], queue=queue.arn, **common)
            queue.sqs.set_queue_attributes(
                QueueUrl=queue.url, Attributes={"Policy": json.dumps(policy["queue_policy"])}
            )
        self.client("C", "events").put_permission(
            EventBusName=self.c_bus,
            Action="events:PutEvents",
            Principal=a,
            StatementId="PublisherForwardsEvents",
        )

    def _subscribe(self) -> None:
        """B and C subscribe from their own accounts, in the topic's region as SNS requires."""
        for account, label, queue, raw in (
            ("B", f"B {HOME}", self.b_home, True),
            ("B", f"B {FAR}", self.b_far, False),
            ("C", "C Lambda", self.c_topic, False),
        ):
            response = self.client(account, "sns").subscribe(
                TopicArn=self.topic_arn,
                Protocol="sqs",
                Endpoint=queue.arn,
                Attributes={"RawMessageDelivery": str(raw).lower()},
                ReturnSubscriptionArn=True,
            )
            self._subscriptions[label] = str(response["SubscriptionArn"])
        if set(self._subscriptions.values()) <= self._topic_subscriptions():
            return
        gap = (
            f"moto {moto_version()} delivers a topic's messages only to subscriptions made from "
            "the topic's own account. B and C subscribed from their own accounts, as AWS "
            "recommends (no confirmation step), so "
        )
        try:
            linked = link_subscriptions(self.topic_arn, [ACCOUNTS["B"], ACCOUNTS["C"]])
        except (ImportError, AttributeError, KeyError, TypeError) as exc:
            # moto's internals moved: the subscriptions check and the rows report the failure.
            self.report.notes.append(f"{gap}the demo tried to link them and could not: {exc!r}")
            return
        self.report.notes.append(
            f"{gap}the demo adds their {len(linked)} subscriptions to A's topic inside the "
            "embedded server; moto's SNS then delivers to their queues itself."
        )

    def _topic_subscriptions(self) -> set[str]:
        """The subscriptions of the topic, as its owner lists them."""
        sns = self.client("A", "sns")
        listed = sns.list_subscriptions_by_topic(TopicArn=self.topic_arn)["Subscriptions"]
        return {str(s["SubscriptionArn"]) for s in listed}

    def _route(self, c_bus_arn: str) -> None:
        """A's rule forwards acme's events to C's bus; C's rule hands them to C's function."""
        pattern = json.dumps({"source": [_SOURCE], "detail": {"tenant": [ROUTING["tenant"]]}})
        for label, bus, rule, target in (
            ("A", self.bus, "to-account-c", c_bus_arn),
            ("C", self.c_bus, "to-function", self.c_events.arn),
        ):
            events = self.client(label, "events")
            events.put_rule(Name=rule, EventBusName=bus, EventPattern=pattern)
            events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": rule, "Arn": target}])

    def _describe(self, bus_arn: str, c_bus_arn: str) -> None:
        """The resources, each with the policy moto returns for it."""
        s3, sns = self.client("A", "s3"), self.client("A", "sns")
        topic = sns.get_topic_attributes(TopicArn=self.topic_arn)["Attributes"]
        c_bus = self.client("C", "events").describe_event_bus(Name=self.c_bus)
        resources = [
            Resource(
                "bucket",
                self.store_url,
                "A",
                HOME,
                "the central payload store",
                _document(s3.get_bucket_policy(Bucket=self.bucket)["Policy"]),
            ),
            Resource("topic", self.topic_arn, "A", HOME, "", _document(topic["Policy"])),
            Resource("bus", bus_arn, "A", HOME, f"a rule forwards {_SOURCE} events to C's bus"),
        ]
        for queue, note in (
            (self.b_home, "subscribed to the topic with raw delivery (scenario 1)"),
            (self.b_far, "subscribed to the topic, SNS envelopes (scenario 2: another region)"),
        ):
            policy = queue.sqs.get_queue_attributes(QueueUrl=queue.url, AttributeNames=["Policy"])
            document = _document(policy["Attributes"]["Policy"])
            resources.append(Resource("queue", queue.arn, "B", queue.region, note, document))
        resources += [
            Resource(
                "bus",
                c_bus_arn,
                "C",
                HOME,
                "a rule invokes C's function",
                _document(c_bus["Policy"]),
            ),
            Resource(
                "queue", self.c_topic.arn, "C", HOME, "stands in for C's function's SNS trigger"
            ),
            Resource(
                "queue", self.c_events.arn, "C", HOME, "stands in for C's function as rule target"
            ),
        ]
        self.report.resources += resources

    def _check_setup(self) -> None:
        """What moto says about the accounts and regions, and who owns the bucket."""
        ids = {a.label: a.account_id for a in self.report.accounts}
        placed = {(r.kind, *r.placement) for r in self.report.resources if r.placement}
        wanted = {
            ("topic", HOME, ACCOUNTS["A"]),
            ("bus", HOME, ACCOUNTS["A"]),
            ("queue", HOME, ACCOUNTS["B"]),
            ("queue", FAR, ACCOUNTS["B"]),
            ("bus", HOME, ACCOUNTS["C"]),
        }
        owners = {label: self.bucket in self._buckets(label) for label in ACCOUNTS}
        listed = self._topic_subscriptions()
        self.report.checks += [
            Check(
                "accounts",
                ids == ACCOUNTS,
                ", ".join(f"{k} is {v}" for k, v in ids.items())
                + " (sts:GetCallerIdentity with each application's credentials)",
            ),
            Check(
                "accounts and regions",
                wanted <= placed,
                f"the topic and bus are A's, B's queues are in B's account in {HOME} and {FAR}, "
                "C's bus in C's (the ARNs moto returned)",
            ),
            Check(
                "bucket owner",
                owners == {"A": True, "B": False, "C": False},
                f"{self.bucket} is among A's buckets only; B and C read it across accounts",
            ),
            Check(
                "subscriptions",
                set(self._subscriptions.values()) <= listed,
                f"A's topic lists {len(listed)} subscriptions, made from B's and C's accounts",
            ),
        ]

    def _buckets(self, label: str) -> set[str]:
        """The buckets ``label``'s account owns, as S3 lists them."""
        return {b["Name"] for b in self.client(label, "s3").list_buckets()["Buckets"]}

    # -- the messages ------------------------------------------------------------------------

    def rows(self) -> Iterator[Row]:
        """Publish every payload, then the forged pointer; a row for each, as each finishes."""
        plugins = default_plugins()
        sns = self.client("A", "sns")
        binary = self.offloader("A", pointer_format="native")
        topics = {
            "JSON": plugins.open_transport("sns", self.topic_arn, self.offloader("A"), client=sns),
            "binary": plugins.open_transport("sns", self.topic_arn, binary, client=sns),
        }
        bus: Any = plugins.open_transport(  # an EventBridge transport: sends take routing=
            "eventbridge",
            self.bus,
            self.offloader("A", compression="zstd"),
            client=self.client("A", "events"),
            keep=list(ROUTING),
            source=_SOURCE,
            detail_type=_DETAIL_TYPE,
        )
        sqs_transport = plugins.get("transport", "sqs")
        function = Function(self.offloader("C"), self.progress)
        on_topic: list[Consumer] = [
            QueueApp(
                label,
                sqs_transport(queue.url, self.offloader("B"), client=queue.sqs),
                self.progress,
            )
            for label, queue in ((f"B {HOME}", self.b_home), (f"B {FAR}", self.b_far))
        ]
        on_topic.append(Trigger("C Lambda", function, self.c_topic, self._sns_event))
        on_bus: list[Consumer] = [Trigger("C Lambda", function, self.c_events, json.loads)]
        for payload in self.sns_payloads:
            topic = topics[payload.kind]

            def publish(chunks: Iterator[bytes], p: Payload = payload, t: Any = topic) -> Any:
                return self._kept(t.send(chunks, content_type=p.content_type))

            fmt = topic.offloader.pointer_format
            yield message_row("SNS", payload, publish, fmt, on_topic, self.progress)
        for payload in self.bus_payloads:

            def put(chunks: Iterator[bytes], p: Payload = payload) -> Any:
                sent = bus.send(chunks, routing=ROUTING, content_type=p.content_type)
                return self._kept(sent)

            fmt = bus.offloader.pointer_format
            yield message_row("EventBridge", payload, put, fmt, on_bus, self.progress)
        yield self._forged(topics["JSON"].offloader, sns, on_topic)

    def _kept(self, result: Any) -> Pointer | None:
        """The pointer of a send's result, remembered to check at the end that it was kept."""
        pointer: Pointer | None = result.pointer
        if pointer is not None:
            self._pointers.append(pointer)
        return pointer

    def _sns_event(self, body: str) -> dict[str, Any]:
        return lambda_sns_event(json.loads(body), self._subscriptions["C Lambda"])

    def _forged(self, offloader: Offloader, sns: Any, consumers: Sequence[Consumer]) -> Row:
        """A pointer to B's own private bucket, as anyone allowed to publish to the topic could
        send it: every subscriber must refuse it before reading anything."""
        encoded = offloader.encode(Pointer(f"s3://{self.private_bucket}/secrets.json", size=16))

        def publish() -> object:
            return sns.publish(
                TopicArn=self.topic_arn,
                Message=encoded.body,
                MessageAttributes={
                    name: {"DataType": a.data_type, "StringValue": str(a.value)}
                    for name, a in encoded.attributes.items()
                },
            )

        return refusal_row("SNS", offloader.pointer_format, publish, consumers)

    # -- after the messages ------------------------------------------------------------------

    def finish(self) -> None:
        self.report.checks.append(kept_check(self.offloader("A").store, self._pointers))
        self.report.notes += [
            f"moto {moto_version()} stores the topic, queue and event bus policies above but does "
            "not evaluate them, and allows every account by default: B and C reach A's topic and "
            "bucket here whether or not the policies grant it. On AWS the policies are what "
            "grants that access ('offload policy' prints them for your accounts).",
            "moto runs Lambda functions only in Docker: C's function runs in this process, called "
            "with the events Lambda would deliver: an SNS event built from each notification "
            "moto delivered to a queue of C's, and each EventBridge event that C's rule "
            "delivered to another queue of C's.",
            "moto keeps a whole object in memory while it completes a multipart upload and while "
            "it serves it (about 4-5 times the largest payload, in this process); offload itself "
            "streams every payload in bounded memory.",
        ]


def _conditional_deny(statement: Mapping[str, Any]) -> bool:
    return statement.get("Effect") == "Deny" and bool(statement.get("Condition"))


def _document(policy: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(policy)
    return document
