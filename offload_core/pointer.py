"""The pointer value every dialect decodes to, and the contract of a pointer format plugin."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .message import Attribute

__all__ = ["KEY_ID", "EncodedPointer", "Pointer", "PointerFormat", "Signature"]

#: What a signing key id may be: ASCII letters, digits and ``._:/+=@-``, up to 256 characters
#: (room for a KMS key ARN or alias); never ``,`` (it separates keys in OFFLOAD_SIGNING_KEYS).
KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+=@-]{0,255}\Z")


@dataclass(frozen=True)
class Signature:
    """A MAC over a pointer's canonical bytes (see :mod:`offload_core.signing`), and its key."""

    key_id: str
    mac: bytes


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
    #: Set on pointers signed by the publisher; only the native format carries it.
    signature: Signature | None = None


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
