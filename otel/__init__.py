"""OpenTelemetry for offload: spans for every step of the claim check, metrics, and the trace
context carried from publisher to consumer.

Nothing happens on import. Turn it on once, where the application sets up OpenTelemetry::

    from offload_otel import Telemetry

    telemetry = Telemetry().enable()          # the global tracer and meter providers, W3C
    ...
    telemetry.disable()

``Telemetry(propagator="xray")`` carries X-Ray trace headers instead (needs the
``opentelemetry-propagator-aws-xray`` package); any ``TextMapPropagator`` may be given.
The trace context travels in SQS's ``AWSTraceHeader`` system attribute (outside the ten
message attributes), inside an EventBridge event's detail (``traceContext``), and as message
attributes (``traceparent``) on SNS, counted against the message's size and attribute limit
like any other; where the limit is reached it does not travel, and the message is sent all the
same.
"""

from __future__ import annotations

from .telemetry import Telemetry

__all__ = ["Telemetry"]
