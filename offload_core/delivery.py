"""A message as a consumer received it, its payload read only when asked for.

:class:`Delivery` is what the transports' received-message types (an SQS message, a Lambda
record) have in common: the publisher's attributes, the pointer if there is one, and the payload
as bytes or as a verifying stream. Anything that stops the payload from being delivered intact
is kept as :attr:`~Delivery.error`, so that the message is not acknowledged by mistake.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping
from typing import Any, BinaryIO

from .detect import unwrap_sns
from .errors import (
    AccessDeniedError,
    IntegrityError,
    LocationNotAllowedError,
    OffloadError,
    PayloadNotFoundError,
    PointerError,
    SignatureError,
    StorageError,
)
from .flow import SYNC, StoreIO, run_sync
from .message import Attribute
from .observe import current, observing
from .offloader import Offloader, Received
from .pipeline import VerifyingReader
from .pointer import Pointer

__all__ = ["Delivery", "DeliveryCore", "failed_check", "printable"]

log = logging.getLogger(__name__)


class DeliveryCore:
    """A received body and its attributes, parsed (no storage I/O) by ``offloader``, for both
    faces: :class:`Delivery` reads the payload at once, :class:`~offload_core.aio.AsyncDelivery`
    awaits it, both through the same flows.

    A delivery whose pointer is malformed, or whose payload turned out missing, corrupt or
    outside the allowed stores, has :attr:`error` set and never yields a payload.
    """

    #: How the payload is read: at once, or on the caller's loop (an asynchronous delivery).
    _io: StoreIO = SYNC

    #: What observers and logs call the message: its id, the messaging system and destination
    #: (a transport's subclass sets them).
    message_id: str | None = None
    system: str | None = None
    destination: str | None = None

    def __init__(
        self, offloader: Offloader, body: str | bytes, attributes: Mapping[str, Attribute]
    ) -> None:
        #: Reads the payload, and decides which stores it may come from.
        self.offloader = offloader
        self._received: Received | None = None
        self._error: OffloadError | None = None
        self._stream: BinaryIO | None = None
        try:
            self._received = offloader.parse(body, attributes)
        except OffloadError as exc:
            self._failed(exc)
            # What the publisher set is still wanted for logging and routing the failure:
            # inside an SNS envelope, those are the envelope's attributes, not the queue's.
            self._attributes = Received("", _publisher_attributes(body, attributes)).user_attributes
        else:
            self._attributes = self._received.user_attributes

    def _state(self) -> str:
        return "failed" if self._error else "offloaded" if self.offloaded else "inline"

    @property
    def attributes(self) -> dict[str, Attribute]:
        """The publisher's message attributes, without pointer markers."""
        return dict(self._attributes)

    @property
    def pointer(self) -> Pointer | None:
        """Where the payload is stored; ``None`` for an inline payload or a malformed pointer."""
        return self._received.pointer if self._received else None

    @property
    def offloaded(self) -> bool:
        return self.pointer is not None

    @property
    def error(self) -> OffloadError | None:
        """Why the payload could not be delivered, once that is known."""
        return self._error

    @property
    def trace_context(self) -> dict[str, str]:
        """The trace context the publisher's message carried, as a text map (``traceparent``
        ...): its String attributes, and what the service carries besides."""
        return {
            name: attribute.value
            for name, attribute in self._attributes.items()
            if attribute.data_type == "String" and isinstance(attribute.value, str)
        }

    async def _payload(self) -> bytes:
        """The payload as bytes, verified against the pointer's size and digest."""
        received = self._usable()
        if received.pointer is None:
            with observing(self.offloader.plugins, "resolve", **self.operation_fields()) as op:
                data = _inline(received)
                op.attributes.update(stored=False, size=len(data))
                return data
        try:
            return await self.offloader.read_flow(
                received.pointer, self.operation_fields(), self._io
            )
        except OffloadError as exc:
            self._failed(exc)
            raise

    async def _open(self) -> BinaryIO:
        """The payload as a stream, verified as it is read: the read that reaches the end raises
        if anything is wrong, so act on the data only then."""
        received = self._usable()
        if received.pointer is None:
            return io.BytesIO(_inline(received))
        try:
            fields = self.operation_fields()
            self._stream = await self.offloader.open_flow(received.pointer, fields, self._io)
        except OffloadError as exc:
            self._failed(exc)
            raise
        if isinstance(self._stream, VerifyingReader):
            stream, ended = self._stream, self._stream.on_end

            def logged(error: IntegrityError | None) -> None:
                if error is not None:
                    self._failed(error)
                if ended is not None:
                    ended(error)

            stream.on_end = logged
        return self._stream

    def operation_fields(self) -> dict[str, Any]:
        """What a step for this message (``resolve``, ``process``) is told of it: its id,
        system and destination, and the trace context it carried (when observed, and not
        already linked by an enclosing step for the same message)."""
        about: dict[str, Any] = {
            "message_id": self.message_id,
            "system": self.system,
            "destination": self.destination,
        }
        enclosing = current()
        if self.offloader.plugins.observed and (
            enclosing is None or enclosing.find("message_id") != self.message_id
        ):
            carried = self.trace_context
            if carried:
                about["links"] = [carried]
        return about

    def _failed(self, error: OffloadError) -> None:
        """Keep why the payload cannot be delivered, and say so in one log line."""
        self._error = error
        pointer = self.pointer
        location = getattr(error, "location", None) or (pointer.location if pointer else None)
        log.warning(
            "message %s: payload %s not delivered, %s check failed: %s",
            printable(self.message_id or "(no id)"),
            printable(location or "(inline)"),
            failed_check(error),
            printable(str(error)),
        )

    def check_deliverable(self) -> None:
        """Raise if the payload is known not to have been delivered intact: resolving it failed,
        or a stream of it was opened and not verified to its end."""
        if self._error is not None:
            raise self._error
        if isinstance(self._stream, VerifyingReader) and not self._stream.verified:
            raise IntegrityError(
                f"the payload of {self!r} was opened but not verified (not read to its end, or a "
                "check failed); read it to the end, or pass force=True",
                location=self._stream.location,
                check="unverified",
            )

    def _usable(self) -> Received:
        if self._error is not None:
            raise self._error
        assert self._received is not None
        return self._received


class Delivery(DeliveryCore):
    """A received message whose payload is read at once (:class:`DeliveryCore`)."""

    def payload(self) -> bytes:
        """The payload as bytes, verified against the pointer's size and digest."""
        return run_sync(self._payload())

    def open(self) -> BinaryIO:
        """The payload as a stream, verified as it is read: the read that reaches the end raises
        if anything is wrong, so act on the data only then."""
        return run_sync(self._open())


def _publisher_attributes(
    body: str | bytes, attributes: Mapping[str, Attribute]
) -> Mapping[str, Attribute]:
    """The attributes of an SNS envelope ``body``, else ``attributes``."""
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
    except UnicodeDecodeError:
        return attributes
    return unwrap_sns(text, attributes)[1]


def _inline(received: Received) -> bytes:
    body = received.body
    return body.encode() if isinstance(body, str) else body


def printable(text: str, limit: int = 512) -> str:
    """``text`` for a log line: what a sender chose (a location, a message id) can hold no line
    break or control character that would forge another line, and is cut to ``limit``."""
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def failed_check(error: BaseException) -> str:
    """Which check an error reports: ``digest``, ``size``, ``signature:expired``, ``pointer``,
    ``allowed-location``, ``exists``, ``access``, ``storage`` ... (else the error's class)."""
    check = getattr(error, "check", None)
    if isinstance(check, str):
        return check
    if isinstance(error, SignatureError):
        return f"signature:{error.reason}"
    for kind, name in (
        (PointerError, "pointer"),
        (LocationNotAllowedError, "allowed-location"),
        (PayloadNotFoundError, "exists"),
        (AccessDeniedError, "access"),
        (StorageError, "storage"),
    ):
        if isinstance(error, kind):
            return name
    return type(error).__name__
