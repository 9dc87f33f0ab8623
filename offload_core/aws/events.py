"""AWS message JSON: SQS messages, Lambda's SQS, SNS and EventBridge events, and message
attributes in boto3's shape.

One parser serves the Lambda consumer (:func:`event_messages`) and the command line
(:func:`document_messages`, which the transports plugin offers through the
``offload_read_messages`` hook). What each record gives:

- an SQS message or record: its body and message attributes (boto3's ``MessageAttributes`` or
  Lambda's ``messageAttributes``, binary values in base64);
- an SNS record: the notification envelope, as an SQS subscription without raw delivery
  receives it, which :meth:`Offloader.parse <offload_core.offloader.Offloader.parse>` unwraps;
- an EventBridge event, alone or as the body of an SQS message or SNS notification a rule
  delivered: its ``detail`` as compact JSON text.

One rule for bad input. An input that is no event or message this reads (no ``Records``,
records of another service) raises :class:`~offload_core.errors.ConfigurationError`. A message
that cannot be read as AWS delivers it (not an object, no body, an attribute without its type or
value, a binary value that is not base64) is kept with that error in :attr:`AwsMessage.error`:
nothing is dropped silently, and the error stays with its message. The Lambda consumer fails
that record alone (a permanent failure); the command line refuses the input.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from offload_core.detect import unwrap_sns
from offload_core.errors import ConfigurationError
from offload_core.message import Attribute, attributes_from_json

__all__ = [
    "AwsMessage",
    "Service",
    "document_messages",
    "event_messages",
    "from_boto_attributes",
    "is_eventbridge_event",
    "record_message",
    "to_boto_attributes",
]

#: The service that delivered a message.
Service = Literal["sqs", "sns", "eventbridge"]

_SOURCES = frozenset({"aws:sqs", "aws:sns"})
#: Where the message attributes of an SQS message (boto3's, Lambda's) or a bare record are.
_ATTRIBUTE_FIELDS = ("messageAttributes", "MessageAttributes", "attributes")


@dataclass(frozen=True)
class AwsMessage:
    """One message found in AWS JSON, and where."""

    body: str
    attributes: Mapping[str, Attribute]
    #: Where it was found, for messages: ``"Lambda event record 0"``, ``"SQS message 1 (SNS)"``.
    where: str
    service: Service
    #: The id a partial batch response names (SQS ``messageId``, SNS ``MessageId``, the
    #: EventBridge event's ``id``); empty when the input has none.
    id: str
    #: The record, message or event as given.
    raw: Mapping[str, Any] = field(repr=False)
    #: The FIFO message group, if any.
    group_id: str | None = None
    #: The EventBridge event whose detail the body is.
    event: Mapping[str, Any] | None = field(default=None, repr=False)
    #: Why the message cannot be read; its body and attributes are then empty.
    error: ConfigurationError | None = None


def is_eventbridge_event(value: object) -> bool:
    """Whether ``value`` is an EventBridge event (a ``detail-type`` and a ``detail`` object)."""
    return (
        isinstance(value, Mapping)
        and "detail-type" in value
        and isinstance(value.get("detail"), Mapping)
    )


def event_messages(event: Mapping[str, Any]) -> list[AwsMessage]:
    """The messages of an event Lambda delivered, in order: an EventBridge event's detail, or
    each record of an SQS or SNS event."""
    if is_eventbridge_event(event):
        return [_detail(event, event, "eventbridge", "EventBridge event")]
    records = event.get("Records")
    if not isinstance(records, list):
        raise ConfigurationError(
            "not an SQS, SNS or EventBridge event (no Records, no detail-type); offload reads "
            "only those"
        )
    return [record_message(raw, f"Lambda event record {i}") for i, raw in enumerate(records)]


def document_messages(document: Mapping[str, Any]) -> list[AwsMessage] | None:
    """The messages in AWS JSON as an operator finds it: a Lambda event, a ``ReceiveMessage``
    response (``Messages``), one SQS message or Lambda record, an EventBridge event. ``None``
    for any other JSON object."""
    if isinstance(document.get("Records"), list) or is_eventbridge_event(document):
        return event_messages(document)
    messages = document.get("Messages")
    if isinstance(messages, list):
        return [record_message(raw, f"SQS message {i}") for i, raw in enumerate(messages)]
    if isinstance(document.get("Sns"), Mapping) or any(
        isinstance(document.get(k), str) for k in ("Body", "body")
    ):
        return [record_message(document, "SQS message" if "Body" in document else "message record")]
    return None


def record_message(raw: object, where: str) -> AwsMessage:
    """One record of a Lambda SQS or SNS event, or one SQS message as boto3 returns it."""
    if not isinstance(raw, Mapping):
        return _failed({}, where, "is not a JSON object")
    origin = raw.get("eventSource", raw.get("EventSource"))
    if origin is not None and origin not in _SOURCES:
        raise ConfigurationError(
            f"records from {origin!r} are not supported; offload reads SQS, SNS and EventBridge "
            "events"
        )
    sns = raw.get("Sns")
    if isinstance(sns, Mapping):
        return _sns_record(raw, sns, where)
    return _sqs_message(raw, where)


def _sqs_message(raw: Mapping[str, Any], where: str) -> AwsMessage:
    id = str(raw.get("messageId", raw.get("MessageId", "")))
    system = raw.get("attributes", raw.get("Attributes"))
    group = system.get("MessageGroupId") if isinstance(system, Mapping) else None
    group_id = group if isinstance(group, str) else None
    body = raw.get("body", raw.get("Body"))
    if not isinstance(body, str):
        return _failed(raw, where, "has no 'body' or 'Sns' to read a message from", id, group_id)
    found = next((raw[name] for name in _ATTRIBUTE_FIELDS if name in raw), None)
    try:
        attributes = attributes_from_json(_boto_spelling(found), where)
    except ConfigurationError as exc:
        return _failed(raw, where, exc, id, group_id)
    event = _embedded_event(body)
    if event is not None:
        return _detail(event, raw, "sqs", f"{where} (EventBridge event)", id, group_id)
    return AwsMessage(body, attributes, where, "sqs", id, raw, group_id)


def _sns_record(raw: Mapping[str, Any], sns: Mapping[str, Any], where: str) -> AwsMessage:
    id = str(sns.get("MessageId", ""))
    message = sns.get("Message")
    event = _embedded_event(message) if isinstance(message, str) else None
    if event is not None:
        return _detail(event, raw, "sns", f"{where} (EventBridge event)", id)
    envelope = json.dumps({"Type": "Notification", **sns})
    return AwsMessage(envelope, {}, f"{where} (SNS)", "sns", id, raw)


def _detail(
    event: Mapping[str, Any],
    raw: Mapping[str, Any],
    service: Service,
    where: str,
    id: str | None = None,
    group_id: str | None = None,
) -> AwsMessage:
    """The event's detail as the body: compact JSON text, a pointer when it carries one."""
    detail = json.dumps(event["detail"], separators=(",", ":"), ensure_ascii=False)
    id = id or str(event.get("id", ""))
    return AwsMessage(detail, {}, where, service, id, raw, group_id, event)


def _embedded_event(body: str) -> Mapping[str, Any] | None:
    """The EventBridge event an SQS body or SNS message is (inside an SNS envelope too)."""
    text = unwrap_sns(body, {})[0]
    if '"detail-type"' not in text or not text.lstrip().startswith("{"):
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return cast(Mapping[str, Any], value) if is_eventbridge_event(value) else None


def _failed(
    raw: Mapping[str, Any],
    where: str,
    problem: str | ConfigurationError,
    id: str = "",
    group_id: str | None = None,
) -> AwsMessage:
    """A message that cannot be read, kept with why (``problem`` follows ``where``)."""
    if not isinstance(problem, ConfigurationError):
        problem = ConfigurationError(f"{where} {problem}")
    return AwsMessage("", {}, where, "sqs", id, raw, group_id, error=problem)


def _boto_spelling(raw: object) -> object:
    """Lambda's attribute fields (``dataType``, ``stringValue``, ``binaryValue``) as boto3
    spells them; anything else as it is."""
    if not isinstance(raw, Mapping):
        return raw
    return {
        name: {k[:1].upper() + k[1:]: v for k, v in entry.items()}
        if isinstance(entry, Mapping)
        else entry
        for name, entry in raw.items()
    }


# -- boto3's MessageAttributes -----------------------------------------------------------------


def to_boto_attributes(attributes: Mapping[str, Attribute]) -> dict[str, dict[str, Any]]:
    """Message attributes as boto3 takes them for SQS and SNS (``DataType`` + ``StringValue``
    or ``BinaryValue``)."""
    return {
        name: {
            "DataType": attr.data_type,
            ("BinaryValue" if isinstance(attr.value, bytes) else "StringValue"): attr.value,
        }
        for name, attr in attributes.items()
    }


def from_boto_attributes(raw: Mapping[str, Any] | None) -> dict[str, Attribute]:
    """Message attributes as boto3 returns (or takes) them, binary values as bytes."""
    out: dict[str, Attribute] = {}
    for name, entry in (raw or {}).items():
        value = entry.get("StringValue", entry.get("BinaryValue"))
        if isinstance(value, (str, bytes)):
            out[name] = Attribute(str(entry.get("DataType", "String")), value)
    return out
