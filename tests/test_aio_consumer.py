"""The asyncio consumer loop against a real queue (moto over HTTP) and a real S3 bucket: many
messages in flight, every payload verified before its message is acknowledged, visibility kept
while a handler works, and a clean stop or cancellation that acknowledges nothing unhandled."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqs_support import Calls, drain, new_queue, offloader, unique

from offload_core.aio import AsyncOffloader
from offload_core.aio.consumer import consume
from offload_core.errors import IntegrityError
from offload_core.testing.aws import MotoServer
from offload_transports._aws import AsyncClients
from offload_transports.sqs import AsyncSqsMessage, AsyncSqsTransport

LIMIT = "262144"
BIG = 300_000


def body(n: int, size: int = 64) -> str:
    return json.dumps({"n": n, "fill": "x" * size})


@asynccontextmanager
async def queue_of(
    moto: MotoServer, url: str, bucket: str, **options: Any
) -> AsyncIterator[AsyncSqsTransport]:
    clients = AsyncClients("sqs", **moto.client_options())
    client = await clients.open("the tests")
    off = AsyncOffloader(offloader(moto, f"s3://{bucket}/{unique('consumer')}"))
    try:
        yield AsyncSqsTransport(url, off, client=client, wait_seconds=1, **options)
    finally:
        await off.aclose()
        await clients.aclose()


def run(flow: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(asyncio.wait_for(flow(), 120))


def test_many_messages_in_flight_are_all_verified_and_acknowledged(
    moto_server: MotoServer, bucket: str, sqs: Any
) -> None:
    sent = [body(n, BIG if n % 3 == 0 else 64) for n in range(30)]
    seen: list[bytes] = []
    in_flight = peak = 0

    async def main() -> Any:
        nonlocal in_flight, peak
        async with queue_of(moto_server, url, bucket) as queue:
            result = await queue.send_batch(sent)
            assert not result.failed
            assert sum(r.pointer is not None for r in result.successful) == 10

            async def handle(message: AsyncSqsMessage) -> None:
                nonlocal in_flight, peak
                in_flight += 1
                peak = max(peak, in_flight)
                await asyncio.sleep(0.05)
                seen.append(await message.payload())
                in_flight -= 1

            nonlocal calls
            calls = Calls(queue.client)
            return await consume(queue, handle, concurrency=8, wait_seconds=1, idle_seconds=2)

    calls: Calls | None = None
    with new_queue(sqs, "consume", MaximumMessageSize=LIMIT) as url:
        outcome = run(main)
        assert drain(sqs, url) == 0
    assert outcome.acknowledged == 30
    assert calls is not None
    assert calls["DeleteMessageBatch"] <= 10  # acknowledgements go several to a call
    assert "DeleteMessage" not in calls
    assert outcome.failed == 0
    assert sorted(seen) == sorted(s.encode() for s in sent)
    assert 1 < peak <= 8


def test_a_corrupted_payload_is_not_acknowledged_and_comes_back(
    moto_server: MotoServer, bucket: str, sqs: Any
) -> None:
    async def main() -> Any:
        async with queue_of(moto_server, url, bucket) as queue:
            good = await queue.send(body(1, BIG))
            bad = await queue.send(body(2, BIG))
            assert good.pointer is not None
            assert bad.pointer is not None
            store = queue.offloader.store
            key = store.key_for(bad.pointer.location)
            assert key is not None
            with store.open_write(key) as sink:
                sink.write(body(3, BIG).encode())
            errors: list[BaseException] = []

            async def handle(message: AsyncSqsMessage) -> None:
                try:
                    await message.payload()
                except IntegrityError as exc:
                    errors.append(exc)  # swallowed: the loop must still refuse to acknowledge

            result = await consume(queue, handle, wait_seconds=1, limit=2, release_failed=True)
            assert len(errors) == 1
            return result

    with new_queue(sqs, "consume", MaximumMessageSize=LIMIT) as url:
        outcome = run(main)
        assert (outcome.acknowledged, outcome.failed) == (1, 1)
        assert drain(sqs, url) == 1  # the corrupted one is back at once (released)


def test_long_work_keeps_its_message_invisible(
    moto_server: MotoServer, bucket: str, sqs: Any
) -> None:
    deliveries: list[str] = []

    async def main() -> Any:
        async with queue_of(moto_server, url, bucket) as queue:
            await queue.send(body(1))

            async def handle(message: AsyncSqsMessage) -> None:
                deliveries.append(message.message_id)
                await asyncio.sleep(3.5)  # longer than the 2 s visibility
                await message.payload()

            return await consume(
                queue,
                handle,
                concurrency=4,
                visibility_timeout=2,
                extend_every=0.5,
                wait_seconds=1,
                idle_seconds=5,
            )

    with new_queue(sqs, "consume") as url:
        outcome = run(main)
        assert drain(sqs, url) == 0
    assert len(deliveries) == 1  # never delivered a second time while it was worked on
    assert outcome.extended >= 4
    assert outcome.acknowledged == 1


def test_stop_finishes_what_is_in_flight(moto_server: MotoServer, bucket: str, sqs: Any) -> None:
    async def main() -> Any:
        async with queue_of(moto_server, url, bucket) as queue:
            await queue.send_batch([body(n) for n in range(5)])
            stop = asyncio.Event()
            started = asyncio.Event()

            async def handle(message: AsyncSqsMessage) -> None:
                started.set()
                await asyncio.sleep(0.5)
                await message.payload()

            consuming = asyncio.create_task(
                consume(queue, handle, concurrency=5, wait_seconds=1, stop=stop)
            )
            await started.wait()
            stop.set()
            return await consuming

    with new_queue(sqs, "consume") as url:
        outcome = run(main)
        left = drain(sqs, url)
    assert outcome.failed == 0
    assert outcome.acknowledged + left == 5
    assert outcome.acknowledged >= 1


def test_a_cancelled_loop_acknowledges_nothing_unhandled(
    moto_server: MotoServer, bucket: str, sqs: Any
) -> None:
    acknowledged: list[str] = []

    async def main() -> None:
        async with queue_of(moto_server, url, bucket) as queue:
            await queue.send_batch([body(n, BIG) for n in range(4)])
            started = asyncio.Event()

            async def handle(message: AsyncSqsMessage) -> None:
                await message.payload()
                started.set()
                await asyncio.sleep(30)
                acknowledged.append(message.message_id)

            before = asyncio.all_tasks()
            consuming = asyncio.create_task(
                consume(queue, handle, concurrency=4, visibility_timeout=1, wait_seconds=1)
            )
            await started.wait()
            consuming.cancel()
            with pytest.raises(asyncio.CancelledError):
                await consuming
            assert asyncio.all_tasks() == before  # handlers, extenders and reads all ended

    with new_queue(sqs, "consume", MaximumMessageSize=LIMIT) as url:
        run(main)
        assert acknowledged == []
        came_back = 0
        for _ in range(10):  # visibility 1 s: every message is delivered again
            came_back += drain(sqs, url)
            if came_back == 4:
                break
            asyncio.run(asyncio.sleep(0.5))
        assert came_back == 4


def test_a_failed_receive_finishes_what_is_in_flight_then_raises(
    moto_server: MotoServer, bucket: str, sqs: Any
) -> None:
    handled: list[str] = []

    async def main() -> None:
        async with queue_of(moto_server, url, bucket) as queue:
            await queue.send_batch([body(n) for n in range(3)])
            receive = queue.receive
            calls = 0

            async def failing(*args: Any, **kwargs: Any) -> Any:
                nonlocal calls
                calls += 1
                if calls > 1:
                    raise ConnectionError("the network went away")
                return await receive(*args, **kwargs)

            queue.receive = failing  # type: ignore[method-assign]

            async def handle(message: AsyncSqsMessage) -> None:
                await asyncio.sleep(0.2)  # still working when the next receive fails
                await message.payload()
                handled.append(message.message_id)

            with pytest.raises(ConnectionError):
                await consume(queue, handle, concurrency=8, wait_seconds=0)

    with new_queue(sqs, "consume") as url:
        run(main)
        assert drain(sqs, url) == 0  # the three were handled and acknowledged
    assert len(handled) == 3


def test_one_message_at_a_time_is_acknowledged_at_once(
    moto_server: MotoServer, bucket: str, sqs: Any
) -> None:
    async def main() -> Any:
        nonlocal calls
        async with queue_of(moto_server, url, bucket) as queue:
            await queue.send_batch([body(n) for n in range(4)])
            calls = Calls(queue.client)

            async def handle(message: AsyncSqsMessage) -> None:
                await message.payload()

            return await consume(queue, handle, concurrency=1, wait_seconds=0, limit=4)

    calls: Calls | None = None
    with new_queue(sqs, "consume") as url:
        outcome = run(main)
    assert outcome.acknowledged == 4
    assert calls is not None
    assert calls["DeleteMessageBatch"] == 4  # no waiting for a batch that cannot fill
