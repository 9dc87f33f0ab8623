"""Trace context in AWS's own channels: the X-Ray trace header.

SQS carries one trace header per message outside the message attributes (the ``AWSTraceHeader``
system attribute), and EventBridge one per event (``TraceHeader``); both take X-Ray's format,
``Root=1-<8 hex time>-<24 hex>;Parent=<16 hex>;Sampled=<0|1>``. A W3C ``traceparent`` maps onto
it and back without loss of the trace id, span id or sampled flag (``tracestate`` does not
travel there).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["XRAY_HEADER", "carrier_with_xray", "xray_header"]

#: The text-map key X-Ray's propagator reads and writes.
XRAY_HEADER = "X-Amzn-Trace-Id"

_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_ROOT = re.compile(r"1-([0-9a-f]{8})-([0-9a-f]{24})$")
_PARENT = re.compile(r"[0-9a-f]{16}$")


def xray_header(carrier: Mapping[str, str]) -> str | None:
    """The X-Ray header for a text map: its own ``X-Amzn-Trace-Id``, else its ``traceparent``
    converted; ``None`` when it holds neither (or an invalid one)."""
    own = carrier.get(XRAY_HEADER)
    if own:
        return own
    match = _TRACEPARENT.match(carrier.get("traceparent", "").strip().lower())
    if match is None:
        return None
    trace_id, span_id, flags = match.groups()
    if trace_id == "0" * 32 or span_id == "0" * 16:
        return None
    sampled = int(flags, 16) & 1
    return f"Root=1-{trace_id[:8]}-{trace_id[8:]};Parent={span_id};Sampled={sampled}"


def carrier_with_xray(carrier: Mapping[str, str], header: str | None) -> dict[str, str]:
    """``carrier`` plus an X-Ray ``header`` a service carried: as ``X-Amzn-Trace-Id``, and as a
    ``traceparent`` when the carrier has none (so either propagator finds the context)."""
    out = dict(carrier)
    if not header:
        return out
    out.setdefault(XRAY_HEADER, header)
    if "traceparent" in out:
        return out
    fields = {}
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        fields[name] = value.strip().lower()
    root = _ROOT.match(fields.get("Root", ""))
    parent = fields.get("Parent", "")
    if root is None or not _PARENT.match(parent) or parent == "0" * 16:
        return out
    sampled = "01" if fields.get("Sampled") == "1" else "00"
    out["traceparent"] = f"00-{root.group(1)}{root.group(2)}-{parent}-{sampled}"
    return out
