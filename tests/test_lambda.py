"""Lambda consumers: the sample events in tests/events/ and the events moto delivers now, partial
batch failures with bad input, FIFO groups, fan-out, streams and spooling, and Powertools."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    SqsFifoPartialProcessor,
    process_partial_response,
)
from lambda_support import (
    EVENTS,
    LARGE,
    SAMPLES,
    SMALL,
    make_samples,
    receive,
    sample_offloader,
    sample_store,
    sqs_event,
    subscribe,
    with_a_bad_pointer,
)
from sqs_support import new_queue, offloader, stored, unique

from offload_core import Attribute, Plugins
from offload_core.errors import (
    ConfigurationError,
    DigestMismatchError,
    IntegrityError,
    LocationNotAllowedError,
    MissingDependencyError,
    PayloadNotFoundError,
    PointerError,
)
from offload_core.offloader import Offloader
from offload_core.testing.aws import MotoServer
from offload_transports.aws_lambda import (
    PowertoolsMetrics,
    Record,
    batch_handler,
    powertools_handler,
    process,
    records,
)
from offload_transports.sns import SnsTransport
from offload_transports.sqs import SqsTransport

KIB = 1024


@pytest.fixture(scope="module")
def samples_off(moto_server: MotoServer) -> Offloader:
    """A consumer of the sample events, with their large payload in place."""
    sample_store(moto_server)
    return sample_offloader(moto_server)


@pytest.fixture
def off(moto_server: MotoServer, bucket: str) -> Offloader:
    return offloader(moto_server, f"s3://{bucket}/{unique('lambda')}")


@pytest.fixture
def queue_url(sqs: Any) -> Iterator[str]:
    with new_queue(sqs, "lambda") as url:
        yield url


def sample(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


def collecting(off: Offloader) -> tuple[Any, list[bytes]]:
    """A Lambda handler that keeps every payload it is given."""
    seen: list[bytes] = []

    @batch_handler(off)
    def handler(payload: bytes, record: Record) -> None:
        seen.append(payload)

    return handler, seen


# -- the sample events, and the events moto delivers ----------------------------------------


def test_the_sample_files_are_the_documented_set() -> None:
    assert sorted(p.name for p in EVENTS.glob("*.json")) == sorted(SAMPLES)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sample_event_resolves_every_record(name: str, samples_off: Offloader) -> None:
    handler, seen = collecting(samples_off)
    assert handler(sample(name), None) == {"batchItemFailures": []}
    assert seen == [p.encode() for p in SAMPLES[name]]
    offloaded = [r.offloaded for r in records(sample(name), samples_off)]
    assert offloaded == [p == LARGE for p in SAMPLES[name]]


def test_events_as_moto_delivers_them_now_resolve_like_the_samples(
    moto_server: MotoServer, samples_off: Offloader
) -> None:
    for name, event in make_samples(moto_server).items():
        handler, seen = collecting(samples_off)
        assert handler(event, None) == {"batchItemFailures": []}, name
        assert seen == [p.encode() for p in SAMPLES[name]], name
        assert _shape(event) == _shape(sample(name)), name


def _shape(value: Any) -> Any:
    """The keys of a JSON value, all the way down, without the values."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items() if k != "messageAttributes"}
    if isinstance(value, list):
        return [_shape(v) for v in value[:1]]
    return None


def test_records_say_where_they_came_from(samples_off: Offloader) -> None:
    (sns,) = records(sample("sns-offloaded.json"), samples_off)
    assert (sns.source, sns.attributes, sns.event) == ("sns", {}, None)
    assert sns.pointer is not None
    assert sns.pointer.dialect == "aws"
    small, large = records(sample("sqs-eventbridge.json"), samples_off)
    assert small.source == "sqs"
    assert small.event is not None
    assert small.event["detail-type"] == "OrderPlaced"
    assert large.pointer is not None
    assert large.pointer.dialect == "eventbridge"
    assert large.json() == json.loads(LARGE)
    with pytest.raises(ConfigurationError, match="not supported"):
        records({"Records": [{"eventSource": "aws:kinesis"}]}, samples_off)
    with pytest.raises(ConfigurationError, match="not an SQS, SNS or EventBridge event"):
        records({"hello": "world"}, samples_off)


# -- failures ------------------------------------------------------------------------------


class Rejected(Exception):
    """An application error that says retrying cannot help."""

    retryable = False


def test_bad_records_fail_alone_and_say_whether_a_retry_can_help(
    moto_server: MotoServer, sqs: Any, queue_url: str, off: Offloader, bucket: str
) -> None:
    queue = SqsTransport(queue_url, off, client=sqs, max_message_size=256 * KIB)
    elsewhere = offloader(moto_server, f"s3://{bucket}/elsewhere")
    stranger = SqsTransport(queue_url, elsewhere, client=sqs, max_message_size=256 * KIB)
    large = "large order line\n" * 20_000
    attrs = {"kind": Attribute.string("order"), "blob": Attribute("Binary", b"\x00\x01")}
    s3 = moto_server.client("s3")

    def send_and_break(*, delete: bool) -> None:
        pointer = queue.send(large).pointer
        assert pointer is not None
        key = pointer.location.removeprefix(f"s3://{bucket}/")
        if delete:
            s3.delete_object(Bucket=bucket, Key=key)
        else:
            s3.put_object(Bucket=bucket, Key=key, Body=b"x" * len(large))

    sends = {
        "small": lambda: queue.send("small order", attributes=attrs),
        "large": lambda: queue.send(large),
        "malformed": lambda: sqs.send_message(
            QueueUrl=queue_url,
            MessageBody='["software.amazon.payloadoffloading.PayloadS3Pointer", {"s3Key": "k"}]',
            MessageAttributes={"ExtendedPayloadSize": {"DataType": "Number", "StringValue": "9"}},
        ),
        "missing": lambda: send_and_break(delete=True),
        "corrupt": lambda: send_and_break(delete=False),
        "elsewhere": lambda: stranger.send(large),
        "boom": lambda: queue.send("boom"),
        "reject": lambda: queue.send("reject"),
    }
    ids: dict[str, str] = {}
    messages: list[dict[str, Any]] = []
    for name, send in sends.items():  # consume as we produce
        send()
        (message,) = receive(sqs, queue_url, 1)
        ids[message["MessageId"]] = name
        messages.append(message)
    event = sqs_event(messages, sqs, queue_url)
    seen: dict[str, tuple[bytes, dict[str, Attribute]]] = {}

    def handle(payload: bytes, record: Record) -> None:
        if payload == b"boom":
            raise RuntimeError("the database is down")
        if payload == b"reject":
            raise Rejected("order 7 is not valid")
        seen[ids[record.id]] = (payload, record.attributes)

    outcome = process(event, handle, off)
    failed = {ids[f.item_identifier]: f for f in outcome.failures}
    assert seen == {"small": (b"small order", attrs), "large": (large.encode(), {})}
    kinds = {name: (type(f.error), f.permanent) for name, f in failed.items()}
    assert kinds == {
        "malformed": (PointerError, True),
        "missing": (PayloadNotFoundError, True),
        "corrupt": (DigestMismatchError, True),
        "elsewhere": (LocationNotAllowedError, True),
        "boom": (RuntimeError, False),
        "reject": (Rejected, True),
    }
    response = batch_handler(off)(handle)(event, None)
    assert sorted(ids[f["itemIdentifier"]] for f in response["batchItemFailures"]) == sorted(kinds)
    assert len(stored(off)) == 2  # the large payload and the corrupted one: nothing deleted


def test_a_record_whose_attribute_cannot_be_read_fails_alone(samples_off: Offloader) -> None:
    """An attribute as Lambda never delivers it (a binary value that is not base64) is neither
    dropped nor allowed to fail the batch: its record fails, for good, and the others go on."""
    good = {"messageId": "good", "eventSource": "aws:sqs", "body": "hello"}
    blob = {"dataType": "Binary", "binaryValue": "!!"}
    bad = {**good, "messageId": "bad", "messageAttributes": {"blob": blob}}
    seen: list[str] = []
    outcome = process(
        {"Records": [bad, good]}, lambda _, record: seen.append(record.id), samples_off
    )
    assert seen == ["good"]
    (failure,) = outcome.failures
    assert failure.item_identifier == "bad"
    assert isinstance(failure.error, ConfigurationError)
    assert "'blob'" in str(failure.error)
    assert failure.permanent


def test_fifo_group_stops_at_its_first_failure_and_other_groups_go_on(
    sqs: Any, off: Offloader
) -> None:
    with new_queue(sqs, "lambda-fifo", fifo=True, ContentBasedDeduplication="true") as url:
        queue = SqsTransport(url, off, client=sqs)
        order = [("a", "a1"), ("b", "b1"), ("a", "a2"), ("b", "b2"), ("a", "a3" * 100_000)]
        messages = []
        for group, body in order:
            queue.send(body, group_id=group)
            messages += receive(sqs, url, 1)
        event = sqs_event(messages, sqs, url)
    calls: list[str] = []

    def handle(payload: bytes, record: Record) -> None:
        calls.append(payload.decode()[:2])
        if payload == b"a2":
            raise RuntimeError("a2 cannot be processed yet")

    outcome = process(event, handle, off)
    assert calls == ["a1", "b1", "a2", "b2"]
    by_id = {r.id: r for r in outcome.records}
    failed = [(by_id[f.item_identifier].group_id, f.error is None) for f in outcome.failures]
    assert failed == [("a", False), ("a", True)]  # a2 failed; a3 was skipped, not tried
    assert not any(f.permanent for f in outcome.failures)


@pytest.mark.parametrize("name", ["sns-offloaded.json", "eventbridge-offloaded.json"])
def test_asynchronous_events_raise_the_failure(
    name: str, samples_off: Offloader, moto_server: MotoServer, bucket: str
) -> None:
    outsider = offloader(moto_server, f"s3://{bucket}/not-the-samples")
    handler, seen = collecting(outsider)
    with pytest.raises(LocationNotAllowedError):
        handler(sample(name), None)
    assert seen == []


# -- large payloads -------------------------------------------------------------------------


def test_stream_must_be_read_to_its_end(samples_off: Offloader) -> None:
    def read_all(stream: IO[bytes], record: Record) -> None:
        assert stream.read() in (SMALL.encode(), LARGE.encode())

    def read_some(stream: IO[bytes], record: Record) -> None:
        stream.read(10)

    event = sample("sqs.json")
    assert batch_handler(samples_off, payload="stream")(read_all)(event, None) == {
        "batchItemFailures": []
    }
    outcome = process(event, read_some, samples_off, payload="stream")
    (failure,) = outcome.failures
    assert failure.item_identifier == event["Records"][1]["messageId"]  # the offloaded one
    assert isinstance(failure.error, IntegrityError)
    assert failure.permanent is True


def test_spooled_payload_is_verified_before_the_function_runs(
    samples_off: Offloader, tmp_path: Path
) -> None:
    got: list[bytes] = []

    def handle(spooled: IO[bytes], record: Record) -> None:
        got.append(spooled.read())

    event = sample("sqs-eventbridge.json")
    assert batch_handler(samples_off, payload="spool")(handle)(event, None) == {
        "batchItemFailures": []
    }
    assert got == [SMALL.encode(), LARGE.encode()]
    (_, large) = records(event, samples_off)
    with large.spool(max_memory=64 * KIB, directory=str(tmp_path)) as spooled:
        assert spooled._rolled  # type: ignore[attr-defined]  # beyond max_memory: on disk
        assert spooled.read() == LARGE.encode()


def test_spooling_a_corrupt_payload_fails_before_the_function_runs(
    moto_server: MotoServer, sqs: Any, queue_url: str, off: Offloader, bucket: str
) -> None:
    sent = SqsTransport(queue_url, off, client=sqs, max_message_size=256 * KIB).send("c" * 300_000)
    assert sent.pointer is not None
    key = sent.pointer.location.removeprefix(f"s3://{bucket}/")
    moto_server.client("s3").put_object(Bucket=bucket, Key=key, Body=b"d" * 300_000)
    event = sqs_event(receive(sqs, queue_url, 1), sqs, queue_url)
    called: list[Record] = []
    outcome = process(event, lambda f, r: called.append(r), off, payload="spool")
    assert called == []
    assert isinstance(outcome.failures[0].error, DigestMismatchError)


# -- fan-out ---------------------------------------------------------------------------------


def test_fan_out_to_three_subscribers_each_resolves_and_none_deletes(
    moto_server: MotoServer, sqs: Any, off: Offloader
) -> None:
    sns = moto_server.client("sns")
    topic_arn = sns.create_topic(Name=unique("fan-out"))["TopicArn"]
    data = json.dumps({"lines": [f"line {i}" for i in range(30_000)]})
    try:
        with (
            new_queue(sqs, "fan-raw") as raw,
            new_queue(sqs, "fan-envelope") as enveloped,
            new_queue(sqs, "fan-ack") as acked,
        ):
            for url, is_raw in ((raw, True), (enveloped, False), (acked, True)):
                subscribe(sns, sqs, topic_arn, url, raw=is_raw)
            sent = SnsTransport(topic_arn, off, client=sns).send(data)
            assert sent.pointer is not None
            for url in (enveloped, raw):  # two Lambda functions, the last subscriber first
                handler, seen = collecting(off)
                event = sqs_event(receive(sqs, url, 1), sqs, url)
                assert handler(event, None) == {"batchItemFailures": []}
                assert seen == [data.encode()]
            queue = SqsTransport(acked, off, client=sqs, wait_seconds=1)
            (message,) = queue.receive(1)
            assert message.payload() == data.encode()
            message.ack()
            assert len(stored(off)) == 1
            assert off.read_pointer(sent.pointer) == data.encode()  # still there for retries
    finally:
        sns.delete_topic(TopicArn=topic_arn)


# -- aws-lambda-powertools -----------------------------------------------------------------


def test_powertools_batch_processor_reports_the_same_failures(
    samples_off: Offloader, moto_server: MotoServer, bucket: str
) -> None:
    event = with_a_bad_pointer(sample("sqs-sns-envelope.json"))
    seen: list[bytes] = []

    def handle(payload: bytes, record: Record) -> str:
        seen.append(payload)
        return record.id

    processor = BatchProcessor(event_type=EventType.SQS)
    response = process_partial_response(
        event=event, record_handler=powertools_handler(handle, samples_off), processor=processor
    )
    assert response == {"batchItemFailures": [{"itemIdentifier": "bad-pointer"}]}
    assert seen == [SMALL.encode(), LARGE.encode()]
    assert batch_handler(samples_off)(handle)(event, None) == response


def test_powertools_tracer_and_metrics_wrap_the_handler_and_get_offloads_numbers(
    samples_off: Offloader, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from aws_lambda_powertools import Metrics, Tracer

    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")  # no X-Ray daemon here
    tracer = Tracer(service="orders")
    metrics = Metrics(namespace="offload-test", service="orders")
    seen: list[bytes] = []

    @tracer.capture_lambda_handler
    @metrics.log_metrics(raise_on_empty_metrics=True)
    @batch_handler(samples_off)
    def handler(payload: bytes, record: Record) -> None:
        seen.append(payload)

    with PowertoolsMetrics(metrics).enable(samples_off.plugins):
        assert handler(sample("sqs.json"), None) == {"batchItemFailures": []}
    assert seen == [SMALL.encode(), LARGE.encode()]
    (line,) = [line for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    emf = json.loads(line)
    assert emf["OffloadPayloadsResolved"] == [1.0]
    assert emf["OffloadBytesResolved"] == [float(len(LARGE))]
    assert emf["OffloadResolveTime"][0] > 0
    assert "OffloadErrors" not in emf
    names = {m["Name"] for m in emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert names == {"OffloadPayloadsResolved", "OffloadBytesResolved", "OffloadResolveTime"}


def test_functions_of_three_arguments_get_the_lambda_context(samples_off: Offloader) -> None:
    context = object()
    seen: list[tuple[Any, Any]] = []

    def with_context(payload: bytes, record: Record, ctx: Any) -> None:
        seen.append((record.json_body, ctx))
        assert record.context is ctx

    event = sample("sqs.json")
    assert batch_handler(samples_off)(with_context)(event, context) == {"batchItemFailures": []}
    assert seen == [(json.loads(SMALL), context), (json.loads(LARGE), context)]

    seen.clear()
    processor = BatchProcessor(event_type=EventType.SQS)
    process_partial_response(
        event=event,
        record_handler=powertools_handler(with_context, samples_off),
        processor=processor,
        context=context,
    )
    assert seen == [(json.loads(SMALL), context), (json.loads(LARGE), context)]


def test_powertools_fifo_processor_skips_the_rest_of_a_failed_group(
    samples_off: Offloader,
) -> None:
    small, large = sample("sqs.json")["Records"]

    def in_group(record: dict[str, Any], group: str, message_id: str) -> dict[str, Any]:
        attributes = {**record["attributes"], "MessageGroupId": group}
        return {**record, "attributes": attributes, "messageId": message_id}

    broken = {**in_group(small, "a", "a2"), "body": '{"offload_pointer": 2}'}
    event = {
        "Records": [
            in_group(small, "a", "a1"),
            broken,
            in_group(large, "b", "b1"),
            in_group(large, "a", "a3"),
        ]
    }
    processor = SqsFifoPartialProcessor(skip_group_on_error=True)
    response = process_partial_response(
        event=event,
        record_handler=powertools_handler(lambda p, r: None, samples_off),
        processor=processor,
    )
    ours = batch_handler(samples_off)(lambda p, r: None)(event, None)
    assert (
        response
        == ours
        == {"batchItemFailures": [{"itemIdentifier": "a2"}, {"itemIdentifier": "a3"}]}
    )


# -- failures keep what can be read, and say whether a retry can help ------------------------


def test_a_missing_checksum_dependency_is_a_permanent_typed_failure(
    monkeypatch: pytest.MonkeyPatch, off: Offloader
) -> None:
    """Resolving a pointer whose checksum needs an extra that is not installed (simulated by
    hiding the installed ``xxhash`` module) fails the record permanently, naming the extra;
    a publisher asking for it fails at construction the same way."""
    pytest.importorskip("xxhash")
    publisher = Offloader(off.store, checksum="xxh3-128", mode="always", pointer_format="native")
    body = publisher.prepare(b"an order worth checking").body
    monkeypatch.setitem(sys.modules, "xxhash", None)
    consumer = Offloader(off.store, plugins=Plugins.from_entry_points(env={}))
    event = {"Records": [{"messageId": "m-1", "eventSource": "aws:sqs", "body": body}]}
    (failure,) = process(event, lambda payload, record: None, consumer).failures
    assert isinstance(failure.error, MissingDependencyError)
    assert failure.error.extra == "checksums"
    assert "pip install 'offload[checksums]'" in str(failure.error)
    assert failure.permanent
    with pytest.raises(MissingDependencyError, match=r"offload\[checksums\]"):
        Offloader(off.store, checksum="xxh3-128", plugins=Plugins.from_entry_points(env={}))


def test_a_bad_pointer_in_an_sns_envelope_keeps_the_publishers_attributes(
    samples_off: Offloader,
) -> None:
    """The record fails, and its attributes are the ones the publisher set on the topic, not
    the (empty) attributes of the queue message that carried the envelope."""
    envelope = {
        "Type": "Notification",
        "MessageId": "0e7d4f6e-8f6a-5c1b-9d3e-2a4b5c6d7e8f",
        "TopicArn": "arn:aws:sns:us-east-1:111122223333:orders",
        "Message": '["software.amazon.payloadoffloading.PayloadS3Pointer", {"s3Key": "k"}]',
        "MessageAttributes": {
            "ExtendedPayloadSize": {"Type": "Number", "Value": "9"},
            "tenant": {"Type": "String", "Value": "acme"},
            "blob": {"Type": "Binary", "Value": "AAE="},
        },
    }
    event = {
        "Records": [{"messageId": "m-1", "eventSource": "aws:sqs", "body": json.dumps(envelope)}]
    }
    (record,) = records(event, samples_off)
    assert isinstance(record.error, PointerError)
    assert record.attributes == {
        "tenant": Attribute.string("acme"),
        "blob": Attribute("Binary", b"\x00\x01"),
    }


def test_two_argument_functions_are_never_handed_the_context(samples_off: Offloader) -> None:
    """``*args`` wrappers and optional third parameters keep getting (payload, record)."""
    seen: list[Any] = []

    def handle(payload: bytes, record: Record) -> None:
        seen.append(len(payload))

    def wrapper(*args: Any, **kwargs: Any) -> None:  # without functools.wraps
        handle(*args, **kwargs)

    def with_option(payload: bytes, record: Record, retries: int = 3) -> None:
        seen.append(retries)

    event = sample("sqs.json")
    for fn in (wrapper, with_option):
        assert batch_handler(samples_off)(fn)(event, object()) == {"batchItemFailures": []}
    assert seen == [len(SMALL), len(LARGE), 3, 3]
