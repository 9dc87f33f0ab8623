"""The AWS kit (``offload_core.aws``) on its own: botocore's errors, ARNs, AWS message JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest

from offload_core.aws.arn import is_mrap_arn, is_region, parse_arn, region_of
from offload_core.aws.errors import (
    BucketNotFoundError,
    is_transient,
    outcome_unknown,
    service_error,
    storage_error,
    translated,
)
from offload_core.aws.events import document_messages, event_messages
from offload_core.errors import (
    AccessDeniedError,
    ConfigurationError,
    PayloadNotFoundError,
    TransientStorageError,
    TransportError,
)
from offload_core.message import Attribute

MRAP = "arn:aws:s3::123456789012:accesspoint/mfzwi23gnjvgw.mrap"


class ClientError(Exception):
    """Shaped like botocore's: ``response`` holds the parsed error."""

    def __init__(self, code: str, status: int, message: str = "it failed") -> None:
        super().__init__(code)
        self.response = {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }


class ReadTimeoutError(Exception):
    """Named like botocore's: the request went out, the answer never came."""


ReadTimeoutError.__module__ = "botocore.exceptions"


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status"),
    [("SlowDown", 503), ("ThrottlingException", 400), ("KmsThrottled", 400), ("Odd", 429)],
)
def test_one_table_says_what_is_worth_retrying(code: str, status: int) -> None:
    assert is_transient(code, status)
    assert not is_transient("AccessDenied", 403)


def test_the_answer_is_found_behind_the_error_that_wraps_it() -> None:
    wrapped = OSError("s3fs says no")
    wrapped.__cause__ = ClientError("NoSuchBucket", 404)
    error = service_error(wrapped)
    assert error is not None
    assert (error.code, error.status) == ("NoSuchBucket", 404)
    assert isinstance(storage_error(wrapped, "s3://b/k"), BucketNotFoundError)
    assert service_error(ValueError("no answer")) is None


def test_sdk_failures_without_an_answer_and_what_is_not_aws() -> None:
    """A network failure is worth retrying; anything else is left to the store's own
    translation (the fsspec store's tests map S3's answers through the kit)."""
    timed_out = storage_error(ReadTimeoutError("read timed out"), "s3://b/k")
    assert isinstance(timed_out, TransientStorageError)
    assert storage_error(FileNotFoundError("gone"), "s3://b/k") is None
    assert storage_error(FileExistsError("taken"), "s3://b/k") is None


def test_a_403_is_never_taken_for_a_missing_payload() -> None:
    mapped = storage_error(ClientError("AccessDenied", 403), "s3://b/k")
    assert isinstance(mapped, AccessDeniedError)
    assert not isinstance(mapped, PayloadNotFoundError)
    assert "s3:ListBucket" in str(mapped)


def test_transport_errors_say_whether_to_retry_and_whether_the_outcome_is_unknown() -> None:
    with pytest.raises(TransportError) as refused, translated("SQS", "SendMessage", "q"):
        raise ClientError("AWS.SimpleQueueService.NonExistentQueue", 400)
    assert not refused.value.retryable
    assert not refused.value.outcome_unknown
    assert "check the name or URL" in str(refused.value)
    with pytest.raises(TransportError) as lost, translated("SQS", "SendMessage", "q"):
        raise ReadTimeoutError("read timed out")
    assert lost.value.retryable
    assert lost.value.outcome_unknown
    assert outcome_unknown(lost.value)
    assert outcome_unknown(KeyboardInterrupt())
    with pytest.raises(ValueError, match="ours"), translated("SQS", "SendMessage", "q"):
        raise ValueError("ours")


# -- ARNs --------------------------------------------------------------------------------------


def test_arns_and_regions() -> None:
    arn = parse_arn("arn:aws-cn:sqs:cn-north-1:123456789012:orders.fifo")
    assert arn is not None
    assert (arn.partition, arn.service, arn.region, arn.account, arn.resource) == (
        "aws-cn",
        "sqs",
        "cn-north-1",
        "123456789012",
        "orders.fifo",
    )
    bucket = parse_arn("arn:aws:s3:::payloads")
    assert bucket is not None
    assert (bucket.region, bucket.account, bucket.resource) == ("", "", "payloads")
    assert parse_arn("orders") is None
    assert region_of("https://sqs.eu-west-1.amazonaws.com/123456789012/q") == "eu-west-1"
    assert region_of("arn:aws:sns:us-east-2:123456789012:t") == "us-east-2"
    assert region_of("http://127.0.0.1:5000/123456789012/q") is None
    assert region_of(MRAP) is None
    assert is_region("us-gov-west-1")
    assert not is_region("moon-1")
    assert is_mrap_arn(MRAP)
    assert not is_mrap_arn("arn:aws:s3:eu-west-1:123456789012:accesspoint/orders")


# -- message JSON ------------------------------------------------------------------------------


def _sqs_record(body: str, **extra: Any) -> dict[str, Any]:
    return {"messageId": "m-1", "eventSource": "aws:sqs", "body": body, **extra}


def test_an_eventbridge_event_gives_its_detail_through_sqs_and_sns_too() -> None:
    event = {"id": "e-1", "detail-type": "Order", "source": "shop", "detail": {"name": "crème"}}
    envelope = {"Type": "Notification", "TopicArn": "arn:aws:sns:us-east-1:123456789012:t"}
    envelope["Message"] = json.dumps(event)
    for wrapped in (event, {"Records": [_sqs_record(json.dumps(envelope))]}):
        (message,) = event_messages(wrapped)
        assert message.body == '{"name":"crème"}'
        assert message.event == event


def test_an_sns_record_stays_an_envelope_for_the_consumer_to_unwrap() -> None:
    sns = {"MessageId": "n-1", "TopicArn": "arn:aws:sns:us-east-1:123456789012:t", "Message": "hi"}
    (message,) = event_messages({"Records": [{"EventSource": "aws:sns", "Sns": sns}]})
    assert (message.service, message.id) == ("sns", "n-1")
    assert json.loads(message.body) == {"Type": "Notification", **sns}


def test_attributes_as_lambda_and_boto3_spell_them() -> None:
    lambda_spelling = {"n": {"dataType": "Number", "stringValue": "7"}}
    boto3_spelling = {"b": {"DataType": "Binary", "BinaryValue": "AAE="}}
    (first,) = event_messages({"Records": [_sqs_record("x", messageAttributes=lambda_spelling)]})
    assert first.attributes == {"n": Attribute("Number", "7")}
    found = document_messages({"Messages": [{"Body": "x", "MessageAttributes": boto3_spelling}]})
    assert found is not None
    assert found[0].attributes == {"b": Attribute("Binary", b"\x00\x01")}


def test_one_rule_for_what_cannot_be_read() -> None:
    """A message that cannot be read keeps its error, the others are read; an input of
    another kind raises."""
    bad = _sqs_record("x", messageAttributes={"b": {"dataType": "Binary", "binaryValue": "!!"}})
    first, second, third = event_messages({"Records": [bad, "not a record", _sqs_record("ok")]})
    assert isinstance(first.error, ConfigurationError)
    assert "'b'" in str(first.error)
    assert isinstance(second.error, ConfigurationError)
    assert (third.error, third.body) == (None, "ok")
    with pytest.raises(ConfigurationError, match="not supported"):
        event_messages({"Records": [{"eventSource": "aws:kinesis"}]})
    with pytest.raises(ConfigurationError, match="not an SQS, SNS or EventBridge event"):
        event_messages({"hello": "world"})
    assert document_messages({"hello": "world"}) is None
