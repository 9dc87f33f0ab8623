"""Cancellation at every ``await`` of a publish and of a consume, against moto over HTTP and a
real bucket (the asynchronous counterpart of the fault tests that stop a process between
steps). Whatever the step: no incomplete multipart upload is left, no message points at a
missing payload, and a message is acknowledged only after its handler finished."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqs_support import new_queue, offloader, unique

from offload_core.aio import AsyncOffloader
from offload_core.aio.consumer import consume
from offload_core.offloader import Offloader
from offload_core.testing.aio import cancelled_at
from offload_core.testing.aws import MotoServer
from offload_transports._aws import AsyncClients
from offload_transports.sqs import AsyncSqsMessage, AsyncSqsTransport

MiB = 1024 * 1024
#: One PUT (over the queue's 256 KiB), and three parts of a multipart upload.
SIZES = {"single": 300_000, "multipart": 11 * MiB}
#: Suspensions tried at most per publish: all of them up to this many, else evenly spread.
TRIES = 60


@asynccontextmanager
async def sqs_client(moto: MotoServer) -> AsyncIterator[Any]:
    clients = AsyncClients("sqs", **moto.client_options())
    try:
        yield await clients.open("the tests")
    finally:
        await clients.aclose()


def publisher(moto: MotoServer, bucket: str) -> Offloader:
    options = {"part_size": 5 * MiB, "multipart_threshold": 5 * MiB}
    url = f"s3://{bucket}/{unique('cancel')}"
    return Offloader(url, storage_options={**moto.storage_options(), **options})


def messages_resolve(sqs: Any, url: str, off: Offloader) -> int:
    """Every message in the queue resolves (its payload is there, intact); how many."""
    count = 0
    while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        for message in got:
            attributes = {}  # the AWS pointer's marker is not needed: the body says it all
            assert off.resolve(message["Body"], attributes)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            count += 1
    return count


@pytest.mark.parametrize("kind", sorted(SIZES))
def test_a_publish_cancelled_at_any_await_leaves_nothing_dangling(
    kind: str, moto_server: MotoServer, bucket: str, sqs: Any
) -> None:
    off = publisher(moto_server, bucket)
    payload = b"p" * SIZES[kind]
    s3 = moto_server.client("s3")
    prefix = off.store.url.removeprefix(f"s3://{bucket}/")

    async def main(url: str) -> list[str]:
        outcomes: list[str] = []
        async with sqs_client(moto_server) as client, AsyncOffloader(off) as aoff:
            queue = AsyncSqsTransport(url, aoff, client=client, max_message_size=262_144)
            total, sent = await cancelled_at(queue.send(payload), 10**9)
            assert not isinstance(sent, BaseException), sent
            assert messages_resolve(sqs, url, off) == 1
            for step in range(1, total + 1, max(1, total // TRIES)):
                _, outcome = await cancelled_at(queue.send(payload), step)
                outcomes.append(type(outcome).__name__)
                uploads = s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix)
                assert not uploads.get("Uploads"), f"step {step}: an upload was left open"
                assert messages_resolve(sqs, url, off) <= 1, step
        return outcomes

    with new_queue(sqs, "cancel") as url:
        outcomes = asyncio.run(main(url))
    assert len(outcomes) >= 5
    assert set(outcomes) <= {"CancelledError", "SendResult"}
    assert "CancelledError" in outcomes


def queue_depth(sqs: Any, url: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(value) for value in attributes.values())


def test_a_consume_cancelled_at_any_await_acknowledges_only_what_was_handled(
    moto_server: MotoServer, bucket: str, sqs: Any
) -> None:
    """Receive, read the payload, acknowledge: cancelled at each of their suspensions."""
    off = offloader(moto_server, f"s3://{bucket}/{unique('cancel-consume')}")

    async def one_step(client: Any, aoff: AsyncOffloader, step: int) -> tuple[int, bool, int]:
        with new_queue(sqs, "cancel-consume") as url:
            queue = AsyncSqsTransport(url, aoff, client=client, max_message_size=262_144)
            await queue.send(b"c" * 300_000)
            handled: list[str] = []

            async def consume_one() -> None:
                (message,) = await queue.receive(1, wait_seconds=0, visibility_timeout=30)
                assert len(await message.payload()) == 300_000
                handled.append(message.message_id)
                await message.ack()

            before = asyncio.all_tasks()
            total, outcome = await cancelled_at(consume_one(), step)
            assert outcome is None or isinstance(outcome, asyncio.CancelledError), outcome
            assert asyncio.all_tasks() <= before, f"step {step}: tasks left behind"
            return total, bool(handled), queue_depth(sqs, url)

    async def main() -> list[tuple[int, bool, int]]:
        async with sqs_client(moto_server) as client, AsyncOffloader(off) as aoff:
            total, handled, left = await one_step(client, aoff, 10**9)
            assert (handled, left) == (True, 0)
            return [await one_step(client, aoff, step) for step in range(1, total + 1)]

    results = asyncio.run(main())
    assert len(results) >= 5
    for step, (_, handled, left) in enumerate(results, 1):
        assert left in (0, 1), step
        if left == 0:
            assert handled, f"step {step}: acknowledged without being handled"
    assert {left for _, _, left in results} == {0, 1}  # cancelled before and after the delete


@pytest.mark.parametrize("delay", [0.0, 0.002, 0.01, 0.03, 0.1, 0.3])
def test_a_cancelled_consume_loop_leaves_no_task_and_loses_no_message(
    delay: float, moto_server: MotoServer, bucket: str, sqs: Any
) -> None:
    off = offloader(moto_server, f"s3://{bucket}/{unique('cancel-loop')}")

    async def main(url: str) -> tuple[list[str], int]:
        handled: list[str] = []
        async with sqs_client(moto_server) as client, AsyncOffloader(off) as aoff:
            queue = AsyncSqsTransport(url, aoff, client=client, max_message_size=262_144)
            await queue.send_batch([b"m" * 300_000 for _ in range(4)])

            async def handle(message: AsyncSqsMessage) -> None:
                await message.payload()
                handled.append(message.message_id)

            before = asyncio.all_tasks()
            task = asyncio.create_task(consume(queue, handle, concurrency=2, wait_seconds=0))
            await asyncio.sleep(delay)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert asyncio.all_tasks() == before
        return handled, queue_depth(sqs, url)

    with new_queue(sqs, "cancel-loop") as url:
        handled, left = asyncio.run(main(url))
    assert 4 - len(handled) <= left <= 4  # what is gone was handled; nothing else went
