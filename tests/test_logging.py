"""What offload logs: nothing at INFO or above while messages flow, one line per failed
delivery naming the message, the location and the check that failed, and never payload bytes
or signing keys, at any level (DEBUG included). Real SQS and S3 on moto."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import uuid
from typing import Any

import pytest
from lambda_support import receive, sqs_event
from sqs_support import new_queue, unique

from offload_core.errors import OffloadError
from offload_core.offloader import Offloader
from offload_core.signing import HmacSigner
from offload_core.testing.aws import MotoServer
from offload_transports.aws_lambda import batch_handler
from offload_transports.sqs import SqsMessage, SqsTransport

LIMIT = 262_144
OURS = ("offload_core", "offload_transports", "offload_backends", "offload_otel")
MARKER = f"PAYLOAD-MARKER-{uuid.uuid4().hex}"
SECRET = uuid.uuid4().bytes + uuid.uuid4().bytes


def _ours(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.split(".")[0] in OURS]


def _texts(records: list[logging.LogRecord]) -> list[str]:
    formatter = logging.Formatter()
    return [formatter.format(r) for r in records]


def _never_secret(records: list[logging.LogRecord]) -> None:
    forbidden = [
        MARKER,
        SECRET.hex(),
        base64.b64encode(SECRET).decode(),
        SECRET.decode("latin-1"),
        repr(SECRET)[2:-1],
    ]
    for text in _texts(records):
        for secret in forbidden:
            assert secret not in text


@pytest.fixture
def off(moto_server: MotoServer, bucket: str) -> Offloader:
    return Offloader(
        f"s3://{bucket}/{unique('logs')}",
        storage_options=moto_server.storage_options(),
        pointer_format="native",
        sign_with=HmacSigner("logs-key", SECRET),
        require_signatures=True,
    )


def _payload(n: int) -> str:
    return json.dumps({"secret": MARKER, "lines": [MARKER] * n}, separators=(",", ":"))


def test_the_hot_path_logs_nothing_at_info_and_never_a_payload_byte(
    off: Offloader, sqs: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with new_queue(sqs, "logs-ok") as url:
        queue = SqsTransport(url, off, client=sqs, wait_seconds=1, max_message_size=LIMIT)
        queue.send(_payload(20_000))
        queue.send(_payload(1))
        got = []
        while len(got) < 2:
            for message in queue.receive():
                got.append(message.payload())
                message.ack()
    assert all(MARKER.encode() in payload for payload in got)
    records = _ours(caplog)
    assert [r for r in records if r.levelno >= logging.INFO] == []
    _never_secret(records)


def test_each_failed_delivery_is_one_line_with_its_message_location_and_check(
    off: Offloader, sqs: Any, moto_server: MotoServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    s3 = moto_server.client("s3")
    with new_queue(sqs, "logs-bad") as url:
        queue = SqsTransport(url, off, client=sqs, wait_seconds=1, max_message_size=LIMIT)
        corrupt, gone, signed = (queue.send(_payload(20_000)) for _ in range(3))
        for result, change in ((corrupt, "overwrite"), (gone, "delete")):
            assert result.pointer is not None
            bucket, key = result.pointer.location.removeprefix("s3://").split("/", 1)
            if change == "overwrite":
                s3.put_object(Bucket=bucket, Key=key, Body=b"y" * 1000)
            else:
                s3.delete_object(Bucket=bucket, Key=key)
        assert signed.pointer is not None
        body = json.loads(off.encode(signed.pointer).body)
        forged = sqs.send_message(
            QueueUrl=url, MessageBody=json.dumps({**body, "location": "s3://elsewhere/k"})
        )
        expected = {
            corrupt.message_id: ("size", corrupt.pointer),
            gone.message_id: ("exists", gone.pointer),
            forged["MessageId"]: ("signature:bad-signature", None),
        }
        messages: list[SqsMessage] = []
        while len(messages) < 4:
            messages += queue.receive()
        caplog.clear()
        for message in messages:
            with contextlib.suppress(Exception):
                message.payload()
        queue.acknowledge(messages, force=True)

        records = [r for r in _ours(caplog) if r.levelno >= logging.INFO]
        assert len(records) == len(expected)  # the good one logs nothing
        for record in records:
            text = record.getMessage()
            (message_id,) = [m for m in expected if m in text]
            check, pointer = expected.pop(message_id)
            assert f"{check} check failed" in text
            location = pointer.location if pointer else "s3://elsewhere/k"
            assert location in text
        _never_secret(_ours(caplog))

        # The same failures in a Lambda function: still one line each.
        bad = [corrupt, gone]
        for result in bad:
            queue.client.send_message(
                QueueUrl=url,
                MessageBody=off.encode(result.pointer).body,  # type: ignore[arg-type]
            )
        event = sqs_event(receive(sqs, url, 2), sqs, url)
        caplog.clear()
        response = batch_handler(off)(lambda payload, record: None)(event)
        assert len(response["batchItemFailures"]) == 2
        records = [r for r in _ours(caplog) if r.levelno >= logging.INFO]
        assert len(records) == 2
        ids = {r["messageId"] for r in event["Records"]}
        assert {next(i for i in ids if i in r.getMessage()) for r in records} == ids
        _never_secret(_ours(caplog))


def test_a_sender_cannot_forge_log_lines(
    off: Offloader, sqs: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A location is the sender's text; S3 keys may hold line breaks."""
    caplog.set_level(logging.DEBUG)
    key = "k\nWARNING offload: all payloads verified\r"
    body = json.dumps(
        [
            "software.amazon.payloadoffloading.PayloadS3Pointer",
            {"s3BucketName": "bucket-b", "s3Key": key},
        ]
    )
    attributes = {"ExtendedPayloadSize": {"DataType": "Number", "StringValue": "5"}}
    with new_queue(sqs, "logs-forge") as url:
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=attributes)
        queue = SqsTransport(url, off, client=sqs, wait_seconds=1, max_message_size=LIMIT)
        (message,) = queue.receive()
        with pytest.raises(OffloadError):  # unsigned, and outside the store: never read
            message.payload()
    (record,) = [r for r in _ours(caplog) if r.levelno >= logging.WARNING]
    text = record.getMessage()
    assert "\n" not in text
    assert "\r" not in text
    assert "k\\nWARNING offload" in text
