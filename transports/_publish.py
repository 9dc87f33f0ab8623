"""Publishing through the AWS messaging APIs with offloading, shared by SQS, SNS and EventBridge.

One message: as :meth:`Offloader.publish`, a payload stored for a send that fails is removed,
unless the send's outcome is unknown (the request may have reached the service: a read timeout,
a connection closed before the answer); then it is kept, as the message may point to it.
A batch of up to ten: each entry is stored if it does not fit alone; then, while the call's total
is over the limit, its largest inline entries are stored too. Payloads of entries the service
refuses are removed again, and if the call itself fails, every payload stored for it (unless
the call's outcome is unknown).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Final, Generic, Protocol, TypeVar

from offload_core.errors import IncompatibleOptionsError, MessageTooLargeError
from offload_core.message import Attribute, AttributeLike, OutgoingMessage, as_attributes
from offload_core.offloader import Offloader, Payload, Sendable
from offload_core.pointer import Pointer
from offload_core.policy import Limits, sqs_message_size

from ._aws import (
    check_attribute_names,
    chunked,
    read_attributes,
    sendable_size,
    to_boto_attributes,
    translated,
)

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "MAX_BATCH_ENTRIES",
    "BatchEntry",
    "BatchFailure",
    "BatchResult",
    "DestinationInfo",
    "MessagePublisher",
    "Publisher",
    "SendResult",
]

#: What a queue or topic allows when its attributes cannot be read (the AWS default).
DEFAULT_MAX_MESSAGE_SIZE: Final = 262_144
MAX_BATCH_ENTRIES: Final = 10
MAX_ATTRIBUTES: Final = 10


@dataclass(frozen=True)
class DestinationInfo:
    """What a queue's or topic's attributes say about sending to it."""

    max_message_size: int
    fifo: bool
    content_based_deduplication: bool


@dataclass(frozen=True)
class BatchEntry:
    """One message of a batch; ``request`` holds further fields of the service's batch entry
    (``MessageSystemAttributes``, ``Subject``) passed on as they are."""

    payload: Sendable
    #: Values as :func:`~offload_core.message.as_attributes` takes them; kept as Attributes.
    attributes: Mapping[str, AttributeLike] | None = None
    id: str | None = None
    group_id: str | None = None
    deduplication_id: str | None = None
    #: SQS only.
    delay_seconds: int | None = None
    content_type: str | None = None
    request: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.attributes is not None:
            object.__setattr__(self, "attributes", as_attributes(self.attributes))


@dataclass(frozen=True)
class SendResult:
    """A message (or event) the service accepted; ``pointer`` is set when its payload was stored."""

    message_id: str
    pointer: Pointer | None = None
    sequence_number: str | None = None
    #: The batch entry's id (``None`` for a single send).
    id: str | None = None
    #: The service's answer as boto3 returns it (the response, or the batch's entry).
    response: Mapping[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class BatchFailure:
    """A batch entry the service refused; its stored payload, if any, has been removed again."""

    id: str
    code: str
    message: str
    sender_fault: bool


@dataclass(frozen=True)
class BatchResult:
    """What became of each entry of a batch call."""

    successful: list[SendResult]
    failed: list[BatchFailure]


#: botocore's errors for a request that may have reached the service: its answer was lost.
_OUTCOME_UNKNOWN: Final = frozenset({"ReadTimeoutError", "ConnectionClosedError"})


def outcome_unknown(exc: BaseException) -> bool:
    """Whether the service may have accepted a request that raised ``exc`` (a read timeout, a
    connection closed before the answer, an interrupted process): the payload a message may
    point to is then kept, and a retry with the same idempotency key sends one message."""
    if not isinstance(exc, Exception):
        return True
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & _OUTCOME_UNKNOWN)


def failures(response: Mapping[str, Any]) -> list[BatchFailure]:
    """The ``Failed`` entries of an SQS or SNS batch response."""
    return [
        BatchFailure(
            id=str(f.get("Id", "")),
            code=str(f.get("Code", "")),
            message=str(f.get("Message", "")),
            sender_fault=bool(f.get("SenderFault", False)),
        )
        for f in response.get("Failed", [])
    ]


def forcing(limits: Limits, body: str) -> Limits:
    """``limits`` under which ``body`` itself never fits, so that preparing it stores it."""
    measure = limits.measure

    def forced(candidate: str, attributes: Mapping[str, Attribute]) -> int:
        if len(candidate) == len(body) and candidate == body:
            return limits.max_size + 1
        return measure(candidate, attributes)

    return replace(limits, measure=forced)


class _Entry(Protocol):
    @property
    def id(self) -> str | None: ...

    @property
    def payload(self) -> Sendable: ...

    @property
    def content_type(self) -> str | None: ...


E = TypeVar("E", bound=_Entry)


class Publisher(ABC, Generic[E]):
    """Batches of entries ``E`` through one destination; subclasses say how an entry is
    prepared, measured, requested and answered."""

    #: Service name for errors (``"SQS"``) and the batch operation's name.
    service: ClassVar[str]
    batch_operation: ClassVar[str]
    offloader: Offloader

    @property
    @abstractmethod
    def destination(self) -> str:
        """The queue URL, topic ARN or bus, for errors."""

    @abstractmethod
    def _limits_for(self, entry: E) -> Limits:
        """What this entry may measure, alone (and what a whole batch may)."""

    @abstractmethod
    def _prepare(self, entry: E, payload: Sendable, limits: Limits) -> OutgoingMessage:
        """The entry's message: inline, or pointing to its stored payload."""

    @abstractmethod
    def _entry_request(self, message: OutgoingMessage, entry: E) -> dict[str, Any]:
        """The batch entry's fields, without its ``Id``."""

    @abstractmethod
    def _call_batch(self, requests: list[dict[str, Any]]) -> dict[str, Any]:
        """The batch call itself; boto3's response."""

    def _outcomes(
        self, response: Mapping[str, Any], ids: Sequence[str], prepared: Sequence[OutgoingMessage]
    ) -> tuple[list[SendResult], list[BatchFailure]]:
        """Accepted and refused entries of a batch response."""
        by_id = dict(zip(ids, prepared, strict=True))
        successful = [
            SendResult(
                message_id=str(ok.get("MessageId", "")),
                pointer=by_id[ok["Id"]].pointer if ok.get("Id") in by_id else None,
                sequence_number=ok.get("SequenceNumber"),
                id=ok.get("Id"),
                response=ok,
            )
            for ok in response.get("Successful", [])
        ]
        return successful, failures(response)

    def _measure(self, message: OutgoingMessage, limits: Limits) -> int:
        return limits.measure(message.body, message.attributes if limits.carries_attributes else {})

    # -- batches -----------------------------------------------------------------------------

    def _send_batch(self, entries: Iterable[E], numbered: Callable[[E, str], E]) -> BatchResult:
        """Chunks of ten, entries without an id numbered from 0 across the whole call."""
        successful: list[SendResult] = []
        failed: list[BatchFailure] = []
        start = 0
        for chunk in chunked(entries, MAX_BATCH_ENTRIES):
            chunk = [
                e if e.id is not None else numbered(e, str(start + i)) for i, e in enumerate(chunk)
            ]
            start += len(chunk)
            with translated(self.service, self.batch_operation, self.destination):
                _, result = self._send_chunk(chunk)
            successful += result.successful
            failed += result.failed
        return BatchResult(successful, failed)

    def _send_chunk(self, entries: Sequence[E]) -> tuple[dict[str, Any], BatchResult]:
        """One batch call: the service's response and what became of each entry."""
        ids = [str(entry.id) for entry in entries]
        if len(set(ids)) != len(ids):
            raise IncompatibleOptionsError(f"batch entry ids must be distinct: {ids}")
        if len(ids) > MAX_BATCH_ENTRIES:
            raise IncompatibleOptionsError(
                f"{len(ids)} entries in one batch; {self.service} takes at most {MAX_BATCH_ENTRIES}"
            )
        prepared: list[OutgoingMessage] = []
        try:
            for entry in entries:
                prepared.append(self._prepare(entry, entry.payload, self._limits_for(entry)))
            self._fit(prepared, entries)
            requests = [
                {**self._entry_request(message, entry), "Id": entry_id}
                for message, entry, entry_id in zip(prepared, entries, ids, strict=True)
            ]
        except BaseException:
            self._discard(m.pointer for m in prepared)
            raise
        try:
            response = self._call_batch(requests)
        except BaseException as exc:
            if not outcome_unknown(exc):
                self._discard(m.pointer for m in prepared)
            raise
        successful, failed = self._outcomes(response, ids, prepared)
        by_id = dict(zip(ids, prepared, strict=True))
        self._discard(by_id[f.id].pointer for f in failed if f.id in by_id)
        return response, BatchResult(successful, failed)

    def _fit(self, prepared: list[OutgoingMessage], entries: Sequence[E]) -> None:
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
            body = prepared[i].body
            stored = self._prepare(entries[i], body, forcing(limits[i], body))
            size = self._measure(stored, limits[i])
            if size >= sizes[i]:  # the pointer is no smaller than the body it replaces
                self._discard([stored.pointer])
                continue
            prepared[i], total = stored, total - sizes[i] + size
        if total > limit:
            raise MessageTooLargeError(
                size=total,
                limit=limit,
                reason="the batch total, with every entry that helps stored; send fewer entries "
                "per batch or smaller attributes",
            )

    def _discard(self, pointers: Iterable[Pointer | None]) -> None:
        for pointer in pointers:
            if pointer is not None:
                self.offloader.discard(pointer)


class MessagePublisher(Publisher[BatchEntry]):
    """SQS queues and SNS topics: a body and message attributes, the limit from the
    destination's ``MaximumMessageSize`` (read once), FIFO deduplication by payload digest."""

    #: The hard ceiling of the service, whatever the destination's attribute says.
    ceiling: ClassVar[int]
    #: The single-message operation, the request field of the body, and the FIFO attribute.
    single_operation: ClassVar[str]
    body_field: ClassVar[str]
    fifo_attribute: ClassVar[str]

    def __init__(self, offloader: Offloader, client: Any, max_message_size: int | None) -> None:
        self.offloader = offloader
        self.client: Any = client
        self._max_message_size = max_message_size
        self._info: DestinationInfo | None = None
        self._limits: Limits | None = None
        self._lock = threading.Lock()

    @abstractmethod
    def _fetch_attributes(self, names: list[str]) -> Mapping[str, Any]:
        """The service's ``Get...Attributes`` response."""

    @abstractmethod
    def _call_one(self, request: dict[str, Any]) -> dict[str, Any]:
        """The single-message call itself; boto3's response."""

    @property
    def info(self) -> DestinationInfo:
        """The destination's limit and FIFO settings, read once."""
        with self._lock:
            if self._info is None:
                self._info = self._read_info()
            return self._info

    def _read_info(self) -> DestinationInfo:
        fifo = self.destination.endswith(".fifo")
        if self._max_message_size is not None and not fifo:
            return DestinationInfo(
                self._max_message_size, fifo=False, content_based_deduplication=False
            )
        names = ["MaximumMessageSize", self.fifo_attribute, "ContentBasedDeduplication"]
        attributes = read_attributes(
            lambda: self._fetch_attributes(names),
            self.destination,
            assumed=f"a {DEFAULT_MAX_MESSAGE_SIZE}-byte limit and no content-based deduplication; "
            "pass max_message_size= to set the limit",
        )
        size = self._max_message_size or int(
            attributes.get("MaximumMessageSize", DEFAULT_MAX_MESSAGE_SIZE)
        )
        return DestinationInfo(
            max_message_size=size,
            fifo=str(attributes.get(self.fifo_attribute, fifo)).lower() == "true",
            content_based_deduplication=(
                str(attributes.get("ContentBasedDeduplication", "false")).lower() == "true"
            ),
        )

    @property
    def limits(self) -> Limits:
        """What one message (and one batch) may measure: the destination's limit, at most the
        service's ceiling. A body SQS would refuse counts as too large, so it is stored."""
        if self._limits is None:
            measure = sqs_message_size if self.offloader.policy.mode == "never" else sendable_size
            self._limits = Limits(
                max_size=min(self.info.max_message_size, self.ceiling),
                max_attributes=MAX_ATTRIBUTES,
                carries_attributes=True,
                measure=measure,
            )
        return self._limits

    def _limits_for(self, entry: BatchEntry) -> Limits:
        return self.limits

    def _check(self, attributes: Mapping[str, Attribute], fields: Mapping[str, Any]) -> None:
        """Refuse, before anything is stored, what the service cannot take."""
        check_attribute_names(attributes, self.service)

    def _prepare(self, entry: BatchEntry, payload: Sendable, limits: Limits) -> OutgoingMessage:
        attributes = as_attributes(entry.attributes)
        self._check(attributes, _params(entry))
        return self.offloader.prepare(
            payload,
            attributes=attributes,
            limits=limits,
            content_type=entry.content_type,
        )

    def _entry_request(self, message: OutgoingMessage, entry: BatchEntry) -> dict[str, Any]:
        return self._request(message, _params(entry))

    def _request(self, message: OutgoingMessage, params: Mapping[str, Any]) -> dict[str, Any]:
        """The single call's (or batch entry's) fields for ``message``."""
        request = {**params, self.body_field: message.body}
        if message.attributes:
            request["MessageAttributes"] = to_boto_attributes(message.attributes)
        pointer = message.pointer
        if (
            pointer is not None
            and pointer.digest is not None
            and "MessageDeduplicationId" not in request
            and self.destination.endswith(".fifo")
            and self.info.content_based_deduplication
        ):
            # The service would hash the pointer, whose key is new on every send: use the
            # payload's digest, so that a retried send is still deduplicated.
            request["MessageDeduplicationId"] = pointer.digest[:128]
        return request

    def _send(
        self,
        payload: Sendable,
        attributes: Mapping[str, Attribute],
        params: Mapping[str, Any],
        content_type: str | None = None,
    ) -> SendResult:
        """One message with boto3-shaped parameters and boto3's own errors."""
        self._check(attributes, params)

        def deliver(message: OutgoingMessage) -> SendResult:
            response = self._call_one(self._request(message, params))
            return SendResult(
                message_id=response.get("MessageId", ""),
                pointer=message.pointer,
                sequence_number=response.get("SequenceNumber"),
                response=response,
            )

        message = self.offloader.prepare(
            payload, attributes=attributes, limits=self.limits, content_type=content_type
        )
        try:
            return deliver(message)
        except BaseException as exc:
            if message.pointer is not None and not outcome_unknown(exc):
                self.offloader.discard(message.pointer)
            raise

    def _send_one(
        self,
        payload: Sendable,
        *,
        attributes: Mapping[str, AttributeLike] | None,
        content_type: str | None,
        params: Mapping[str, Any],
    ) -> SendResult:
        checked = as_attributes(attributes)
        with translated(self.service, self.single_operation, self.destination):
            return self._send(payload, checked, params, content_type)

    def send_batch(self, entries: Iterable[BatchEntry | Payload]) -> BatchResult:
        """Send many payloads, ten per batch call.

        Each entry is stored if it does not fit alone; then, while a call's total is over the
        limit, its largest inline entries are stored too. Entries without an ``id`` are numbered
        from 0. Payloads of entries the service refuses are removed again and the entries
        reported in ``failed``; if the call itself fails, every payload stored for it is removed.
        """
        wrapped = (e if isinstance(e, BatchEntry) else BatchEntry(e) for e in entries)
        return self._send_batch(wrapped, lambda e, i: replace(e, id=i))


def _params(entry: BatchEntry) -> dict[str, Any]:
    return params(entry.group_id, entry.deduplication_id, entry.delay_seconds, entry.request)


def params(
    group_id: str | None,
    deduplication_id: str | None,
    delay_seconds: int | None,
    request: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The request fields of the FIFO and delay options, over ``request``."""
    out = dict(request or {})
    if group_id is not None:
        out["MessageGroupId"] = group_id
    if deduplication_id is not None:
        out["MessageDeduplicationId"] = deduplication_id
    if delay_seconds is not None:
        out["DelaySeconds"] = delay_seconds
    return out
