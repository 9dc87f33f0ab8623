"""A received message whose payload is awaited."""

from __future__ import annotations

from typing import TYPE_CHECKING

from offload_core.delivery import DeliveryCore

if TYPE_CHECKING:
    from .offloader import AsyncPayloadStream, Opening

__all__ = ["AsyncDelivery"]


class AsyncDelivery(DeliveryCore):
    """:class:`~offload_core.delivery.Delivery`, awaited: the same checks and state (a payload
    that failed to resolve, or a stream opened and not verified, refuses acknowledgement)."""

    async def payload(self) -> bytes:
        """The payload as bytes, verified against the pointer's size and digest."""
        return await self._payload()

    def open(self) -> Opening:
        """The payload as a verifying stream: ``async with message.open() as stream``; the read
        that reaches the end raises if anything is wrong, so act on the data only then."""
        from .offloader import Opening

        return Opening(self._stream_of())

    async def _stream_of(self) -> AsyncPayloadStream:
        from .offloader import AsyncPayloadStream

        return AsyncPayloadStream(await self._open())
