"""offload: large messages on AWS SNS, SQS and EventBridge through the claim-check pattern."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from . import errors
from .hookspecs import hookimpl
from .message import Attribute, OutgoingMessage
from .offloader import Offloader, Received
from .plugins import Plugins, default_plugins, set_default_plugins
from .pointer import Pointer, Signature
from .policy import Limits, Policy
from .signing import HmacSigner, Signer

try:
    __version__ = version("offload")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "Attribute",
    "HmacSigner",
    "Limits",
    "Offloader",
    "OutgoingMessage",
    "Plugins",
    "Pointer",
    "Policy",
    "Received",
    "Signature",
    "Signer",
    "__version__",
    "default_plugins",
    "errors",
    "hookimpl",
    "set_default_plugins",
]
