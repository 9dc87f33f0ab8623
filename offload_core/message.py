"""Transport-neutral message parts: attributes and the message a publisher hands a transport."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from .pointer import Pointer

__all__ = ["Attribute", "AttributeLike", "Attributes", "OutgoingMessage", "as_attributes"]


@dataclass(frozen=True)
class Attribute:
    """A message attribute as SQS and SNS know it: ``String``, ``Number`` or ``Binary``.

    ``data_type`` may carry a custom suffix (``Number.int``); ``value`` is ``bytes`` for Binary.
    """

    data_type: str
    value: str | bytes

    @classmethod
    def string(cls, value: str) -> Attribute:
        return cls("String", value)

    @classmethod
    def number(cls, value: int | float | Decimal) -> Attribute:
        if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
            raise TypeError(f"a Number attribute needs an int, float or Decimal, not {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"a Number attribute must be finite, not {value}")
        return cls("Number", str(value))

    @classmethod
    def binary(cls, value: bytes | bytearray | memoryview) -> Attribute:
        return cls("Binary", bytes(value))


Attributes = Mapping[str, Attribute]

#: What a publisher may give as an attribute value: an :class:`Attribute`, ``str`` (String),
#: ``int``/``float``/``Decimal`` (Number), bytes-like (Binary), or boto3's shape
#: ``{"DataType": "String", "StringValue": "order"}`` (``BinaryValue`` for Binary types).
AttributeLike: TypeAlias = (
    "Attribute | str | int | float | Decimal | bytes | bytearray | memoryview | Mapping[str, Any]"
)


def as_attributes(attributes: Mapping[str, AttributeLike] | None) -> dict[str, Attribute]:
    """Message attributes as :class:`Attribute` values; anything else is a ``TypeError``."""
    return {name: _attribute(name, value) for name, value in (attributes or {}).items()}


def _attribute(name: str, value: AttributeLike) -> Attribute:
    if isinstance(value, Attribute):
        return value
    if isinstance(value, str):
        return Attribute.string(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return Attribute.binary(value)
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return Attribute.number(value)
    if isinstance(value, Mapping):
        return _boto_attribute(name, value)
    raise TypeError(
        f"attribute {name!r} is a {type(value).__name__}; give a str, a number, bytes, "
        f"boto3's {{'DataType': ..., 'StringValue': ...}} or an Attribute "
        f"(Attribute.string('true') for a flag)"
    )


def _boto_attribute(name: str, value: Mapping[str, Any]) -> Attribute:
    data_type = value.get("DataType")
    fields = set(value) - {"DataType"}
    if not isinstance(data_type, str) or len(fields) != 1:
        raise TypeError(
            f"attribute {name!r} must have boto3's shape: a DataType and one of StringValue or "
            f"BinaryValue, like {{'DataType': 'String', 'StringValue': 'order'}}; got "
            f"{sorted(value)}"
        )
    (field_name,) = fields
    data = value[field_name]
    if field_name == "StringValue" and isinstance(data, str):
        return Attribute(data_type, data)
    if field_name == "BinaryValue" and isinstance(data, (bytes, bytearray, memoryview)):
        return Attribute(data_type, bytes(data))
    raise TypeError(
        f"attribute {name!r}: {field_name} must be {'bytes' if 'Binary' in field_name else 'a str'}"
        f" (list values are not supported by SQS or SNS); got {type(data).__name__}"
    )


@dataclass(frozen=True)
class OutgoingMessage:
    """What to send: the body and attributes, and the pointer when the payload was offloaded."""

    body: str
    attributes: Mapping[str, Attribute] = field(default_factory=dict)
    pointer: Pointer | None = None

    @property
    def offloaded(self) -> bool:
        return self.pointer is not None
