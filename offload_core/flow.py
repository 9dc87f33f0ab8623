"""One protocol, two faces: the rules are written once, as coroutines that do their I/O through
a face, and each face drives them.

A *flow* is a coroutine of the core (storing a payload, sending a batch, reading a pointer) whose
every I/O step is an ``await`` on a face object. The synchronous face's methods do their I/O
at once and never suspend, so :func:`run_sync` runs a flow to its end without an event loop
(and so works inside a running one); the asynchronous face's methods await aiobotocore and
s3fs on the caller's loop. Thresholds, formats, detection, verification, compensation and the
"outcome unknown" rule are therefore in one place, whichever face calls them.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, TypeVar, cast

from .pipeline import read_all
from .store import Store, open_read

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .codecs import Frozen

__all__ = ["SYNC", "Sink", "StoreIO", "SuspendedError", "SyncStoreIO", "resolved", "run_sync"]

T = TypeVar("T")


class SuspendedError(RuntimeError):
    """A flow driven synchronously awaited something that suspends: an asynchronous client
    or store was handed to the synchronous face."""


def run_sync(flow: Coroutine[Any, Any, T]) -> T:
    """Run a flow whose awaits all complete at once (the synchronous face) to its end."""
    try:
        flow.send(None)
    except StopIteration as done:
        return cast(T, done.value)
    flow.close()
    raise SuspendedError(
        "a synchronous call awaited something asynchronous (an aiobotocore client given to "
        "a synchronous transport?); use the asynchronous face"
    )


async def resolved(value: T | Awaitable[T]) -> T:
    """``value``, awaited if it is awaitable: a hook's result from either face's client."""
    if inspect.isawaitable(value):
        return await value
    return value


class Sink(Protocol):
    """Where a flow writes a stored object's pieces."""

    async def write(self, data: Frozen, /) -> object: ...


class StoreIO(Protocol):
    """The store I/O a flow awaits; :data:`SYNC` does it at once, the asynchronous offloader
    on the caller's event loop."""

    def open_write(
        self, store: Store, key: str, *, metadata: Mapping[str, str], exclusive: bool
    ) -> AbstractAsyncContextManager[Sink]:
        """As :meth:`Store.open_write <offload_core.store.Store.open_write>`."""
        ...

    def pieces(self, pieces: Iterator[Frozen]) -> AsyncIterator[Frozen]:
        """The stored pieces, each made (hashed, compressed) where this face does CPU work."""
        ...

    async def delete(self, store: Store, key: str) -> None: ...

    async def open_read(self, store: Store, key: str, size: int | None) -> BinaryIO:
        """A stream of the stored bytes, as :func:`offload_core.store.open_read` opens it."""
        ...

    async def read_all(self, reader: BinaryIO) -> bytes:
        """:func:`offload_core.pipeline.read_all` of ``reader``."""
        ...

    async def cpu(self, fn: Callable[..., T], /, *args: Any) -> T:
        """``fn(*args)``, work on payload bytes (hashing a whole payload): at once, or on a
        worker thread so that the event loop is not held."""
        ...

    def reserving(self, size: int | None) -> AbstractAsyncContextManager[None]:
        """Held around a whole-payload read of an object of ``size`` stored bytes (if known):
        where a face bounds the memory of concurrent reads, the read waits here for its turn."""
        ...


class _SyncSink:
    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw

    async def write(self, data: Frozen, /) -> object:
        return self._raw.write(data)


class SyncStoreIO:
    """The synchronous face of store I/O: each call is the store's own, done at once."""

    @asynccontextmanager
    async def open_write(
        self, store: Store, key: str, *, metadata: Mapping[str, str], exclusive: bool
    ) -> AsyncIterator[Sink]:
        with store.open_write(key, metadata=metadata, exclusive=exclusive) as sink:
            yield _SyncSink(sink)

    async def pieces(self, pieces: Iterator[Frozen]) -> AsyncIterator[Frozen]:
        for piece in pieces:
            yield piece

    async def delete(self, store: Store, key: str) -> None:
        store.delete(key)

    async def open_read(self, store: Store, key: str, size: int | None) -> BinaryIO:
        return open_read(store, key, size=size)

    async def read_all(self, reader: BinaryIO) -> bytes:
        return read_all(reader)

    async def cpu(self, fn: Callable[..., T], /, *args: Any) -> T:
        return fn(*args)

    @asynccontextmanager
    async def reserving(self, size: int | None) -> AsyncIterator[None]:
        yield  # one read at a time already


#: The synchronous face of store I/O.
SYNC: StoreIO = SyncStoreIO()
