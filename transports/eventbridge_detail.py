"""How an offloaded EventBridge event carries its pointer: inside the detail, which stays a JSON
object so that rules still filter on it::

    {"type":"order","tenant":"acme","offload":{"offload_pointer":1,"location":"s3://b/k",...}}

The routing fields the publisher keeps (``keep=["type", "tenant"]``) come first, copied from the
payload; offload's native pointer follows, as written, under ``"offload"``. A detail is a pointer
when it is a JSON object whose ``"offload"`` member is a native pointer object, so a consumer
recognises it from the detail alone (EventBridge carries no message attributes), and a rule may
match offloaded events with ``{"detail": {"offload": [{"exists": true}]}}``.

:class:`DetailFormat` is registered as the read-only pointer format ``eventbridge``, so every
:class:`~offload_core.offloader.Offloader` reads such a detail, and never publishes an inline
detail of that shape (it is stored instead, as any body that looks like a pointer).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from offload_core.detect import MAX_POINTER_BYTES
from offload_core.errors import IncompatibleOptionsError, PointerError, RoutingFieldError
from offload_core.formats import StrictJSONError, unique_pairs
from offload_core.formats.native import NativeFormat
from offload_core.message import Attribute
from offload_core.pointer import EncodedPointer, Pointer
from offload_core.policy import utf8_size

__all__ = ["POINTER_MEMBER", "TRACE_MEMBER", "DetailFormat", "check_kept", "with_member", "wrap"]

#: The detail member that holds the pointer.
POINTER_MEMBER = "offload"

#: The detail member that carries the publisher's trace context (a text map), when tracing.
TRACE_MEMBER = "traceContext"

_MAGIC = '"offload_pointer"'
_OBJECT_START = re.compile(r"[ \t\n\r]*\{")


_DECODER = json.JSONDecoder(object_pairs_hook=unique_pairs)


def _shape(value: object) -> bool:
    """Whether a parsed detail holds a native pointer object under :data:`POINTER_MEMBER`."""
    if not isinstance(value, dict):
        return False
    inner = value.get(POINTER_MEMBER)
    return isinstance(inner, dict) and "offload_pointer" in inner


def check_kept(names: Iterable[str]) -> None:
    """Refuse to keep the member the pointer goes in."""
    if POINTER_MEMBER in names:
        raise RoutingFieldError(
            f"{POINTER_MEMBER!r} is where the pointer goes in the detail; it cannot be kept",
            fields=[POINTER_MEMBER],
        )


def wrap(pointer_body: str, routing: Mapping[str, Any]) -> str:
    """The detail of an offloaded event: ``routing``'s members, then the pointer (a native
    pointer body, embedded as written) under :data:`POINTER_MEMBER`."""
    check_kept(routing)
    try:
        head = json.dumps(dict(routing), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise RoutingFieldError(
            f"routing fields are not JSON values: {exc}", fields=list(routing)
        ) from exc
    detail = f'{head[:-1]}{"," if routing else ""}"{POINTER_MEMBER}":{pointer_body}}}'
    size = utf8_size(detail)
    if size > MAX_POINTER_BYTES:
        raise RoutingFieldError(
            f"the kept routing fields make the pointer detail {size} bytes, over the "
            f"{MAX_POINTER_BYTES} bytes a reader parses as a pointer; keep fewer or smaller fields",
            fields=list(routing),
        )
    return detail


def with_member(detail: str, name: str, value: Mapping[str, str]) -> str | None:
    """``detail`` (JSON object text) with member ``name`` added last; ``None`` when it is not an
    object's text or may already name that member."""
    text = detail.rstrip()
    if not text.endswith("}") or not _OBJECT_START.match(text) or f'"{name}"' in text:
        return None
    inner = text[:-1].rstrip()
    comma = "" if inner.endswith("{") else ","
    member = json.dumps(dict(value), separators=(",", ":"), ensure_ascii=False)
    return f"{inner}{comma}{json.dumps(name)}:{member}}}"


class DetailFormat:
    """Read-only: a native pointer inside an EventBridge detail, beside kept routing fields."""

    name = "eventbridge"
    writable = False
    markers: tuple[str, ...] = ()
    signature: re.Pattern[str] | None = None
    _native = NativeFormat()

    def encode(self, pointer: Pointer) -> EncodedPointer:
        raise IncompatibleOptionsError(
            "the 'eventbridge' pointer format is written by the eventbridge transport (a native "
            "pointer inside the detail); create the Offloader with pointer_format='native'"
        )

    def decode(self, body: str, attributes: Mapping[str, Attribute]) -> Pointer | None:
        if _MAGIC not in body or f'"{POINTER_MEMBER}"' not in body or not _OBJECT_START.match(body):
            return None
        try:
            value = _DECODER.decode(body)
        except StrictJSONError as exc:
            if _shape(_lenient(body)):
                raise PointerError(
                    f"malformed {self.name} pointer: {exc}", dialect=self.name
                ) from exc
            return None
        except (ValueError, RecursionError):
            return None
        if not _shape(value):
            return None
        inner = json.dumps(value[POINTER_MEMBER], separators=(",", ":"), ensure_ascii=False)
        pointer = self._native.decode(inner, {})
        return None if pointer is None else replace(pointer, dialect=self.name)


def _lenient(body: str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None
