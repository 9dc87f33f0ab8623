"""SQS queues and SNS topics on the core's transport base: what their APIs add to it.

The claim check itself (inline or stored, batches fitted to their total, payloads of messages
certainly not sent removed and of messages whose outcome is unknown kept) is
:class:`offload_core.transport.TransportBase`'s. Here: the destination's limit and FIFO settings
read from its attributes, attribute names checked, requests in boto3's shape, the FIFO
deduplication id taken from the payload digest, and botocore's errors translated.
"""

from __future__ import annotations

import threading
from abc import abstractmethod
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final, TypeAlias, TypedDict

from offload_core.aws.errors import outcome_unknown, translated
from offload_core.aws.events import to_boto_attributes
from offload_core.aws.limits import check_attribute_names, sendable_size, sqs_message_size
from offload_core.flow import SYNC, SuspendedError, resolved, run_sync
from offload_core.message import AttributeLike, OutgoingMessage, as_attributes
from offload_core.offloader import Offloader, Sendable
from offload_core.policy import Limits
from offload_core.transport import BatchFailure, BatchResult, Entry, SendResult, TransportCore

from ._aws import read_attributes

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "MAX_BATCH_ENTRIES",
    "BatchEntry",
    "BatchFailure",
    "BatchResult",
    "DestinationInfo",
    "MessageOptions",
    "MessagePublisher",
    "QueueMessageOptions",
    "SendResult",
]

#: A client call's response: boto3 returns it, aiobotocore an awaitable of it.
Answer: TypeAlias = "Mapping[str, Any] | Awaitable[Mapping[str, Any]]"

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


@dataclass(frozen=True, kw_only=True)
class BatchEntry(Entry):
    """One SQS or SNS message: FIFO group and deduplication ids, an SQS delay, and in
    ``request`` further fields of the service's entry (``MessageSystemAttributes``,
    ``Subject``) passed on as they are. Fields past ``key`` are keywords only."""

    group_id: str | None = None
    deduplication_id: str | None = None
    #: SQS only.
    delay_seconds: int | None = None
    request: Mapping[str, Any] | None = None


class MessageOptions(TypedDict, total=False):
    """What one SQS or SNS send may set besides the payload (as :class:`BatchEntry` names it):
    message attributes, the content type recorded in a stored payload's pointer, FIFO group
    and deduplication ids, and further request fields passed to the service as they are."""

    attributes: Mapping[str, AttributeLike] | None
    content_type: str | None
    group_id: str | None
    deduplication_id: str | None
    request: Mapping[str, Any] | None


class QueueMessageOptions(MessageOptions, total=False):
    """:class:`MessageOptions`, and SQS's delivery delay."""

    delay_seconds: int | None


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


class MessagePublisher(TransportCore):
    """SQS queues and SNS topics, for both faces: a body and message attributes, the limit
    from the destination's ``MaximumMessageSize`` (read once), FIFO deduplication by payload
    digest. ``client`` is boto3's (synchronous face) or aiobotocore's (asynchronous)."""

    #: Service name for errors (``"SQS"``), its single and batch operations, and the one
    #: that reads the destination's attributes.
    service: ClassVar[str]
    single_operation: ClassVar[str]
    batch_operation: ClassVar[str]
    attributes_operation: ClassVar[str]
    max_batch_entries: ClassVar[int] = MAX_BATCH_ENTRIES
    #: The hard ceiling of the service, whatever the destination's attribute says.
    ceiling: ClassVar[int]
    #: The request field of the body, and the destination's FIFO attribute.
    body_field: ClassVar[str]
    fifo_attribute: ClassVar[str]

    def __init__(
        self, destination: str, offloader: Offloader, client: Any, max_message_size: int | None
    ) -> None:
        self.destination = destination
        self.offloader = offloader
        self.client: Any = client
        self._max_message_size = max_message_size
        self._info: DestinationInfo | None = None
        self._limits: Limits | None = None
        self._lock = threading.Lock()

    @abstractmethod
    def _fetch_attributes(self, names: list[str]) -> Answer:
        """The service's ``Get...Attributes`` response."""

    @abstractmethod
    def _call_one(self, request: dict[str, Any]) -> Answer:
        """The single-message call itself; the client's response."""

    @abstractmethod
    def _call_batch(self, requests: list[dict[str, Any]]) -> Answer:
        """The batch call itself; the client's response."""

    @property
    def info(self) -> DestinationInfo:
        """The destination's limit and FIFO settings, read once (an asynchronous transport
        reads them before its first send)."""
        with self._lock:
            if self._info is None:
                unread = RuntimeError(
                    f"{self.destination}'s limit is read by the first send of an "
                    "asynchronous transport; send first, or enter it (async with)"
                )
                if self.client is None or self._io is not SYNC:  # an asynchronous face
                    raise unread
                try:
                    self._info = run_sync(self._read_info())
                except SuspendedError:
                    raise unread from None
            return self._info

    async def _ready(self) -> None:
        if self._info is None:
            self._info = await self._read_info()

    async def _read_info(self) -> DestinationInfo:
        fifo = self.destination.endswith(".fifo")
        if self._max_message_size is not None and not fifo:
            return DestinationInfo(
                self._max_message_size, fifo=False, content_based_deduplication=False
            )
        names = ["MaximumMessageSize", self.fifo_attribute, "ContentBasedDeduplication"]
        with translated(self.service, self.attributes_operation, self.destination):
            attributes = await read_attributes(
                lambda: self._fetch_attributes(names),
                self.destination,
                assumed=f"a {DEFAULT_MAX_MESSAGE_SIZE}-byte limit and no content-based "
                "deduplication; pass max_message_size= to set the limit",
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

    # -- the TransportBase hooks ---------------------------------------------------------------

    def _entry(self, payload: Sendable) -> Entry:
        return BatchEntry(payload)

    def _check(self, entry: Entry) -> None:
        check_attribute_names(as_attributes(entry.attributes), self.service)

    def _outcome_unknown(self, exc: BaseException) -> bool:
        return outcome_unknown(exc)

    async def _send_message(self, message: OutgoingMessage, entry: Entry) -> SendResult:
        request = self._request(message, entry)
        with translated(self.service, self.single_operation, self.destination):
            response = await resolved(self._call_one(request))
        return SendResult(
            message_id=response.get("MessageId", ""),
            pointer=message.pointer,
            sequence_number=response.get("SequenceNumber"),
            response=response,
        )

    async def _answer_batch(
        self, batch: Sequence[tuple[OutgoingMessage, Entry]]
    ) -> tuple[list[SendResult | BatchFailure], Mapping[str, Any] | None]:
        requests = [{**self._request(m, e), "Id": str(e.id)} for m, e in batch]
        with translated(self.service, self.batch_operation, self.destination):
            response = await resolved(self._call_batch(requests))
        accepted = {str(ok.get("Id")): ok for ok in response.get("Successful", [])}
        refused = {f.id: f for f in failures(response)}
        outcomes: list[SendResult | BatchFailure] = []
        for message, entry in batch:
            entry_id = str(entry.id)
            if entry_id in accepted:
                ok = accepted[entry_id]
                outcomes.append(
                    SendResult(
                        message_id=str(ok.get("MessageId", "")),
                        pointer=message.pointer,
                        sequence_number=ok.get("SequenceNumber"),
                        id=entry_id,
                        response=ok,
                    )
                )
            else:  # an entry the answer does not mention may have been accepted: keep it
                outcomes.append(refused.get(entry_id) or BatchFailure.unanswered(entry_id))
        return outcomes, response

    def _request(self, message: OutgoingMessage, entry: Entry) -> dict[str, Any]:
        """The single call's (or batch entry's) fields for ``message``."""
        request = {**_params(entry), self.body_field: message.body}
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

    def _entry_for(
        self,
        payload: Sendable,
        attributes: Mapping[str, AttributeLike] | None,
        content_type: str | None,
        group_id: str | None = None,
        deduplication_id: str | None = None,
        delay_seconds: int | None = None,
        request: Mapping[str, Any] | None = None,
        key: str | None = None,
    ) -> BatchEntry:
        """One message with the service's own options (``key``: where a stored payload goes)."""
        return BatchEntry(
            payload,
            attributes,
            content_type=content_type,
            key=key,
            group_id=group_id,
            deduplication_id=deduplication_id,
            delay_seconds=delay_seconds,
            request=request,
        )


def _params(entry: Entry) -> dict[str, Any]:
    if not isinstance(entry, BatchEntry):
        return {}
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
