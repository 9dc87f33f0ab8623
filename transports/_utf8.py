"""The UTF-8 check for AWS-format payloads now lives in the core (``Offloader.prepare`` applies
it for every transport); re-exported here for code that imported it from this module."""

from __future__ import annotations

from offload_core._utf8 import require_utf8

__all__ = ["require_utf8"]
