"""Tell a pointer from an inline payload, in any known dialect, without I/O.

Most messages are inline payloads, so the common path is a few substring checks. A message is a
pointer when one of the given formats recognises it; recognised but malformed is a
:class:`~offload_core.errors.PointerError`, never a payload. Formats may declare two optional
attributes that make detection stricter:

``markers``
    attribute names that only a pointer of the format carries (``ExtendedPayloadSize``): a
    message with one whose body no format accepts is an error, not a payload.
``signature``
    a compiled pattern for how the format's bodies start: a body too large to be a pointer
    that starts so is an error, not a payload.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence

from offload_core.errors import PointerError
from offload_core.formats._json import JSON_SPACE, loads_strict
from offload_core.message import Attribute
from offload_core.pointer import Pointer, PointerFormat

__all__ = ["MAX_POINTER_BYTES", "detect", "inspect", "unwrap_sns"]

#: No pointer is larger; larger bodies are never parsed as one.
MAX_POINTER_BYTES = 64 * 1024

_OBJECT_START = re.compile(JSON_SPACE + r"\{")


def unwrap_sns(body: str, attributes: Mapping[str, Attribute]) -> tuple[str, dict[str, Attribute]]:
    """The message inside an SNS notification envelope, with the envelope's attributes.

    SNS without raw message delivery wraps what was published in a JSON envelope; its
    ``MessageAttributes`` (``{"Type": "Number", "Value": "859754"}``; Binary values base64)
    replace the transport's attributes. Anything else is returned unchanged.
    """
    if not _OBJECT_START.match(body) or "TopicArn" not in body or "Notification" not in body:
        return body, dict(attributes)
    try:
        envelope = loads_strict(body)
    except ValueError:
        return body, dict(attributes)
    if (
        not isinstance(envelope, dict)
        or envelope.get("Type") != "Notification"
        or not isinstance(envelope.get("TopicArn"), str)
        or not isinstance(envelope.get("Message"), str)
    ):
        return body, dict(attributes)
    return envelope["Message"], _envelope_attributes(envelope.get("MessageAttributes"))


def _envelope_attributes(raw: object) -> dict[str, Attribute]:
    """Envelope attributes as :class:`Attribute`; entries that are not well-formed are left out."""
    out: dict[str, Attribute] = {}
    if not isinstance(raw, dict):
        return out
    for name, entry in raw.items():
        if not isinstance(entry, dict):
            continue
        data_type, value = entry.get("Type"), entry.get("Value")
        if not isinstance(data_type, str) or not isinstance(value, str):
            continue
        if data_type.startswith("Binary"):
            try:
                out[name] = Attribute(data_type, base64.b64decode(value, validate=True))
            except (binascii.Error, ValueError):
                continue
        else:
            out[name] = Attribute(data_type, value)
    return out


def detect(
    body: str | bytes, attributes: Mapping[str, Attribute], formats: Sequence[PointerFormat]
) -> Pointer | None:
    """The pointer in a message, ``None`` for an inline payload; ``PointerError`` if malformed.

    An SNS envelope is unwrapped first. The first format (in order) that recognises the message
    decodes it.
    """
    return inspect(body, attributes, formats)[2]


def inspect(
    body: str | bytes, attributes: Mapping[str, Attribute], formats: Sequence[PointerFormat]
) -> tuple[str | bytes, dict[str, Attribute], Pointer | None]:
    """Like :func:`detect`, also returning the body and attributes after unwrapping an SNS
    envelope: what an inline payload is, and what the publisher's attributes were."""
    text = _as_text(body)
    if text is None:
        reason = "its body is not UTF-8 text"
        attributes = dict(attributes)
    else:
        text, attributes = unwrap_sns(text, attributes)
        body = text
        if not _oversized(text):
            for fmt in formats:
                pointer = fmt.decode(text, attributes)
                if pointer is not None:
                    return text, attributes, pointer
            reason = "its body is not a pointer in any known dialect"
        else:
            for fmt in formats:
                signature: re.Pattern[str] | None = getattr(fmt, "signature", None)
                if signature is not None and signature.match(text):
                    raise PointerError(
                        f"oversized pointer: the body starts like a {fmt.name} pointer but is "
                        f"larger than {MAX_POINTER_BYTES} bytes",
                        dialect=fmt.name,
                    )
            reason = f"its body is larger than {MAX_POINTER_BYTES} bytes"
    for fmt in formats:
        for marker in getattr(fmt, "markers", ()):
            if marker in attributes:
                raise PointerError(
                    f"the message carries the {fmt.name} pointer attribute {marker!r} but {reason}",
                    dialect=fmt.name,
                )
    return body, attributes, None


def _as_text(body: str | bytes) -> str | None:
    if isinstance(body, str):
        return body
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _oversized(text: str) -> bool:
    """Whether ``text`` is more than :data:`MAX_POINTER_BYTES` as UTF-8, counting cheaply."""
    if len(text) > MAX_POINTER_BYTES:
        return True
    if len(text) * 4 <= MAX_POINTER_BYTES:
        return False
    return len(text.encode("utf-8", "surrogatepass")) > MAX_POINTER_BYTES
