"""Transport-neutral message parts: attributes and the message a publisher hands a transport."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .pointer import Pointer

__all__ = ["Attribute", "Attributes", "OutgoingMessage"]


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
    def number(cls, value: int) -> Attribute:
        return cls("Number", str(value))


Attributes = Mapping[str, Attribute]


@dataclass(frozen=True)
class OutgoingMessage:
    """What to send: the body and attributes, and the pointer when the payload was offloaded."""

    body: str
    attributes: Mapping[str, Attribute] = field(default_factory=dict)
    pointer: Pointer | None = None

    @property
    def offloaded(self) -> bool:
        return self.pointer is not None
