"""The asynchronous offloader: the :class:`~offload_core.offloader.Offloader`'s rules, awaited.

Every decision (threshold, pointer format, detection, signature and allowlist checks, size and
digest verification, compensation) is the synchronous offloader's own flow
(:mod:`offload_core.flow`); this face does the store I/O on the caller's event loop. CPU work
on payload bytes (hashing, compressing, decompressing) runs on a small pool of worker threads,
a piece at a time, so the loop never waits for a 2 GiB digest; what the threads read is fed by
the loop, at most :data:`FEED_WINDOW` ahead of them per stream.
"""

from __future__ import annotations

import asyncio
import io
import os
import threading
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, BinaryIO, TypeVar, cast

from offload_core.codecs import Frozen
from offload_core.errors import OffloadError, StorageError
from offload_core.flow import Sink, StoreIO
from offload_core.message import OutgoingMessage
from offload_core.offloader import Offloader, PrepareOptions, Received, Sendable
from offload_core.pipeline import CHUNK_SIZE, VerifyingReader, read_all
from offload_core.pointer import Pointer
from offload_core.publishing import OutcomeRule, is_outcome_unknown
from offload_core.store import Store

from .store import AsyncSource, AsyncStore, async_face

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "FEED_WINDOW",
    "READERS",
    "READ_MEMORY",
    "AsyncOffloader",
    "AsyncPayloadStream",
    "Opening",
]

T = TypeVar("T")

#: How far the loop reads a stored object ahead of the thread that verifies it.
FEED_WINDOW = 2 * 1024 * 1024
#: What the payload reads of one offloader may buffer at once, by default; reads beyond it wait.
READ_MEMORY = 64 * 1024 * 1024
#: What one read reserves at most: what the S3 store may have in flight for one object.
READ_RESERVE = 40 * 1024 * 1024
#: Bytes asked of a store per read.
_PIECE = 1024 * 1024

_pools: dict[str, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()
#: Threads that decode and verify streams (each may wait for its stream's next bytes): a
#: stalled connection holds one of these, never a thread that hashes or compresses.
READERS = 32


def _pool(name: str) -> Executor:
    """``"cpu"``: the threads that hash and compress payload bytes for every loop (they never
    wait for the network); ``"read"``: the threads that read verified streams."""
    with _pools_lock:
        pool = _pools.get(name)
        if pool is None:
            size = max(4, 2 * (os.cpu_count() or 1)) if name == "cpu" else READERS
            pool = _pools[name] = ThreadPoolExecutor(size, thread_name_prefix=f"offload-{name}")
        return pool


async def _on_worker(
    fn: Callable[..., T], *args: Any, pool: str = "cpu", abort: Callable[[], object] | None = None
) -> T:
    """``fn(*args)`` on a worker thread. Cancelled before it started, it never runs; cancelled
    while it runs, ``abort`` (if any) is called to make it end soon, and it is waited for."""
    work = _pool(pool).submit(fn, *args)
    try:
        return await asyncio.shield(asyncio.wrap_future(work))
    except asyncio.CancelledError:
        if not work.cancel():
            if abort is not None:
                abort()
            await asyncio.wait([asyncio.wrap_future(work)])
        raise


async def _reading(reader: BinaryIO, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)``, a read of ``reader``, on a reading thread; cancelled meanwhile, the
    reader's feed is closed so that the read ends at once (not after the rest of the payload),
    its connection released before this returns, and the reader is then unusable."""
    feed = _feed_of(reader)
    try:
        if feed is not None:
            await feed.filled()
        return await _on_worker(fn, *args, pool="read", abort=None if feed is None else feed.close)
    except asyncio.CancelledError:
        if feed is not None:
            feed.close()
            await feed.wait_closed()
        raise


class _Feed(io.RawIOBase, BinaryIO):
    """A stored object's bytes for a verifying reader on a worker thread, read from an
    :class:`AsyncSource` by a task on the loop, at most :data:`FEED_WINDOW` ahead."""

    def __init__(
        self,
        source: AsyncSource,
        window: int = FEED_WINDOW,
    ) -> None:
        super().__init__()
        self._source = source
        #: The object's size, as the store said (``open_verified`` bounds a raw payload by it).
        self.size = source.size
        self._window = window
        self._pieces: deque[memoryview] = deque()
        self._buffered = 0
        self._eof = False
        self._error: BaseException | None = None
        self._lock = threading.Condition()
        self._loop = asyncio.get_running_loop()
        self._room = asyncio.Event()
        self._room.set()
        #: Set once a reading thread would find a window's worth of bytes, or the end.
        self._ready = asyncio.Event()
        self._task = self._loop.create_task(self._pump())

    async def _pump(self) -> None:
        try:
            while True:
                await self._room.wait()
                data = await self._source.read(_PIECE)
                with self._lock:
                    if data:
                        self._pieces.append(memoryview(data))
                        self._buffered += len(data)
                        if self._buffered >= self._window:
                            self._room.clear()
                            self._ready.set()
                    else:
                        self._eof = True
                        self._ready.set()
                    self._lock.notify_all()
                if not data:
                    return
        except BaseException as exc:
            with self._lock:
                self._error = exc
                self._lock.notify_all()
            self._ready.set()
            if not isinstance(exc, (Exception, asyncio.CancelledError)):
                raise
        finally:
            await self._source.aclose()

    def _room_left(self) -> None:
        with self._lock:
            if self._buffered < self._window:
                self._room.set()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        with self._lock:
            while not self._pieces and not self._eof and self._error is None and not self.closed:
                self._lock.wait()
            if self._pieces:
                count = 0
                while self._pieces and count < len(view):
                    piece = self._pieces[0]
                    n = min(len(piece), len(view) - count)
                    view[count : count + n] = piece[:n]
                    count += n
                    if n == len(piece):
                        self._pieces.popleft()
                    else:
                        self._pieces[0] = piece[n:]
                full = self._buffered >= self._window
                self._buffered -= count
                if full and self._buffered < self._window:
                    self._loop.call_soon_threadsafe(self._room_left)
                return count
            if self._error is not None:
                if isinstance(self._error, OffloadError):
                    raise self._error
                if isinstance(self._error, Exception):  # a store that did not translate it
                    raise StorageError(f"reading the payload failed: {self._error}") from (
                        self._error
                    )
                raise ValueError("the stream was closed while it was read") from self._error
            if self.closed:
                raise ValueError("I/O operation on closed file")
            return 0

    def close(self) -> None:
        if self.closed:
            return
        with self._lock:
            super().close()
            self._pieces.clear()
            self._lock.notify_all()
        if not self._task.done():
            self._loop.call_soon_threadsafe(self._task.cancel)

    async def filled(self) -> None:
        """Until a window's worth of bytes is buffered, or the end (or an error) is reached:
        a reading thread started then does not sit waiting for the network."""
        await self._ready.wait()

    async def wait_closed(self) -> None:
        """Until the source is released (the pump has ended)."""
        await asyncio.wait([self._task])


class _Budget:
    """Bytes that whole-payload reads on one event loop may hold at once: each reserves what
    it may buffer (its object's size, at most :data:`READ_RESERVE`) before it opens the object
    and gives it back when it is done, so waiting reads hold nothing. First come, first served;
    a read larger than the whole budget waits to be alone."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.free = total
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()

    @asynccontextmanager
    async def reserved(self, size: int) -> AsyncIterator[None]:
        size = min(size, self.total)
        if self._waiting or self.free < size:
            turn = asyncio.get_running_loop().create_future()
            self._waiting.append((size, turn))
            try:
                await turn
            except BaseException:
                if turn.done() and not turn.cancelled():
                    self._give_back(size)  # granted as it was cancelled
                else:
                    self._waiting.remove((size, turn))
                    self._grant()
                raise
        else:
            self.free -= size
        try:
            yield
        finally:
            self._give_back(size)

    def _give_back(self, size: int) -> None:
        self.free += size
        self._grant()

    def _grant(self) -> None:
        while self._waiting and self._waiting[0][0] <= self.free:
            size, turn = self._waiting.popleft()
            if not turn.cancelled():
                self.free -= size
                turn.set_result(None)


class _FeedIO:
    """The asynchronous face of store I/O for the offloader's flows."""

    def __init__(self, faces: Callable[[Store], AsyncStore], read_memory: int) -> None:
        self._faces = faces
        self._read_memory = read_memory
        self._budgets: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Budget] = (
            weakref.WeakKeyDictionary()
        )

    def open_write(
        self, store: Store, key: str, *, metadata: Mapping[str, str], exclusive: bool
    ) -> AbstractAsyncContextManager[Sink]:
        return self._faces(store).open_write(key, metadata=metadata, exclusive=exclusive)

    async def pieces(self, pieces: Iterator[Frozen]) -> AsyncIterator[Frozen]:
        while (piece := await _on_worker(next, pieces, None)) is not None:
            yield piece

    async def delete(self, store: Store, key: str) -> None:
        await self._faces(store).delete(key)

    async def cpu(self, fn: Callable[..., T], /, *args: Any) -> T:
        return await _on_worker(fn, *args)

    def reserving(self, size: int | None) -> AbstractAsyncContextManager[None]:
        loop = asyncio.get_running_loop()
        budget = self._budgets.get(loop)
        if budget is None:
            budget = self._budgets[loop] = _Budget(self._read_memory)
        return budget.reserved(FEED_WINDOW if size is None else min(size, READ_RESERVE))

    async def open_read(self, store: Store, key: str, size: int | None) -> BinaryIO:
        return _Feed(await self._faces(store).open_read(key, size=size))

    async def read_all(self, reader: BinaryIO) -> bytes:
        try:
            return await _reading(reader, read_all, reader)
        finally:
            feed = _feed_of(reader)
            if feed is not None:  # its connection is released before the read returns
                feed.close()
                await feed.wait_closed()


class AsyncPayloadStream:
    """A payload read from its store, verified as it is read (``async for`` yields chunks of up
    to 8 MiB; the read that reaches the end raises if the size or digest is wrong, so act on the
    data only after the end). Close it (``async with``) to release the connection early."""

    def __init__(self, reader: BinaryIO) -> None:
        self._reader = reader

    @property
    def verified(self) -> bool:
        """True once the whole payload has been read and every check has passed."""
        reader = self._reader
        return reader.verified if isinstance(reader, VerifyingReader) else True  # inline

    @property
    def bytes_read(self) -> int:
        reader = self._reader
        return reader.bytes_read if isinstance(reader, VerifyingReader) else reader.tell()

    async def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (everything left for ``-1``); ``b""`` at the verified end. A read
        cancelled while it waits for bytes leaves the stream unusable: close it."""
        if size is None or size < 0:
            return await _reading(self._reader, read_all, self._reader)
        return await _reading(self._reader, self._reader.read, size)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        while chunk := await self.read(CHUNK_SIZE):
            yield chunk

    async def aclose(self) -> None:
        """Stop reading and release the connection."""
        await _on_worker(self._reader.close)  # it may wait for a hashing thread
        feed = _feed_of(self._reader)
        if feed is not None:
            await feed.wait_closed()

    async def __aenter__(self) -> AsyncPayloadStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _feed_of(reader: BinaryIO) -> _Feed | None:
    """The feed a verifying reader reads from, if any (not for inline payloads)."""
    raw = getattr(reader, "raw", None)
    return raw if isinstance(raw, _Feed) else None


class Opening:
    """What :meth:`AsyncOffloader.open` returns: await it for the stream, or ``async with`` it
    to have the stream closed at the end of the block."""

    def __init__(self, opening: Awaitable[AsyncPayloadStream]) -> None:
        self._opening = opening
        self._stream: AsyncPayloadStream | None = None

    def __await__(self) -> Generator[Any, None, AsyncPayloadStream]:
        return self._opening.__await__()

    async def __aenter__(self) -> AsyncPayloadStream:
        self._stream = await self._opening
        return self._stream

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._stream is not None:
            await self._stream.aclose()


class AsyncOffloader:
    """:class:`~offload_core.offloader.Offloader`, awaited. Takes an offloader, or the same
    arguments as one (``AsyncOffloader("s3://payloads/orders", compression="zstd")``).

    ``read_memory`` bounds what its whole-payload reads (``resolve``, ``read_pointer``, a
    message's ``payload()``) buffer at once: each reserves its object's size, up to 40 MiB,
    before it opens the object and until it is done, and the others wait, so a hundred
    concurrent resolves of large payloads hold a bounded amount. Streams (``open``) are not
    counted: each buffers at most 2 MiB ahead of its reader, plus the store's ranges in flight.

    Use it as ``async with`` (or call :meth:`aclose`) to release its stores' clients. Stores
    are reached through their asynchronous face (:func:`~offload_core.aio.store.async_face`),
    made on the first use on the running loop.
    """

    #: What tells this face from the synchronous one without importing it.
    asynchronous = True

    def __init__(
        self,
        store: str | Store | Offloader,
        *,
        executor: Executor | None = None,
        read_memory: int = READ_MEMORY,
        **options: Any,
    ) -> None:
        if isinstance(store, Offloader):
            if options:
                raise TypeError("options go to the Offloader; pass them there")
            self.offloader = store
        else:
            self.offloader = Offloader(store, **options)
        self._executor = executor
        self._faces: dict[int, AsyncStore] = {}
        #: The store I/O of this offloader's flows (transports built on it use it too).
        self.io: StoreIO = _FeedIO(self.face, read_memory)

    def __repr__(self) -> str:
        return f"AsyncOffloader({self.offloader.store.url!r})"

    @property
    def store(self) -> Store:
        return self.offloader.store

    def face(self, store: Store) -> AsyncStore:
        """The asynchronous face of one of this offloader's stores."""
        face = self._faces.get(id(store))
        if face is None:
            face = self._faces[id(store)] = async_face(store, self._executor)
        return face

    async def aclose(self) -> None:
        faces, self._faces = list(self._faces.values()), {}
        for face in faces:
            await face.aclose()

    async def __aenter__(self) -> AsyncOffloader:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- publishing ----------------------------------------------------------------------------

    async def prepare(
        self, payload: Sendable, **options: Unpack[PrepareOptions]
    ) -> OutgoingMessage:
        """As :meth:`Offloader.prepare <offload_core.offloader.Offloader.prepare>`
        (``options``: :class:`~offload_core.offloader.PrepareOptions`)."""
        return await self.offloader.prepare_flow(payload, self.io, **options)

    async def publish(
        self,
        payload: Sendable,
        send: Callable[[OutgoingMessage], Awaitable[T]],
        *,
        outcome_unknown: OutcomeRule = is_outcome_unknown,
        **options: Unpack[PrepareOptions],
    ) -> T:
        """:meth:`prepare`, then ``await send(message)``; a payload stored for a send that
        raises is removed again unless ``outcome_unknown`` (a cancelled send: unknown, kept)."""
        message = await self.prepare(payload, **options)
        return await self.offloader.send_flow(message, send, outcome_unknown, self.io)

    async def store_payload(
        self, payload: Sendable, *, content_type: str | None = None, key: str | None = None
    ) -> Pointer:
        """As :meth:`Offloader.store_payload <offload_core.offloader.Offloader.store_payload>`."""
        return await self.offloader.store_flow(payload, content_type, key, self.io)

    async def discard(self, pointer: Pointer) -> bool:
        """Delete a stored payload, best effort (see ``Offloader.discard``)."""
        return await self.offloader.discard_flow(pointer, self.io)

    # -- consuming ---------------------------------------------------------------------------

    def parse(self, body: str | bytes, attributes: Mapping[str, Any] | None = None) -> Received:
        """Unwrap an SNS envelope and detect a pointer; no I/O."""
        return self.offloader.parse(body, attributes)

    async def resolve(
        self, body: str | bytes, attributes: Mapping[str, Any] | None = None
    ) -> bytes:
        """The payload as bytes, verified."""
        received = self.parse(body, attributes)
        if received.pointer is None:
            return received.body.encode() if isinstance(received.body, str) else received.body
        return await self.read_pointer(received.pointer)

    async def read_pointer(self, pointer: Pointer) -> bytes:
        """Dereference and verify a pointer; the whole payload in memory."""
        return await self.offloader.read_flow(pointer, {}, self.io)

    def open(self, body: str | bytes, attributes: Mapping[str, Any] | None = None) -> Opening:
        """The payload as a verifying stream: ``async with off.open(body) as stream``."""
        received = self.parse(body, attributes)
        if received.pointer is None:
            data = received.body.encode() if isinstance(received.body, str) else received.body
            return Opening(_ready(AsyncPayloadStream(io.BytesIO(data))))
        return self.open_pointer(received.pointer)

    def open_pointer(self, pointer: Pointer) -> Opening:
        """A verifying stream of a pointer's payload; refused before any I/O as
        ``Offloader.open_pointer`` refuses."""
        return Opening(self._open(pointer))

    async def _open(self, pointer: Pointer) -> AsyncPayloadStream:
        reader = await self.offloader.open_flow(pointer, {}, self.io)
        return AsyncPayloadStream(reader)


async def _ready(stream: AsyncPayloadStream) -> AsyncPayloadStream:
    return stream


def as_payload(data: IO[bytes]) -> AsyncPayloadStream:
    """An in-memory payload as a stream (inline messages)."""
    return AsyncPayloadStream(cast(BinaryIO, data))
