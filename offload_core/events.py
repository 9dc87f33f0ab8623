"""Observer hook events: ``offload_stored``, ``offload_resolved``, ``offload_error``."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ErrorEvent", "ResolvedEvent", "StoredEvent"]


@dataclass(frozen=True)
class StoredEvent:
    """A payload was written to a store."""

    location: str
    size: int
    stored_size: int
    codec: str
    seconds: float


@dataclass(frozen=True)
class ResolvedEvent:
    """A pointer was read back and verified."""

    location: str
    size: int
    dialect: str
    seconds: float


@dataclass(frozen=True)
class ErrorEvent:
    """An operation failed; ``operation`` is ``"store"`` or ``"resolve"``."""

    operation: str
    error: BaseException
    location: str | None = None
