"""Proving asynchronous faces with the synchronous conformance suites.

:class:`LoopThread` runs an event loop on a thread of its own; :class:`BlockingStore` turns an
:class:`~offload_core.aio.store.AsyncStore` into a :class:`~offload_core.store.Store` whose
every call is the asynchronous face's, awaited on that loop. So the one store suite
(:class:`~offload_core.testing.BackendConformance`) proves both faces of a store::

    class TestMyStoreAsync(BackendConformance):
        @pytest.fixture
        def store(self, loop_thread):
            return BlockingStore(MyStore(...).async_store(), loop_thread)
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Coroutine, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, BinaryIO, TypeVar

from offload_core.aio.store import AsyncSink, AsyncSource, AsyncStore
from offload_core.aio.transport import AsyncTransportBase
from offload_core.offloader import Offloader
from offload_core.policy import Limits
from offload_core.store import ObjectInfo
from offload_core.transport import BatchResult, Entry, SendResult

__all__ = [
    "BlockingDelivery",
    "BlockingStore",
    "BlockingTransport",
    "LoopThread",
    "blocking",
    "cancelled_at",
]

T = TypeVar("T")


class LoopThread:
    """An event loop running on a daemon thread until :meth:`close`."""

    def __init__(self, timeout: float = 300) -> None:
        self.loop = asyncio.new_event_loop()
        self.timeout = timeout
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="offload-test-loop", daemon=True
        )
        self._thread.start()

    def run(self, flow: Coroutine[Any, Any, T]) -> T:
        """Run ``flow`` on the loop and wait for its result (at most ``timeout`` seconds)."""
        return asyncio.run_coroutine_threadsafe(flow, self.loop).result(self.timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(self.timeout)
        self.loop.close()

    def __enter__(self) -> LoopThread:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _Sink(io.RawIOBase):
    def __init__(self, sink: AsyncSink, loop: LoopThread) -> None:
        super().__init__()
        self._sink = sink
        self._loop = loop

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        piece = bytes(data)  # the caller may reuse its buffer once this returns
        self._loop.run(self._sink.write(piece))
        return len(piece)


class _Source(io.RawIOBase):
    def __init__(self, source: AsyncSource, loop: LoopThread) -> None:
        super().__init__()
        self._source = source
        self._loop = loop
        self.size = source.size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._loop.run(self._source.read(len(view)))
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            try:
                self._loop.run(self._source.aclose())
            finally:
                super().close()


async def _listed(store: AsyncStore, prefix: str) -> list[ObjectInfo]:
    return [item async for item in store.list(prefix)]


class BlockingStore:
    """A :class:`~offload_core.store.Store` whose calls are ``store``'s, awaited on ``loop``."""

    def __init__(self, store: AsyncStore, loop: LoopThread) -> None:
        self.store = store
        self.url = store.url
        self._loop = loop

    def __repr__(self) -> str:
        return f"BlockingStore({self.store!r})"

    def location(self, key: str) -> str:
        return self.store.location(key)

    def key_for(self, location: str) -> str | None:
        return self.store.key_for(location)

    @contextmanager
    def open_write(
        self, key: str, *, metadata: Mapping[str, str] | None = None, exclusive: bool = False
    ) -> Iterator[BinaryIO]:
        block = self.store.open_write(key, metadata=metadata, exclusive=exclusive)
        sink = self._loop.run(block.__aenter__())
        try:
            yield _Sink(sink, self._loop)  # type: ignore[misc]
        except BaseException as exc:
            if not self._loop.run(block.__aexit__(type(exc), exc, exc.__traceback__)):
                raise
        else:
            self._loop.run(block.__aexit__(None, None, None))

    def open_read(self, key: str) -> BinaryIO:
        return _Source(self._loop.run(self.store.open_read(key)), self._loop)  # type: ignore[return-value]

    def open_read_sized(self, key: str, size: int) -> BinaryIO:
        source = self._loop.run(self.store.open_read(key, size=size))
        return _Source(source, self._loop)  # type: ignore[return-value]

    def info(self, key: str) -> ObjectInfo:
        return self._loop.run(self.store.info(key))

    def delete(self, key: str) -> None:
        self._loop.run(self.store.delete(key))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return iter(self._loop.run(_listed(self.store, prefix)))


class BlockingDelivery:
    """A received message of an asynchronous transport, its awaited calls made blocking: what
    the transport suite (:class:`~offload_core.testing.TransportConformance`) reads."""

    def __init__(self, message: Any, loop: LoopThread) -> None:
        self.message = message
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        return getattr(self.message, name)

    def payload(self) -> bytes:
        data: bytes = self._loop.run(self.message.payload())
        return data

    def ack(self, *, force: bool = False) -> None:
        self._loop.run(self.message.ack(force=force))

    def release(self) -> None:
        self._loop.run(self.message.release())


class BlockingTransport:
    """A :class:`~offload_core.transport.Transport` whose sends are an asynchronous
    transport's, awaited on ``loop``."""

    def __init__(self, transport: AsyncTransportBase, loop: LoopThread) -> None:
        self.transport = transport
        self._loop = loop
        loop.run(_ready(transport))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.transport!r})"

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)

    @property
    def destination(self) -> str:
        return self.transport.destination

    @property
    def offloader(self) -> Offloader:
        return self.transport.offloader

    @property
    def limits(self) -> Limits:
        return self.transport.limits

    def send(self, payload: Any, **options: Any) -> SendResult:
        return self._loop.run(self.transport.send(payload, **options))

    def send_batch(self, entries: Iterable[Entry | Any]) -> BatchResult:
        return self._loop.run(self.transport.send_batch(entries))


class _BlockingReceiver(BlockingTransport):
    def receive(self, max_messages: int = 10, **options: Any) -> list[BlockingDelivery]:
        got = self._loop.run(self.transport.receive(max_messages, **options))  # type: ignore[attr-defined]
        return [BlockingDelivery(message, self._loop) for message in got]


async def _ready(transport: AsyncTransportBase) -> None:
    await transport._connect()
    await transport._ready()


def blocking(transport: AsyncTransportBase, loop: LoopThread) -> BlockingTransport:
    """``transport`` made blocking; with ``receive`` when the transport receives."""
    kind = _BlockingReceiver if hasattr(transport, "receive") else BlockingTransport
    return kind(transport, loop)


async def cancelled_at(flow: Coroutine[Any, Any, T], step: int) -> tuple[int, T | BaseException]:
    """Drive ``flow`` as a task would, and cancel it at its ``step``-th suspension (counting
    from 1), as ``Task.cancel()`` does: the future it waits on is cancelled and the flow resumed,
    so ``CancelledError`` is raised at that ``await``. Returns how many times the flow suspended
    and its result or the exception it ended with; a ``step`` past the last suspension runs it
    to its end, so ``cancelled_at(flow, 10**9)[0]`` counts the suspensions of a run."""
    count = 0
    exception: BaseException | None = None
    while True:
        try:
            yielded = flow.throw(exception) if exception is not None else flow.send(None)
        except StopIteration as done:
            return count, done.value
        except BaseException as exc:
            return count, exc
        exception = None
        count += 1
        if count == step:
            if isinstance(yielded, asyncio.Future):
                yielded.cancel()
            else:
                exception = asyncio.CancelledError()
                continue
        if isinstance(yielded, asyncio.Future):
            yielded._asyncio_future_blocking = False
            await asyncio.wait([yielded])
        else:
            await asyncio.sleep(0)
