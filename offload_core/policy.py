"""When to offload: the threshold policy, measured the way each transport counts message size."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Literal

from .errors import MessageTooLargeError
from .message import Attribute

__all__ = ["Limits", "Measure", "Mode", "Policy", "attribute_bytes", "message_size", "utf8_size"]

Mode = Literal["auto", "always", "never"]

#: How a transport counts a message: ``(body, attributes) -> bytes``.
Measure = Callable[[str, Mapping[str, Attribute]], int]


def utf8_size(text: str) -> int:
    """The UTF-8 length of ``text`` (lone surrogates counted as three bytes, as SQS counts)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def attribute_bytes(attributes: Mapping[str, Attribute]) -> int:
    """UTF-8 bytes of every attribute's name, data type and value."""
    total = 0
    for name, attr in attributes.items():
        value = attr.value if isinstance(attr.value, bytes) else attr.value.encode()
        total += len(name.encode()) + len(attr.data_type.encode()) + len(value)
    return total


def message_size(body: str, attributes: Mapping[str, Attribute]) -> int:
    """The default measure, for a transport with no rule of its own: the body's UTF-8 bytes
    plus :func:`attribute_bytes`. A transport whose service counts otherwise passes its own."""
    return len(body.encode()) + attribute_bytes(attributes)


@dataclass(frozen=True)
class Limits:
    """What one destination accepts; a transport builds it from the queue, topic or bus, with
    the service's own ``measure``. The defaults are a common 256 KiB and ten attributes."""

    #: Largest message in bytes, as ``measure`` counts it.
    max_size: int = 262_144
    #: Most message attributes allowed; ``None`` for no limit.
    max_attributes: int | None = 10
    #: Whether the destination carries message attributes at all (EventBridge does not).
    carries_attributes: bool = True
    measure: Measure = message_size

    def refusing(self, body: str) -> Limits:
        """These limits, under which ``body`` itself never fits: preparing it stores it."""
        measure = self.measure
        too_large = self.max_size + 1

        def forced(candidate: str, attributes: Mapping[str, Attribute]) -> int:
            if len(candidate) == len(body) and candidate == body:
                return too_large
            return measure(candidate, attributes)

        return replace(self, measure=forced)


@dataclass(frozen=True)
class Policy:
    """Offload when the message does not fit ``min(threshold, limits.max_size)``.

    ``mode="always"`` offloads every payload, ``"never"`` refuses (with
    :class:`~offload_core.errors.MessageTooLargeError`) what does not fit instead of offloading.
    """

    mode: Mode = "auto"
    #: A configured ceiling below the transport's own limit, in bytes; ``None`` for the limit.
    threshold: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("auto", "always", "never"):
            raise ValueError(f"mode must be 'auto', 'always' or 'never', not {self.mode!r}")
        if self.threshold is not None and self.threshold < 0:
            raise ValueError("threshold must be a byte count >= 0")

    def effective_limit(self, limits: Limits) -> int:
        if self.threshold is None:
            return limits.max_size
        return min(self.threshold, limits.max_size)

    def should_offload(self, size: int, limits: Limits) -> bool:
        """Whether a message measuring ``size`` bytes must be offloaded."""
        if self.mode == "always":
            return True
        limit = self.effective_limit(limits)
        if size <= limit:
            return False
        if self.mode == "never":
            raise MessageTooLargeError(size=size, limit=limit, reason="offloading is off")
        return True
