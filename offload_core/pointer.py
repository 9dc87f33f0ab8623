"""The pointer value every dialect decodes to, and the contract of a pointer format plugin."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from .message import Attribute

__all__ = ["EncodedPointer", "Pointer", "PointerFormat"]


@dataclass(frozen=True)
class Pointer:
    """Where a payload is stored and how to check it; decoded from any dialect.

    ``location`` is a URL (``s3://bucket/key``, ``file:///root/key``, ``memory://name/key``).
    Fields a dialect does not carry are ``None``: foreign dialects have no digest, for example,
    and then only the size (when known) can be verified.
    """

    location: str
    #: Byte length of the original payload.
    size: int | None = None
    #: Byte length of the stored object (differs from ``size`` when compressed).
    stored_size: int | None = None
    #: Compression of the stored bytes: ``"none"`` or a registered compressor name.
    codec: str = "none"
    #: Checksum algorithm of ``digest`` (a registered checksum name) and the hex digest itself.
    checksum: str | None = None
    digest: str | None = None
    content_type: str | None = None
    #: When the payload may be deleted (timezone-aware, UTC).
    expires: datetime | None = None
    #: Name of the pointer format the pointer was read from, or is to be written in.
    dialect: str = "native"


@dataclass(frozen=True)
class EncodedPointer:
    """A pointer as a message body plus the attributes the dialect needs."""

    body: str
    attributes: Mapping[str, Attribute]


@runtime_checkable
class PointerFormat(Protocol):
    """A wire format for pointers, registered with ``offload_register_pointer_formats``."""

    name: str
    #: Whether ``encode`` is supported (foreign dialects are read-only).
    writable: bool

    def encode(self, pointer: Pointer) -> EncodedPointer:
        """The body and attributes to send; raises ``IncompatibleOptionsError`` if impossible."""
        ...

    def decode(self, body: str, attributes: Mapping[str, Attribute]) -> Pointer | None:
        """``None`` when the message is not of this dialect; ``PointerError`` when it is but is
        malformed. Must be cheap on bodies that are not pointers (they are the common case)."""
        ...
