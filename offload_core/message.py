"""Transport-neutral message parts: attributes, their JSON form, and the message a publisher
hands a transport."""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeAlias

from .errors import ConfigurationError

if TYPE_CHECKING:
    from .pointer import Pointer

__all__ = [
    "Attribute",
    "AttributeLike",
    "Attributes",
    "OutgoingMessage",
    "as_attributes",
    "attributes_from_json",
    "attributes_to_json",
]


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


def attributes_to_json(attributes: Mapping[str, Attribute]) -> dict[str, dict[str, str]]:
    """Attributes as JSON, in boto3's field names (``DataType`` and ``StringValue`` or
    ``BinaryValue``) with binary values in base64: how ``offload put`` prints them."""
    return {
        name: {"DataType": a.data_type, "BinaryValue": base64.b64encode(a.value).decode()}
        if isinstance(a.value, bytes)
        else {"DataType": a.data_type, "StringValue": a.value}
        for name, a in attributes.items()
    }


def attributes_from_json(raw: object, where: str) -> dict[str, Attribute]:
    """Attributes in :func:`attributes_to_json`'s form, found in ``where`` (for errors).

    An entry that is not a JSON object is no message attribute and is passed over (a queue's
    system attributes are plain strings). One that is an object but not an attribute (no
    ``DataType``, no value, a ``BinaryValue`` that is not base64) raises
    :class:`~offload_core.errors.ConfigurationError` naming it: an attribute is never dropped.
    """
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"the message attributes of {where} are not a JSON object")
    out: dict[str, Attribute] = {}
    for name, entry in raw.items():
        if not isinstance(entry, Mapping):
            continue
        data_type, text = entry.get("DataType"), entry.get("StringValue")
        binary = entry.get("BinaryValue")
        if isinstance(data_type, str) and isinstance(text, str):
            out[name] = Attribute(data_type, text)
            continue
        if not isinstance(data_type, str) or not isinstance(binary, str):
            raise ConfigurationError(
                f"attribute {name!r} of {where} needs DataType and StringValue or BinaryValue"
            )
        try:
            out[name] = Attribute(data_type, base64.b64decode(binary, validate=True))
        except (binascii.Error, ValueError) as exc:
            raise ConfigurationError(
                f"attribute {name!r} of {where}: BinaryValue is not base64"
            ) from exc
    return out


@dataclass(frozen=True)
class OutgoingMessage:
    """What to send: the body and attributes, and the pointer when the payload was offloaded."""

    body: str
    attributes: Mapping[str, Attribute] = field(default_factory=dict)
    pointer: Pointer | None = None

    @property
    def offloaded(self) -> bool:
        return self.pointer is not None
