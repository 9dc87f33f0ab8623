"""offload: large messages on AWS SNS, SQS and EventBridge through the claim-check pattern.

The public surface: the :class:`Offloader` façade, the plugin contracts (:class:`Store`,
:class:`Transport` and :class:`TransportBase`, :class:`Codec`, :class:`PointerFormat`,
:class:`Delivery`, the :class:`Registrar` that registration hooks receive), their value types,
and :mod:`offload_core.errors`. Store authors also use :mod:`offload_core.store`; plugin
authors prove their plugin with :mod:`offload_core.testing`.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from . import errors
from .codecs import Codec
from .delivery import Delivery
from .hookspecs import hookimpl
from .message import Attribute, AttributeLike, OutgoingMessage
from .offloader import Offloader, Payload, Received, Sendable
from .plugins import Plugins, default_plugins, set_default_plugins
from .pointer import Pointer, PointerFormat, Signature
from .policy import Limits, Policy
from .registry import Registrar
from .signing import HmacSigner, Signer
from .store import ObjectInfo, Store
from .transport import (
    BatchFailure,
    BatchResult,
    Entry,
    ReceivedMessage,
    Receiver,
    SendResult,
    Transport,
    TransportBase,
)


def __getattr__(name: str) -> str:
    """``__version__``, read from the installed distribution when first asked for."""
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        found = version("offload")
    except PackageNotFoundError:  # running from a source tree that was never installed
        found = "0+unknown"
    globals()["__version__"] = found
    return found


__all__ = [
    "Attribute",
    "AttributeLike",
    "BatchFailure",
    "BatchResult",
    "Codec",
    "Delivery",
    "Entry",
    "HmacSigner",
    "Limits",
    "ObjectInfo",
    "Offloader",
    "OutgoingMessage",
    "Payload",
    "Plugins",
    "Pointer",
    "PointerFormat",
    "Policy",
    "Received",
    "ReceivedMessage",
    "Receiver",
    "Registrar",
    "SendResult",
    "Sendable",
    "Signature",
    "Signer",
    "Store",
    "Transport",
    "TransportBase",
    "__version__",
    "default_plugins",
    "errors",
    "hookimpl",
    "set_default_plugins",
]
