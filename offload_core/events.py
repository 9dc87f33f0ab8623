"""Observer hook events: ``offload_stored``, ``offload_resolved``, ``offload_sent``,
``offload_error``.

Each says what happened and where: the location, sizes and duration, and, when it happened for a
message, the message id, the destination and the messaging system (``"aws_sqs"`` ...). A payload
is stored before its message is sent, so a :class:`StoredEvent` has no message id; the
:class:`SentEvent` that follows names both.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ErrorEvent", "ResolvedEvent", "SentEvent", "StoredEvent"]


@dataclass(frozen=True)
class StoredEvent:
    """A payload was written to a store."""

    location: str
    size: int
    stored_size: int
    codec: str
    seconds: float
    checksum: str | None = None
    destination: str | None = None
    system: str | None = None


@dataclass(frozen=True)
class ResolvedEvent:
    """A pointer was read back and verified."""

    location: str
    size: int
    dialect: str
    seconds: float
    message_id: str | None = None
    destination: str | None = None
    system: str | None = None


@dataclass(frozen=True)
class SentEvent:
    """A message was accepted by the service; ``location`` is set when its payload was stored."""

    message_id: str
    destination: str
    system: str | None
    #: The message's body size in bytes (the pointer's, for a stored payload).
    body_size: int
    location: str | None
    seconds: float


@dataclass(frozen=True)
class ErrorEvent:
    """An operation failed: ``"store"``, ``"resolve"`` or ``"send"``."""

    operation: str
    error: BaseException
    location: str | None = None
    message_id: str | None = None
    destination: str | None = None
    system: str | None = None
    seconds: float | None = None

    @property
    def error_type(self) -> str:
        """The error's class name (``DigestMismatchError``)."""
        return type(self.error).__name__

    @property
    def retryable(self) -> bool:
        """Whether trying again may help (the error's ``retryable``; unknown errors: yes)."""
        return bool(getattr(self.error, "retryable", True))
