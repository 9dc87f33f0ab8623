"""Test helpers for plugin authors: conformance suites a third-party plugin runs against itself.

The suites need pytest; they are imported on first use, so ``offload_core.testing.aws`` (the moto
server the demo runs) works without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .backends import BackendConformance
    from .transports import MemoryTransport, TransportConformance

__all__ = ["BackendConformance", "MemoryTransport", "TransportConformance"]


def __getattr__(name: str) -> Any:
    if name == "BackendConformance":
        from .backends import BackendConformance

        return BackendConformance
    if name in ("MemoryTransport", "TransportConformance"):
        from . import transports

        return getattr(transports, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
