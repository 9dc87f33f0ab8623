"""Strict JSON for pointers, and the typed field checks every dialect shares.

A pointer is attacker-controlled input, so once a body is recognised as a pointer it is parsed
strictly: no duplicate keys (parsers disagree on which one wins), no ``NaN``/``Infinity``, no
nesting deeper than :data:`MAX_DEPTH`, no numbers longer than :data:`MAX_NUMBER_CHARS`. Bodies
that are not pointers are never held to these rules: they are the application's payloads.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from offload_core.errors import IncompatibleOptionsError, PointerError
from offload_core.pointer import EncodedPointer, PointerFormat

__all__ = [
    "JSON_SPACE",
    "MAX_DEPTH",
    "MAX_NUMBER_CHARS",
    "MAX_SIZE",
    "StrictJSONError",
    "brief",
    "check_digest",
    "check_fields",
    "check_name",
    "fail",
    "first_key_signature",
    "get_int",
    "get_str",
    "loads_strict",
    "recognise",
    "self_check",
    "unique_pairs",
    "utf8_size",
]

#: Deepest nesting a pointer (or an SNS envelope around one) needs is 3.
MAX_DEPTH = 4
#: Longest number literal accepted; sizes fit in 16 digits.
MAX_NUMBER_CHARS = 24
#: Largest size a pointer may declare: 2**53, the largest integer every JSON reader keeps exact.
MAX_SIZE = 2**53

#: JSON's insignificant whitespace, for signature patterns.
JSON_SPACE = r"[ \t\n\r]*"

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,31}\Z")
_DIGEST = re.compile(r"[0-9a-f]{1,256}\Z")
#: A JSON string; an unterminated one runs to the end, so matching never backtracks.
_STRING = re.compile(r'"[^"\\]*(?:\\(?:.|\Z)[^"\\]*)*(?:"|\Z)', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_EMPTY_PAIR = re.compile(r"\[\]|\{\}")


class StrictJSONError(ValueError):
    """The text is JSON a pointer must not be (or not JSON at all)."""


def _reject_constant(name: str) -> NoReturn:
    raise StrictJSONError(f"{name} is not allowed")


def _parse_int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise StrictJSONError(f"number of {len(text)} characters is too long")
    return int(text)


def _parse_float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise StrictJSONError(f"number of {len(text)} characters is too long")
    value = float(text)
    if not math.isfinite(value):
        raise StrictJSONError(f"number {text} is out of range")
    return value


def unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise StrictJSONError(f"duplicate key {brief(key)}")
        out[key] = value
    return out


_DECODER = json.JSONDecoder(
    object_pairs_hook=unique_pairs,
    parse_int=_parse_int,
    parse_float=_parse_float,
    parse_constant=_reject_constant,
)


def _check_depth(text: str) -> None:
    """Reject deep nesting before the (recursive) parser sees it.

    With strings removed, each pass deletes the innermost empty pairs; brackets left after
    ``MAX_DEPTH`` passes mean deeper nesting (or unbalanced brackets, an error either way).
    """
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    for _ in range(MAX_DEPTH):
        brackets = _EMPTY_PAIR.sub("", brackets)
    if brackets:
        raise StrictJSONError(f"nested deeper than {MAX_DEPTH} levels, or brackets unbalanced")


def loads_strict(text: str) -> Any:
    """Parse ``text`` strictly; raises :class:`StrictJSONError` (a ``ValueError``) otherwise."""
    _check_depth(text)
    try:
        return _DECODER.decode(text)
    except StrictJSONError:
        raise
    except (ValueError, RecursionError) as exc:
        raise StrictJSONError(str(exc)) from exc


def _loads_lenient(text: str) -> Any:
    """What an ordinary JSON reader makes of ``text``, or ``None`` if it cannot."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def recognise(
    body: str,
    *,
    dialect: str,
    match: Callable[[Any], bool],
    prefix: re.Pattern[str] | None = None,
) -> Any | None:
    """The strictly parsed body if it is a pointer of ``dialect``, ``None`` if it is not one.

    ``match`` tells from a parsed value whether it has the dialect's shape. A body that fails
    strict parsing is still this dialect's (and then a :class:`PointerError`) when an ordinary
    parser would give it that shape, or when its start matches ``prefix``.
    """
    try:
        value = loads_strict(body)
    except StrictJSONError as exc:
        if (prefix is not None and prefix.match(body)) or match(_loads_lenient(body)):
            raise PointerError(f"malformed {dialect} pointer: {exc}", dialect=dialect) from exc
        return None
    return value if match(value) else None


def first_key_signature(key: str) -> re.Pattern[str]:
    """The start of a JSON object whose first member is ``key``."""
    return re.compile(rf'{JSON_SPACE}\{{{JSON_SPACE}"{re.escape(key)}"{JSON_SPACE}:')


def brief(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for error messages about untrusted input."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def fail(dialect: str, message: str) -> NoReturn:
    """Raise the :class:`PointerError` of a recognised but invalid pointer."""
    raise PointerError(f"invalid {dialect} pointer: {message}", dialect=dialect)


def check_fields(
    obj: Mapping[str, Any],
    *,
    required: frozenset[str],
    allowed: frozenset[str] | None,
    dialect: str,
) -> None:
    """The object has every required field and no field outside ``allowed`` (``None``: any
    other field is ignored)."""
    missing = required.difference(obj)
    if missing:
        fail(dialect, f"missing field(s) {', '.join(sorted(missing))}")
    if allowed is None:
        return
    unknown = set(obj).difference(allowed)
    if unknown:
        fail(dialect, f"unknown field(s) {', '.join(sorted(unknown))}")


def utf8_size(text: str) -> int | None:
    """Byte length of ``text`` as UTF-8; ``None`` for lone surrogates (``"\\ud800"`` gives one)."""
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        return None


def get_str(obj: Mapping[str, Any], name: str, *, dialect: str, max_len: int) -> str:
    """A non-empty string field of at most ``max_len`` UTF-8 bytes."""
    value = obj[name]
    if not isinstance(value, str) or not value:
        fail(dialect, f"{name} must be a non-empty string")
    size = utf8_size(value)
    if size is None:
        fail(dialect, f"{name} is not valid Unicode")
    if size > max_len:
        fail(dialect, f"{name} is longer than {max_len} bytes")
    return value


def get_int(value: object, name: str, *, dialect: str) -> int:
    """A size: an integer (not a boolean) from 0 to :data:`MAX_SIZE`."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SIZE:
        fail(dialect, f"{name} must be an integer from 0 to 2**53, not {brief(value)}")
    return value


def check_name(value: object, name: str, *, dialect: str) -> str:
    """A codec or checksum name: lowercase letters, digits, ``.``, ``_`` and ``-``; 32 at most."""
    if not isinstance(value, str) or not _NAME.match(value):
        fail(dialect, f"{name} must be a name like 'sha256', not {brief(value)}")
    return value


def check_digest(value: object, name: str, *, dialect: str) -> str:
    """A digest: lowercase hex, at most 256 characters."""
    if not isinstance(value, str) or not _DIGEST.match(value):
        fail(dialect, f"{name} must be lowercase hex of at most 256 characters")
    return value


def self_check(fmt: PointerFormat, encoded: EncodedPointer) -> EncodedPointer:
    """``encoded`` if ``fmt`` reads it back; a writer never sends what its own reader rejects."""
    try:
        readable = fmt.decode(encoded.body, encoded.attributes) is not None
    except PointerError as exc:
        raise IncompatibleOptionsError(
            f"cannot write this pointer in the {fmt.name} format: {exc}"
        ) from exc
    if not readable:
        raise IncompatibleOptionsError(f"the {fmt.name} format cannot write this pointer")
    return encoded
