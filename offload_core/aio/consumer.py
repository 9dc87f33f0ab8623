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

from offload_core.errors import TransportError

__all__ = ["AsyncMessage", "AsyncReceiver", "ConsumeResult", "consume"]

#: Messages per acknowledgement call (SQS's batch limit).
MAX_BATCH = 10

log = logging.getLogger(__name__)


class AsyncMessage(Protocol):
    """What the loop needs of a received message (an ``AsyncSqsMessage``)."""

    message_id: str

    def check_deliverable(self) -> None:
        """Raise if the payload is known not to have been delivered intact."""
        ...

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


class _Acks(Generic[M]):
    """Acknowledgements gathered into batch calls (``DeleteMessageBatch``): ten at a time, or
    whatever waits ``linger`` seconds after the first. A message whose handler is cancelled
    while its acknowledgement waits is still acknowledged: it was handled."""

    def __init__(self, queue: Any, linger: float, batch: int) -> None:
        self._acknowledge: Callable[..., Awaitable[Sequence[Any]]] | None = getattr(
            queue, "acknowledge", None
        )
        self._linger = linger
        #: Acknowledgements sent together: ten, or fewer when fewer messages are in flight.
        self._batch = batch
        self._waiting: list[tuple[M, asyncio.Future[None]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._sending: set[asyncio.Task[None]] = set()

    async def ack(self, message: M) -> None:
        """Acknowledge ``message`` (refused, raising, if its payload was not delivered)."""
        if self._acknowledge is None:  # a queue without batch acknowledgement
            await message.ack()
            return
        message.check_deliverable()
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((message, done))
        if len(self._waiting) >= self._batch:
            self._send_waiting()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._linger, self._send_waiting)
        await asyncio.shield(done)

    def _send_waiting(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._waiting:
            batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
            task = asyncio.create_task(self._send(batch))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[tuple[M, asyncio.Future[None]]]) -> None:
        assert self._acknowledge is not None
        try:
            failed = await self._acknowledge([message for message, _ in batch], force=True)
        except BaseException as exc:
            for _, done in batch:
                if not done.done():
                    done.set_exception(exc if isinstance(exc, Exception) else RuntimeError(exc))
            if not isinstance(exc, Exception):
                raise
            return
        refused = {str(failure.id): failure for failure in failed}
        for n, (message, done) in enumerate(batch):
            failure = refused.get(str(n))
            if done.done():
                continue
            if failure is None:
                done.set_result(None)
            else:
                done.set_exception(
                    TransportError(
                        f"acknowledging {message.message_id} failed: {failure.code}: "
                        f"{failure.message}",
                        operation="DeleteMessageBatch",
                        code=failure.code,
                        retryable=not failure.sender_fault,
                    )
                )

    async def drain(self) -> None:
        """Send what waits, and wait until every acknowledgement sent is answered."""
        self._send_waiting()
        if self._sending:
            await asyncio.wait(set(self._sending))


class _Run(Generic[M]):
    def __init__(
        self,
        handler: Callable[[M], Awaitable[Any]],
        visibility_timeout: int,
        extend_every: float,
        release_failed: bool,
        acks: _Acks[M],
    ) -> None:
        self.acks = acks
        self.handler = handler
        self.visibility_timeout = visibility_timeout
        self.extend_every = extend_every
        self.release_failed = release_failed
        self.result = ConsumeResult()

    async def handle(self, message: M) -> None:
        keeper = asyncio.create_task(self._keep_invisible(message))
        try:
            await self.handler(message)
            await self.acks.ack(message)  # refuses a payload that was not delivered intact
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
    ack_linger: float = 0.05,
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
    :param ack_linger: acknowledgements are sent ten to a call (``DeleteMessageBatch``), or
        what has gathered this many seconds after the first: fewer calls, and a message is
        acknowledged at most this much later.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    acks: _Acks[M] = _Acks(queue, ack_linger, min(MAX_BATCH, concurrency))
    run = _Run(
        handler, visibility_timeout, extend_every or visibility_timeout / 3, release_failed, acks
    )
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
    except Exception:
        # Receiving failed: what is in flight is finished (and acknowledged), then it raises.
        if tasks:
            await asyncio.wait(tasks)
        raise
    except BaseException:
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        raise
    finally:
        await acks.drain()  # handled messages are acknowledged, even on the way out
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
