"""What SQS and SNS accept: a message's size as they count it, the characters of a body and the
names of message attributes. The AWS transports pass :func:`sqs_message_size` (or
:func:`sendable_size`) as the ``measure`` of their :class:`~offload_core.policy.Limits`."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping

from offload_core.errors import IncompatibleOptionsError
from offload_core.message import Attribute
from offload_core.policy import attribute_bytes

__all__ = ["check_attribute_names", "sendable_size", "sqs_message_size"]

#: Characters SQS refuses in a message body (and so SNS, for its SQS subscribers); compiled on
#: first use (a few milliseconds that a consumer never needs).
_UNSENDABLE = "[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
_ATTRIBUTE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,256}\Z")


def sqs_message_size(body: str, attributes: Mapping[str, Attribute]) -> int:
    """How SQS and SNS measure a message: the body, and every attribute's name, data type and
    value, in UTF-8 bytes."""
    return len(body.encode()) + attribute_bytes(attributes)


def sendable_size(body: str, attributes: Mapping[str, Attribute]) -> int:
    """:func:`sqs_message_size`, or "too large for any queue" when SQS would refuse the body
    (control characters), so that such a body is stored rather than sent."""
    if _unsendable().search(body):
        return 2**63 - 1
    return sqs_message_size(body, attributes)


@functools.cache
def _unsendable() -> re.Pattern[str]:
    return re.compile(_UNSENDABLE)


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
