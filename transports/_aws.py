"""boto3 glue for the AWS transports: message attributes in boto3's shape, a destination's
attributes read when the caller may, and boto3 imported only when a client is made.

botocore's errors are read by the AWS kit (:mod:`offload_core.aws.errors`), which never imports
botocore, so that a caller passing its own client never needs this package to import the SDK.
"""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from offload_core.aws.errors import ACCESS_DENIED_CODES, service_error
from offload_core.errors import IncompatibleOptionsError, MissingDependencyError
from offload_core.message import Attribute
from offload_core.policy import sqs_message_size

__all__ = [
    "boto3_client",
    "check_attribute_names",
    "chunked",
    "from_boto_attributes",
    "read_attributes",
    "sendable_size",
    "to_boto_attributes",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Characters SQS accepts in a message body (and so SNS, for its SQS subscribers).
_UNSENDABLE = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ATTRIBUTE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,256}\Z")


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
    """Message attributes as boto3 returns (or takes) them, as :class:`Attribute` values."""
    out: dict[str, Attribute] = {}
    for name, entry in (raw or {}).items():
        value = entry.get("StringValue", entry.get("BinaryValue"))
        if isinstance(value, (str, bytes)):
            out[name] = Attribute(str(entry.get("DataType", "String")), value)
    return out


def sendable_size(body: str, attributes: Mapping[str, Attribute]) -> int:
    """:func:`sqs_message_size`, or "too large for any queue" when SQS would refuse the body
    (control characters), so that such a body is stored rather than sent."""
    if _UNSENDABLE.search(body):
        return 2**63 - 1
    return sqs_message_size(body, attributes)


def check_attribute_names(attributes: Mapping[str, Attribute], service: str) -> None:
    """Refuse names SQS and SNS reject, before anything is stored."""
    for name in attributes:
        if (
            not _ATTRIBUTE_NAME.match(name)
            or name.lower().startswith(("aws.", "amazon."))
            or name.startswith(".")
            or name.endswith(".")
            or ".." in name
        ):
            raise IncompatibleOptionsError(
                f"{name!r} is not a valid {service} message attribute name: up to 256 of A-Z a-z "
                "0-9 _ - ., no leading, trailing or double period, not starting with AWS. or "
                "Amazon."
            )


def read_attributes(
    fetch: Callable[[], Mapping[str, Any]], destination: str, *, assumed: str
) -> dict[str, Any]:
    """The ``Attributes`` of ``fetch()``'s response; empty, with a warning saying what is
    ``assumed``, when the caller may not read them."""
    try:
        response = fetch()
    except Exception as exc:
        error = service_error(exc)
        if error is None or error.code not in ACCESS_DENIED_CODES:
            raise
        log.warning("cannot read the attributes of %s (%s); assuming %s", destination, exc, assumed)
        return {}
    return dict(response.get("Attributes", {}))


def boto3_client(service: str, *, what: str, **options: Any) -> Any:
    """``boto3.client(service, **options)``; a missing boto3 names the extra to install."""
    try:
        boto3 = importlib.import_module("boto3")
    except ImportError as exc:
        raise MissingDependencyError(what, module="boto3", extra="s3") from exc
    return boto3.client(service, **options)


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of at most ``size`` (AWS batch calls take ten entries)."""
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
