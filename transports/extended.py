"""Drop-ins for the official ``amazon-sqs-extended-client`` and ``amazon-sns-extended-client``:
boto3's SQS and SNS calls, argument names and return shapes, with large payloads stored through
an :class:`Offloader`.

::

    import boto3
    from offload_core.offloader import Offloader
    from offload_transports.extended import SqsExtendedClient

    sqs = SqsExtendedClient(boto3.client("sqs"), Offloader("s3://payload-bucket"))
    sqs.send_message(QueueUrl=url, MessageBody=big_text)
    for message in sqs.receive_message(QueueUrl=url).get("Messages", []):
        handle(message["Body"])  # the payload, verified
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

It wraps the client it is given (boto3 itself is left alone); calls it does not handle are passed
to that client. The official client's settings map to options: ``large_payload_support=bucket``
is ``Offloader("s3://bucket")``, ``always_through_s3=True`` is ``Offloader(..., mode="always")``,
``delete_payload_from_s3=True`` is ``delete_payload=True``. Messages are written in the AWS
format both official clients (and the Java ones) read, and messages from them are read here.

A received offloaded message's receipt handle carries the bucket and key between the official
markers, so either library's ``delete_message`` can delete the payload; every call here strips
them before SQS sees the handle. With ``delete_payload``, the message is deleted first and the
payload only once SQS has deleted the message (the official client does it the other way round).
A message from an SNS subscription without raw delivery keeps its envelope, with the payload in
place of the pointer in ``Message`` (the envelope's signature then no longer verifies).

As with the official clients, a String message attribute named ``S3Key`` names the object a
stored payload goes to (under the store's prefix), and stays on the message.

:class:`SnsExtendedClient` does the same for ``publish`` and ``publish_batch`` (the official
Python client has no batch)::

    sns = SnsExtendedClient(boto3.client("sns"), Offloader("s3://payload-bucket"))
    sns.publish(TopicArn=topic_arn, Message=big_text)

Errors from SQS and SNS are boto3's own; errors about payloads are :mod:`offload_core.errors`.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Generic, Literal, TypeVar

from offload_core.aws.events import from_boto_attributes
from offload_core.detect import unwrap_sns
from offload_core.errors import (
    IncompatibleOptionsError,
    OffloadError,
    PayloadNotFoundError,
    TransportError,
)
from offload_core.flow import run_sync
from offload_core.formats.aws import parse_s3_location
from offload_core.message import Attribute
from offload_core.offloader import RESERVED_ATTRIBUTES, Offloader
from offload_core.pointer import Pointer

from .sns import SnsTransport
from .sqs import BatchEntry, SqsMessage, SqsTransport

P = TypeVar("P", SqsTransport, SnsTransport)

__all__ = [
    "S3_KEY_ATTRIBUTE",
    "SnsExtendedClient",
    "SqsExtendedClient",
    "embed_receipt_handle",
    "split_receipt_handle",
]

log = logging.getLogger(__name__)

BUCKET_MARKER = "-..s3BucketName..-"
KEY_MARKER = "-..s3Key..-"
# The key is greedy: it ends at the last key marker, so a key may contain the marker itself.
_EMBEDDED = re.compile(
    rf"{re.escape(BUCKET_MARKER)}(?P<bucket>.*?){re.escape(BUCKET_MARKER)}"
    rf"{re.escape(KEY_MARKER)}(?P<key>.*){re.escape(KEY_MARKER)}(?P<handle>.*)\Z",
    re.DOTALL,
)
_ENTRY_FIELDS = frozenset({"Id", "MessageBody", "MessageAttributes"})
_SNS_ENTRY_FIELDS = frozenset({"Id", "Message", "MessageAttributes"})

#: The message attribute with which the official clients let a sender name the object.
S3_KEY_ATTRIBUTE = "S3Key"


def embed_receipt_handle(receipt_handle: str, location: str) -> str:
    """``receipt_handle`` with the bucket and key of an ``s3://`` location embedded as the AWS
    extended clients do; other locations leave it unchanged."""
    parsed = parse_s3_location(location)
    if parsed is None:
        return receipt_handle
    bucket, key = parsed
    return f"{BUCKET_MARKER}{bucket}{BUCKET_MARKER}{KEY_MARKER}{key}{KEY_MARKER}{receipt_handle}"


def split_receipt_handle(receipt_handle: str) -> tuple[str, str | None]:
    """The receipt handle SQS issued, and the ``s3://bucket/key`` embedded in it, if any."""
    match = _EMBEDDED.match(receipt_handle)
    if match is None:
        return receipt_handle, None
    return match["handle"], f"s3://{match['bucket']}/{match['key']}"


class SqsExtendedClient:
    """boto3's SQS client, extended: payloads too large for a queue go through ``offloader``.

    :param sqs: a boto3 SQS client (``boto3.client("sqs")``).
    :param offloader: where payloads are stored, and which stores may be read.
    :param delete_payload: ``delete_message`` also deletes the payload, after the message.
    :param on_error: what ``receive_message`` does with a message whose payload cannot be
        delivered (missing, corrupt, not allowed, not text). ``"skip"`` (the default) returns
        the other messages and leaves that one in flight (logged): it reappears after its
        visibility timeout, and a redrive policy moves it to the dead-letter queue alone.
        ``"raise"`` raises the first such error, after making the batch's other messages
        visible again at once, so that none of them waits out its visibility timeout.
    :param ignore_payload_not_found: delete a message whose payload is gone from the store
        (``PayloadNotFoundError``: expired or deleted) instead of leaving it to redelivery, as
        the Java client's ``ignorePayloadNotFound`` does. S3 answers 403, not 404, for a missing
        key when the reader may not list the bucket; such a message is not deleted.
    """

    def __init__(
        self,
        sqs: Any,
        offloader: Offloader,
        *,
        delete_payload: bool = False,
        on_error: Literal["raise", "skip"] = "skip",
        ignore_payload_not_found: bool = False,
    ) -> None:
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
        self.sqs: Any = sqs
        self.offloader = offloader
        self.delete_payload = delete_payload
        self.on_error = on_error
        self.ignore_payload_not_found = ignore_payload_not_found
        self._queue = _Transports(SqsTransport, sqs, offloader)

    def __getattr__(self, name: str) -> Any:
        return _passed_on(self, "sqs", name)

    # -- sending -----------------------------------------------------------------------------

    def send_message(
        self,
        *,
        QueueUrl: str,
        MessageBody: str,
        MessageAttributes: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """``SendMessage``, storing the body first if it does not fit the queue."""
        attributes = from_boto_attributes(MessageAttributes)
        with _boto3_errors():
            queue = self._queue(QueueUrl)
            entry = queue._entry_for(
                MessageBody, attributes, None, request=kwargs, key=chosen_key(attributes)
            )
            sent = queue._send_entry(entry)
        return dict(sent.response)

    def send_message_batch(
        self, *, QueueUrl: str, Entries: Sequence[Mapping[str, Any]]
    ) -> dict[str, Any]:
        """``SendMessageBatch``; entries are stored, largest first, until the batch fits. The
        answer is SQS's own (payloads of the entries it refused already removed)."""
        entries = _entries(Entries, "MessageBody", _ENTRY_FIELDS)
        with _boto3_errors():
            result = self._queue(QueueUrl)._send_chunk(entries)
        (response,) = result.responses
        return dict(response)

    # -- receiving ---------------------------------------------------------------------------

    def receive_message(self, *, QueueUrl: str, **kwargs: Any) -> dict[str, Any]:
        """``ReceiveMessage``, with each offloaded message's ``Body`` replaced by its payload
        (verified), its pointer markers removed and its receipt handle carrying the location."""
        names = list(kwargs.get("MessageAttributeNames") or [])
        if not {"All", ".*"}.intersection(names):
            names += sorted(RESERVED_ATTRIBUTES.difference(names))
        response, messages = run_sync(
            self._queue(QueueUrl)._receive({**kwargs, "MessageAttributeNames": names})
        )
        if "Messages" not in response:
            return response
        delivered: list[dict[str, Any]] = []
        failed: list[tuple[SqsMessage, OffloadError]] = []
        for message in messages:
            try:
                delivered.append(self._deliver(message))
            except OffloadError as exc:
                failed.append((message, exc))
        if self.ignore_payload_not_found:
            gone = [m for m, e in failed if isinstance(e, PayloadNotFoundError)]
            failed = [(m, e) for m, e in failed if not isinstance(e, PayloadNotFoundError)]
            self._delete_gone(QueueUrl, gone)
        if failed and self.on_error == "raise":
            self._release(QueueUrl, [m["ReceiptHandle"] for m in delivered])
            raise failed[0][1]
        for message, error in failed:
            if error is not message.error:  # a delivery logs its own failures
                log.warning("leaving message %s for redelivery: %s", message.message_id, error)
        return {**response, "Messages": delivered}

    def _delete_gone(self, url: str, messages: list[SqsMessage]) -> None:
        """Delete messages whose payload no longer exists: no redelivery can deliver them."""
        for message in messages:
            log.warning("deleting message %s: its payload is gone", message.message_id)
            self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message.receipt_handle)

    def _release(self, url: str, handles: list[str]) -> None:
        """Make received messages visible again now (best effort)."""
        entries = [
            {"Id": str(i), "ReceiptHandle": split_receipt_handle(h)[0], "VisibilityTimeout": 0}
            for i, h in enumerate(handles)
        ]
        if not entries:
            return
        try:
            self.sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)
        except Exception:
            log.warning("could not release %d received messages", len(entries), exc_info=True)

    def _deliver(self, message: SqsMessage) -> dict[str, Any]:
        """The message as boto3 shapes it, with the payload in place of the pointer."""
        if message.error is not None:
            raise message.error
        pointer = message.pointer
        if pointer is None:
            return dict(message.raw)
        try:
            text = message.payload().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise IncompatibleOptionsError(
                f"the payload of message {message.message_id} is not UTF-8 text, which boto3's "
                "Body must be; receive it with offload_transports.sqs.SqsTransport"
            ) from exc
        out = dict(message.raw)
        body = out["Body"]
        inner, _ = unwrap_sns(body, {})
        if inner != body:  # an SNS envelope: keep it, payload in place of the pointer
            envelope = json.loads(body)
            envelope["Message"] = text
            if "MessageAttributes" in envelope:
                envelope["MessageAttributes"] = _without_markers(envelope["MessageAttributes"])
            out["Body"] = json.dumps(envelope, ensure_ascii=False)
        else:
            out["Body"] = text
        attributes = _without_markers(out.get("MessageAttributes"))
        if attributes:
            out["MessageAttributes"] = attributes
        else:
            out.pop("MessageAttributes", None)
        out["ReceiptHandle"] = embed_receipt_handle(message.receipt_handle, pointer.location)
        return out

    # -- deleting and visibility -------------------------------------------------------------

    def delete_message(self, *, QueueUrl: str, ReceiptHandle: str, **kwargs: Any) -> Any:
        """``DeleteMessage``; with ``delete_payload``, then the payload the handle names."""
        handle, location = split_receipt_handle(ReceiptHandle)
        response = self.sqs.delete_message(QueueUrl=QueueUrl, ReceiptHandle=handle, **kwargs)
        if self.delete_payload and location is not None:
            self.offloader.discard(Pointer(location))
        return response

    def delete_message_batch(
        self, *, QueueUrl: str, Entries: Sequence[Mapping[str, Any]]
    ) -> dict[str, Any]:
        """``DeleteMessageBatch``; with ``delete_payload``, then the payloads of the entries SQS
        reports deleted."""
        entries, locations = _stripped(Entries)
        response: dict[str, Any] = self.sqs.delete_message_batch(QueueUrl=QueueUrl, Entries=entries)
        if self.delete_payload:
            for ok in response.get("Successful", []):
                location = locations.get(ok.get("Id"))
                if location is not None:
                    self.offloader.discard(Pointer(location))
        return response

    def change_message_visibility(
        self, *, QueueUrl: str, ReceiptHandle: str, VisibilityTimeout: int, **kwargs: Any
    ) -> Any:
        """``ChangeMessageVisibility``, with any embedded location stripped from the handle."""
        handle, _ = split_receipt_handle(ReceiptHandle)
        return self.sqs.change_message_visibility(
            QueueUrl=QueueUrl, ReceiptHandle=handle, VisibilityTimeout=VisibilityTimeout, **kwargs
        )

    def change_message_visibility_batch(
        self, *, QueueUrl: str, Entries: Sequence[Mapping[str, Any]]
    ) -> Any:
        """``ChangeMessageVisibilityBatch``, with embedded locations stripped from the handles."""
        entries, _ = _stripped(Entries)
        return self.sqs.change_message_visibility_batch(QueueUrl=QueueUrl, Entries=entries)


class SnsExtendedClient:
    """boto3's SNS client, extended: messages too large for a topic go through ``offloader``,
    in the AWS format the official clients (and :class:`SqsExtendedClient`) read.

    :param sns: a boto3 SNS client (``boto3.client("sns")``).
    :param offloader: where payloads are stored.

    ``publish`` to a topic stores what does not fit (the topic's ``MaximumMessageSize``, counted
    as SNS counts: body and attributes); ``publish_batch`` stores the largest entries until the
    batch fits. Messages to a ``TargetArn`` or ``PhoneNumber`` (mobile push, SMS: receivers
    that cannot fetch a payload) and ``MessageStructure="json"`` messages (one body per
    protocol) are passed to ``publish`` as they are; one of the latter that does not fit is
    refused with ``IncompatibleOptionsError``, as the official client refuses it. In
    ``publish_batch``, an entry with ``MessageStructure`` is refused (publish it alone).
    """

    def __init__(self, sns: Any, offloader: Offloader) -> None:
        self.sns: Any = sns
        self.offloader = offloader
        self._topic = _Transports(SnsTransport, sns, offloader)

    def __getattr__(self, name: str) -> Any:
        return _passed_on(self, "sns", name)

    def publish(
        self,
        *,
        Message: str,
        TopicArn: str | None = None,
        MessageAttributes: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """``Publish``, storing the message first if it does not fit the topic."""
        if TopicArn is None:  # a TargetArn or PhoneNumber: nothing there could fetch a payload
            response: dict[str, Any] = self.sns.publish(
                Message=Message, **_given(MessageAttributes), **kwargs
            )
            return response
        topic = self._topic(TopicArn)
        attributes = from_boto_attributes(MessageAttributes)
        if kwargs.get("MessageStructure") is not None:
            limits = topic.limits
            size = limits.measure(Message, attributes)
            if size > limits.max_size:
                raise IncompatibleOptionsError(
                    f"a MessageStructure='json' message of {size} bytes does not fit the topic's "
                    f"{limits.max_size}, and one body per protocol cannot be offloaded; publish "
                    "the payload as one message for every protocol"
                )
            response = self.sns.publish(
                TopicArn=TopicArn, Message=Message, **_given(MessageAttributes), **kwargs
            )
            return response
        with _boto3_errors():
            entry = topic._entry_for(
                Message, attributes, None, request=kwargs, key=chosen_key(attributes)
            )
            sent = topic._send_entry(entry)
        return dict(sent.response)

    def publish_batch(
        self, *, TopicArn: str, PublishBatchRequestEntries: Sequence[Mapping[str, Any]]
    ) -> dict[str, Any]:
        """``PublishBatch``; entries are stored, largest first, until the batch fits. The answer
        is SNS's own (payloads of the entries it refused already removed)."""
        entries = _entries(PublishBatchRequestEntries, "Message", _SNS_ENTRY_FIELDS)
        with _boto3_errors():
            result = self._topic(TopicArn)._send_chunk(entries)
        (response,) = result.responses
        return dict(response)


class _Transports(Generic[P]):
    """One transport per destination a drop-in is called with, made on first use."""

    def __init__(self, kind: type[P], client: Any, offloader: Offloader) -> None:
        self._kind: type[P] = kind
        self._client: Any = client
        self._offloader = offloader
        self._made: dict[str, P] = {}
        self._lock = threading.Lock()

    def __call__(self, destination: str) -> P:
        with self._lock:
            if destination not in self._made:
                self._made[destination] = self._kind(
                    destination, self._offloader, client=self._client
                )
            return self._made[destination]


def _passed_on(drop_in: object, wrapped: str, name: str) -> Any:
    """The wrapped client's attribute ``name`` (what a drop-in does not handle itself)."""
    if name == wrapped:  # not set yet (during unpickling, say): no recursion
        raise AttributeError(name)
    return getattr(getattr(drop_in, wrapped), name)


def chosen_key(attributes: Mapping[str, Attribute]) -> str | None:
    """The object key a sender chose with the ``S3Key`` String attribute, if any."""
    chosen = attributes.get(S3_KEY_ATTRIBUTE)
    if chosen is None:
        return None
    if not isinstance(chosen.value, str) or not chosen.data_type.startswith("String"):
        raise IncompatibleOptionsError(
            f"the {S3_KEY_ATTRIBUTE} attribute names the payload's object: a String, not "
            f"{chosen.data_type}"
        )
    return chosen.value


def _entries(
    entries: Sequence[Mapping[str, Any]], body: str, fields: frozenset[str]
) -> list[BatchEntry]:
    """boto3 batch entries as ours: body, attributes (an ``S3Key`` one names the object), id,
    and the rest of each entry's fields passed on."""
    out = []
    for entry in entries:
        attributes = from_boto_attributes(entry.get("MessageAttributes"))
        out.append(
            BatchEntry(
                payload=entry[body],
                attributes=attributes,
                id=entry["Id"],
                key=chosen_key(attributes),
                request={k: v for k, v in entry.items() if k not in fields},
            )
        )
    return out


def _given(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    return {} if attributes is None else {"MessageAttributes": attributes}


@contextmanager
def _boto3_errors() -> Iterator[None]:
    """The service's errors as boto3 raises them (the drop-ins' promise), not as
    ``TransportError``."""
    try:
        yield
    except TransportError as exc:
        if exc.__cause__ is not None and type(exc.__cause__).__module__.startswith("botocore"):
            raise exc.__cause__ from None
        raise


def _stripped(
    entries: Sequence[Mapping[str, Any]],
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Batch entries with plain receipt handles, and the embedded location of each entry id."""
    out: list[dict[str, Any]] = []
    locations: dict[str, str] = {}
    for entry in entries:
        handle, location = split_receipt_handle(entry["ReceiptHandle"])
        out.append({**entry, "ReceiptHandle": handle})
        if location is not None:
            locations[entry["Id"]] = location
    return out, locations


def _without_markers(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (attributes or {}).items() if k not in RESERVED_ATTRIBUTES}
