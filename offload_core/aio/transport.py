"""The asynchronous face of a transport: :class:`~offload_core.transport.TransportCore`'s
flows, awaited on the caller's loop."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, TypeVar

from offload_core.offloader import Sendable
from offload_core.transport import BatchResult, Entry, SendOptions, SendResult, TransportCore

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["AsyncTransportBase"]

T = TypeVar("T", bound="AsyncTransportBase")


class AsyncTransportBase(TransportCore):
    """What an asynchronous transport plugin subclasses: the same hooks as
    :class:`~offload_core.transport.TransportBase` (which may return awaitables), and
    ``async`` sends. ``async with`` it to have the client it made closed at the end."""

    async def _connect(self) -> None:
        """Make the service client, if the transport makes its own; before every call."""
        return None

    async def aclose(self) -> None:
        """Close what :meth:`_connect` made."""
        return None

    async def __aenter__(self: T) -> T:
        await self._connect()
        await self._ready()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def send(self, payload: Sendable, **options: Unpack[SendOptions]) -> SendResult:
        """Send one payload; it is stored first if it does not fit. A send that fails, or is
        cancelled before the payload is stored, leaves no payload; a send cancelled while the
        message is on its way keeps it (the message may have been sent)."""
        return await self._send_entry(Entry(payload, **options))

    async def _send_entry(self, entry: Entry) -> SendResult:
        await self._connect()
        await self._ready()
        return await self._publish_one(entry)

    async def send_batch(self, entries: Iterable[Entry | Sendable]) -> BatchResult:
        """Send many payloads, :attr:`max_batch_entries` per call (see
        :meth:`TransportBase.send_batch <offload_core.transport.TransportBase.send_batch>`)."""
        await self._connect()
        await self._ready()
        return await self._publish_batch(entries)
