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

:class:`AsyncSqsTransport` is the same queue on asyncio (an aiobotocore client; its messages'
payloads, acknowledgements and visibility changes are awaited); both run one set of rules.

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

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar, Final, Generic, TypedDict, TypeVar, cast

from offload_core.aio.delivery import AsyncDelivery
from offload_core.aio.transport import AsyncTransportBase
from offload_core.aws.arn import region_of
from offload_core.aws.errors import translated
from offload_core.aws.events import from_boto_attributes, to_boto_attributes
from offload_core.aws.trace import carrier_with_xray, xray_header
from offload_core.delivery import Delivery, DeliveryCore
from offload_core.errors import TransportError
from offload_core.flow import resolved, run_sync
from offload_core.offloader import Offloader, Sendable
from offload_core.transport import Entry, TransportBase

from ._aws import AsyncAwsTransport, AsyncClients, boto3_client, chunked
from ._publish import (
    MAX_BATCH_ENTRIES,
    BatchEntry,
    BatchFailure,
    BatchResult,
    MessagePublisher,
    QueueMessageOptions,
    SendResult,
    failures,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from offload_core.aio.offloader import AsyncOffloader

__all__ = [
    "SQS_MAX_MESSAGE_SIZE",
    "AsyncSqsMessage",
    "AsyncSqsTransport",
    "BatchEntry",
    "BatchFailure",
    "BatchResult",
    "QueueMessageOptions",
    "QueueOptions",
    "ReceiveOptions",
    "SendResult",
    "SqsMessage",
    "SqsTransport",
    "from_boto_attributes",
    "to_boto_attributes",
]

#: SQS's own ceiling for one message and for a whole batch (since 2025-08).
SQS_MAX_MESSAGE_SIZE: Final = 1_048_576

#: The system attribute that carries a message's X-Ray trace header.
TRACE_ATTRIBUTE: Final = "AWSTraceHeader"

E = TypeVar("E", bound=Entry)


M = TypeVar("M", bound="SqsMessageCore")


class QueueOptions(TypedDict, total=False):
    """How a transport uses its queue: ``delete_payload`` (on acknowledge, also delete the
    payload, after the message; only for a queue that is the payload's sole consumer),
    ``max_message_size`` (instead of reading the queue's ``MaximumMessageSize``, for consumers
    without ``sqs:GetQueueAttributes``) and ``wait_seconds`` (the default long-polling wait)."""

    delete_payload: bool
    max_message_size: int | None
    wait_seconds: int


class ReceiveOptions(TypedDict, total=False):
    """What a receive may set: the long-polling wait (default: the transport's), how long the
    messages stay hidden, and further ``ReceiveMessage`` fields passed on as they are."""

    wait_seconds: int | None
    visibility_timeout: int | None
    request: Mapping[str, Any] | None


class SqsMessageCore(DeliveryCore):
    """A received SQS message, for both faces: the publisher's attributes (pointer markers
    removed, SNS envelope unwrapped), SQS's own, and the receipt handle."""

    system = "aws_sqs"

    def __init__(self, transport: SqsQueue[Any], raw: Mapping[str, Any]) -> None:
        self._transport = transport
        #: The message as the client returned it (its body is the pointer, for an offloaded one).
        self.raw = raw
        self.message_id: str = str(raw.get("MessageId", ""))
        self.destination = transport.queue_url
        #: The receipt handle SQS gave this delivery (never with payload markers embedded).
        self.receipt_handle: str = raw["ReceiptHandle"]
        attributes = from_boto_attributes(raw.get("MessageAttributes"))
        self._io = transport._io
        super().__init__(transport.offloader, raw.get("Body", ""), attributes)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.message_id} {self._state()}>"

    @property
    def system_attributes(self) -> dict[str, str]:
        """SQS's attributes of the message (``ApproximateReceiveCount``, ``SentTimestamp`` ...)."""
        return dict(self.raw.get("Attributes", {}))

    @property
    def trace_context(self) -> dict[str, str]:
        """The publisher's trace context: its attributes, and the ``AWSTraceHeader``."""
        header = self.raw.get("Attributes", {}).get(TRACE_ATTRIBUTE)
        return carrier_with_xray(super().trace_context, header)

    async def _ack(self, force: bool) -> None:
        failed = await self._transport._acknowledge([self], force)
        if failed:
            raise TransportError(
                f"SQS DeleteMessage of {self.message_id} failed: {failed[0].code}: "
                f"{failed[0].message}",
                operation="DeleteMessage",
                code=failed[0].code,
                destination=self._transport.queue_url,
            )

    async def _extend(self, seconds: int) -> None:
        transport = self._transport
        with translated("SQS", "ChangeMessageVisibility", transport.queue_url):
            await resolved(
                transport.client.change_message_visibility(
                    QueueUrl=transport.queue_url,
                    ReceiptHandle=self.receipt_handle,
                    VisibilityTimeout=seconds,
                )
            )


class SqsMessage(SqsMessageCore, Delivery):
    """A received message: its payload (bytes, or a verified stream), the publisher's attributes
    (pointer markers removed, SNS envelope unwrapped), and acknowledge / release / extend.

    A message whose pointer is malformed, or whose payload is missing, corrupt or outside the
    allowed stores, never yields a payload and refuses :meth:`ack`; leave it to be redelivered
    (and, after ``maxReceiveCount``, moved to the dead-letter queue). Read a stream from
    :meth:`open` to its end before :meth:`ack`.
    """

    def ack(self, *, force: bool = False) -> None:
        """Delete the message (and, with ``delete_payload``, then its payload). Refuses, unless
        ``force``, when the payload failed to resolve or an opened stream was not verified."""
        run_sync(self._ack(force))

    def release(self) -> None:
        """Make the message visible again now, for another attempt."""
        self.extend(0)

    def extend(self, seconds: int) -> None:
        """Keep the message invisible for ``seconds`` from now (``ChangeMessageVisibility``)."""
        run_sync(self._extend(seconds))


class AsyncSqsMessage(SqsMessageCore, AsyncDelivery):
    """:class:`SqsMessage`, awaited: ``await message.payload()``, ``async with
    message.open() as stream``, ``await message.ack()``."""

    async def ack(self, *, force: bool = False) -> None:
        """Delete the message (see :meth:`SqsMessage.ack`)."""
        await self._ack(force)

    async def release(self) -> None:
        """Make the message visible again now, for another attempt."""
        await self._extend(0)

    async def extend(self, seconds: int) -> None:
        """Keep the message invisible for ``seconds`` from now."""
        await self._extend(seconds)


class SqsQueue(MessagePublisher, Generic[M]):
    """One SQS queue, for both faces: requests, receiving and deleting, as flows."""

    service: ClassVar[str] = "SQS"
    system: ClassVar[str | None] = "aws_sqs"
    single_operation: ClassVar[str] = "SendMessage"
    batch_operation: ClassVar[str] = "SendMessageBatch"
    attributes_operation: ClassVar[str] = "GetQueueAttributes"
    ceiling: ClassVar[int] = SQS_MAX_MESSAGE_SIZE
    body_field: ClassVar[str] = "MessageBody"
    fifo_attribute: ClassVar[str] = "FifoQueue"
    #: The received messages' class.
    message_class: type[M]

    def __init__(
        self,
        queue_url: str,
        offloader: Offloader,
        client: Any,
        *,
        delete_payload: bool = False,
        max_message_size: int | None = None,
        wait_seconds: int = 20,
    ) -> None:
        super().__init__(queue_url, offloader, client, max_message_size)
        self.queue_url = queue_url
        self.delete_payload = delete_payload
        self.wait_seconds = wait_seconds

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.queue_url!r}, {self.offloader.store.url!r})"

    def _fetch_attributes(self, names: list[str]) -> Any:
        return self.client.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=names)

    def _call_one(self, request: dict[str, Any]) -> Any:
        return self.client.send_message(**request, QueueUrl=self.queue_url)

    def _call_batch(self, requests: list[dict[str, Any]]) -> Any:
        return self.client.send_message_batch(QueueUrl=self.queue_url, Entries=requests)

    def _carry(self, entry: E, carrier: Mapping[str, str]) -> E:
        """The trace context as the message's ``AWSTraceHeader`` (X-Ray's format, outside the
        attribute budget), unless the request sets one; what X-Ray's header cannot hold
        (``tracestate``) does not travel."""
        header = xray_header(carrier)
        if header is None:
            return super()._carry(entry, carrier)
        request = dict(entry.request or {}) if isinstance(entry, BatchEntry) else {}
        system = dict(request.get("MessageSystemAttributes") or {})
        if TRACE_ATTRIBUTE in system:
            return entry
        system[TRACE_ATTRIBUTE] = {"DataType": "String", "StringValue": header}
        request["MessageSystemAttributes"] = system
        if isinstance(entry, BatchEntry):
            return cast(E, replace(entry, request=request))
        return cast(
            E,
            BatchEntry(
                entry.payload,
                entry.attributes,
                entry.id,
                entry.content_type,
                entry.key,
                request=request,
            ),
        )

    # -- receiving (flows) ---------------------------------------------------------------------

    def _receive_params(
        self, max_messages: int, **options: Unpack[ReceiveOptions]
    ) -> dict[str, Any]:
        wait_seconds = options.get("wait_seconds")
        params: dict[str, Any] = {
            "MaxNumberOfMessages": max_messages,
            "WaitTimeSeconds": self.wait_seconds if wait_seconds is None else wait_seconds,
            "MessageAttributeNames": ["All"],
            "MessageSystemAttributeNames": ["All"],
        }
        if options.get("visibility_timeout") is not None:
            params["VisibilityTimeout"] = options["visibility_timeout"]
        params.update(options.get("request") or {})
        return params

    async def _receive(self, params: Mapping[str, Any]) -> tuple[dict[str, Any], list[M]]:
        """One ``ReceiveMessage`` call: the client's response and the messages in it; the
        ``receive`` step links the contexts they carry."""
        with self._observing("receive") as op:
            response: dict[str, Any] = await resolved(
                self.client.receive_message(**{**params, "QueueUrl": self.queue_url})
            )
            messages = [self.message_class(self, raw) for raw in response.get("Messages", [])]
            op.attributes["message_count"] = len(messages)
            if self.offloader.plugins.observed:
                op.links.extend(c for c in (m.trace_context for m in messages) if c)
        return response, messages

    async def _acknowledge(
        self, messages: Iterable[SqsMessageCore], force: bool
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
        observed = self.offloader.plugins.observed
        with self._observing(
            "ack",
            message_id=messages[0].message_id if len(messages) == 1 else None,
            attributes={"message_count": len(messages)},
            links=[c for c in (m.trace_context for m in messages) if c] if observed else [],
        ):
            failed: list[BatchFailure] = []
            for chunk in chunked(messages, MAX_BATCH_ENTRIES):
                entries = [
                    {"Id": str(i), "ReceiptHandle": m.receipt_handle} for i, m in enumerate(chunk)
                ]
                with translated("SQS", "DeleteMessageBatch", self.queue_url):
                    response = await resolved(
                        self.client.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
                    )
                failed += failures(response)
                if self.delete_payload:
                    deleted = (chunk[int(ok["Id"])] for ok in response.get("Successful", []))
                    await self._discard_all(m.pointer for m in deleted)
            return failed


class SqsTransport(SqsQueue[SqsMessage], TransportBase):
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

    message_class = SqsMessage

    def __init__(
        self,
        queue_url: str,
        offloader: Offloader,
        *,
        client: Any = None,
        **options: Unpack[QueueOptions],
    ) -> None:
        if client is None:
            client = boto3_client("sqs", what="the SQS transport", region_name=region_of(queue_url))
        super().__init__(queue_url, offloader, client, **options)

    def send(self, payload: Sendable, **options: Unpack[QueueMessageOptions]) -> SendResult:
        """Send one payload; it is stored first if it does not fit the queue.

        ``options`` (:class:`QueueMessageOptions`): ``attributes``, ``group_id``,
        ``deduplication_id``, ``delay_seconds``, ``content_type``, and ``request``, further
        ``SendMessage`` parameters (``MessageSystemAttributes``) passed to the client as they
        are. If SQS refuses the message, a payload stored for it is removed again before the
        error is raised.
        """
        return self._send_entry(BatchEntry(payload, **options))

    def receive(
        self, max_messages: int = 10, **options: Unpack[ReceiveOptions]
    ) -> list[SqsMessage]:
        """Up to ``max_messages`` messages, long polling ``wait_seconds`` (default: the
        transport's); ``visibility_timeout`` and further ``request`` fields as the client takes
        them (:class:`ReceiveOptions`). Every message attribute is requested, so every pointer
        dialect is recognised. Payloads are fetched only when asked for."""
        with translated("SQS", "ReceiveMessage", self.queue_url):
            return run_sync(self._receive(self._receive_params(max_messages, **options)))[1]

    def acknowledge(
        self, messages: Iterable[SqsMessage], *, force: bool = False
    ) -> list[BatchFailure]:
        """Delete messages, ten per ``DeleteMessageBatch`` call; returns those SQS refused.

        Unless ``force``, raises before deleting anything if one of them failed to resolve or
        was opened and not verified. With ``delete_payload``, a payload is deleted only after
        SQS reports its message deleted.
        """
        return run_sync(self._acknowledge(messages, force))


class AsyncSqsTransport(AsyncAwsTransport, SqsQueue[AsyncSqsMessage], AsyncTransportBase):
    """:class:`SqsTransport` on asyncio: the same queue and rules, every call awaited.

    :param offloader: an :class:`~offload_core.aio.AsyncOffloader`.
    :param client: an aiobotocore SQS client (entered); by default one made from ``session``
        (or a new aiobotocore session) on first use, for the region in the queue URL, and
        closed by :meth:`aclose` (``async with AsyncSqsTransport(...) as queue``).

    The other parameters are :class:`SqsTransport`'s.
    """

    message_class = AsyncSqsMessage
    _what = "the asynchronous SQS transport"

    def __init__(
        self,
        queue_url: str,
        offloader: AsyncOffloader,
        *,
        client: Any = None,
        session: Any = None,
        **options: Unpack[QueueOptions],
    ) -> None:
        super().__init__(queue_url, offloader.offloader, client, **options)
        self.async_offloader = offloader
        self._io = offloader.io
        self._clients = AsyncClients("sqs", session, region_name=region_of(queue_url) or None)

    async def send(self, payload: Sendable, **options: Unpack[QueueMessageOptions]) -> SendResult:
        """Send one payload (see :meth:`SqsTransport.send`)."""
        return await self._send_entry(BatchEntry(payload, **options))

    async def receive(
        self, max_messages: int = 10, **options: Unpack[ReceiveOptions]
    ) -> list[AsyncSqsMessage]:
        """Up to ``max_messages`` messages (see :meth:`SqsTransport.receive`)."""
        await self._connect()
        with translated("SQS", "ReceiveMessage", self.queue_url):
            return (await self._receive(self._receive_params(max_messages, **options)))[1]

    async def acknowledge(
        self, messages: Iterable[AsyncSqsMessage], *, force: bool = False
    ) -> list[BatchFailure]:
        """Delete messages (see :meth:`SqsTransport.acknowledge`)."""
        await self._connect()
        return await self._acknowledge(messages, force)


#: The asynchronous face ``Plugins.open_transport`` opens for an ``AsyncOffloader``.
SqsTransport.async_face = AsyncSqsTransport
