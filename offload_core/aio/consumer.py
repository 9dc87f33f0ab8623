"""A consumer loop on asyncio: many messages in flight, visibility kept while they are worked
on, and only verified payloads acknowledged.

::

    async with AsyncOffloader("s3://payloads/orders") as off, \\
            AsyncSqsTransport(queue_url, off) as queue:

        async def handle(message):
            order = json.loads(await message.payload())   # verified, or it raises
            ...

        await consume(queue, handle, concurrency=32)

A message is acknowledged when its handler returns and its payload was delivered intact (a
payload that failed to resolve, or a stream opened and not read to its verified end, refuses
acknowledgement). A handler that raises leaves its message to be delivered again (at once with
``release_failed=True``, else when its visibility ends), and so does a cancelled loop: nothing is
acknowledged that was not handled. Memory is bounded by ``concurrency`` handlers, each holding
what it reads.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["AsyncMessage", "AsyncReceiver", "ConsumeResult", "consume"]

log = logging.getLogger(__name__)


class AsyncMessage(Protocol):
    """What the loop needs of a received message (an ``AsyncSqsMessage``)."""

    message_id: str

    async def ack(self, *, force: bool = False) -> None: ...

    async def extend(self, seconds: int) -> None: ...

    async def release(self) -> None: ...


M = TypeVar("M", bound=AsyncMessage)
M_co = TypeVar("M_co", bound=AsyncMessage, covariant=True)


class AsyncReceiver(Protocol[M_co]):
    """A pulled destination (``AsyncSqsTransport``)."""

    async def receive(
        self,
        max_messages: int = 10,
        *,
        wait_seconds: int | None = None,
        visibility_timeout: int | None = None,
    ) -> Sequence[M_co]: ...


@dataclass
class ConsumeResult:
    """What a :func:`consume` run did."""

    #: Messages handled and acknowledged.
    acknowledged: int = 0
    #: Messages whose handler raised, or whose payload was not delivered intact: left for
    #: another delivery.
    failed: int = 0
    #: Visibility extensions made while handlers ran.
    extended: int = 0


class _Run(Generic[M]):
    def __init__(
        self,
        handler: Callable[[M], Awaitable[Any]],
        visibility_timeout: int,
        extend_every: float,
        release_failed: bool,
    ) -> None:
        self.handler = handler
        self.visibility_timeout = visibility_timeout
        self.extend_every = extend_every
        self.release_failed = release_failed
        self.result = ConsumeResult()

    async def handle(self, message: M) -> None:
        keeper = asyncio.create_task(self._keep_invisible(message))
        try:
            await self.handler(message)
            await message.ack()  # refuses a payload that was not delivered intact
        except Exception:
            self.result.failed += 1
            log.warning("message %s not acknowledged", message.message_id, exc_info=True)
            if self.release_failed:
                await _quietly(message.release())
        else:
            self.result.acknowledged += 1
        finally:
            keeper.cancel()
            await asyncio.wait([keeper])

    async def _keep_invisible(self, message: M) -> None:
        while True:
            await asyncio.sleep(self.extend_every)
            try:
                await message.extend(self.visibility_timeout)
            except Exception:
                log.warning("could not extend the visibility of %s", message.message_id)
            else:
                self.result.extended += 1


async def _quietly(call: Awaitable[Any]) -> None:
    try:
        await call
    except Exception:
        log.warning("could not release a message", exc_info=True)


async def consume(
    queue: AsyncReceiver[M],
    handler: Callable[[M], Awaitable[Any]],
    *,
    concurrency: int = 32,
    visibility_timeout: int = 60,
    extend_every: float | None = None,
    wait_seconds: int = 20,
    release_failed: bool = False,
    stop: asyncio.Event | None = None,
    limit: int | None = None,
    idle_seconds: float | None = None,
) -> ConsumeResult:
    """Receive from ``queue`` and run ``handler`` on each message, ``concurrency`` at a time.

    :param concurrency: messages in flight at most (received and not yet settled).
    :param visibility_timeout: seconds each receive hides its messages for; every
        ``extend_every`` seconds (default: a third of it) a running handler's message is
        hidden for that long again, so long work is not delivered twice.
    :param release_failed: make a message whose handler raised visible again at once.
    :param stop: when set, receiving stops and the messages in flight are finished; then the
        call returns. Cancelling the call instead cancels the handlers in flight: their messages
        are not acknowledged, and come back when their visibility ends.
    :param limit: stop after this many messages were received (all finished first).
    :param idle_seconds: stop once no message has arrived for this long.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    run = _Run(handler, visibility_timeout, extend_every or visibility_timeout / 3, release_failed)
    tasks: set[asyncio.Task[None]] = set()
    stop = stop or asyncio.Event()
    received = 0
    last = time.monotonic()
    wait = wait_seconds if idle_seconds is None else min(wait_seconds, max(1, int(idle_seconds)))
    try:
        while not stop.is_set() and (limit is None or received < limit):
            tasks = {task for task in tasks if not task.done()}
            if len(tasks) >= concurrency:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                continue
            free = min(10, concurrency - len(tasks))
            if limit is not None:
                free = min(free, limit - received)
            request = queue.receive(free, wait_seconds=wait, visibility_timeout=visibility_timeout)
            messages = await _until_stopped(request, stop)
            received += len(messages)
            tasks.update(asyncio.create_task(run.handle(message)) for message in messages)
            if messages:
                last = time.monotonic()
            elif idle_seconds is not None and time.monotonic() - last >= idle_seconds:
                break
        if tasks:
            await asyncio.wait(tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        raise
    return run.result


async def _until_stopped(receiving: Awaitable[Sequence[M]], stop: asyncio.Event) -> Sequence[M]:
    """``receiving``'s messages, or none if ``stop`` is set first (the receive is cancelled:
    SQS has then hidden nothing, or what it hid comes back when its visibility ends)."""
    call = asyncio.ensure_future(receiving)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([call, stopping], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        if not call.done():
            call.cancel()
        await asyncio.wait([call, stopping])  # nothing is left running, even when cancelled
    if call.cancelled():
        return []
    return call.result()
