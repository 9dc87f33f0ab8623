"""The transport contract: what a transport plugin is, and a base class that does the claim check.

A transport sends messages to one destination (a queue, a topic, a bus) and, where the service
is pulled, receives them. What every transport has in common lives here, once:

- :class:`Transport`, the protocol: ``destination``, ``offloader``, ``limits``, :meth:`send`
  (one payload) and :meth:`send_batch` (many, with an outcome per entry);
- :class:`Receiver` and :class:`ReceivedMessage`, the pulled side: a received message is a
  :class:`~offload_core.delivery.Delivery` that can be acknowledged or released;
- :class:`TransportBase`, which implements :meth:`send` and :meth:`send_batch` (inline or
  stored, a batch fitted to its total limit by storing its largest entries, a stored payload
  removed again when its message was certainly not sent and kept when the outcome is unknown,
  see :mod:`offload_core.publishing`) on top of two calls a plugin writes: one message, and
  a batch of already prepared messages.

A plugin registers its class through ``offload_register_transports``; every built-in transport
is constructed as ``Transport(destination, offloader, **options)`` (a ``client=`` option takes
an SDK client), and :meth:`Plugins.open_transport
<offload_core.plugins.Plugins.open_transport>` selects one by name.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Protocol,
    TypeAlias,
    TypedDict,
    TypeVar,
    runtime_checkable,
)

from .errors import IncompatibleOptionsError, MessageTooLargeError, OffloadError, TransportError
from .events import ErrorEvent, SentEvent
from .flow import SYNC, StoreIO, resolved, run_sync
from .message import Attribute, AttributeLike, OutgoingMessage, as_attributes
from .observe import Operation, observing
from .offloader import JSON_TYPE, is_json_value
from .policy import utf8_size
from .publishing import compensating_flow, discarded, is_outcome_unknown, never_sent

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .aio.transport import AsyncTransportBase
    from .observe import OperationName
    from .offloader import Offloader, Sendable
    from .pointer import Pointer
    from .policy import Limits

__all__ = [
    "BatchFailure",
    "BatchResult",
    "Entry",
    "ReceivedMessage",
    "Receiver",
    "SendOptions",
    "SendResult",
    "Transport",
    "TransportBase",
    "TransportCore",
]


@dataclass(frozen=True)
class Entry:
    """One message to send: its payload, attributes, an id unique within its batch (numbered
    from 0 when left out), the content type recorded in a stored payload's pointer, and the
    key its payload is stored under if it is stored (``None``: the offloader names it). A
    chosen key replaces what was there, and is removed again, as any payload, when its message
    was certainly not sent."""

    payload: Sendable
    #: Values as :func:`~offload_core.message.as_attributes` takes them; kept as Attributes.
    attributes: Mapping[str, AttributeLike] | None = None
    id: str | None = None
    content_type: str | None = None
    key: str | None = None

    def __post_init__(self) -> None:
        if self.attributes is not None:
            object.__setattr__(self, "attributes", as_attributes(self.attributes))


@dataclass(frozen=True)
class SendResult:
    """A message the service accepted; ``pointer`` is set when its payload was stored."""

    message_id: str
    pointer: Pointer | None = None
    sequence_number: str | None = None
    #: The batch entry's id (``None`` for a single send).
    id: str | None = None
    #: The service's answer (for the AWS transports: as boto3 returns it).
    response: Mapping[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class BatchFailure:
    """A batch entry that was not sent. Its stored payload, if any, has been removed again,
    unless ``outcome_unknown`` (the service may have accepted it after all)."""

    id: str
    code: str
    message: str
    sender_fault: bool
    outcome_unknown: bool = False

    def error(self, operation: str, destination: str, context: str = "") -> TransportError:
        """This failure as the error a single send raises (``context`` prefixes the text)."""
        return TransportError(
            f"{context}{self.code}: {self.message}",
            operation=operation,
            code=self.code,
            destination=destination,
            retryable=not self.sender_fault,
            outcome_unknown=self.outcome_unknown,
        )

    @classmethod
    def unanswered(cls, entry_id: str) -> BatchFailure:
        """An entry the service's answer does not mention: it may have been accepted."""
        return cls(entry_id, "NoAnswer", "the service's answer does not mention it", False, True)


@dataclass(frozen=True)
class BatchResult:
    """What became of each entry of a batch; ``responses`` holds the service's own answers,
    one per call, where the transport keeps them (the AWS transports: as boto3 returns them)."""

    successful: list[SendResult]
    failed: list[BatchFailure]
    responses: list[Mapping[str, Any]] = field(default_factory=list, repr=False)


@runtime_checkable
class Transport(Protocol):
    """Sends payloads of any size to one destination through an :class:`Offloader`."""

    @property
    def destination(self) -> str:
        """The queue, topic or bus, as the service names it."""

    @property
    def offloader(self) -> Offloader:
        """Where payloads are stored, and which stores a consumer may read."""

    @property
    def limits(self) -> Limits:
        """What one message may measure at this destination (and a whole batch)."""

    def send(
        self,
        payload: Sendable,
        *,
        attributes: Mapping[str, AttributeLike] | None = None,
        content_type: str | None = None,
    ) -> SendResult:
        """Send one payload: inline if it fits, else stored and a pointer sent. Raises if the
        message was not sent; a payload stored for it is then removed, unless the outcome is
        unknown."""

    def send_batch(self, entries: Iterable[Entry | Sendable]) -> BatchResult:
        """Send many payloads; each entry's outcome is in the result."""


@runtime_checkable
class ReceivedMessage(Protocol):
    """A message a pulled transport received: a :class:`Delivery` that can be acknowledged."""

    @property
    def message_id(self) -> str: ...

    @property
    def attributes(self) -> dict[str, Attribute]: ...

    @property
    def pointer(self) -> Pointer | None: ...

    def payload(self) -> bytes: ...

    def ack(self, *, force: bool = False) -> None:
        """Remove the message from the destination; the payload stays (other subscribers,
        redrives). Refuses, unless ``force``, when its payload was not delivered intact."""

    def release(self) -> None:
        """Give the message back for another attempt, now."""


@runtime_checkable
class Receiver(Protocol):
    """A transport of a pulled service (a queue)."""

    def receive(
        self, max_messages: int = 10, *, wait_seconds: int | None = None
    ) -> Sequence[ReceivedMessage]: ...


class SendOptions(TypedDict, total=False):
    """What a send takes besides the payload: message ``attributes``, and the
    ``content_type`` recorded in a stored payload's pointer."""

    attributes: Mapping[str, AttributeLike] | None
    content_type: str | None


E = TypeVar("E", bound=Entry)
#: What :meth:`TransportCore._answer_batch` returns: an outcome per message and the
#: service's answer, or an awaitable of them.
Outcomes: TypeAlias = "tuple[list[SendResult | BatchFailure], Mapping[str, Any] | None]"
Answered: TypeAlias = "Outcomes | Awaitable[Outcomes]"

log = logging.getLogger(__name__)


class TransportCore(ABC):
    """The claim check of a transport, for both faces: :class:`TransportBase` (synchronous)
    and :class:`~offload_core.aio.transport.AsyncTransportBase` drive the same flows
    (:mod:`offload_core.flow`).

    A subclass sets :attr:`destination`, :attr:`offloader` and :attr:`limits`, and writes
    :meth:`_send_message` (one prepared message) and, for a service with batch calls,
    :meth:`_send_messages`; :meth:`_outcome_unknown` tells which of its errors mean the
    service may have accepted a message all the same. Everything else (the threshold, storing,
    fitting a batch, removing the payloads of messages certainly not sent) happens here.
    The hooks that do I/O may return their result or an awaitable of it (an asynchronous
    client's call): the flows await what is awaitable.
    """

    #: Entries per batch call; larger batches are split.
    max_batch_entries: ClassVar[int] = 10
    #: The messaging system, as observers name it (``"aws_sqs"``).
    system: ClassVar[str | None] = None
    destination: str
    offloader: Offloader
    #: How stored payloads are written, read and removed: at once (the synchronous face), or
    #: awaited on the caller's loop (an asynchronous transport sets its offloader's).
    _io: StoreIO = SYNC

    @property
    @abstractmethod
    def limits(self) -> Limits:
        """What one message (and one batch) may measure."""

    @abstractmethod
    def _send_message(
        self, message: OutgoingMessage, entry: Entry
    ) -> SendResult | Awaitable[SendResult]:
        """Send one prepared message; raise if the service did not accept it."""

    def _send_messages(
        self, batch: Sequence[tuple[OutgoingMessage, Entry]]
    ) -> list[SendResult | BatchFailure] | Awaitable[list[SendResult | BatchFailure]]:
        """Send prepared messages in one call, an outcome per message in order. By default one
        :meth:`_send_message` each, a failure reported for the message it concerns."""
        return self._one_by_one(batch)

    async def _one_by_one(
        self, batch: Sequence[tuple[OutgoingMessage, Entry]]
    ) -> list[SendResult | BatchFailure]:
        outcomes: list[SendResult | BatchFailure] = []
        for message, entry in batch:
            try:
                result = await resolved(self._send_message(message, entry))
                outcomes.append(replace(result, id=entry.id))
            except Exception as exc:
                outcomes.append(
                    BatchFailure(
                        str(entry.id),
                        type(exc).__name__,
                        str(exc),
                        sender_fault=not getattr(exc, "retryable", False),
                        outcome_unknown=self._outcome_unknown(exc),
                    )
                )
        return outcomes

    def _answer_batch(self, batch: Sequence[tuple[OutgoingMessage, Entry]]) -> Answered:
        """:meth:`_send_messages`, and the service's answer to the call when the transport
        keeps it (for :attr:`BatchResult.responses`); override one or the other (as a plain
        method or a coroutine, as :meth:`_prepare`)."""
        return self._outcomes_alone(batch)

    async def _outcomes_alone(
        self, batch: Sequence[tuple[OutgoingMessage, Entry]]
    ) -> tuple[list[SendResult | BatchFailure], Mapping[str, Any] | None]:
        return await resolved(self._send_messages(batch)), None

    async def _ready(self) -> None:
        """Learn what the flows need to know of the destination before a first send (its
        limit, read from the service), so that they then need no I/O to decide."""
        return None

    def _outcome_unknown(self, exc: BaseException) -> bool:
        """Whether the service may have accepted a message whose send raised ``exc``."""
        return is_outcome_unknown(exc)

    def _check(self, entry: Entry) -> None:
        """Refuse, before anything is stored, what the service cannot take."""
        return None

    def _limits_for(self, entry: Entry) -> Limits:
        """What this entry may measure (a transport whose limit depends on the entry's own
        fields, like EventBridge's, says so here)."""
        return self.limits

    def _prepare(
        self, entry: Entry, payload: Sendable, limits: Limits
    ) -> OutgoingMessage | Awaitable[OutgoingMessage]:
        """The entry's message: inline, or pointing to its stored payload."""
        return self._prepared(entry, payload, limits)

    async def _prepared(self, entry: Entry, payload: Sendable, limits: Limits) -> OutgoingMessage:
        return await self.offloader.prepare_flow(
            payload,
            self._io,
            attributes=entry.attributes,
            limits=limits,
            content_type=entry.content_type,
            key=entry.key,
        )

    async def _discard(self, pointer: Pointer) -> bool:
        """Remove a stored payload, best effort (:meth:`Offloader.discard
        <offload_core.offloader.Offloader.discard>`)."""
        return await self.offloader.discard_flow(pointer, self._io)

    async def _discard_all(self, pointers: Iterable[Pointer | None]) -> None:
        await discarded(pointers, self._discard)

    def _measure(self, message: OutgoingMessage, limits: Limits) -> int:
        return limits.measure(message.body, message.attributes if limits.carries_attributes else {})

    def _entry(self, payload: Sendable) -> Entry:
        """A bare payload as an entry of this transport's kind."""
        return Entry(payload)

    def _carry(self, entry: E, carrier: Mapping[str, str]) -> E:
        """``entry`` carrying the trace context ``carrier``: by default as String attributes,
        counted by the threshold like any other, where the transport carries attributes and
        they fit its attribute limit (else the context does not travel). A transport with a
        channel of its own (SQS's ``AWSTraceHeader``) overrides this."""
        limits = self.limits
        attributes = dict(entry.attributes or {})
        if not limits.carries_attributes or any(name in attributes for name in carrier):
            return entry
        if limits.max_attributes is not None and len(attributes) + len(carrier) > (
            limits.max_attributes
        ):
            return entry
        attributes.update((name, Attribute.string(value)) for name, value in carrier.items())
        return replace(entry, attributes=attributes)

    def _traced(self, entries: Sequence[E], op: Operation) -> list[E]:
        """The entries carrying the trace context observers give ``op``; unchanged when there
        is none, or carrying it fails (tracing never stops a message)."""
        carrier = self.offloader.plugins.inject(op)
        if not carrier:
            return list(entries)
        try:
            return [self._carry(entry, carrier) for entry in entries]
        except Exception:
            log.debug("the trace context does not travel with this message", exc_info=True)
            return list(entries)

    def _observing(self, name: OperationName, **fields: Any) -> AbstractContextManager[Operation]:
        return observing(
            self.offloader.plugins,
            name,
            system=self.system,
            destination=self.destination,
            **fields,
        )

    def _sent(
        self,
        op: Operation,
        outcomes: Sequence[SendResult | BatchFailure],
        messages: Sequence[OutgoingMessage],
    ) -> None:
        """Tell observers what became of each message of ``op`` (``outcomes`` in the order of
        ``messages``)."""
        plugins = self.offloader.plugins
        sent, failed = plugins.listens("offload_sent"), plugins.listens("offload_error")
        if not (sent or failed):
            return
        seconds = time.perf_counter() - op.started
        for outcome, message in zip(outcomes, messages, strict=True):
            if isinstance(outcome, SendResult):
                if sent:
                    size = utf8_size(message.body)
                    location = outcome.pointer.location if outcome.pointer else None
                    plugins.notify(
                        SentEvent(
                            outcome.message_id,
                            self.destination,
                            self.system,
                            size,
                            location,
                            seconds,
                        )
                    )
            elif failed:
                error = outcome.error("send", self.destination)
                plugins.notify(
                    ErrorEvent("send", error, None, None, self.destination, self.system, seconds)
                )

    # -- sending (the flows both faces drive) --------------------------------------------------

    async def _publish_one(self, entry: Entry) -> SendResult:
        """Send one entry: stored first if it does not fit; its payload removed again if the
        send certainly failed."""
        with self._observing("publish") as op:
            self._check(entry)
            (entry,) = self._traced([entry], op)
            message = await resolved(self._prepare(entry, entry.payload, self._limits_for(entry)))
            op.attributes["stored"] = message.pointer is not None
            async with compensating_flow([message.pointer], self._discard, self._outcome_unknown):
                with self._observing("send") as sending:
                    try:
                        result = await resolved(self._send_message(message, entry))
                    except OffloadError as exc:
                        location = message.pointer.location if message.pointer else None
                        self.offloader.plugins.notify(
                            ErrorEvent(
                                "send",
                                exc,
                                location,
                                None,
                                self.destination,
                                self.system,
                                time.perf_counter() - sending.started,
                            )
                        )
                        raise
            op.message_id = result.message_id
            if self.offloader.plugins.observed:
                op.attributes["body_size"] = utf8_size(message.body)
            self._sent(op, [result], [message])
            return result

    async def _publish_batch(self, entries: Iterable[Entry | Sendable]) -> BatchResult:
        """Send many entries, :attr:`max_batch_entries` per call (see ``send_batch``)."""
        successful: list[SendResult] = []
        failed: list[BatchFailure] = []
        responses: list[Mapping[str, Any]] = []
        for chunk in self._numbered(entries):
            result = await self._publish_chunk(chunk)
            successful += result.successful
            failed += result.failed
            responses += result.responses
        return BatchResult(successful, failed, responses)

    def _numbered(self, entries: Iterable[Entry | Sendable]) -> Iterator[list[Entry]]:
        chunk: list[Entry] = []
        for n, item in enumerate(entries):
            entry = item if isinstance(item, Entry) else self._entry(item)
            chunk.append(entry if entry.id is not None else replace(entry, id=str(n)))
            if len(chunk) == self.max_batch_entries:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    def _send_chunk(self, entries: Sequence[Entry]) -> BatchResult:
        """One batch call, synchronously (:meth:`_publish_chunk`)."""
        return run_sync(self._publish_chunk(entries))

    async def _publish_chunk(self, entries: Sequence[Entry]) -> BatchResult:
        """One batch call: prepare and fit every entry, send, and settle each outcome."""
        ids = [str(entry.id) for entry in entries]
        if len(set(ids)) != len(ids):
            raise IncompatibleOptionsError(f"batch entry ids must be distinct: {ids}")
        keys = [entry.key for entry in entries if entry.key is not None]
        if len(set(keys)) != len(keys):
            raise IncompatibleOptionsError(
                f"batch entries chose the same object key: {sorted(keys)}; one payload would "
                "replace the other"
            )
        if len(ids) > self.max_batch_entries:
            raise IncompatibleOptionsError(
                f"{len(ids)} entries in one batch; {self.destination} takes at most "
                f"{self.max_batch_entries}"
            )
        with self._observing("publish", attributes={"message_count": len(entries)}) as op:
            for entry in entries:
                self._check(entry)
            entries = self._traced(entries, op)
            prepared: list[OutgoingMessage] = []
            async with compensating_flow((m.pointer for m in prepared), self._discard, never_sent):
                for entry in entries:
                    limits = self._limits_for(entry)
                    prepared.append(await resolved(self._prepare(entry, entry.payload, limits)))
                await self._fit(prepared, entries)
            pointers = [m.pointer for m in prepared]
            op.attributes["stored"] = sum(p is not None for p in pointers)
            async with compensating_flow(pointers, self._discard, self._outcome_unknown):
                with self._observing("send", attributes={"message_count": len(entries)}):
                    batch = list(zip(prepared, entries, strict=True))
                    outcomes, answer = await resolved(self._answer_batch(batch))
            if len(outcomes) != len(prepared):
                raise RuntimeError(
                    f"{type(self).__name__}._send_messages lost track of its entries"
                )
            failed = [o for o in outcomes if isinstance(o, BatchFailure)]
            for pointer, outcome in zip(pointers, outcomes, strict=True):
                if isinstance(outcome, BatchFailure) and not outcome.outcome_unknown:
                    await self._discard_all([pointer])
            successful = [o for o in outcomes if isinstance(o, SendResult)]
            self._sent(op, outcomes, prepared)
            return BatchResult(successful, failed, [] if answer is None else [answer])

    async def _fit(self, prepared: list[OutgoingMessage], entries: Sequence[Entry]) -> None:
        """Store the largest inline entries until the batch total fits the limit (in place)."""
        limits = [self._limits_for(entry) for entry in entries]
        limit = min(lim.max_size for lim in limits)
        sizes = [self._measure(m, lim) for m, lim in zip(prepared, limits, strict=True)]
        total = sum(sizes)
        if total <= limit:
            return
        if self.offloader.policy.mode == "never":
            raise MessageTooLargeError(
                size=total, limit=limit, reason="the batch total; offloading is off"
            )
        inline = sorted(
            (i for i, m in enumerate(prepared) if m.pointer is None), key=lambda i: -sizes[i]
        )
        for i in inline:
            if total <= limit:
                break
            body, entry = prepared[i].body, entries[i]
            if entry.content_type is None and is_json_value(entry.payload):
                entry = replace(entry, content_type=JSON_TYPE)  # as the first pass typed it
            stored = await resolved(self._prepare(entry, body, limits[i].refusing(body)))
            async with compensating_flow([stored.pointer], self._discard, never_sent):
                size = self._measure(stored, limits[i])
            if size >= sizes[i]:  # the pointer is no smaller than the body it replaces
                await self._discard_all([stored.pointer])
                continue
            prepared[i], total = stored, total - sizes[i] + size
        if total > limit:
            raise MessageTooLargeError(
                size=total,
                limit=limit,
                reason="the batch total, with every entry that helps stored; send fewer entries "
                "per batch or smaller attributes",
            )


class TransportBase(TransportCore):
    """The synchronous face of :class:`TransportCore`: what a transport plugin subclasses."""

    #: The same transport on asyncio, if it has one: what :meth:`Plugins.open_transport
    #: <offload_core.plugins.Plugins.open_transport>` opens for an ``AsyncOffloader``.
    async_face: ClassVar[type[AsyncTransportBase] | None] = None

    def send(self, payload: Sendable, **options: Unpack[SendOptions]) -> SendResult:
        """Send one payload (``options``: :class:`SendOptions`); it is stored first if it does
        not fit. If the send fails, the stored payload is removed again, unless the outcome is
        unknown."""
        return self._send_entry(Entry(payload, **options))

    def _send_entry(self, entry: Entry) -> SendResult:
        return run_sync(self._publish_one(entry))

    def send_batch(self, entries: Iterable[Entry | Sendable]) -> BatchResult:
        """Send many payloads, :attr:`max_batch_entries` per call.

        Each entry is stored if it does not fit alone; then, while a call's total is over the
        limit, its largest inline entries are stored too. Entries without an ``id`` are numbered
        from 0 across the whole batch. Payloads of entries that were not sent are removed again
        (unless their outcome is unknown) and the entries reported in ``failed``; if a call
        itself raises, every payload stored for it is removed (unless its outcome is unknown).
        """
        return run_sync(self._publish_batch(entries))
