"""offload's own pointer: a versioned JSON object that works for any store, codec and checksum.

Written compact, in a fixed field order, with fields that are ``None`` left out::

    {"offload_pointer":1,"location":"s3://b/k","size":123,"stored_size":100,"codec":"zstd",
     "checksum":"sha256","digest":"<hex>","content_type":"application/json",
     "expires":"2026-12-01T00:00:00Z","kid":"key-2026","mac":"<base64url>"}

A signed pointer ends with ``kid`` (the key id) and ``mac`` (unpadded base64url of the MAC over
:func:`offload_core.signing.canonical_bytes`); the two come together or not at all.

It is recognised from the body alone (EventBridge and raw SNS-over-HTTP drop attributes): a
JSON object with an ``offload_pointer`` member. The schema is strict; a reader rejects versions
and fields it does not know rather than guess.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, TypeVar

from offload_core.errors import IncompatibleOptionsError, UnsupportedVersionError
from offload_core.message import Attribute
from offload_core.pointer import KEY_ID, EncodedPointer, Pointer, Signature

from ._json import (
    brief,
    check_digest,
    check_fields,
    check_name,
    fail,
    first_key_signature,
    get_int,
    get_str,
    recognise,
    self_check,
)

__all__ = ["MAX_MAC_BYTES", "MIN_MAC_BYTES", "VERSION", "NativeFormat", "format_time"]

_T = TypeVar("_T")

#: The only version this reader understands.
VERSION = 1
MAX_LOCATION_BYTES = 4096
#: MAC lengths a pointer may carry: 128 bits (truncated MACs) up to 512 bits (HMAC-SHA512).
MIN_MAC_BYTES = 16
MAX_MAC_BYTES = 64

_MAGIC = "offload_pointer"
_FIELDS = (
    _MAGIC,
    "location",
    "size",
    "stored_size",
    "codec",
    "checksum",
    "digest",
    "content_type",
    "expires",
    "kid",
    "mac",
)
_REQUIRED = frozenset({_MAGIC, "location", "size"})
_SIGNATURE = first_key_signature(_MAGIC)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTENT_TYPE = re.compile(r"[\x20-\x7e]{1,255}\Z")
_MAC = re.compile(r"[A-Za-z0-9_-]+\Z")
_EXPIRES = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,6}))?Z\Z"
)


def _is_native(value: Any) -> bool:
    return isinstance(value, dict) and _MAGIC in value


def format_time(moment: datetime) -> str:
    """``moment`` as ISO 8601 in UTC with ``Z``; microseconds only when there are any."""
    if moment.utcoffset() is None:
        raise IncompatibleOptionsError("a pointer's expiry must be a timezone-aware datetime")
    try:
        utc = moment.astimezone(timezone.utc)
    except (OverflowError, ValueError) as exc:
        raise IncompatibleOptionsError(f"expiry {moment!r} is out of range") from exc
    text = (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}"
        f"T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"
    )
    if utc.microsecond:
        text += f".{utc.microsecond:06d}"
    return text + "Z"


def _parse_time(value: object, name: str, *, dialect: str) -> datetime:
    match = _EXPIRES.match(value) if isinstance(value, str) else None
    if match is None:
        fail(dialect, f"{name} must be like '2026-12-01T00:00:00Z', not {brief(value)}")
    year, month, day, hour, minute, second, fraction = match.groups()
    try:
        return datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            int((fraction or "0").ljust(6, "0")),
            tzinfo=timezone.utc,
        )
    except ValueError as exc:
        fail(dialect, f"{name} {brief(value)} is not a valid time: {exc}")


def _content_type(value: object, name: str, *, dialect: str) -> str:
    if not isinstance(value, str) or not _CONTENT_TYPE.match(value):
        fail(dialect, f"{name} must be at most 255 printable ASCII characters")
    return value


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _key_id(value: object, name: str, *, dialect: str) -> str:
    if not isinstance(value, str) or not KEY_ID.match(value):
        fail(dialect, f"{name} must be a key id like 'key-2026', not {brief(value)}")
    return value


def _mac(value: object, name: str, *, dialect: str) -> bytes:
    """Unpadded base64url, in its one canonical spelling, of 16 to 64 bytes."""
    mac = None
    if isinstance(value, str) and len(value) <= 2 * MAX_MAC_BYTES and _MAC.match(value):
        try:
            mac = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        except (binascii.Error, ValueError):
            mac = None
    if mac is None or _b64url(mac) != value or not MIN_MAC_BYTES <= len(mac) <= MAX_MAC_BYTES:
        fail(
            dialect,
            f"{name} must be unpadded base64url of {MIN_MAC_BYTES} to {MAX_MAC_BYTES} bytes",
        )
    return mac


def _location(obj: Mapping[str, Any], *, dialect: str) -> str:
    location = get_str(obj, "location", dialect=dialect, max_len=MAX_LOCATION_BYTES)
    if _CONTROL.search(location) or not _SCHEME.match(location):
        fail(dialect, "location must be a URL (scheme://...) without control characters")
    return location


class NativeFormat:
    """offload's versioned pointer; any store, codec and checksum."""

    name = "native"
    writable = True
    markers: tuple[str, ...] = ()
    #: How a body of this format starts; bodies that start so are never payloads.
    signature: re.Pattern[str] | None = _SIGNATURE

    def encode(self, pointer: Pointer) -> EncodedPointer:
        expires = None if pointer.expires is None else format_time(pointer.expires)
        signed = pointer.signature
        values = (
            VERSION,
            pointer.location,
            pointer.size,
            pointer.stored_size,
            pointer.codec,
            pointer.checksum,
            pointer.digest,
            pointer.content_type,
            expires,
            None if signed is None else signed.key_id,
            None if signed is None else _b64url(signed.mac),
        )
        fields = {
            name: value for name, value in zip(_FIELDS, values, strict=True) if value is not None
        }
        return self_check(self, EncodedPointer(json.dumps(fields, separators=(",", ":")), {}))

    def decode(self, body: str, attributes: Mapping[str, Attribute]) -> Pointer | None:
        if _MAGIC not in body:
            return None
        obj = recognise(body, dialect=self.name, match=_is_native, prefix=_SIGNATURE)
        if obj is None:
            return None
        version = obj[_MAGIC]
        if type(version) is not int or version != VERSION:
            raise UnsupportedVersionError(version)
        dialect = self.name
        check_fields(obj, required=_REQUIRED, allowed=frozenset(_FIELDS), dialect=dialect)
        if ("checksum" in obj) != ("digest" in obj):
            fail(dialect, "checksum and digest come together or not at all")
        if ("kid" in obj) != ("mac" in obj):
            fail(dialect, "kid and mac come together or not at all")

        def optional(name: str, check: Callable[..., _T]) -> _T | None:
            return check(obj[name], name, dialect=dialect) if name in obj else None

        key_id = optional("kid", _key_id)
        mac = optional("mac", _mac)
        return Pointer(
            _location(obj, dialect=dialect),
            size=get_int(obj["size"], "size", dialect=dialect),
            stored_size=optional("stored_size", get_int),
            codec=check_name(obj.get("codec", "none"), "codec", dialect=dialect),
            checksum=optional("checksum", check_name),
            digest=optional("digest", check_digest),
            content_type=optional("content_type", _content_type),
            expires=optional("expires", _parse_time),
            dialect=dialect,
            signature=None if key_id is None or mac is None else Signature(key_id, mac),
        )
