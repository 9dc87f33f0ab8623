"""Amazon SQS: send payloads of any size through a queue and receive them back verified.

::

    from offload_core import Attribute
    from offload_core.offloader import Offloader
    from offload_transports.sqs import SqsTransport

    queue = SqsTransport(queue_url, Offloader("s3://payloads/orders"))
    queue.send(big_json, attributes={"kind": Attribute.string("order")})
    for message in queue.receive():
        handle(message.payload())  # verified bytes; raises if missing, corrupt or not allowed
        message.ack()

What fits the queue travels inline; the rest is stored and a pointer sent. The limit is the
queue's own ``MaximumMessageSize`` (read once), never more than SQS's 1 MiB, counted as SQS counts
(UTF-8 bytes of the body and of every attribute's name, type and value). A body SQS would refuse
(control characters) is stored rather than sent. In a batch the largest entries are stored until
the batch total fits too. On a FIFO queue with content-based deduplication an offloaded message
gets the payload's digest as ``MessageDeduplicationId``, so a retried send is still deduplicated.

Acknowledging deletes the message only: the payload stays for other subscribers (SNS fan-out,
DLQ redrive) until the store's lifecycle expires it. ``delete_payload=True``, for a queue that is
the payload's only consumer, also deletes the payload, after SQS has deleted the message.
"""

from __future__ import annotations

import io
import logging
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, BinaryIO, Final

from offload_core.errors import (
    IncompatibleOptionsError,
    IntegrityError,
    MessageTooLargeError,
    OffloadError,
    TransportError,
)
from offload_core.message import Attribute, OutgoingMessage
from offload_core.offloader import Offloader, Payload, Received
from offload_core.pipeline import VerifyingReader
from offload_core.pointer import Pointer
from offload_core.policy import Limits, sqs_message_size

from ._aws import (
    boto3_client,
    chunked,
    client_error,
    from_boto_attributes,
    to_boto_attributes,
    translated,
)
from ._utf8 import require_utf8

__all__ = [
    "SQS_MAX_MESSAGE_SIZE",
    "BatchEntry",
    "BatchFailure",
    "BatchResult",
    "QueueInfo",
    "SendResult",
    "SqsMessage",
    "SqsTransport",
    "from_boto_attributes",
    "to_boto_attributes",
]

log = logging.getLogger(__name__)

#: SQS's own ceiling for one message and for a whole batch (since 2025-08).
SQS_MAX_MESSAGE_SIZE: Final = 1_048_576
#: What a queue allows when its attributes cannot be read (the AWS default).
DEFAULT_MAX_MESSAGE_SIZE: Final = 262_144
MAX_BATCH_ENTRIES: Final = 10
MAX_ATTRIBUTES: Final = 10

#: Characters SQS accepts in a message body; a body with any other is stored, not sent.
_UNSENDABLE = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ATTRIBUTE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,256}\Z")
_REGION = re.compile(r"https://sqs\.([a-z0-9-]+)\.amazonaws\.com")


def _sendable_size(body: str, attributes: Mapping[str, Attribute]) -> int:
    """:func:`sqs_message_size`, or "too large for any queue" when SQS would refuse the body."""
    if _UNSENDABLE.search(body):
        return 2**63 - 1
    return sqs_message_size(body, attributes)


def _check_attribute_names(attributes: Mapping[str, Attribute]) -> None:
    for name in attributes:
        if (
            not _ATTRIBUTE_NAME.match(name)
            or name.lower().startswith(("aws.", "amazon."))
            or name.startswith(".")
            or name.endswith(".")
            or ".." in name
        ):
            raise IncompatibleOptionsError(
                f"{name!r} is not a valid SQS message attribute name: up to 256 of A-Z a-z 0-9 "
                "_ - ., no leading, trailing or double period, not starting with AWS. or Amazon."
            )


@dataclass(frozen=True)
class QueueInfo:
    """What the queue's attributes say about sending to it."""

    max_message_size: int
    fifo: bool
    content_based_deduplication: bool


@dataclass(frozen=True)
class BatchEntry:
    """One message of :meth:`SqsTransport.send_batch`; ``request`` holds further
    ``SendMessageBatchRequestEntry`` fields (``MessageSystemAttributes``) passed on as they are."""

    payload: Payload
    attributes: Mapping[str, Attribute] | None = None
    id: str | None = None
    group_id: str | None = None
    deduplication_id: str | None = None
    delay_seconds: int | None = None
    content_type: str | None = None
    request: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class SendResult:
    """A message SQS accepted; ``pointer`` is set when its payload was stored."""

    message_id: str
    pointer: Pointer | None = None
    sequence_number: str | None = None
    #: The batch entry's id (``None`` for a single send).
    id: str | None = None
    #: SQS's answer as boto3 returns it (the response, or the batch's ``Successful`` entry).
    response: Mapping[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class BatchFailure:
    """A batch entry SQS refused; its stored payload, if any, has been removed again."""

    id: str
    code: str
    message: str
    sender_fault: bool


@dataclass(frozen=True)
class BatchResult:
    """What became of each entry of a batch call."""

    successful: list[SendResult]
    failed: list[BatchFailure]


def _failures(response: Mapping[str, Any]) -> list[BatchFailure]:
    return [
        BatchFailure(
            id=str(f.get("Id", "")),
            code=str(f.get("Code", "")),
            message=str(f.get("Message", "")),
            sender_fault=bool(f.get("SenderFault", False)),
        )
        for f in response.get("Failed", [])
    ]


class SqsMessage:
    """A received message: its payload (bytes, or a verified stream), the publisher's attributes
    (pointer markers removed, SNS envelope unwrapped), and acknowledge / release / extend.

    A message whose pointer is malformed, or whose payload is missing, corrupt or outside the
    allowed stores, never yields a payload and refuses :meth:`ack`; leave it to be redelivered
    (and, after ``maxReceiveCount``, moved to the dead-letter queue).
    """

    def __init__(self, transport: SqsTransport, raw: Mapping[str, Any]) -> None:
        self._transport = transport
        #: The message as boto3 returned it (its body is the pointer, for an offloaded one).
        self.raw = raw
        self.message_id: str = raw.get("MessageId", "")
        #: The receipt handle SQS gave this delivery (never with payload markers embedded).
        self.receipt_handle: str = raw["ReceiptHandle"]
        self._received: Received | None = None
        self._error: OffloadError | None = None
        self._stream: BinaryIO | None = None
        attributes = from_boto_attributes(raw.get("MessageAttributes"))
        try:
            self._received = transport.offloader.parse(raw.get("Body", ""), attributes)
        except OffloadError as exc:
            self._error = exc
            self._attributes = Received("", attributes).user_attributes
        else:
            self._attributes = self._received.user_attributes

    def __repr__(self) -> str:
        state = "failed" if self._error else "offloaded" if self.offloaded else "inline"
        return f"<SqsMessage {self.message_id} {state}>"

    @property
    def attributes(self) -> dict[str, Attribute]:
        """The publisher's message attributes, without pointer markers."""
        return dict(self._attributes)

    @property
    def system_attributes(self) -> dict[str, str]:
        """SQS's attributes of the message (``ApproximateReceiveCount``, ``SentTimestamp`` ...)."""
        return dict(self.raw.get("Attributes", {}))

    @property
    def pointer(self) -> Pointer | None:
        """Where the payload is stored; ``None`` for an inline message or a malformed pointer."""
        return self._received.pointer if self._received else None

    @property
    def offloaded(self) -> bool:
        return self.pointer is not None

    @property
    def error(self) -> OffloadError | None:
        """Why the payload could not be delivered, once that is known."""
        return self._error

    def payload(self) -> bytes:
        """The payload as bytes, verified against the pointer's size and digest."""
        received = self._usable()
        if received.pointer is None:
            return received.body.encode() if isinstance(received.body, str) else received.body
        try:
            return self._transport.offloader.read_pointer(received.pointer)
        except OffloadError as exc:
            self._error = exc
            raise

    def open(self) -> BinaryIO:
        """The payload as a stream, verified as it is read: the read that reaches the end raises
        if anything is wrong, so act on the data only then. Read it to the end before
        :meth:`ack`."""
        received = self._usable()
        if received.pointer is None:
            body = received.body
            return io.BytesIO(body.encode() if isinstance(body, str) else body)
        try:
            self._stream = self._transport.offloader.open_pointer(received.pointer)
        except OffloadError as exc:
            self._error = exc
            raise
        return self._stream

    def _usable(self) -> Received:
        if self._error is not None:
            raise self._error
        assert self._received is not None
        return self._received

    def check_deliverable(self) -> None:
        """Raise if the payload is known not to have been delivered intact: resolving it failed,
        or a stream of it was opened and not verified to its end."""
        if self._error is not None:
            raise self._error
        if isinstance(self._stream, VerifyingReader) and not self._stream.verified:
            raise IntegrityError(
                f"the payload of message {self.message_id} was opened but not verified (not read "
                "to its end, or a check failed); read it to the end, or pass force=True",
                location=self._stream.location,
                check="unverified",
            )

    def ack(self, *, force: bool = False) -> None:
        """Delete the message (and, with ``delete_payload``, then its payload). Refuses, unless
        ``force``, when the payload failed to resolve or an opened stream was not verified."""
        failed = self._transport.acknowledge([self], force=force)
        if failed:
            raise TransportError(
                f"SQS DeleteMessage of {self.message_id} failed: {failed[0].code}: "
                f"{failed[0].message}",
                operation="DeleteMessage",
                code=failed[0].code,
                destination=self._transport.queue_url,
            )

    def release(self) -> None:
        """Make the message visible again now, for another attempt."""
        self.extend(0)

    def extend(self, seconds: int) -> None:
        """Keep the message invisible for ``seconds`` from now (``ChangeMessageVisibility``)."""
        transport = self._transport
        with translated("SQS", "ChangeMessageVisibility", transport.queue_url):
            transport.client.change_message_visibility(
                QueueUrl=transport.queue_url,
                ReceiptHandle=self.receipt_handle,
                VisibilityTimeout=seconds,
            )


class SqsTransport:
    """One SQS queue, with payloads that do not fit stored through an :class:`Offloader`.

    :param queue_url: the queue's URL.
    :param offloader: where payloads go, and which stores a consumer may read.
    :param client: a boto3 SQS client; by default one for the region in the queue URL.
    :param delete_payload: on :meth:`acknowledge`, also delete the payload (after the message).
        Only for a queue that is the payload's sole consumer.
    :param max_message_size: use this limit instead of reading the queue's
        ``MaximumMessageSize`` (for consumers without ``sqs:GetQueueAttributes``).
    :param wait_seconds: default long-polling wait of :meth:`receive`.
    """

    def __init__(
        self,
        queue_url: str,
        offloader: Offloader,
        *,
        client: Any = None,
        delete_payload: bool = False,
        max_message_size: int | None = None,
        wait_seconds: int = 20,
    ) -> None:
        if client is None:
            region = _REGION.match(queue_url)
            client = boto3_client(
                "sqs", what="the SQS transport", region_name=region.group(1) if region else None
            )
        self.queue_url = queue_url
        self.offloader = offloader
        self.client: Any = client
        self.delete_payload = delete_payload
        self.wait_seconds = wait_seconds
        self._max_message_size = max_message_size
        self._info: QueueInfo | None = None
        self._limits: Limits | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SqsTransport({self.queue_url!r}, {self.offloader.store.url!r})"

    # -- the queue ---------------------------------------------------------------------------

    @property
    def info(self) -> QueueInfo:
        """The queue's limit and FIFO settings, read once (``GetQueueAttributes``)."""
        with self._lock:
            if self._info is None:
                self._info = self._read_info()
            return self._info

    def _read_info(self) -> QueueInfo:
        fifo = self.queue_url.endswith(".fifo")
        if self._max_message_size is not None and not fifo:
            return QueueInfo(self._max_message_size, fifo=False, content_based_deduplication=False)
        names = ["MaximumMessageSize", "FifoQueue", "ContentBasedDeduplication"]
        try:
            response = self.client.get_queue_attributes(
                QueueUrl=self.queue_url, AttributeNames=names
            )
        except Exception as exc:
            parsed = client_error(exc)
            if parsed is None or parsed[0] not in ("AccessDenied", "AccessDeniedException"):
                raise
            log.warning(
                "cannot read the attributes of %s (%s); assuming a %d-byte limit and no "
                "content-based deduplication; pass max_message_size= to set the limit",
                self.queue_url,
                exc,
                DEFAULT_MAX_MESSAGE_SIZE,
            )
            response = {}
        attributes = response.get("Attributes", {})
        size = self._max_message_size or int(
            attributes.get("MaximumMessageSize", DEFAULT_MAX_MESSAGE_SIZE)
        )
        return QueueInfo(
            max_message_size=size,
            fifo=attributes.get("FifoQueue", str(fifo)).lower() == "true",
            content_based_deduplication=(
                attributes.get("ContentBasedDeduplication", "false").lower() == "true"
            ),
        )

    @property
    def limits(self) -> Limits:
        """What one message (and one batch) may measure: the queue's limit, at most 1 MiB."""
        if self._limits is None:
            measure = sqs_message_size if self.offloader.policy.mode == "never" else _sendable_size
            self._limits = Limits(
                max_size=min(self.info.max_message_size, SQS_MAX_MESSAGE_SIZE),
                max_attributes=MAX_ATTRIBUTES,
                carries_attributes=True,
                measure=measure,
            )
        return self._limits

    # -- sending -----------------------------------------------------------------------------

    def send(
        self,
        payload: Payload,
        *,
        attributes: Mapping[str, Attribute] | None = None,
        group_id: str | None = None,
        deduplication_id: str | None = None,
        delay_seconds: int | None = None,
        content_type: str | None = None,
        request: Mapping[str, Any] | None = None,
    ) -> SendResult:
        """Send one payload; it is stored first if it does not fit the queue.

        ``request`` holds further ``SendMessage`` parameters (``MessageSystemAttributes``),
        passed to boto3 as they are. If SQS refuses the message, a payload stored for it is
        removed again before the error is raised.
        """
        params = _params(group_id, deduplication_id, delay_seconds, request)
        with translated("SQS", "SendMessage", self.queue_url):
            return self._send(payload, attributes or {}, params, content_type)

    def _send(
        self,
        payload: Payload,
        attributes: Mapping[str, Attribute],
        params: Mapping[str, Any],
        content_type: str | None = None,
    ) -> SendResult:
        """:meth:`send` with boto3-shaped parameters and boto3's own errors."""
        _check_attribute_names(attributes)

        def deliver(message: OutgoingMessage) -> SendResult:
            response = self.client.send_message(
                **{**self._request(message, params), "QueueUrl": self.queue_url}
            )
            return SendResult(
                message_id=response.get("MessageId", ""),
                pointer=message.pointer,
                sequence_number=response.get("SequenceNumber"),
                response=response,
            )

        return self.offloader.publish(
            self._checked(payload),
            deliver,
            attributes=attributes,
            limits=self.limits,
            content_type=content_type,
        )

    def send_batch(self, entries: Iterable[BatchEntry | Payload]) -> BatchResult:
        """Send many payloads, ten per ``SendMessageBatch`` call.

        Each entry is stored if it does not fit alone; then, while a call's total is over the
        limit, its largest inline entries are stored too. Entries without an ``id`` are numbered
        from 0. Payloads of entries SQS refuses are removed again and the entries reported in
        ``failed``; if the call itself fails, every payload stored for it is removed.
        """
        successful: list[SendResult] = []
        failed: list[BatchFailure] = []
        numbered = (
            entry if isinstance(entry, BatchEntry) else BatchEntry(entry) for entry in entries
        )
        start = 0
        for chunk in chunked(numbered, MAX_BATCH_ENTRIES):
            chunk = [
                e if e.id is not None else replace(e, id=str(start + i))
                for i, e in enumerate(chunk)
            ]
            start += len(chunk)
            with translated("SQS", "SendMessageBatch", self.queue_url):
                _, result = self._send_chunk(chunk)
            successful += result.successful
            failed += result.failed
        return BatchResult(successful, failed)

    def _send_chunk(self, entries: Sequence[BatchEntry]) -> tuple[dict[str, Any], BatchResult]:
        """One ``SendMessageBatch`` call, with boto3's response and errors."""
        ids = [str(entry.id) for entry in entries]
        if len(set(ids)) != len(ids):
            raise IncompatibleOptionsError(f"batch entry ids must be distinct: {ids}")
        if len(ids) > MAX_BATCH_ENTRIES:
            raise IncompatibleOptionsError(
                f"{len(ids)} entries in one batch; SQS takes at most {MAX_BATCH_ENTRIES}"
            )
        prepared: list[OutgoingMessage] = []
        try:
            for entry in entries:
                attributes = entry.attributes or {}
                _check_attribute_names(attributes)
                prepared.append(
                    self.offloader.prepare(
                        self._checked(entry.payload),
                        attributes=attributes,
                        limits=self.limits,
                        content_type=entry.content_type,
                    )
                )
            self._fit(prepared, entries)
            request = [
                {
                    **self._request(
                        message,
                        _params(e.group_id, e.deduplication_id, e.delay_seconds, e.request),
                    ),
                    "Id": str(e.id),
                }
                for message, e in zip(prepared, entries, strict=True)
            ]
            response: dict[str, Any] = self.client.send_message_batch(
                QueueUrl=self.queue_url, Entries=request
            )
        except BaseException:
            self._discard(m.pointer for m in prepared)
            raise
        by_id = dict(zip(ids, prepared, strict=True))
        failed = _failures(response)
        self._discard(by_id[f.id].pointer for f in failed if f.id in by_id)
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
        return response, BatchResult(successful, failed)

    def _fit(self, prepared: list[OutgoingMessage], entries: Sequence[BatchEntry]) -> None:
        """Store the largest inline entries until the batch total fits the limit (in place)."""
        limits = self.limits
        sizes = [limits.measure(m.body, m.attributes) for m in prepared]
        total = sum(sizes)
        if total <= limits.max_size:
            return
        if self.offloader.policy.mode == "never":
            raise MessageTooLargeError(
                size=total, limit=limits.max_size, reason="the batch total; offloading is off"
            )
        inline = sorted(
            (i for i, m in enumerate(prepared) if m.pointer is None), key=lambda i: -sizes[i]
        )
        for i in inline:
            if total <= limits.max_size:
                break
            message = prepared[i]
            stored = self.offloader.prepare(
                message.body,
                attributes=message.attributes,
                limits=_forcing(limits, message.body),
                content_type=entries[i].content_type,
            )
            size = limits.measure(stored.body, stored.attributes)
            if size >= sizes[i]:  # the pointer is no smaller than the body it replaces
                self._discard([stored.pointer])
                continue
            prepared[i], total = stored, total - sizes[i] + size
        if total > limits.max_size:
            raise MessageTooLargeError(
                size=total,
                limit=limits.max_size,
                reason="the batch total, with every entry that helps stored; send fewer entries "
                "per batch or smaller attributes",
            )

    def _request(self, message: OutgoingMessage, params: Mapping[str, Any]) -> dict[str, Any]:
        """The ``SendMessage`` (or batch entry) fields for ``message``."""
        request = {**params, "MessageBody": message.body}
        if message.attributes:
            request["MessageAttributes"] = to_boto_attributes(message.attributes)
        pointer = message.pointer
        if (
            pointer is not None
            and pointer.digest is not None
            and "MessageDeduplicationId" not in request
            and self.queue_url.endswith(".fifo")
            and self.info.content_based_deduplication
        ):
            # SQS would hash the pointer, whose key is new on every send: use the payload's.
            request["MessageDeduplicationId"] = pointer.digest[:128]
        return request

    def _checked(self, payload: Payload) -> Payload:
        return require_utf8(payload) if self.offloader.pointer_format == "aws" else payload

    def _discard(self, pointers: Iterable[Pointer | None]) -> None:
        for pointer in pointers:
            if pointer is not None:
                self.offloader.discard(pointer)

    # -- receiving ---------------------------------------------------------------------------

    def receive(
        self,
        max_messages: int = 10,
        *,
        wait_seconds: int | None = None,
        visibility_timeout: int | None = None,
        request: Mapping[str, Any] | None = None,
    ) -> list[SqsMessage]:
        """Up to ``max_messages`` messages, long polling ``wait_seconds`` (default: the
        transport's). Every message attribute is requested, so every pointer dialect is
        recognised. Payloads are fetched only when asked for."""
        params: dict[str, Any] = {
            "MaxNumberOfMessages": max_messages,
            "WaitTimeSeconds": self.wait_seconds if wait_seconds is None else wait_seconds,
            "MessageAttributeNames": ["All"],
            "MessageSystemAttributeNames": ["All"],
        }
        if visibility_timeout is not None:
            params["VisibilityTimeout"] = visibility_timeout
        params.update(request or {})
        with translated("SQS", "ReceiveMessage", self.queue_url):
            return self._receive(params)[1]

    def _receive(self, params: Mapping[str, Any]) -> tuple[dict[str, Any], list[SqsMessage]]:
        """One ``ReceiveMessage`` call: boto3's response and the messages in it."""
        response: dict[str, Any] = self.client.receive_message(
            **{**params, "QueueUrl": self.queue_url}
        )
        return response, [SqsMessage(self, raw) for raw in response.get("Messages", [])]

    def acknowledge(
        self, messages: Iterable[SqsMessage], *, force: bool = False
    ) -> list[BatchFailure]:
        """Delete messages, ten per ``DeleteMessageBatch`` call; returns those SQS refused.

        Unless ``force``, raises before deleting anything if one of them failed to resolve or
        was opened and not verified. With ``delete_payload``, a payload is deleted only after
        SQS reports its message deleted.
        """
        messages = list(messages)
        if not force:
            for message in messages:
                message.check_deliverable()
        failed: list[BatchFailure] = []
        for chunk in chunked(messages, MAX_BATCH_ENTRIES):
            entries = [
                {"Id": str(i), "ReceiptHandle": m.receipt_handle} for i, m in enumerate(chunk)
            ]
            with translated("SQS", "DeleteMessageBatch", self.queue_url):
                response = self.client.delete_message_batch(
                    QueueUrl=self.queue_url, Entries=entries
                )
            failed += _failures(response)
            if self.delete_payload:
                deleted = (chunk[int(ok["Id"])] for ok in response.get("Successful", []))
                self._discard(m.pointer for m in deleted)
        return failed


def _params(
    group_id: str | None,
    deduplication_id: str | None,
    delay_seconds: int | None,
    request: Mapping[str, Any] | None,
) -> dict[str, Any]:
    params = dict(request or {})
    if group_id is not None:
        params["MessageGroupId"] = group_id
    if deduplication_id is not None:
        params["MessageDeduplicationId"] = deduplication_id
    if delay_seconds is not None:
        params["DelaySeconds"] = delay_seconds
    return params


def _forcing(limits: Limits, body: str) -> Limits:
    """``limits`` under which ``body`` itself never fits, so that preparing it stores it."""
    measure = limits.measure

    def forced(candidate: str, attributes: Mapping[str, Attribute]) -> int:
        if len(candidate) == len(body) and candidate == body:
            return limits.max_size + 1
        return measure(candidate, attributes)

    return replace(limits, measure=forced)
