"""offload on asyncio: the same rules as the synchronous API, awaited.

::

    from offload_core.aio import AsyncOffloader

    async with AsyncOffloader("s3://payloads/orders") as off:
        message = await off.prepare(big_json, limits=Limits(max_size=262_144))
        ...
        data = await off.resolve(body, attributes)          # bytes, verified
        async with off.open(body, attributes) as stream:    # or a verifying stream
            async for chunk in stream:
                ...

Transports have asynchronous faces too (``offload_transports.sqs.AsyncSqsTransport`` and
the SNS and EventBridge ones), and :func:`~offload_core.aio.consumer.consume` keeps many
messages in flight. See :mod:`offload_core.flow` for how one protocol serves both faces. The
names are imported on first use, so a synchronous program never imports asyncio for them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .consumer import ConsumeResult, consume
    from .delivery import AsyncDelivery
    from .offloader import (
        FEED_WINDOW,
        READ_MEMORY,
        AsyncOffloader,
        AsyncPayloadStream,
        Opening,
    )
    from .store import (
        AsyncSink,
        AsyncSource,
        AsyncStore,
        ExecutorStore,
        InlineStore,
        async_face,
    )
    from .transport import AsyncTransportBase

_WHERE = {
    "FEED_WINDOW": "offloader",
    "READ_MEMORY": "offloader",
    "AsyncOffloader": "offloader",
    "AsyncPayloadStream": "offloader",
    "Opening": "offloader",
    "AsyncSink": "store",
    "AsyncSource": "store",
    "AsyncStore": "store",
    "ExecutorStore": "store",
    "InlineStore": "store",
    "async_face": "store",
    "AsyncDelivery": "delivery",
    "AsyncTransportBase": "transport",
    "ConsumeResult": "consumer",
    "consume": "consumer",
}

__all__ = [
    "FEED_WINDOW",
    "READ_MEMORY",
    "AsyncDelivery",
    "AsyncOffloader",
    "AsyncPayloadStream",
    "AsyncSink",
    "AsyncSource",
    "AsyncStore",
    "AsyncTransportBase",
    "ConsumeResult",
    "ExecutorStore",
    "InlineStore",
    "Opening",
    "async_face",
    "consume",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
