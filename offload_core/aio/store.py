"""The asynchronous face of a store: what :class:`~offload_core.aio.AsyncOffloader` awaits.

A store plugin gives its asynchronous face by a method ``async_store()`` returning an
:class:`AsyncStore` (S3 and MRAP: s3fs's coroutines on the caller's loop, no thread; memory:
in place, it does no I/O). Any other store is driven through a bounded executor
(:class:`ExecutorStore`), so a third-party store works on both faces unchanged. Keys, locations
and errors are the store's own: the asynchronous face adds no rules.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial
from itertools import islice
from typing import Any, BinaryIO, Protocol, TypeVar, runtime_checkable

from offload_core.store import ObjectInfo, Store, open_read

__all__ = [
    "AsyncSink",
    "AsyncSource",
    "AsyncStore",
    "ExecutorStore",
    "InlineStore",
    "async_face",
    "finish",
]

T = TypeVar("T")

#: Objects listed per executor call.
_LIST_PAGE = 256


@runtime_checkable
class AsyncSink(Protocol):
    """A stored object being written; it appears when its ``open_write`` block exits."""

    async def write(self, data: bytes | memoryview, /) -> object: ...


@runtime_checkable
class AsyncSource(Protocol):
    """A stored object being read."""

    #: How many bytes the object holds, when the store says so without reading.
    size: int | None

    async def read(self, size: int = -1, /) -> bytes:
        """Up to ``size`` bytes (any positive amount, ``b""`` at the end)."""
        ...

    async def aclose(self) -> None:
        """Release the connection; reading stops."""
        ...


@runtime_checkable
class AsyncStore(Protocol):
    """Object storage under one root URL, awaited: :class:`~offload_core.store.Store`'s
    contract, its I/O as coroutines."""

    url: str

    def location(self, key: str) -> str: ...

    def key_for(self, location: str) -> str | None: ...

    def open_write(
        self, key: str, *, metadata: Mapping[str, str] | None = None, exclusive: bool = False
    ) -> AbstractAsyncContextManager[AsyncSink]:
        """As the store's ``open_write``: the object appears only if the block exits without
        error (a cancelled block leaves nothing behind, no incomplete upload either)."""
        ...

    async def open_read(self, key: str, *, size: int | None = None) -> AsyncSource:
        """As :func:`offload_core.store.open_read`: ``size`` is the pointer's claim, checked."""
        ...

    async def info(self, key: str) -> ObjectInfo: ...

    async def delete(self, key: str) -> None: ...

    def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]: ...

    async def aclose(self) -> None:
        """Release clients and connections."""
        ...


async def finish(future: asyncio.Future[T]) -> T:
    """Await ``future`` to its end even if the caller is cancelled meanwhile (then re-raise the
    cancellation): work that must not be abandoned halfway, such as an abort or a thread."""
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await asyncio.wait([future])
        raise


class _Runner(Protocol):
    async def __call__(self, fn: Callable[..., T], /, *args: Any) -> T: ...


class ExecutorStore:
    """A synchronous store's asynchronous face: every call on a bounded executor, finished
    even when the awaiting task is cancelled (a write is then aborted, as the store aborts)."""

    def __init__(self, store: Store, executor: Executor | None = None, max_workers: int = 8):
        self.store = store
        self.url = store.url
        self._own = executor is None
        self._executor = executor or ThreadPoolExecutor(max_workers, "offload-store")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.store!r})"

    async def _run(self, fn: Callable[..., T], /, *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await finish(loop.run_in_executor(self._executor, partial(fn, *args)))

    def location(self, key: str) -> str:
        return self.store.location(key)

    def key_for(self, location: str) -> str | None:
        return self.store.key_for(location)

    @asynccontextmanager
    async def open_write(
        self, key: str, *, metadata: Mapping[str, str] | None = None, exclusive: bool = False
    ) -> AsyncIterator[AsyncSink]:
        block = self.store.open_write(key, metadata=metadata, exclusive=exclusive)
        sink = await self._run(block.__enter__)
        try:
            yield _RunSink(sink, self._run)
        except BaseException:
            if not await self._run(block.__exit__, *sys.exc_info()):
                raise
        else:
            await self._run(block.__exit__, None, None, None)

    async def open_read(self, key: str, *, size: int | None = None) -> AsyncSource:
        stream = await self._run(partial(open_read, self.store, key, size=size))
        return _RunSource(stream, self._run)

    async def info(self, key: str) -> ObjectInfo:
        return await self._run(self.store.info, key)

    async def delete(self, key: str) -> None:
        await self._run(self.store.delete, key)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        listing = await self._run(self.store.list, prefix)
        while page := await self._run(_page, listing):
            for item in page:
                yield item

    async def aclose(self) -> None:
        if self._own:
            self._executor.shutdown(wait=False)


def _page(listing: Iterator[ObjectInfo]) -> list[ObjectInfo]:
    return list(islice(listing, _LIST_PAGE))


class _RunSink:
    def __init__(self, sink: BinaryIO, run: _Runner) -> None:
        self._sink = sink
        self._run = run

    async def write(self, data: bytes | memoryview, /) -> object:
        return await self._run(self._sink.write, data)


class _RunSource:
    def __init__(self, stream: BinaryIO, run: _Runner) -> None:
        self._stream = stream
        self._run = run
        size = getattr(stream, "size", None)
        self.size = size if isinstance(size, int) and not isinstance(size, bool) else None

    async def read(self, size: int = -1, /) -> bytes:
        return await self._run(self._stream.read, size)

    async def aclose(self) -> None:
        await self._run(self._stream.close)


class InlineStore(ExecutorStore):
    """The asynchronous face of a store that does no I/O (memory): its calls, in place."""

    def __init__(self, store: Store) -> None:
        super().__init__(store, executor=_NO_EXECUTOR)
        self._own = False

    async def _run(self, fn: Callable[..., T], /, *args: Any) -> T:
        return fn(*args)


class _NoExecutor(Executor):
    pass


_NO_EXECUTOR = _NoExecutor()


def async_face(store: Store, executor: Executor | None = None) -> AsyncStore:
    """``store``'s asynchronous face: its own (``store.async_store()``) if it has one, else
    :class:`ExecutorStore` on ``executor`` (a private one of 8 threads by default)."""
    own = getattr(store, "async_store", None)
    if callable(own):
        face = own()
        if not isinstance(face, AsyncStore):
            raise TypeError(f"{store!r}.async_store() returned {face!r}, not an AsyncStore")
        return face
    return ExecutorStore(store, executor)
