"""The OpenTelemetry observer: spans from offload's operations, metrics from its events."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Literal

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.propagate import get_global_textmap
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace import Link, NonRecordingSpan, Span, SpanContext, SpanKind, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from offload_core import __version__, hookimpl
from offload_core.errors import ConfigurationError, MissingDependencyError
from offload_core.events import ErrorEvent, ResolvedEvent, StoredEvent
from offload_core.observe import Observer, Operation, current

__all__ = ["Telemetry"]

#: The OpenTelemetry semantic conventions these spans and metrics follow.
SCHEMA_URL = "https://opentelemetry.io/schemas/1.37.0"

#: Messaging steps: span kind, ``messaging.operation.type`` and ``messaging.operation.name``.
_MESSAGING: dict[str, tuple[SpanKind, str, str]] = {
    "publish": (SpanKind.PRODUCER, "send", "publish"),
    "send": (SpanKind.CLIENT, "send", "send"),
    "receive": (SpanKind.CLIENT, "receive", "receive"),
    "process": (SpanKind.CONSUMER, "process", "process"),
    "ack": (SpanKind.CLIENT, "settle", "ack"),
}

#: Operation attributes -> span attributes.
_ATTRIBUTES = {
    "stored": "offload.stored",
    "location": "offload.location",
    "store": "offload.store",
    "size": "offload.payload.size",
    "stored_size": "offload.stored.size",
    "codec": "offload.codec",
    "checksum": "offload.checksum",
    "pointer_format": "offload.pointer.format",
    "signed": "offload.pointer.signed",
    "verified": "offload.verified",
    "message_count": "messaging.batch.message_count",
    "body_size": "messaging.message.body.size",
}

PropagatorName = Literal["w3c", "xray", "global"]


def destination_name(destination: str) -> str:
    """A queue's, topic's or bus's name from its URL or ARN (``orders`` of
    ``https://sqs.../123/orders`` and of ``arn:aws:sns:...:orders``)."""
    tail = destination.rsplit(":", 1)[-1] if destination.startswith("arn:") else destination
    return tail.rstrip("/").rsplit("/", 1)[-1]


def _propagator(propagator: PropagatorName | TextMapPropagator) -> TextMapPropagator:
    if isinstance(propagator, TextMapPropagator):
        return propagator
    if propagator == "w3c":
        return TraceContextTextMapPropagator()
    if propagator == "global":
        return get_global_textmap()
    if propagator == "xray":
        try:
            from opentelemetry.propagators.aws import AwsXRayPropagator
        except ImportError as exc:
            raise MissingDependencyError(
                "X-Ray trace propagation", module="opentelemetry-propagator-aws-xray", extra=None
            ) from exc
        return AwsXRayPropagator()
    raise ConfigurationError(
        f"propagator must be 'w3c', 'xray', 'global' or a TextMapPropagator, not {propagator!r}"
    )


class Telemetry(Observer):
    """Traces and metrics of offload's operations, through OpenTelemetry's API.

    :param tracer_provider: where spans go; the global one by default.
    :param meter_provider: where metrics go; the global one by default.
    :param propagator: how the trace context travels in a message: ``"w3c"`` (``traceparent``),
        ``"xray"`` (``X-Amzn-Trace-Id``), ``"global"`` (OpenTelemetry's configured one,
        ``OTEL_PROPAGATORS``) or a ``TextMapPropagator``.

    :meth:`enable` starts it (it registers this object as an offload observer plugin),
    :meth:`disable` stops it; ``with Telemetry(...):`` does both.
    """

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        propagator: PropagatorName | TextMapPropagator = "w3c",
    ) -> None:
        self.propagator = _propagator(propagator)
        self._fallback = TraceContextTextMapPropagator()
        self._shapes: dict[tuple[str, str | None, str | None, bool], Any] = {}
        self.tracer = trace.get_tracer(
            "offload", __version__, tracer_provider, schema_url=SCHEMA_URL
        )
        meter = metrics.get_meter("offload", __version__, meter_provider, schema_url=SCHEMA_URL)
        self._stored = meter.create_counter(
            "offload.payloads.stored", "{payload}", "Payloads written to a store"
        )
        self._resolved = meter.create_counter(
            "offload.payloads.resolved", "{payload}", "Payloads read back and verified"
        )
        self._bytes_stored = meter.create_counter(
            "offload.bytes.stored", "By", "Bytes written to stores (after compression)"
        )
        self._bytes_original = meter.create_counter(
            "offload.bytes.original", "By", "Bytes of the payloads stored, before compression"
        )
        self._bytes_resolved = meter.create_counter(
            "offload.bytes.resolved", "By", "Bytes of the payloads resolved"
        )
        self._store_duration = meter.create_histogram(
            "offload.store.duration", "s", "Time to store a payload"
        )
        self._resolve_duration = meter.create_histogram(
            "offload.resolve.duration", "s", "Time to resolve and verify a payload"
        )
        self._errors = meter.create_counter(
            "offload.errors", "{error}", "Failed stores, resolves and sends"
        )

    # -- spans ---------------------------------------------------------------------------------

    @hookimpl
    def offload_started(self, operation: Operation) -> None:
        if not _wanted(operation):
            return
        span = self._open(operation)
        if current() is operation:  # a step that runs within a call: its span is current
            ctx = trace.set_span_in_context(span)
            operation.state[(self, _CONTEXT)] = ctx
            operation.state[(self, _TOKEN)] = otel_context.attach(ctx)

    def _open(self, operation: Operation, start_time: int | None = None) -> Span:
        """Start ``operation``'s span (and its on-demand parents')."""
        parent = operation.parent
        parent_span: Span | None = None
        if parent is not None:
            parent_span = parent.state.get(self)
            if parent_span is None and parent.name in _ON_DEMAND and parent.seconds is None:
                parent_span = self._open(parent, _wall_ns(parent))
        links = (
            [Link(c) for c in map(self._extract, operation.links) if c is not None]
            if operation.links
            else []
        )
        if parent_span is not None:
            ctx = trace.set_span_in_context(parent_span)
        else:
            ctx = otel_context.get_current()
            ambient = trace.get_current_span(ctx).get_span_context()
            if not ambient.is_valid and len(links) == 1:
                # A consumer with nothing around it continues its one message's trace.
                ctx = trace.set_span_in_context(NonRecordingSpan(links[0].context), ctx)
        kind, name, attributes = self._shape(operation)
        if operation.message_id is not None:
            attributes["messaging.message.id"] = operation.message_id
        span = self.tracer.start_span(name, ctx, kind, attributes, links, start_time)
        operation.state[self] = span
        operation.state[(self, _LINKED)] = len(operation.links)
        return span

    @hookimpl
    def offload_finished(self, operation: Operation) -> None:
        span: Span | None = operation.state.pop(self, None)
        if span is None:
            return
        token = operation.state.pop((self, _TOKEN), None)
        operation.state.pop((self, _CONTEXT), None)
        linked = operation.state.pop((self, _LINKED), 0)
        if len(operation.links) > linked:
            for carrier in operation.links[linked:]:
                found = self._extract(carrier)
                if found is not None:
                    span.add_link(found)
        attributes = _span_attributes(operation.attributes)
        if operation.message_id is not None:
            attributes["messaging.message.id"] = operation.message_id
        if attributes:
            span.set_attributes(attributes)
        error = operation.error
        if error is not None:
            span.set_attribute("error.type", type(error).__qualname__)
            span.record_exception(error)
            span.set_status(StatusCode.ERROR, f"{type(error).__name__}: {error}")
        span.end()
        if token is not None:
            otel_context.detach(token)

    @hookimpl
    def offload_inject(self, operation: Operation, carrier: dict[str, str]) -> None:
        ctx = operation.state.get((self, _CONTEXT))
        if ctx is None and (span := operation.state.get(self)) is not None:
            ctx = trace.set_span_in_context(span)
        self.propagator.inject(carrier, context=ctx)

    def _extract(self, carrier: Mapping[str, str]) -> SpanContext | None:
        """The publisher's span context a message carried, if any."""
        for propagator in (self.propagator, self._fallback):
            found = trace.get_current_span(propagator.extract(carrier)).get_span_context()
            if found.is_valid:
                return found
        return None

    def _shape(self, operation: Operation) -> tuple[SpanKind, str, dict[str, Any]]:
        """A step's span kind, name and first attributes (the same for every step of one kind
        on one destination, so they are made once)."""
        own = operation.system is not None or operation.message_id is not None
        key = (operation.name, operation.find("system"), operation.find("destination"), own)
        shape = self._shapes.get(key)
        if shape is None:
            name, system, destination, _ = key
            kind, op_type, op_name = _MESSAGING.get(name, (SpanKind.INTERNAL, "", ""))
            attributes: dict[str, Any] = {}
            if op_type or own:
                if system is not None:
                    attributes["messaging.system"] = system
                if destination is not None:
                    attributes["messaging.destination.name"] = destination_name(destination)
            if op_type:
                attributes["messaging.operation.type"] = op_type
                attributes["messaging.operation.name"] = op_name
                span_name = f"{op_name} {destination_name(destination)}" if destination else op_name
            else:
                span_name = f"offload.{name}"
            shape = (kind, span_name, attributes)
            if len(self._shapes) < _MAX_SHAPES:
                self._shapes[key] = shape
        return shape[0], shape[1], dict(shape[2])

    # -- metrics -------------------------------------------------------------------------------

    @hookimpl
    def offload_stored(self, event: StoredEvent) -> None:
        labels = _labels(event.system, event.destination, {"offload.codec": event.codec})
        self._stored.add(1, labels)
        self._bytes_stored.add(event.stored_size, labels)
        self._bytes_original.add(event.size, labels)
        self._store_duration.record(event.seconds, labels)

    @hookimpl
    def offload_resolved(self, event: ResolvedEvent) -> None:
        labels = _labels(event.system, event.destination, {"offload.pointer.format": event.dialect})
        self._resolved.add(1, labels)
        self._bytes_resolved.add(event.size, labels)
        self._resolve_duration.record(event.seconds, labels)

    @hookimpl
    def offload_error(self, event: ErrorEvent) -> None:
        labels = {
            "offload.operation": event.operation,
            "error.type": event.error_type,
            "offload.retryable": event.retryable,
        }
        self._errors.add(1, _labels(event.system, event.destination, labels))


#: Steps that get a span only when a step inside them does (preparing that stores).
_ON_DEMAND = frozenset({"prepare"})


def _wanted(operation: Operation) -> bool:
    """Whether a step gets a span of its own as it starts. Preparing gets one when it stores;
    the service call of a publish when the publish stored a payload or sends a batch: one
    inline message is one span (the call inside it is the client library's to trace)."""
    if operation.name in _ON_DEMAND:
        return False
    if operation.name == "send" and operation.parent is not None:
        publish = operation.parent.attributes
        return bool(publish.get("stored")) or publish.get("message_count", 1) > 1
    return True


_TOKEN = "token"
_CONTEXT = "context"
#: Span shapes remembered (destinations are few; past this, shapes are made each time).
_MAX_SHAPES = 4096
_LINKED = "linked"


def _wall_ns(operation: Operation) -> int:
    """When ``operation`` started, on the wall clock."""
    return time.time_ns() - int((time.perf_counter() - operation.started) * 1e9)


def _labels(system: str | None, destination: str | None, more: dict[str, Any]) -> dict[str, Any]:
    out = dict(more)
    if system is not None:
        out["messaging.system"] = system
    if destination is not None:
        out["messaging.destination.name"] = destination_name(destination)
    return out


def _span_attributes(values: Mapping[str, Any]) -> dict[str, Any]:
    out = {_ATTRIBUTES[k]: v for k, v in values.items() if k in _ATTRIBUTES and v is not None}
    size, stored = values.get("size"), values.get("stored_size")
    if isinstance(size, int) and isinstance(stored, int) and stored > 0:
        out["offload.compression.ratio"] = round(size / stored, 4)
    return out
