"""OpenTelemetry through the ``offload_otel`` plugin, read back with the SDK's in-memory
exporters: one trace from a publish to every consumer's verified read, the trace context in each
service's own channel, metrics that add up, nothing recorded when it is off, and observers that
cannot break delivery. Services are moto's, over HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from lambda_support import receive, route, sqs_event, subscribe
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqs_support import new_queue, offloader, unique

from offload_core import Attribute, default_plugins, hookimpl
from offload_core.errors import DigestMismatchError
from offload_core.offloader import Offloader
from offload_core.testing.aws import MotoServer
from offload_core.testing.transports import json_payload
from offload_otel import Telemetry
from offload_transports.aws_lambda import batch_handler
from offload_transports.eventbridge import LEGACY_MAX_ENTRY_SIZE, EventBridgeTransport
from offload_transports.sns import BatchEntry, SnsTransport
from offload_transports.sqs import SqsTransport

LARGE = json.dumps({"lines": [f"line {i:06d}" for i in range(30_000)]}, separators=(",", ":"))
LIMIT = 262_144
SMALL = json.dumps({"kind": "order", "id": 7}, separators=(",", ":"))


class Recorded:
    """The spans and metrics an enabled :class:`Telemetry` produced."""

    def __init__(self, propagator: str = "w3c") -> None:
        self.spans_out = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans_out))
        self.reader = InMemoryMetricReader()
        self.telemetry = Telemetry(
            tracer_provider=tracer_provider,
            meter_provider=MeterProvider(metric_readers=[self.reader]),
            propagator=propagator,  # type: ignore[arg-type]
        )

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        found = list(self.spans_out.get_finished_spans())
        return [s for s in found if name is None or s.name == name]

    def span(self, name: str) -> ReadableSpan:
        (found,) = self.spans(name)
        return found

    def metric(self, name: str) -> list[tuple[dict[str, Any], Any]]:
        """(attributes, value) of each data point of ``name``: sums for counters, the count of
        histograms."""
        data = self.reader.get_metrics_data()
        out: list[tuple[dict[str, Any], Any]] = []
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        for point in metric.data.data_points:
                            value = getattr(point, "value", None)
                            out.append((dict(point.attributes), value or point.count))
        return out

    def total(self, name: str, **where: Any) -> Any:
        return sum(
            value
            for attributes, value in self.metric(name)
            if all(attributes.get(k) == v for k, v in where.items())
        )


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    rec = Recorded()
    with rec.telemetry:
        yield rec


@pytest.fixture
def off(moto_server: MotoServer, bucket: str) -> Offloader:
    return offloader(moto_server, f"s3://{bucket}/{unique('otel')}", pointer_format="native")


def _parent(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent else None


def _linked(span: ReadableSpan) -> set[int]:
    return {link.context.span_id for link in span.links}


def test_one_trace_from_an_sns_publish_to_raw_enveloped_and_lambda_consumers(
    recorded: Recorded, off: Offloader, sns: Any, sqs: Any, topic_arn: str
) -> None:
    with new_queue(sqs, "otel-raw") as raw_url, new_queue(sqs, "otel-env") as env_url:
        subscribe(sns, sqs, topic_arn, raw_url, raw=True)
        subscribe(sns, sqs, topic_arn, env_url, raw=False)
        sent = SnsTransport(topic_arn, off, client=sns).send(LARGE, attributes={"kind": "order"})
        assert sent.pointer is not None

        publish = recorded.span(f"publish {topic_arn.rsplit(':', 1)[-1]}")
        trace_id = publish.context.trace_id
        assert publish.kind is SpanKind.PRODUCER
        assert publish.attributes is not None
        assert publish.attributes["messaging.system"] == "aws.sns"
        assert publish.attributes["messaging.operation.type"] == "send"
        assert publish.attributes["messaging.message.id"] == sent.message_id
        assert publish.attributes["offload.stored"] is True
        body = off.encode(sent.pointer).body
        assert publish.attributes["messaging.message.body.size"] == len(body)
        prepare, store = recorded.span("offload.prepare"), recorded.span("offload.store")
        send = recorded.span(f"send {topic_arn.rsplit(':', 1)[-1]}")
        assert _parent(prepare) == _parent(send) == publish.context.span_id
        assert _parent(store) == prepare.context.span_id
        assert store.attributes is not None
        assert store.attributes["offload.location"] == sent.pointer.location
        assert store.attributes["offload.payload.size"] == len(LARGE)
        assert store.attributes["offload.stored.size"] == sent.pointer.stored_size
        assert store.attributes["offload.codec"] == sent.pointer.codec
        assert store.attributes["offload.checksum"] == "sha256"
        assert store.attributes["offload.pointer.format"] == "native"
        assert send.kind is SpanKind.CLIENT
        recorded.spans_out.clear()

        # Raw delivery: the trace context arrived as the publisher's attribute.
        consumer = SqsTransport(raw_url, off, client=sqs, wait_seconds=1)
        (message,) = consumer.receive()
        assert "traceparent" in message.attributes
        assert message.payload() == LARGE.encode()
        message.ack()
        # Enveloped, to a Lambda function: the attribute is inside the SNS envelope.
        got: list[bytes] = []
        handler = batch_handler(off)(lambda payload, record: got.append(payload))
        assert handler(sqs_event(receive(sqs, env_url, 1), sqs, env_url)) == {
            "batchItemFailures": []
        }
        assert got == [LARGE.encode()]

    raw_name, env_name = raw_url.rsplit("/", 1)[-1], env_url.rsplit("/", 1)[-1]
    receive_span = recorded.span(f"receive {raw_name}")
    assert _linked(receive_span) == {publish.context.span_id}
    process = recorded.span(f"process {env_name}")
    assert process.kind is SpanKind.CONSUMER
    assert _linked(process) == {publish.context.span_id}
    assert process.attributes is not None
    assert process.attributes["messaging.system"] == "aws_sqs"
    resolves = recorded.spans("offload.resolve")
    assert len(resolves) == 2
    for resolve in resolves:
        assert resolve.attributes is not None
        assert resolve.attributes["offload.location"] == sent.pointer.location
        assert resolve.attributes["offload.payload.size"] == len(LARGE)
    by_parent = {_parent(r) for r in resolves}
    assert process.context.span_id in by_parent  # inside the function's processing
    assert publish.context.span_id in by_parent  # a pulled message continues the publish
    for name in ("offload.locate", "offload.read", "offload.verify"):
        assert {_parent(s) for s in recorded.spans(name)} <= {r.context.span_id for r in resolves}
    ack = recorded.span(f"ack {raw_name}")
    assert ack.attributes is not None
    assert ack.attributes["messaging.operation.type"] == "settle"
    assert ack.attributes["messaging.message.id"] == message.message_id
    assert _linked(ack) == {publish.context.span_id}
    # One trace: every consumer span that handled the message is in the publisher's.
    for span in [process, ack, *resolves, *recorded.spans("offload.verify")]:
        assert span.context.trace_id == trace_id


def test_sqs_carries_the_context_in_its_trace_header_not_in_an_attribute(
    recorded: Recorded, off: Offloader, sqs: Any
) -> None:
    ten = {f"a{i}": str(i) for i in range(10)}  # the whole attribute budget
    with new_queue(sqs, "otel-sqs") as url:
        queue = SqsTransport(url, off, client=sqs, wait_seconds=1, max_message_size=LIMIT)
        sent = queue.send(SMALL, attributes=ten)
        (raw,) = receive(sqs, url, 1)
        publish = recorded.span(f"publish {url.rsplit('/', 1)[-1]}")
        span_id = f"{publish.context.span_id:016x}"
        trace_id = f"{publish.context.trace_id:032x}"
        assert raw["Attributes"]["AWSTraceHeader"] == (
            f"Root=1-{trace_id[:8]}-{trace_id[8:]};Parent={span_id};Sampled=1"
        )
        assert set(raw["MessageAttributes"]) == set(ten)
        assert raw["MessageId"] == sent.message_id

        # A Lambda function reads the header from the record's system attributes.
        handler = batch_handler(off)(lambda payload, record: None)
        handler(sqs_event([raw], sqs, url))
        process = recorded.span(f"process {url.rsplit('/', 1)[-1]}")
        assert _linked(process) == {publish.context.span_id}
        assert process.context.trace_id == publish.context.trace_id


def test_a_batch_gives_each_entry_the_context_and_a_receive_links_them_all(
    recorded: Recorded, off: Offloader, sqs: Any
) -> None:
    requests: list[dict[str, Any]] = []
    sqs.meta.events.register(
        "provide-client-params.sqs.SendMessageBatch",
        lambda params, **_: requests.append(params),
    )
    with new_queue(sqs, "otel-batch") as url:
        queue = SqsTransport(url, off, client=sqs, wait_seconds=1, max_message_size=LIMIT)
        result = queue.send_batch([SMALL, LARGE, SMALL])
        assert len(result.successful) == 3
        publish = recorded.span(f"publish {url.rsplit('/', 1)[-1]}")
        assert publish.attributes is not None
        assert publish.attributes["messaging.batch.message_count"] == 3
        # moto drops a batch entry's system attributes; what boto3 sent SQS is checked here.
        (request,) = requests
        headers = {
            entry["MessageSystemAttributes"]["AWSTraceHeader"]["StringValue"]
            for entry in request["Entries"]
        }
        (header,) = headers
        assert f"Parent={publish.context.span_id:016x}" in header
        messages = queue.receive(10)
        assert len(messages) == 3
        for message in messages:
            message.payload()
        queue.acknowledge(messages)
    (receiving,) = recorded.spans(f"receive {url.rsplit('/', 1)[-1]}")
    assert receiving.links == ()  # moto delivered the batch without the header it was sent
    assert receiving.attributes is not None
    assert receiving.attributes["messaging.batch.message_count"] == 3
    assert recorded.total("offload.payloads.stored") == 1
    assert recorded.total("offload.payloads.resolved") == 1


def test_sns_counts_the_traceparent_attribute_and_drops_it_when_the_budget_is_spent(
    recorded: Recorded, off: Offloader, sns: Any, sqs: Any, topic_arn: str
) -> None:
    traceparent = (
        len("traceparent") + len("String") + len("00-" + "0" * 32 + "-" + "0" * 16 + "-01")
    )
    fits_alone = "x" * (262_144 - traceparent + 1)  # fits without the attribute, not with it
    with new_queue(sqs, "otel-budget") as url:
        subscribe(sns, sqs, topic_arn, url, raw=True)
        topic = SnsTransport(topic_arn, off, client=sns)
        assert topic.send(fits_alone).pointer is not None  # the attribute pushed it over
        nine = {f"a{i}": str(i) for i in range(9)}
        ten = {**nine, "a9": "9"}
        topic.send(SMALL, attributes=nine)
        topic.send(SMALL, attributes=ten)  # no room: sent without the context
        got = receive(sqs, url, 3)
    carried = sorted(len(m["MessageAttributes"]) for m in got)
    assert carried == [1, 10, 10]  # {traceparent}, nine + traceparent, ten


@contextmanager
def routed_bus(
    moto_server: MotoServer, sqs: Any, off: Offloader, **options: Any
) -> Iterator[tuple[EventBridgeTransport, str]]:
    """A bus whose events (source ``otel.test``) a rule sends to a fresh queue, a transport on
    it with 256 KiB entries, and the queue's URL."""
    events = moto_server.client("events")
    bus = unique("otel-bus")
    events.create_event_bus(Name=bus)
    try:
        with new_queue(sqs, "otel-eb") as url:
            route(events, sqs, bus, {"source": ["otel.test"]}, url)
            transport = EventBridgeTransport(
                bus,
                off,
                client=events,
                source="otel.test",
                detail_type="order",
                max_entry_size=LEGACY_MAX_ENTRY_SIZE,
                **options,
            )
            yield transport, url
    finally:
        events.delete_event_bus(Name=bus)


def test_eventbridge_carries_the_context_inside_the_event(
    recorded: Recorded, off: Offloader, sqs: Any, moto_server: MotoServer
) -> None:
    with routed_bus(moto_server, sqs, off, keep=["kind"]) as (transport, url):
        small = transport.send({"kind": "order", "id": 7})
        large = transport.send({"kind": "order", "lines": json.loads(LARGE)["lines"]})
        assert small.pointer is None
        assert large.pointer is not None
        delivered = receive(sqs, url, 2)
        got: list[Any] = []
        handler = batch_handler(off)(lambda payload, record: got.append(json.loads(payload)))
        handler(sqs_event(delivered, sqs, url))
    assert len(got) == 2
    details = [json.loads(m["Body"])["detail"] for m in delivered]
    for detail in details:
        assert set(detail["traceContext"]) == {"traceparent"}
    inline = next(d for d in details if "offload" not in d)
    assert inline["kind"] == "order"
    assert inline["id"] == 7
    publishes = recorded.spans(f"publish {transport.destination}")
    assert len(publishes) == 2
    processes = recorded.spans(f"process {url.rsplit('/', 1)[-1]}")
    assert sorted(next(iter(_linked(p))) for p in processes) == sorted(
        p.context.span_id for p in publishes
    )


def test_xray_propagation_on_request(off: Offloader, sns: Any, sqs: Any, topic_arn: str) -> None:
    recorded = Recorded(propagator="xray")
    with recorded.telemetry, new_queue(sqs, "otel-xray") as url:
        subscribe(sns, sqs, topic_arn, url, raw=True)
        SnsTransport(topic_arn, off, client=sns).send(SMALL)
        consumer = SqsTransport(url, off, client=sqs, wait_seconds=1, max_message_size=LIMIT)
        (message,) = consumer.receive()
        assert set(message.attributes) == {"X-Amzn-Trace-Id"}
        assert message.attributes["X-Amzn-Trace-Id"].value.startswith("Root=1-")
        message.payload()
        message.ack()
    publish = recorded.span(f"publish {topic_arn.rsplit(':', 1)[-1]}")
    resolve = recorded.span("offload.resolve")
    assert _linked(resolve) == {publish.context.span_id}
    assert resolve.context.trace_id == publish.context.trace_id


def test_metrics_add_up_to_what_was_sent_and_read(
    recorded: Recorded, off: Offloader, sqs: Any, moto_server: MotoServer
) -> None:
    payloads = [SMALL, LARGE, LARGE[:-3] + "]}", SMALL]
    with new_queue(sqs, "otel-metrics") as url:
        queue = SqsTransport(url, off, client=sqs, wait_seconds=1, max_message_size=LIMIT)
        sent = [queue.send(p) for p in payloads]
        pointers = [s.pointer for s in sent if s.pointer is not None]
        assert len(pointers) == 2
        # One stored payload is overwritten: its resolve fails the digest check.
        s3 = moto_server.client("s3")
        bucket, key = pointers[1].location.removeprefix("s3://").split("/", 1)
        s3.put_object(Bucket=bucket, Key=key, Body=b"x" * pointers[1].stored_size)
        messages = []
        while len(messages) < 4:
            messages += queue.receive(10)
        failed = 0
        for message in messages:
            try:
                message.payload()
            except DigestMismatchError:
                failed += 1
        queue.acknowledge(messages, force=True)
    assert failed == 1
    assert recorded.total("offload.payloads.stored") == 2
    assert recorded.total("offload.bytes.original") == sum(p.size or 0 for p in pointers)
    assert recorded.total("offload.bytes.stored") == sum(p.stored_size or 0 for p in pointers)
    assert recorded.total("offload.store.duration") == 2  # one measurement each
    assert recorded.total("offload.payloads.resolved") == 1
    assert recorded.total("offload.bytes.resolved") == pointers[0].size
    assert recorded.total("offload.resolve.duration") == 1
    ((labels, count),) = recorded.metric("offload.errors")
    assert count == 1
    assert labels["error.type"] == "DigestMismatchError"
    assert labels["offload.operation"] == "resolve"
    assert labels["offload.retryable"] is False
    assert labels["messaging.system"] == "aws_sqs"


def test_nothing_is_recorded_when_it_is_not_enabled(off: Offloader, sqs: Any) -> None:
    recorded = Recorded()  # providers and exporters, but never enabled
    with new_queue(sqs, "otel-off") as url:
        queue = SqsTransport(url, off, client=sqs, wait_seconds=1, max_message_size=LIMIT)
        queue.send(LARGE)
        (raw,) = receive(sqs, url, 1)
        assert "AWSTraceHeader" not in raw.get("Attributes", {})
        assert "MessageAttributes" not in raw
        with recorded.telemetry:
            pass  # on and off again
        queue.send(SMALL)
        (message,) = queue.receive()
        message.payload()
        message.ack()
    assert not default_plugins().observed
    assert recorded.spans() == []
    assert recorded.metric("offload.payloads.stored") == []


def test_importing_the_plugin_switches_nothing_on() -> None:
    code = (
        "import offload_otel, offload_core\n"
        "from offload_core import default_plugins\n"
        "plugins = default_plugins()\n"
        "print(plugins.observed, plugins.listens('offload_stored'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == ["False", "False"]


class Raising:
    """An observer that fails at every hook."""

    calls = 0

    def _fail(self, **_: Any) -> None:
        Raising.calls += 1
        raise RuntimeError("observer bug")

    @hookimpl
    def offload_started(self, operation: Any) -> None:
        self._fail()

    @hookimpl
    def offload_finished(self, operation: Any) -> None:
        self._fail()

    @hookimpl
    def offload_inject(self, operation: Any, carrier: dict[str, str]) -> None:
        carrier["traceparent"] = "garbage"
        self._fail()

    @hookimpl
    def offload_stored(self, event: Any) -> None:
        self._fail()

    @hookimpl
    def offload_resolved(self, event: Any) -> None:
        self._fail()

    @hookimpl
    def offload_sent(self, event: Any) -> None:
        self._fail()


def test_an_observer_that_raises_never_breaks_delivery(
    recorded: Recorded, off: Offloader, sqs: Any, caplog: pytest.LogCaptureFixture
) -> None:
    default_plugins().register(Raising(), name="raising")
    with new_queue(sqs, "otel-raising") as url:
        queue = SqsTransport(url, off, client=sqs, wait_seconds=1, max_message_size=LIMIT)
        sent = [queue.send(LARGE), queue.send(SMALL)]
        got = {}
        while len(got) < 2:
            for message in queue.receive():
                got[message.message_id] = message.payload()
                message.ack()
        with off.open(LARGE) as stream:  # not a pointer: read back as it is
            assert stream.read() == LARGE.encode()
    assert sorted(got.values()) == sorted([LARGE.encode(), SMALL.encode()])
    assert {s.message_id for s in sent} == set(got)
    assert Raising.calls > 10
    assert any("observer raising" in r.getMessage() for r in caplog.records)
    # The other observer still saw everything.
    assert len(recorded.spans("offload.resolve")) == 2
    assert recorded.total("offload.payloads.stored") == 1


def test_a_streamed_resolve_ends_its_span_when_verified(
    recorded: Recorded, off: Offloader, sqs: Any
) -> None:
    with new_queue(sqs, "otel-stream") as url:
        queue = SqsTransport(url, off, client=sqs, wait_seconds=1, max_message_size=LIMIT)
        queue.send(LARGE)
        (message,) = queue.receive()
        with message.open() as stream:
            assert not recorded.spans("offload.resolve")  # still reading
            while stream.read(65536):
                pass
        message.ack()
    resolve = recorded.span("offload.resolve")
    assert resolve.attributes is not None
    assert resolve.attributes["offload.verified"] is True
    assert resolve.attributes["messaging.message.id"] == message.message_id
    assert _parent(recorded.span("offload.verify")) == resolve.context.span_id
    assert recorded.total("offload.payloads.resolved") == 1


def test_batch_entries_of_sns_keep_their_own_attributes(
    recorded: Recorded, off: Offloader, sns: Any, sqs: Any, topic_arn: str
) -> None:
    with new_queue(sqs, "otel-sns-batch") as url:
        subscribe(sns, sqs, topic_arn, url, raw=True)
        topic = SnsTransport(topic_arn, off, client=sns)
        result = topic.send_batch([BatchEntry(SMALL, {"n": Attribute.number(i)}) for i in range(3)])
        assert len(result.successful) == 3
        consumer = SqsTransport(url, off, client=sqs, wait_seconds=1)
        got: list[Any] = []
        while len(got) < 3:
            got += consumer.receive(10)
        consumer.acknowledge(got, force=True)
    assert sorted(int(m.attributes["n"].value) for m in got) == [0, 1, 2]
    assert all("traceparent" in m.attributes for m in got)
    publish = recorded.span(f"publish {topic_arn.rsplit(':', 1)[-1]}")
    links = [link for s in recorded.spans(f"receive {url.rsplit('/', 1)[-1]}") for link in s.links]
    assert len(links) == 3  # a batch links every message it brought
    assert {link.context.span_id for link in links} == {publish.context.span_id}


def test_an_inline_event_the_context_would_push_over_the_limit_is_stored(
    off: Offloader, sqs: Any, moto_server: MotoServer
) -> None:
    with routed_bus(moto_server, sqs, off) as (transport, url):
        limits = transport.limits
        size = LEGACY_MAX_ENTRY_SIZE
        while limits.measure(json_payload(size), {}) > limits.max_size:
            size -= 1
        detail = json_payload(size)  # exactly fits, alone
        assert transport.send(detail).pointer is None
        with Recorded().telemetry:
            assert transport.send(detail).pointer is not None
        got: list[bytes] = []
        handler = batch_handler(off)(lambda payload, record: got.append(payload))
        handler(sqs_event(receive(sqs, url, 2), sqs, url))
    assert [json.loads(g) for g in got] == [json.loads(detail)] * 2


def test_switching_off_mid_read_still_ends_the_span(off: Offloader, sqs: Any) -> None:
    recorded = Recorded()
    recorded.telemetry.enable()
    with new_queue(sqs, "otel-off-mid") as url:
        queue = SqsTransport(url, off, client=sqs, wait_seconds=1, max_message_size=LIMIT)
        queue.send(LARGE)
        (message,) = queue.receive()
        stream = message.open()
        recorded.telemetry.disable()  # the stream's resolve step is under way
        with stream:
            while stream.read(65536):
                pass
        message.ack()
    (resolve,) = recorded.spans("offload.resolve")
    assert resolve.attributes is not None
    assert resolve.attributes["offload.verified"] is True
    assert trace.get_current_span() is trace.INVALID_SPAN  # nothing left attached
