"""Amazon EventBridge: put events whose detail is any size, with routing fields kept inline.

::

    from offload_core.offloader import Offloader
    from offload_transports.eventbridge import EventBridgeTransport

    bus = EventBridgeTransport(
        Offloader("s3://payloads/events", pointer_format="native"),
        bus="orders",
        keep=["type", "tenant"],
    )
    bus.send(order_json, source="shop.orders", detail_type="OrderPlaced")

A detail that fits the entry limit travels as it is. A larger one is stored, and the event's
detail becomes the pointer beside copies of the ``keep`` fields (see
:mod:`offload_transports.eventbridge_detail`), so rules that filter on ``detail.type`` or
``detail.tenant`` still match. An event that lacks a kept field is refused before anything is
stored. EventBridge carries no message attributes, so the pointer is offload's native one.

The entry size is counted as EventBridge counts it (:func:`entry_size`). The default limit is
1,000,000 bytes: AWS gives the limit as "1 MB" (since 2026-01), and the lower reading of that
never sends an entry the higher one would refuse; buses still on the older 256 KB limit take
``max_entry_size=LEGACY_MAX_ENTRY_SIZE``. A ``PutEvents`` call takes ten entries whose sizes
together are held to the same limit; the largest are stored until they fit. Entries EventBridge
refuses are reported per entry, and their stored payloads removed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, ClassVar, Final

from offload_core.errors import (
    IncompatibleOptionsError,
    MessageTooLargeError,
    RoutingFieldError,
    TransportError,
)
from offload_core.message import Attribute, OutgoingMessage
from offload_core.offloader import Offloader, Payload, Sendable
from offload_core.policy import Limits, Measure

from ._aws import boto3_client, region_of, transient
from ._publish import BatchFailure, BatchResult, Publisher, SendResult
from .eventbridge_detail import check_kept, wrap

__all__ = [
    "DEFAULT_MAX_ENTRY_SIZE",
    "LEGACY_MAX_ENTRY_SIZE",
    "BatchFailure",
    "BatchResult",
    "EventBridgeTransport",
    "EventEntry",
    "SendResult",
    "entry_measure",
    "entry_size",
]

#: "1 MB" per entry (2026-01), read as the lower of 10**6 and 2**20 bytes.
DEFAULT_MAX_ENTRY_SIZE: Final = 1_000_000
#: The older limit, "256 KB", as 256 KiB like the SQS and SNS limit of the same name.
LEGACY_MAX_ENTRY_SIZE: Final = 262_144
#: What a ``Time`` counts, when set.
TIME_BYTES: Final = 14


def _utf8(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def entry_measure(
    source: str, detail_type: str, resources: Sequence[str] = (), time: datetime | None = None
) -> Measure:
    """How an entry with these fields measures a detail (the ``measure`` of its
    :class:`~offload_core.policy.Limits`): 14 bytes for ``Time`` if set, plus the UTF-8 bytes
    of ``Source``, ``DetailType``, the detail and each of ``Resources``."""
    fixed = (TIME_BYTES if time is not None else 0) + _utf8(source) + _utf8(detail_type)
    fixed += sum(_utf8(resource) for resource in resources)

    def measure(detail: str, attributes: Mapping[str, Attribute]) -> int:
        return fixed + _utf8(detail)

    return measure


def entry_size(entry: Mapping[str, Any]) -> int:
    """The size of a boto3 ``PutEventsRequestEntry``, as EventBridge computes it."""
    measure = entry_measure(
        entry.get("Source", ""),
        entry.get("DetailType", ""),
        entry.get("Resources", ()),
        entry.get("Time"),
    )
    return measure(entry.get("Detail", ""), {})


@dataclass(frozen=True)
class EventEntry:
    """One event of :meth:`EventBridgeTransport.send_batch`.

    ``detail`` is JSON text (``str`` or bytes), a mapping (serialised here), or a stream; a
    streamed detail with fields to keep needs them in ``routing``, since it cannot be read
    before it is stored. ``keep`` overrides the transport's. ``request`` holds further
    ``PutEventsRequestEntry`` fields, passed on as they are.
    """

    detail: Payload | Mapping[str, Any]
    detail_type: str
    source: str
    resources: Sequence[str] = ()
    time: datetime | None = None
    keep: Sequence[str] | None = None
    routing: Mapping[str, Any] | None = None
    trace_header: str | None = None
    id: str | None = None
    content_type: str | None = "application/json"
    request: Mapping[str, Any] | None = None

    @property
    def payload(self) -> Payload:
        """The detail as a payload: a mapping as compact JSON text."""
        if isinstance(self.detail, Mapping):
            return json.dumps(self.detail, separators=(",", ":"), ensure_ascii=False)
        return self.detail


class EventBridgeTransport(Publisher[EventEntry]):
    """One event bus, with details that do not fit stored through an :class:`Offloader`.

    :param offloader: where details go; its pointer format must be ``"native"``.
    :param bus: the bus name or ARN; ``None`` for the account's default bus.
    :param client: a boto3 EventBridge client; by default one for the region in a bus ARN.
    :param max_entry_size: the entry limit (and the limit of a whole call).
    :param keep: detail fields copied beside the pointer of an offloaded event, for rules.
    """

    service: ClassVar[str] = "EventBridge"
    batch_operation: ClassVar[str] = "PutEvents"

    def __init__(
        self,
        offloader: Offloader,
        *,
        bus: str | None = None,
        client: Any = None,
        max_entry_size: int = DEFAULT_MAX_ENTRY_SIZE,
        keep: Sequence[str] = (),
    ) -> None:
        if offloader.pointer_format != "native":
            raise IncompatibleOptionsError(
                f"EventBridge carries no message attributes, which the "
                f"{offloader.pointer_format!r} pointer format needs; create the Offloader with "
                "pointer_format='native'"
            )
        _check_keep(keep)
        if client is None:
            client = boto3_client(
                "events", what="the EventBridge transport", region_name=region_of(bus or "")
            )
        self.offloader = offloader
        self.client: Any = client
        self.bus = bus
        self.max_entry_size = max_entry_size
        self.keep = tuple(keep)

    def __repr__(self) -> str:
        return f"EventBridgeTransport({self.bus or 'default'!r}, {self.offloader.store.url!r})"

    @property
    def destination(self) -> str:
        return self.bus or "default"

    # -- sending -----------------------------------------------------------------------------

    def send(
        self,
        detail: Payload | Mapping[str, Any],
        *,
        detail_type: str,
        source: str,
        resources: Sequence[str] = (),
        time: datetime | None = None,
        keep: Sequence[str] | None = None,
        routing: Mapping[str, Any] | None = None,
        trace_header: str | None = None,
        content_type: str | None = "application/json",
        request: Mapping[str, Any] | None = None,
    ) -> SendResult:
        """Put one event; its detail is stored first if the entry does not fit. If EventBridge
        refuses it, the stored detail is removed and :class:`TransportError` raised."""
        entry = EventEntry(
            detail,
            detail_type,
            source,
            resources=resources,
            time=time,
            keep=keep,
            routing=routing,
            trace_header=trace_header,
            id="0",
            content_type=content_type,
            request=request,
        )
        result = self.send_batch([entry])
        if result.failed:
            failure = result.failed[0]
            raise TransportError(
                f"EventBridge PutEvents on {self.destination} refused the event: "
                f"{failure.code}: {failure.message}",
                operation="PutEvents",
                code=failure.code,
                destination=self.destination,
                retryable=not failure.sender_fault,
            )
        return result.successful[0]

    def send_batch(self, entries: Iterable[EventEntry]) -> BatchResult:
        """Put many events, ten per ``PutEvents`` call, fitted to the limit; entries without an
        ``id`` are numbered from 0. Refused entries are reported in ``failed`` (their stored
        details removed); if a call itself fails, every detail stored for it is removed."""
        return self._send_batch(entries, lambda e, i: replace(e, id=i))

    # -- the Publisher hooks -----------------------------------------------------------------

    def _limits_for(self, entry: EventEntry) -> Limits:
        return Limits(
            max_size=self.max_entry_size,
            max_attributes=None,
            carries_attributes=False,
            measure=entry_measure(entry.source, entry.detail_type, entry.resources, entry.time),
        )

    def _prepare(self, entry: EventEntry, payload: Sendable, limits: Limits) -> OutgoingMessage:
        routing = self._routing(entry, payload)
        message = self.offloader.prepare(payload, limits=limits, content_type=entry.content_type)
        if message.pointer is None:
            return message
        try:
            detail = wrap(message.body, routing)
            size = limits.measure(detail, {})
            if size > limits.max_size:
                raise MessageTooLargeError(
                    size=size, limit=limits.max_size, reason="even with the detail stored"
                )
        except BaseException:
            self.offloader.discard(message.pointer)
            raise
        return OutgoingMessage(detail, {}, message.pointer)

    def _routing(self, entry: EventEntry, payload: Sendable) -> dict[str, Any]:
        """The kept fields' values: from ``routing``, else from the detail itself."""
        keep = self.keep if entry.keep is None else tuple(entry.keep)
        if not keep:
            return {}
        _check_keep(keep)
        if entry.routing is not None:
            source: Mapping[str, Any] = entry.routing
        elif isinstance(entry.detail, Mapping):
            source = entry.detail
        elif isinstance(payload, (str, bytes, bytearray, memoryview)):
            source = _detail_object(payload, keep)
        else:
            raise RoutingFieldError(
                f"a streamed detail cannot be read for its routing fields {list(keep)} before it "
                "is stored; pass them as routing={...}",
                fields=keep,
            )
        missing = [name for name in keep if name not in source]
        if missing:
            raise RoutingFieldError(
                f"the event ({entry.source}, {entry.detail_type}) has no routing field(s) "
                f"{missing}, which keep= names; rules filtering on them would not match it",
                fields=missing,
            )
        return {name: source[name] for name in keep}

    def _entry_request(self, message: OutgoingMessage, entry: EventEntry) -> dict[str, Any]:
        request: dict[str, Any] = {
            **(entry.request or {}),
            "Source": entry.source,
            "DetailType": entry.detail_type,
            "Detail": message.body,
        }
        if entry.resources:
            request["Resources"] = list(entry.resources)
        if entry.time is not None:
            request["Time"] = entry.time
        if entry.trace_header is not None:
            request["TraceHeader"] = entry.trace_header
        if self.bus is not None:
            request["EventBusName"] = self.bus
        return request

    def _call_batch(self, requests: list[dict[str, Any]]) -> dict[str, Any]:
        entries = [{k: v for k, v in request.items() if k != "Id"} for request in requests]
        response: dict[str, Any] = self.client.put_events(Entries=entries)
        return response

    def _outcomes(
        self, response: Mapping[str, Any], ids: Sequence[str], prepared: Sequence[OutgoingMessage]
    ) -> tuple[list[SendResult], list[BatchFailure]]:
        """``PutEvents`` answers by position: an ``EventId``, or an ``ErrorCode``."""
        successful: list[SendResult] = []
        failed: list[BatchFailure] = []
        answers = response.get("Entries", [])
        for i, (entry_id, message) in enumerate(zip(ids, prepared, strict=True)):
            answer = answers[i] if i < len(answers) else {"ErrorCode": "NoAnswer"}
            if answer.get("EventId"):
                successful.append(
                    SendResult(
                        str(answer["EventId"]), message.pointer, id=entry_id, response=answer
                    )
                )
            else:
                code = str(answer.get("ErrorCode", ""))
                failed.append(
                    BatchFailure(
                        entry_id, code, str(answer.get("ErrorMessage", "")), not transient(code)
                    )
                )
        return successful, failed


def _check_keep(keep: Sequence[str]) -> None:
    if isinstance(keep, str):
        raise IncompatibleOptionsError(f"keep= takes a list of field names, not {keep!r}")
    check_kept(keep)


def _detail_object(detail: str | bytes | bytearray | memoryview, keep: Sequence[str]) -> Any:
    """The detail parsed, to read the fields to keep; it must be a JSON object."""
    try:
        value = json.loads(detail if isinstance(detail, (str, bytes, bytearray)) else bytes(detail))
    except (ValueError, RecursionError) as exc:
        raise RoutingFieldError(
            f"the detail is not JSON, so its routing fields {list(keep)} cannot be read: {exc}",
            fields=keep,
        ) from exc
    if not isinstance(value, dict):
        raise RoutingFieldError(
            f"the detail is JSON but not an object, so it has no routing fields {list(keep)}",
            fields=keep,
        )
    return value
