"""Amazon SNS: publish payloads of any size to a topic; every subscriber reads them back.

::

    from offload_core.offloader import Offloader
    from offload_transports.sns import SnsTransport

    topic = SnsTransport(topic_arn, Offloader("s3://payloads/orders"))
    topic.send(big_json, attributes={"kind": Attribute.string("order")})

What fits the topic travels inline; the rest is stored and a pointer published. The limit is the
topic's ``MaximumMessageSize`` attribute (read once; 262,144 bytes when the topic does not say),
never more than 1 MiB, counted as SNS counts (UTF-8 bytes of the message and of every attribute's
name, type and value). In a batch the largest entries are stored until the batch total fits.

With an S3 store the pointer is in the AWS format, so the official SQS extended clients (Java,
Python) subscribed with raw message delivery read it as they read their own; offload's readers
also unwrap the SNS envelope of a subscription without raw delivery, and Lambda's SNS records
(:mod:`offload_transports.aws_lambda`). On a FIFO topic with content-based deduplication an
offloaded message gets the payload's digest as ``MessageDeduplicationId``.

:class:`AsyncSnsTransport` is the same topic on asyncio (an aiobotocore client).

``MessageStructure="json"`` (a different message per protocol) is refused: a message per protocol
would need a payload per protocol. Publish one message for every protocol instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar, Final

from offload_core.aio.transport import AsyncTransportBase
from offload_core.aws.arn import region_of
from offload_core.errors import IncompatibleOptionsError
from offload_core.offloader import Offloader, Payload, Sendable
from offload_core.transport import Entry, TransportBase

from ._aws import AsyncAwsTransport, AsyncClients, boto3_client
from ._publish import (
    BatchEntry,
    BatchFailure,
    BatchResult,
    MessageOptions,
    MessagePublisher,
    SendResult,
    _params,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from offload_core.aio.offloader import AsyncOffloader

__all__ = [
    "SNS_MAX_MESSAGE_SIZE",
    "AsyncSnsTransport",
    "BatchEntry",
    "BatchFailure",
    "BatchResult",
    "MessageOptions",
    "SendResult",
    "SnsTransport",
]

#: SNS's own ceiling for a topic configured for large messages.
SNS_MAX_MESSAGE_SIZE: Final = 1_048_576


class SnsTopic(MessagePublisher):
    """One SNS topic, for both faces: its requests and what it refuses."""

    service: ClassVar[str] = "SNS"
    system: ClassVar[str | None] = "aws.sns"
    single_operation: ClassVar[str] = "Publish"
    batch_operation: ClassVar[str] = "PublishBatch"
    attributes_operation: ClassVar[str] = "GetTopicAttributes"
    ceiling: ClassVar[int] = SNS_MAX_MESSAGE_SIZE
    body_field: ClassVar[str] = "Message"
    fifo_attribute: ClassVar[str] = "FifoTopic"

    def __init__(
        self, topic_arn: str, offloader: Offloader, client: Any, max_message_size: int | None
    ) -> None:
        super().__init__(topic_arn, offloader, client, max_message_size)
        self.topic_arn = topic_arn

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.topic_arn!r}, {self.offloader.store.url!r})"

    def _fetch_attributes(self, names: list[str]) -> Any:
        return self.client.get_topic_attributes(TopicArn=self.topic_arn)

    def _call_one(self, request: dict[str, Any]) -> Any:
        return self.client.publish(**request, TopicArn=self.topic_arn)

    def _call_batch(self, requests: list[dict[str, Any]]) -> Any:
        return self.client.publish_batch(
            TopicArn=self.topic_arn, PublishBatchRequestEntries=requests
        )

    def _check(self, entry: Entry) -> None:
        super()._check(entry)
        fields = _params(entry)
        if "MessageStructure" in fields:
            raise IncompatibleOptionsError(
                "MessageStructure='json' sends a different message to each protocol, and offload "
                "stores one payload per message; publish the payload as one message for every "
                "protocol (subscribers resolve it the same way), or prepare each protocol's "
                "message with Offloader.prepare and publish the structure yourself"
            )
        if "DelaySeconds" in fields:
            raise IncompatibleOptionsError("SNS has no delivery delay; delay_seconds is for SQS")


class SnsTransport(SnsTopic, TransportBase):
    """One SNS topic, with payloads that do not fit stored through an :class:`Offloader`.

    :param topic_arn: the topic's ARN.
    :param offloader: where payloads go.
    :param client: a boto3 SNS client; by default one for the region in the ARN.
    :param max_message_size: use this limit instead of reading the topic's
        ``MaximumMessageSize`` (for publishers without ``sns:GetTopicAttributes``).
    """

    def __init__(
        self,
        topic_arn: str,
        offloader: Offloader,
        *,
        client: Any = None,
        max_message_size: int | None = None,
    ) -> None:
        if client is None:
            client = boto3_client("sns", what="the SNS transport", region_name=region_of(topic_arn))
        super().__init__(topic_arn, offloader, client, max_message_size)

    def send(self, payload: Sendable, **options: Unpack[MessageOptions]) -> SendResult:
        """Publish one payload; it is stored first if it does not fit the topic.

        ``options`` (:class:`MessageOptions`): ``attributes``, ``group_id``,
        ``deduplication_id``, ``content_type``, and ``request``, further ``Publish``
        parameters (``Subject``) passed to the client as they are. If SNS refuses the message,
        a payload stored for it is removed again before the error is raised.
        """
        return self._send_entry(BatchEntry(payload, **options))

    #: SNS's own names for :meth:`send` and :meth:`send_batch`.
    publish = send

    def publish_batch(self, entries: Iterable[BatchEntry | Payload]) -> BatchResult:
        """:meth:`send_batch`: ten entries per ``PublishBatch`` call, fitted to the limit."""
        return self.send_batch(entries)


class AsyncSnsTransport(AsyncAwsTransport, SnsTopic, AsyncTransportBase):
    """:class:`SnsTransport` on asyncio: the same topic and rules, every call awaited.

    :param offloader: an :class:`~offload_core.aio.AsyncOffloader`.
    :param client: an aiobotocore SNS client (entered); by default one made from ``session`` on
        first use and closed by :meth:`aclose`.
    """

    _what = "the asynchronous SNS transport"

    def __init__(
        self,
        topic_arn: str,
        offloader: AsyncOffloader,
        *,
        client: Any = None,
        session: Any = None,
        max_message_size: int | None = None,
    ) -> None:
        super().__init__(topic_arn, offloader.offloader, client, max_message_size)
        self.async_offloader = offloader
        self._io = offloader.io
        self._clients = AsyncClients("sns", session, region_name=region_of(topic_arn) or None)

    async def send(self, payload: Sendable, **options: Unpack[MessageOptions]) -> SendResult:
        """Publish one payload (see :meth:`SnsTransport.send`)."""
        return await self._send_entry(BatchEntry(payload, **options))

    publish = send

    async def publish_batch(self, entries: Iterable[BatchEntry | Payload]) -> BatchResult:
        """:meth:`send_batch` (see :meth:`SnsTransport.publish_batch`)."""
        return await self.send_batch(entries)


#: The asynchronous face ``Plugins.open_transport`` opens for an ``AsyncOffloader``.
SnsTransport.async_face = AsyncSnsTransport
