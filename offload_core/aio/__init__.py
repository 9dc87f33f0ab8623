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
messages in flight. See :mod:`offload_core.flow` for how one protocol serves both faces.
"""

from __future__ import annotations

from .offloader import FEED_WINDOW, AsyncOffloader, AsyncPayloadStream
from .store import AsyncSink, AsyncSource, AsyncStore, ExecutorStore, InlineStore, async_face

__all__ = [
    "FEED_WINDOW",
    "AsyncOffloader",
    "AsyncPayloadStream",
    "AsyncSink",
    "AsyncSource",
    "AsyncStore",
    "ExecutorStore",
    "InlineStore",
    "async_face",
]
