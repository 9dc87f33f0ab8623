"""The asynchronous offloader and the faces around it: round trips through every kind of store
(in place, on an executor, S3), verifying streams, plugins opened by name, clients made and
closed by the transports, and the synchronous API still working inside a running loop."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest
from sqs_support import new_queue, offloader, unique

from offload_core import Plugins
from offload_core.aio import AsyncOffloader
from offload_core.errors import ConfigurationError, DigestMismatchError, LocationNotAllowedError
from offload_core.offloader import Offloader
from offload_core.policy import Limits
from offload_core.testing.aws import FAKE_CREDENTIALS, MotoServer
from offload_transports.eventbridge import AsyncEventBridgeTransport
from offload_transports.sns import AsyncSnsTransport
from offload_transports.sqs import AsyncSqsTransport, SqsTransport

MiB = 1024 * 1024
LIMITS = Limits(max_size=262_144)
#: Incompressible, then very compressible: both codec paths of one payload.
PAYLOAD = os.urandom(3 * MiB) + b"{}" * (3 * MiB)


@pytest.fixture(params=["memory", "local", "s3"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return f"memory://aio-{unique('m')}"
    if request.param == "local":
        return tmp_path.as_uri()
    return "s3"


def make(url: str, moto: MotoServer, bucket: str, **options: Any) -> Offloader:
    options.setdefault("pointer_format", "native")  # binary payloads
    if url == "s3":
        return offloader(moto, f"s3://{bucket}/{unique('aio')}", **options)
    return Offloader(url, **options)


@pytest.mark.parametrize("compression", [None, "zstd"])
def test_round_trip_bytes_and_stream(
    store_url: str, compression: str | None, moto_server: MotoServer, bucket: str
) -> None:
    sync = make(store_url, moto_server, bucket, compression=compression)

    async def main() -> None:
        async with AsyncOffloader(sync) as off:
            message = await off.prepare(PAYLOAD, limits=LIMITS)
            assert message.pointer is not None
            assert await off.resolve(message.body, message.attributes) == PAYLOAD
            async with off.open(message.body, message.attributes) as stream:
                chunks = [chunk async for chunk in stream]
                assert stream.verified
            assert b"".join(chunks) == PAYLOAD
            assert sync.resolve(message.body, message.attributes) == PAYLOAD  # either face
            small = await off.prepare(b"small", limits=LIMITS)
            assert small.pointer is None
            assert await off.resolve(small.body) == b"small"
            assert await off.discard(message.pointer)

    asyncio.run(main())


def test_a_corrupted_payload_raises_at_the_end_and_an_early_close_releases(
    store_url: str, moto_server: MotoServer, bucket: str
) -> None:
    sync = make(store_url, moto_server, bucket)

    async def main() -> None:
        async with AsyncOffloader(sync) as off:
            pointer = await off.store_payload(PAYLOAD)
            key = sync.store.key_for(pointer.location)
            assert key is not None
            with sync.store.open_write(key) as sink:
                sink.write(PAYLOAD[:-1] + b"!")
            with pytest.raises(DigestMismatchError):
                await off.read_pointer(pointer)
            stream = await off.open_pointer(pointer)
            with pytest.raises(DigestMismatchError):
                async for _ in stream:
                    pass
            assert not stream.verified
            await stream.aclose()
            before = asyncio.all_tasks()
            async with off.open_pointer(pointer) as early:
                assert len(await early.read(1000)) == 1000
            assert asyncio.all_tasks() <= before  # the feed stopped with the stream

    asyncio.run(main())


def test_a_location_outside_the_stores_is_refused_before_any_io(tmp_path: Path) -> None:
    async def main() -> None:
        async with AsyncOffloader(f"memory://{unique('m')}", pointer_format="native") as off:
            body = '{"offload_pointer": 1, "location": "file:///etc/passwd", "size": 5}'
            with pytest.raises(LocationNotAllowedError):
                await off.resolve(body)
            assert off._faces == {}  # no store was even reached

    asyncio.run(main())


def test_transports_are_opened_by_name_for_either_face(
    moto_server: MotoServer, bucket: str, sqs: Any
) -> None:
    plugins = Plugins.from_entry_points(env={})
    native = offloader(moto_server, f"s3://{bucket}/{unique('by-name')}", pointer_format="native")
    off = AsyncOffloader(native)
    with new_queue(sqs, "by-name") as url:
        opened = {
            "sqs": plugins.open_transport("sqs", url, off, client=object()),
            "sns": plugins.open_transport("sns", "arn:aws:sns:us-east-1:1:t", off),
            "eventbridge": plugins.open_transport("eventbridge", None, off),
        }
        assert isinstance(plugins.open_transport("sqs", url, native, client=sqs), SqsTransport)
        with pytest.raises(ConfigurationError, match="does not take these options"):
            plugins.open_transport("sqs", url, off, colour="red")
    assert [type(t) for t in opened.values()] == [
        AsyncSqsTransport,
        AsyncSnsTransport,
        AsyncEventBridgeTransport,
    ]


def test_a_transport_makes_its_client_and_closes_it(
    moto_server: MotoServer, bucket: str, sqs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FAKE_CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_CREDENTIALS["aws_secret_access_key"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    sync = offloader(moto_server, f"s3://{bucket}/{unique('own-client')}")

    async def main(url: str) -> None:
        async with AsyncOffloader(sync) as off:
            queue = AsyncSqsTransport(url, off, wait_seconds=1)
            with pytest.raises(RuntimeError, match="first send"):
                _ = queue.limits
            opened = 0
            real_open = queue._clients.open

            async def counting(what: str) -> Any:
                nonlocal opened
                opened += 1
                return await real_open(what)

            queue._clients.open = counting  # type: ignore[method-assign]
            sent = await asyncio.gather(*(queue.send(b"c") for _ in range(5)))
            assert opened == 1  # concurrent first sends made one client
            assert len(sent) == 5
            acknowledged = 0
            for _ in range(10):  # take them off the queue again
                got = await queue.receive(10, wait_seconds=1)
                acknowledged += len(got) - len(await queue.acknowledge(got))
                if acknowledged == 5:
                    break
            assert acknowledged == 5
            await queue.aclose()
            async with queue:
                assert queue.limits.max_size == 262_144
                sent = await queue.send(b"x" * 300_000)
                assert sent.pointer is not None
                (message,) = await queue.receive(1)
                assert await message.payload() == b"x" * 300_000
                await message.ack()
            assert queue.client is None  # closed, and made again on the next use

    with new_queue(sqs, "own-client", MaximumMessageSize="262144") as url:
        asyncio.run(main(url))


def test_the_synchronous_api_works_inside_a_running_loop(
    moto_server: MotoServer, bucket: str, sqs: Any
) -> None:
    sync = offloader(moto_server, f"s3://{bucket}/{unique('in-loop')}", pointer_format="native")

    async def main(url: str) -> None:
        queue = SqsTransport(url, sync, client=sqs, wait_seconds=1)
        sent = queue.send(PAYLOAD)
        assert sent.pointer is not None
        (message,) = queue.receive(1)
        assert message.payload() == PAYLOAD
        message.ack()
        assert sync.resolve(sync.prepare(b"in the loop", limits=LIMITS).body) == b"in the loop"

    with new_queue(sqs, "in-loop", MaximumMessageSize="262144") as url:
        asyncio.run(main(url))


class _Counted:
    """A source that counts the sources open at once."""

    def __init__(self, source: Any, counter: dict[str, int]) -> None:
        self._source = source
        self._counter = counter
        self.size = source.size
        counter["open"] += 1
        counter["peak"] = max(counter["peak"], counter["open"])

    async def read(self, size: int = -1) -> bytes:
        await asyncio.sleep(0.001)  # a network would take a while
        data: bytes = await self._source.read(size)
        return data

    async def aclose(self) -> None:
        self._counter["open"] -= 1
        await self._source.aclose()


def test_concurrent_reads_hold_at_most_the_read_memory() -> None:
    from offload_backends.memory import MemoryStore
    from offload_core.aio import InlineStore

    counter = {"open": 0, "peak": 0}

    class CountingFace(InlineStore):
        async def open_read(self, key: str, *, size: int | None = None) -> Any:
            return _Counted(await super().open_read(key, size=size), counter)

    class CountingStore(MemoryStore):
        def async_store(self) -> InlineStore:
            return CountingFace(self)

    store = CountingStore(f"memory://{unique('budget')}")

    async def main() -> None:
        async with AsyncOffloader(store, pointer_format="native", read_memory=3 * MiB) as off:
            pointers = [await off.store_payload(bytes([n]) * MiB) for n in range(12)]
            results = await asyncio.gather(*(off.read_pointer(p) for p in pointers))
            assert [r[:1] for r in results] == [bytes([n]) for n in range(12)]

    asyncio.run(main())
    assert counter["open"] == 0
    assert 1 < counter["peak"] <= 3


def test_a_cancelled_resolve_stops_reading_at_once() -> None:
    """Cancelled while its thread waits for bytes, a resolve ends without reading the rest of
    the payload, and leaves no task behind."""
    from offload_backends.memory import MemoryStore
    from offload_core.aio import InlineStore

    pieces: list[int] = []

    class Slow:
        def __init__(self, source: Any) -> None:
            self._source = source
            self.size = source.size

        async def read(self, size: int = -1) -> bytes:
            await asyncio.sleep(0.05)  # 1 MiB every 50 ms: 64 MiB would take over 3 s
            data: bytes = await self._source.read(size)
            pieces.append(len(data))
            return data

        async def aclose(self) -> None:
            await self._source.aclose()

    class SlowFace(InlineStore):
        async def open_read(self, key: str, *, size: int | None = None) -> Any:
            return Slow(await super().open_read(key, size=size))

    class SlowStore(MemoryStore):
        def async_store(self) -> InlineStore:
            return SlowFace(self)

    store = SlowStore(f"memory://{unique('slow')}")

    async def main() -> float:
        async with AsyncOffloader(store, pointer_format="native") as off:
            pointer = await off.store_payload(os.urandom(64 * MiB))
            before = asyncio.all_tasks()
            task = asyncio.create_task(off.read_pointer(pointer))
            await asyncio.sleep(0.3)
            started = time.monotonic()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            took = time.monotonic() - started
            await asyncio.sleep(0)
            assert asyncio.all_tasks() <= before
            return took

    took = asyncio.run(main())
    assert took < 1.0
    assert sum(pieces) < 32 * MiB  # far from the whole payload


def test_open_streams_neither_starve_publishes_nor_block_resolves() -> None:
    """Streams whose bytes never come hold reading threads only: publishes still hash and
    compress, and a resolve still gets its turn under a small read budget."""
    from offload_backends.memory import MemoryStore
    from offload_core.aio import InlineStore

    class Stalled:
        size = None

        async def read(self, size: int = -1) -> bytes:
            await asyncio.sleep(3600)  # a connection that never answers
            return b""

        async def aclose(self) -> None:
            pass

    class StallingFace(InlineStore):
        async def open_read(self, key: str, *, size: int | None = None) -> Any:
            if key.startswith("stall"):
                return Stalled()
            return await super().open_read(key, size=size)

    class StallingStore(MemoryStore):
        def async_store(self) -> InlineStore:
            return StallingFace(self)

    store = StallingStore(f"memory://{unique('stall')}")

    async def main() -> None:
        async with AsyncOffloader(store, pointer_format="native", read_memory=3 * MiB) as off:
            stalled = [await off.store_payload(b"s" * MiB, key=f"stall/{n}") for n in range(16)]
            streams = [await off.open_pointer(p) for p in stalled]
            readers = [asyncio.create_task(s.read()) for s in streams]
            await asyncio.sleep(0.1)
            payload = os.urandom(2 * MiB) + b"x" * (2 * MiB)
            pointer = await asyncio.wait_for(off.store_payload(payload), 10)
            assert len(await asyncio.wait_for(off.read_pointer(pointer), 10)) == 4 * MiB
            for task in readers:
                task.cancel()
            await asyncio.wait(readers)
            for stream in streams:
                await stream.aclose()

    asyncio.run(main())


def test_content_addressed_payloads_are_stored_once_on_the_asynchronous_face(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        async with AsyncOffloader(tmp_path.as_uri(), content_addressed=True) as off:
            first = await off.store_payload(PAYLOAD)
            again = await off.store_payload(PAYLOAD)
            assert again.location == first.location
            assert again.digest == first.digest
            assert await off.read_pointer(again) == PAYLOAD

    asyncio.run(main())
    assert len([p for p in tmp_path.rglob("*") if p.is_file()]) == 1
