"""Detection: pointers in any dialect found, inline payloads left alone, SNS envelopes unwrapped."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping

import pytest
from sample_messages import EXPECTED, FORMATS, KEY, load_sample, sample_names

from offload_core.detect import MAX_POINTER_BYTES, detect, unwrap_sns
from offload_core.errors import PointerError
from offload_core.message import Attribute
from offload_core.pointer import EncodedPointer, Pointer

AWS_BODY = load_sample("aws-java")[0]
NATIVE_BODY = load_sample("native")[0]
BIG = MAX_POINTER_BYTES + 1


@pytest.mark.parametrize("name", sample_names())
def test_detect_reads_every_sample(name: str) -> None:
    body, attributes = load_sample(name)
    assert detect(body, attributes, FORMATS) == EXPECTED[name]


def test_detect_reads_utf8_bytes() -> None:
    body, attributes = load_sample("aws-java")
    assert detect(body.encode(), attributes, FORMATS) == EXPECTED["aws-java"]


INLINE = {
    "text": "hello, world",
    "empty": "",
    "json number": "42",
    "json object": '{"order": 42, "lines": [1, 2, 3]}',
    "duplicate keys": '{"a": 1, "a": 2}',
    "NaN": '{"price": NaN, "qty": Infinity}',
    "deep nesting": "[" * 5000 + "]" * 5000,
    "deep nesting mentioning a pointer": '{"a":' * 50 + '{"offload_pointer":1}' + "}" * 50,
    "huge int": '{"n": ' + "9" * 5000 + "}",
    "pointer nested in a payload": json.dumps({"log": [json.loads(NATIVE_BODY)]}),
    "pointer text in a string": json.dumps({"note": AWS_BODY}),
    "unterminated": '{"offload": "pointer',
    "lookalike without marker": '{"s3BucketName": "app-data", "s3Key": "reports/2026.csv"}',
    "big JSON": json.dumps({"data": "x" * BIG}),
    "big JSON with NaN": '{"a": NaN, "data": "' + "x" * BIG + '"}',
    "big JSON mentioning a pointer later": json.dumps({"data": "x" * 100, "p": NATIVE_BODY * 400}),
    "big text": "y" * (4 * BIG),
}


@pytest.mark.parametrize("body", INLINE.values(), ids=INLINE.keys())
def test_inline_payloads_are_not_pointers(body: str) -> None:
    assert detect(body, {"tenant": Attribute("String", "acme")}, FORMATS) is None
    assert detect(body.encode(), {}, FORMATS) is None


def test_non_utf8_bytes_are_inline() -> None:
    assert detect(b"\xff\xfe\x00binary", {}, FORMATS) is None


def test_body_of_exactly_the_limit_is_still_parsed() -> None:
    body = AWS_BODY[:-1] + " " * (MAX_POINTER_BYTES - len(AWS_BODY)) + "]"
    assert len(body.encode()) == MAX_POINTER_BYTES
    assert detect(body, {}, FORMATS) == Pointer(f"s3://my-bucket/{KEY}", dialect="aws")
    with pytest.raises(PointerError, match="oversized"):
        detect(body + " ", {}, FORMATS)


def test_limit_counts_utf8_bytes_not_characters() -> None:
    body = AWS_BODY[:-1] + ',"é' + "é" * (MAX_POINTER_BYTES // 2) + '"]'
    assert len(body) < MAX_POINTER_BYTES < len(body.encode())
    with pytest.raises(PointerError, match="oversized"):
        detect(body, {}, FORMATS)


OVERSIZED = {
    "aws": AWS_BODY[:-1] + " " * BIG + "]",
    "aws legacy class, spaced": ' [ "com.amazon.sqs.javamessaging.MessageS3Pointer" ,' + " " * BIG,
    "native": '{"offload_pointer":1,"location":"s3://b-1/' + "k" * BIG + '","size":1}',
    "sns-sqs-big-payload": '{ "S3Payload" : {"Bucket":"b-1","Key":"' + "k" * BIG + '"}}',
    "bbc": '{"s3Payload":{"bucket":"b-1","key":"' + "k" * BIG + '"}}',
}


@pytest.mark.parametrize("body", OVERSIZED.values(), ids=OVERSIZED.keys())
def test_oversized_pointer_is_an_error(body: str) -> None:
    with pytest.raises(PointerError, match="oversized pointer"):
        detect(body, {}, FORMATS)


@pytest.mark.parametrize(
    "marker", ["ExtendedPayloadSize", "SQSLargePayloadSize", "S3MessageBodyKey"]
)
@pytest.mark.parametrize(
    "body",
    ["hello", '{"s3BucketName": "my-bucket", "s3Key": "k", "extra": 1}', "x" * BIG, b"\xff"],
    ids=["text", "json", "oversized", "not utf-8"],
)
def test_marker_attribute_on_a_body_no_format_reads_is_an_error(
    marker: str, body: str | bytes
) -> None:
    with pytest.raises(PointerError, match=marker):
        detect(body, {marker: Attribute("Number", "5")}, FORMATS)


def test_markers_of_formats_not_in_use_are_ignored() -> None:
    attributes = {"ExtendedPayloadSize": Attribute("Number", "5")}
    assert detect("hello", attributes, [FORMATS[0]]) is None


def test_first_format_that_recognises_the_message_wins() -> None:
    class Everything:
        name = "everything"
        writable = False

        def encode(self, pointer: Pointer) -> EncodedPointer:
            raise NotImplementedError

        def decode(self, body: str, attributes: Mapping[str, Attribute]) -> Pointer | None:
            return Pointer("memory://all/one", dialect=self.name)

    first = detect(NATIVE_BODY, {}, [Everything(), *FORMATS])
    last = detect(NATIVE_BODY, {}, [*FORMATS, Everything()])
    assert first is not None
    assert first.dialect == "everything"
    assert last == EXPECTED["native"]


# -- SNS envelopes --------------------------------------------------------------------------


def envelope(message: str, attributes: dict[str, dict[str, str]], **fields: str) -> str:
    return json.dumps(
        {
            "Type": "Notification",
            "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:orders",
            "Message": message,
            "MessageAttributes": attributes,
            **fields,
        }
    )


def test_unwrap_sns_returns_the_message_and_envelope_attributes() -> None:
    body, _ = load_sample("sns-aws")
    transport = {"tenant": Attribute("String", "acme")}
    assert unwrap_sns(body, transport) == (
        AWS_BODY,
        {"ExtendedPayloadSize": Attribute("Number", "859754")},
    )


def test_unwrap_sns_decodes_binary_attributes_and_drops_malformed_ones() -> None:
    attributes = {
        "blob": {"Type": "Binary", "Value": base64.b64encode(b"\x00\x01").decode()},
        "bad blob": {"Type": "Binary", "Value": "not base64!"},
        "tags": {"Type": "String.Array", "Value": '["a","b"]'},
        "no value": {"Type": "String"},
    }
    _, unwrapped = unwrap_sns(envelope("m", attributes), {})
    assert unwrapped == {
        "blob": Attribute("Binary", b"\x00\x01"),
        "tags": Attribute("String.Array", '["a","b"]'),
    }


@pytest.mark.parametrize(
    "body",
    [
        "hello",
        NATIVE_BODY,
        envelope("m", {}, Type="SubscriptionConfirmation"),
        envelope("m", {}).replace('"Message": "m"', '"Message": 5'),
        envelope("m", {}).replace('"Type"', '"Type": "Notification", "Type"', 1),
        '{"Type": "Notification", "TopicArn": "arn", "Message": "m"',
    ],
    ids=["text", "pointer", "not a notification", "message not text", "duplicate key", "broken"],
)
def test_unwrap_sns_leaves_other_bodies_alone(body: str) -> None:
    transport = {"tenant": Attribute("String", "acme")}
    assert unwrap_sns(body, transport) == (body, transport)


def test_detect_unwraps_sns_around_any_dialect() -> None:
    body = envelope(
        '{"S3Key":"6f1b2c0e9d8a4f3b8c7d6e5f4a3b2c1d","S3BucketName":"dotnet-payloads"}',
        {"SQSLargePayloadSize": {"Type": "Number", "Value": "300000"}},
    )
    assert detect(body, {}, FORMATS) == EXPECTED["dotnet"]


def test_envelope_attributes_replace_the_transport_ones() -> None:
    body = envelope("hello", {})
    assert detect(body, {"ExtendedPayloadSize": Attribute("Number", "5")}, FORMATS) is None


def test_malformed_pointer_inside_sns_is_an_error() -> None:
    body = envelope('{"offload_pointer":1,"location":"s3://b-1/k","size":NaN}', {})
    with pytest.raises(PointerError, match="NaN"):
        detect(body, {}, FORMATS)
