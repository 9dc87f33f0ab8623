"""Amazon EventBridge: put events whose detail is any size, with routing fields kept inline.

::

    from offload_core.offloader import Offloader
    from offload_transports.eventbridge import EventBridgeTransport

    bus = EventBridgeTransport(
        "orders",
        Offloader("s3://payloads/events", pointer_format="native"),
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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Final, TypedDict, TypeVar, cast

from offload_core.aio.transport import AsyncTransportBase
from offload_core.aws.arn import region_of
from offload_core.aws.errors import is_transient as transient
from offload_core.aws.errors import outcome_unknown, translated
from offload_core.aws.trace import xray_header
from offload_core.errors import (
    IncompatibleOptionsError,
    MessageTooLargeError,
    RoutingFieldError,
)
from offload_core.flow import resolved
from offload_core.message import Attribute, AttributeLike, OutgoingMessage
from offload_core.offloader import Offloader, Sendable
from offload_core.policy import Limits, Measure, utf8_size
from offload_core.publishing import compensating_flow, never_sent
from offload_core.transport import (
    BatchFailure,
    BatchResult,
    Entry,
    SendResult,
    TransportBase,
    TransportCore,
)

from ._aws import AsyncAwsTransport, AsyncClients, boto3_client
from .eventbridge_detail import TRACE_MEMBER, check_kept, with_member, wrap

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from offload_core.aio.offloader import AsyncOffloader

__all__ = [
    "DEFAULT_MAX_ENTRY_SIZE",
    "LEGACY_MAX_ENTRY_SIZE",
    "AsyncEventBridgeTransport",
    "BatchFailure",
    "BatchResult",
    "BusOptions",
    "EventBridgeTransport",
    "EventBus",
    "EventEntry",
    "EventOptions",
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


def entry_measure(
    source: str, detail_type: str, resources: Sequence[str] = (), time: datetime | None = None
) -> Measure:
    """How an entry with these fields measures a detail (the ``measure`` of its
    :class:`~offload_core.policy.Limits`): 14 bytes for ``Time`` if set, plus the UTF-8 bytes
    of ``Source``, ``DetailType``, the detail and each of ``Resources``."""
    fixed = (TIME_BYTES if time is not None else 0) + utf8_size(source) + utf8_size(detail_type)
    fixed += sum(utf8_size(resource) for resource in resources)

    def measure(detail: str, attributes: Mapping[str, Attribute]) -> int:
        return fixed + utf8_size(detail)

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


@dataclass(frozen=True, kw_only=True)
class EventEntry(Entry):
    """One event of :meth:`EventBridgeTransport.send_batch`: ``payload`` is the detail.

    The detail is JSON text (``str`` or bytes), a mapping or list (serialised here), or a
    stream; a streamed detail with fields to keep needs them in ``routing``, since it cannot be
    read before it is stored. ``source`` and ``detail_type`` default to the transport's;
    ``keep`` overrides the transport's. ``request`` holds further ``PutEventsRequestEntry``
    fields, passed on as they are. EventBridge carries no message attributes.
    """

    content_type: str | None = "application/json"
    detail_type: str | None = None
    source: str | None = None
    resources: Sequence[str] = ()
    time: datetime | None = None
    keep: Sequence[str] | None = None
    routing: Mapping[str, Any] | None = None
    trace_header: str | None = None
    #: The trace context the event carries in its detail (:data:`TRACE_MEMBER`); set by
    #: tracing, from the publish step.
    trace_context: Mapping[str, str] | None = None
    request: Mapping[str, Any] | None = None

    @property
    def detail(self) -> Sendable:
        """The event's detail (the payload)."""
        return self.payload


class EventOptions(TypedDict, total=False):
    """What one event may set besides its detail (as :class:`EventEntry` names it)."""

    attributes: Mapping[str, AttributeLike] | None
    content_type: str | None
    detail_type: str | None
    source: str | None
    resources: Sequence[str]
    time: datetime | None
    keep: Sequence[str] | None
    routing: Mapping[str, Any] | None
    trace_header: str | None
    request: Mapping[str, Any] | None


class BusOptions(TypedDict, total=False):
    """How a transport puts events on its bus: the entry limit (and the limit of a whole
    call), the detail fields copied beside the pointer of an offloaded event, and the
    ``Source`` and ``DetailType`` of sends that name none."""

    max_entry_size: int
    keep: Sequence[str]
    source: str | None
    detail_type: str | None


E = TypeVar("E", bound=Entry)


class EventBus(TransportCore):
    """One event bus, for both faces: entries, their limit, and the detail kept for rules."""

    system: ClassVar[str | None] = "aws.eventbridge"

    def __init__(
        self,
        bus: str | None,
        offloader: Offloader,
        client: Any,
        *,
        max_entry_size: int = DEFAULT_MAX_ENTRY_SIZE,
        keep: Sequence[str] = (),
        source: str | None = None,
        detail_type: str | None = None,
    ) -> None:
        if offloader.pointer_format != "native":
            raise IncompatibleOptionsError(
                f"EventBridge carries no message attributes, which the "
                f"{offloader.pointer_format!r} pointer format needs; create the Offloader with "
                "pointer_format='native'"
            )
        _check_keep(keep)
        bus = None if bus == "default" else bus
        self.offloader = offloader
        self.client: Any = client
        self.bus = bus
        self.destination = bus or "default"
        self.max_entry_size = max_entry_size
        self.keep = tuple(keep)
        self.source = source
        self.detail_type = detail_type

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.destination!r}, {self.offloader.store.url!r})"

    @property
    def limits(self) -> Limits:
        """The entry limit; an entry's own ``Source``, ``DetailType``, ``Resources`` and
        ``Time`` count against it too (:func:`entry_measure`)."""
        return Limits(
            max_size=self.max_entry_size,
            max_attributes=None,
            carries_attributes=False,
            measure=entry_measure(self.source or "", self.detail_type or ""),
        )

    # -- the TransportBase hooks ---------------------------------------------------------------

    def _entry(self, payload: Sendable) -> Entry:
        return EventEntry(payload)

    def _event(self, entry: Entry) -> EventEntry:
        """``entry`` as an event, with the transport's source and detail type filled in."""
        if not isinstance(entry, EventEntry):
            entry = EventEntry(
                entry.payload,
                entry.attributes,
                id=entry.id,
                content_type=entry.content_type,
                key=entry.key,
            )
        if entry.source is None or entry.detail_type is None:
            entry = replace(
                entry,
                source=entry.source or self.source,
                detail_type=entry.detail_type or self.detail_type,
            )
        return entry

    def _check(self, entry: Entry) -> None:
        event = self._event(entry)
        if event.attributes:
            raise IncompatibleOptionsError(
                "EventBridge carries no message attributes; put what rules match on in the "
                "detail (keep= copies fields beside the pointer of a stored detail)"
            )
        if event.source is None or event.detail_type is None:
            raise IncompatibleOptionsError(
                "an event needs a source and a detail type: pass source= and detail_type= to "
                "the send or to the transport"
            )

    def _limits_for(self, entry: Entry) -> Limits:
        event = self._event(entry)
        return Limits(
            max_size=self.max_entry_size,
            max_attributes=None,
            carries_attributes=False,
            measure=entry_measure(
                event.source or "", event.detail_type or "", event.resources, event.time
            ),
        )

    def _carry(self, entry: E, carrier: Mapping[str, str]) -> E:
        """The trace context inside the detail (EventBridge has no attributes), and as the
        entry's X-Ray ``TraceHeader`` unless it has one."""
        event = self._event(entry)
        header = event.trace_header
        if header is None and "TraceHeader" not in (event.request or {}):
            header = xray_header(carrier)
        return cast(E, replace(event, trace_context=dict(carrier), trace_header=header))

    async def _prepare(self, entry: Entry, payload: Sendable, limits: Limits) -> OutgoingMessage:
        event = self._event(entry)
        routing = self._routing(event, payload)
        message = await self._prepare_detail(event, payload, limits)
        context = event.trace_context
        if message.pointer is None:
            traced = with_member(message.body, TRACE_MEMBER, context) if context else None
            if traced is None:
                return message
            policy = self.offloader.policy
            if not policy.should_offload(limits.measure(traced, {}), limits):
                return OutgoingMessage(traced, {}, None)
            if policy.mode == "never":
                return message  # the context does not fit: it does not travel
            body = message.body  # with the context it no longer fits: store it
            message = await self._prepare_detail(event, body, limits.refusing(body))
        if context and TRACE_MEMBER not in routing:
            routing = {**routing, TRACE_MEMBER: dict(context)}
        async with compensating_flow([message.pointer], self._discard, never_sent):
            detail = wrap(message.body, routing)
            size = limits.measure(detail, {})
            if size > limits.max_size:
                raise MessageTooLargeError(
                    size=size, limit=limits.max_size, reason="even with the detail stored"
                )
        return OutgoingMessage(detail, {}, message.pointer)

    async def _prepare_detail(
        self, event: EventEntry, payload: Sendable, limits: Limits
    ) -> OutgoingMessage:
        return await self.offloader.prepare_flow(
            payload, self._io, limits=limits, content_type=event.content_type, key=event.key
        )

    async def _send_message(self, message: OutgoingMessage, entry: Entry) -> SendResult:
        (outcome,) = (await self._answer_batch([(message, entry)]))[0]
        if isinstance(outcome, BatchFailure):
            raise outcome.error(
                "PutEvents",
                self.destination,
                f"EventBridge PutEvents on {self.destination} refused the event: ",
            )
        return outcome

    async def _answer_batch(
        self, batch: Sequence[tuple[OutgoingMessage, Entry]]
    ) -> tuple[list[SendResult | BatchFailure], Mapping[str, Any] | None]:
        """``PutEvents`` answers by position: an ``EventId``, or an ``ErrorCode``."""
        requests = [self._request(message, self._event(entry)) for message, entry in batch]
        with translated("EventBridge", "PutEvents", self.destination):
            response: Mapping[str, Any] = await resolved(self.client.put_events(Entries=requests))
        outcomes: list[SendResult | BatchFailure] = []
        answers = response.get("Entries", [])
        for i, (message, entry) in enumerate(batch):
            answer = answers[i] if i < len(answers) else None
            entry_id = str(entry.id)
            if answer is None:  # not answered: it may have been put, so its detail is kept
                outcomes.append(BatchFailure.unanswered(entry_id))
            elif answer.get("EventId"):
                event_id = str(answer["EventId"])
                outcomes.append(SendResult(event_id, message.pointer, id=entry.id, response=answer))
            else:
                code = str(answer.get("ErrorCode", ""))
                outcomes.append(
                    BatchFailure(
                        entry_id, code, str(answer.get("ErrorMessage", "")), not transient(code)
                    )
                )
        return outcomes, response

    def _outcome_unknown(self, exc: BaseException) -> bool:
        return outcome_unknown(exc)

    def _request(self, message: OutgoingMessage, entry: EventEntry) -> dict[str, Any]:
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


class EventBridgeTransport(EventBus, TransportBase):
    """One event bus, with details that do not fit stored through an :class:`Offloader`.

    :param bus: the bus name or ARN; ``None`` or ``"default"`` for the account's default bus.
    :param offloader: where details go; its pointer format must be ``"native"``.
    :param client: a boto3 EventBridge client; by default one for the region in a bus ARN.
    :param max_entry_size: the entry limit (and the limit of a whole call).
    :param keep: detail fields copied beside the pointer of an offloaded event, for rules.
    :param source: the events' ``Source`` when a send does not name one.
    :param detail_type: the events' ``DetailType`` when a send does not name one.
    """

    def __init__(
        self,
        bus: str | None,
        offloader: Offloader,
        *,
        client: Any = None,
        **options: Unpack[BusOptions],
    ) -> None:
        if client is None:
            client = boto3_client(
                "events", what="the EventBridge transport", region_name=_region(bus)
            )
        super().__init__(bus, offloader, client, **options)

    def send(self, payload: Sendable, **options: Unpack[EventOptions]) -> SendResult:
        """Put one event whose detail is ``payload`` (``options``: :class:`EventOptions`); it
        is stored first if the entry does not fit. If EventBridge refuses it, the stored detail
        is removed and :class:`TransportError` raised."""
        return self._send_entry(EventEntry(payload, **options))


class AsyncEventBridgeTransport(AsyncAwsTransport, EventBus, AsyncTransportBase):
    """:class:`EventBridgeTransport` on asyncio: the same bus and rules, every call awaited.

    :param offloader: an :class:`~offload_core.aio.AsyncOffloader` (native pointer format).
    :param client: an aiobotocore EventBridge client (entered); by default one made from
        ``session`` on first use and closed by :meth:`aclose`.
    """

    _what = "the asynchronous EventBridge transport"

    def __init__(
        self,
        bus: str | None,
        offloader: AsyncOffloader,
        *,
        client: Any = None,
        session: Any = None,
        **options: Unpack[BusOptions],
    ) -> None:
        super().__init__(bus, offloader.offloader, client, **options)
        self.async_offloader = offloader
        self._io = offloader.io
        self._clients = AsyncClients("events", session, region_name=_region(bus) or None)

    async def send(self, payload: Sendable, **options: Unpack[EventOptions]) -> SendResult:
        """Put one event (see :meth:`EventBridgeTransport.send`)."""
        return await self._send_entry(EventEntry(payload, **options))


def _region(bus: str | None) -> str | None:
    """The region in a bus ARN, if ``bus`` is one."""
    return region_of("" if bus in (None, "default") else bus)


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


#: The asynchronous face ``Plugins.open_transport`` opens for an ``AsyncOffloader``.
EventBridgeTransport.async_face = AsyncEventBridgeTransport
