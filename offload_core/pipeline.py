"""The streaming pipeline between a payload and its stored form, in bounded memory.

Writing: payload → chunks → checksum of the original bytes → codec → sink, counting both sizes.
Reading: stored bytes → bounded decompression → size and digest checks → the original bytes.
Neither direction holds more than a few chunks at a time; ``bytes`` in and out are conveniences
on top (:func:`iter_chunks`, :func:`read_all`). Nothing here knows about stores or transports.
"""

from __future__ import annotations

import io
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext, suppress
from dataclasses import dataclass
from functools import partial
from itertools import chain
from typing import (
    IO,
    TYPE_CHECKING,
    Any,
    BinaryIO,
    NoReturn,
    Protocol,
    TypeAlias,
    TypeVar,
    cast,
    runtime_checkable,
)

from .codecs import SAMPLE_SIZE, Codec, Frozen, IdentityCodec, looks_incompressible, readinto
from .errors import DecompressionLimitError, DigestMismatchError, IntegrityError, SizeMismatchError

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

__all__ = [
    "CHUNK_SIZE",
    "Chunk",
    "Frozen",
    "HashLike",
    "Payload",
    "PendingWrite",
    "VerifyingReader",
    "WriteResult",
    "choose_codec",
    "encode",
    "is_frozen",
    "iter_chunks",
    "open_verified",
    "read_all",
    "start_write",
]

#: What can be published: bytes-like, text (sent as UTF-8), a binary file object, or an iterable
#: of bytes-like pieces.
Payload: TypeAlias = "bytes | bytearray | memoryview | str | IO[bytes] | Iterable[Chunk]"
Chunk: TypeAlias = "bytes | bytearray | memoryview"

_R = TypeVar("_R")

#: Default piece size: what one read of a payload file returns and what one stored part holds.
CHUNK_SIZE = 8 * 1024 * 1024
#: Batches at least this large are hashed on a worker thread, overlapping the caller's I/O.
_BACKGROUND_MIN = 1024 * 1024
#: Pieces are handed to the hashing thread in batches of about this many bytes.
_BATCH_SIZE = 4 * 1024 * 1024
#: Batches queued for the hashing thread at most; the caller waits beyond that. One batch
#: hashing while the next gathers keeps what the hasher holds on to under two batches.
_BACKGROUND_DEPTH = 1
#: The most memory a declared size alone may make :func:`read_all` set aside.
_TRUSTED_SIZE = 8 * 1024 * 1024
#: What :func:`read_all` reads at a time past what it set aside (a read sets aside its size).
_PROBE_SIZE = 1024 * 1024


@runtime_checkable
class HashLike(Protocol):
    """What a registered checksum constructor returns: the hashlib interface, in part."""

    def update(self, data: ReadableBuffer, /) -> None: ...

    def hexdigest(self) -> str: ...


class _BackgroundHasher:
    """Feeds a hasher from one worker thread, in order, so hashing overlaps the caller's I/O.

    Pieces that cannot change (:func:`is_frozen`) are gathered into batches of about
    ``_BATCH_SIZE`` bytes, each one hand-off to the thread; anything else is hashed at once,
    after the queue has drained, and so is a last batch under ``_BACKGROUND_MIN``. At most
    ``_BACKGROUND_DEPTH`` batches are queued, so memory stays bounded. hashlib and the other
    built-in checksums release the GIL.
    """

    def __init__(self, hasher: HashLike) -> None:
        self._hasher = hasher
        self._queued: deque[Future[None]] = deque()
        self._executor: ThreadPoolExecutor | None = None
        self._batch: list[ReadableBuffer] = []
        self._batched = 0

    def update(self, data: ReadableBuffer, *, stable: bool = False) -> None:
        """Hash ``data``; ``stable`` promises that it will not change until :meth:`hexdigest`
        (or :meth:`close`) returns, like a piece that :func:`is_frozen`."""
        if not (stable or is_frozen(data)):
            self._flush()
            self._wait(0)
            self._hasher.update(data)
            return
        self._batch.append(data)
        self._batched += memoryview(data).nbytes
        if self._batched >= _BATCH_SIZE:
            self._flush()

    def hexdigest(self) -> str:
        self.drain()
        return self._hasher.hexdigest()

    def drain(self) -> None:
        """Hash everything handed over so far; afterwards no piece of it is held."""
        self._flush()
        self._wait(0)

    def close(self) -> None:
        """Stop the worker; queued pieces are dropped (the digest is then meaningless). Once
        every batch is hashed (after :meth:`hexdigest`) the idle worker is let go without
        waiting for its thread to end, so closing never blocks (an event loop, say); otherwise
        this waits for the batch being hashed, which may hold views of the caller's buffer."""
        if self._executor is not None:
            idle = all(future.done() for future in self._queued)
            self._executor.shutdown(wait=not idle, cancel_futures=True)
            self._executor = None
        self._queued.clear()
        self._batch = []

    def _flush(self) -> None:
        batch, self._batch = self._batch, []
        size, self._batched = self._batched, 0
        if not batch:
            return
        if size < _BACKGROUND_MIN:
            self._wait(0)
            _feed(self._hasher, batch)
            return
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="offload-hash")
        self._wait(_BACKGROUND_DEPTH - 1)
        self._queued.append(self._executor.submit(_feed, self._hasher, batch))

    def _wait(self, keep: int) -> None:
        while len(self._queued) > keep:
            self._queued.popleft().result()


def _feed(hasher: HashLike, pieces: list[ReadableBuffer]) -> None:
    for piece in pieces:
        hasher.update(piece)
    pieces.clear()  # before the caller learns the batch is done: no view of its buffer remains


def iter_chunks(payload: Payload, chunk_size: int = CHUNK_SIZE) -> Iterator[Frozen]:
    """The payload as a stream of non-empty chunks that cannot change (:data:`Frozen`).

    A ``str`` is encoded as UTF-8 a slice at a time, ``bytes`` are sliced as views (no copy),
    other bytes-like objects are copied a slice at a time, file objects are read ``chunk_size``
    bytes at a time, and an iterable's items are passed on as they come (copied to ``bytes`` if
    they are mutable, since a caller may reuse a buffer). Anything else raises ``TypeError``.
    """
    if chunk_size <= 0:
        raise ValueError("chunk_size must be positive")
    if isinstance(payload, str):
        for start in range(0, len(payload), chunk_size):
            yield payload[start : start + chunk_size].encode("utf-8")
    elif isinstance(payload, (bytes, bytearray, memoryview)):
        view = memoryview(payload).cast("B")
        if isinstance(payload, bytes) and len(view) <= chunk_size:
            if view:
                yield payload
            return
        frozen = is_frozen(payload)
        for start in range(0, len(view), chunk_size):
            piece = view[start : start + chunk_size]
            yield piece if frozen else piece.tobytes()
    elif hasattr(payload, "read"):
        while chunk := payload.read(chunk_size):
            yield _frozen(chunk, what="read() returned")
    elif isinstance(payload, Iterable):
        what = (
            "an iterable payload is a stream of bytes chunks (a dict or list is sent as JSON), "
            "but it yielded"
        )
        for item in payload:
            if chunk := _frozen(item, what=what):
                yield chunk
    else:
        raise TypeError(f"cannot send a payload of type {type(payload).__name__}")


def is_frozen(item: object) -> bool:
    """Whether ``item`` is ``bytes`` or a view into ``bytes``: safe to keep without a copy."""
    return isinstance(item, bytes) or (
        isinstance(item, memoryview) and isinstance(item.obj, bytes) and item.c_contiguous
    )


def _frozen(item: object, *, what: str) -> Frozen:
    if is_frozen(item):
        return item if isinstance(item, bytes) else memoryview(cast(memoryview, item)).cast("B")
    if isinstance(item, (bytearray, memoryview)):
        return memoryview(item).tobytes()
    raise TypeError(f"{what} {type(item).__name__}, not bytes; open files in binary mode")


@dataclass(frozen=True)
class WriteResult:
    """What :func:`start_write` stored: sizes, the codec really used, and the digest."""

    #: Byte length of the original payload.
    size: int
    #: Byte length written to the sink.
    stored_size: int
    #: Codec of the stored bytes; ``"none"`` when an incompressible payload was stored raw.
    codec: str
    #: Registered name of the checksum algorithm, and the hex digest of the original bytes.
    checksum: str
    digest: str


class PendingWrite:
    """Everything written to the sink, and the digest still being computed on the hashing
    thread: :meth:`result` waits for it. Closing stops the thread (the digest is then lost)."""

    def __init__(
        self, size: int, stored_size: int, codec: str, checksum: str, hasher: _BackgroundHasher
    ) -> None:
        self.size = size
        self.stored_size = stored_size
        self.codec = codec
        self.checksum = checksum
        self._hasher = hasher

    def result(self) -> WriteResult:
        try:
            digest = self._hasher.hexdigest()
        finally:
            self.close()
        return WriteResult(self.size, self.stored_size, self.codec, self.checksum, digest)

    def close(self) -> None:
        self._hasher.close()

    def __enter__(self) -> PendingWrite:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def start_write(
    chunks: Iterable[Chunk],
    sink: BinaryIO,
    *,
    codec: Codec,
    checksum: str,
    hasher: HashLike,
    skip_incompressible: bool = True,
) -> PendingWrite:
    """Hash, compress and write ``chunks`` to ``sink`` (left open), returning once everything
    is written and leaving the digest to finish on the hashing thread, so that the caller can
    commit the sink meanwhile: :meth:`PendingWrite.result` waits for it.

    The first 64 KiB are tried with fast compression first: when compressing would save under
    5 % (already compressed media, encrypted data), the payload is stored raw and the result's
    codec is ``"none"``, which the pointer must then carry.
    """
    pieces, pending = encode(
        chunks,
        codec=codec,
        checksum=checksum,
        hasher=hasher,
        skip_incompressible=skip_incompressible,
    )
    try:
        for out in pieces:
            sink.write(out)
    except BaseException:
        pending.close()
        raise
    return pending


def encode(
    chunks: Iterable[Chunk],
    *,
    codec: Codec,
    checksum: str,
    hasher: HashLike,
    skip_incompressible: bool = True,
) -> tuple[Iterator[Frozen], PendingWrite]:
    """:func:`start_write` without the sink: the stored pieces, to write in order, and the
    write's counts, which are complete once the pieces are exhausted. The asynchronous face
    writes the pieces with ``await``; the hashing is the same."""
    pieces: Iterator[Frozen] = map(partial(_frozen, what="start_write got"), chunks)
    if skip_incompressible:
        codec, pieces = choose_codec(codec, pieces)
    background = _BackgroundHasher(hasher)
    pending = PendingWrite(0, 0, codec.name, checksum, background)

    def hashed() -> Iterator[Frozen]:
        for chunk in pieces:
            background.update(chunk)
            pending.size += len(chunk)
            yield chunk

    def stored() -> Iterator[Frozen]:
        try:
            for out in codec.compress(hashed()):
                if out:
                    pending.stored_size += len(out)
                    yield out
        except BaseException:
            background.close()
            raise

    return stored(), pending


def choose_codec(codec: Codec, chunks: Iterable[Frozen]) -> tuple[Codec, Iterator[Frozen]]:
    """``codec``, or no compression if the first 64 KiB of ``chunks`` would shrink by under 5 %
    (already compressed media, encrypted data); and an iterator over all of ``chunks``."""
    pieces = iter(chunks)
    if codec.name == IdentityCodec.name:
        return codec, pieces
    head: list[Frozen] = []
    sampled = 0
    while sampled < SAMPLE_SIZE and (chunk := next(pieces, None)) is not None:
        head.append(chunk)
        sampled += len(chunk)
    if looks_incompressible(b"".join(chunk[:SAMPLE_SIZE] for chunk in head)):
        codec = IdentityCodec()
    return codec, chain(head, pieces)


def open_verified(
    raw: BinaryIO,
    *,
    codec: Codec,
    size: int | None,
    hasher: HashLike | None,
    expected_digest: str | None,
    checksum: str | None,
    max_size: int,
    location: str | None = None,
) -> VerifyingReader:
    """A reader of the original bytes of the stored stream ``raw``, checked as it is read.

    The reader owns ``raw`` (closing it closes ``raw``; so does an error here). A declared
    ``size`` above ``max_size`` is refused at once with ``DecompressionLimitError``; without a
    declared size, decompression stops at ``max_size``. ``expected_digest`` needs ``hasher``.
    """
    try:
        if max_size < 0 or (size is not None and size < 0):
            raise ValueError("sizes must not be negative")
        if expected_digest is not None and hasher is None:
            raise ValueError("a hasher is needed to verify expected_digest")
        if size is not None and size > max_size:
            raise DecompressionLimitError(limit=max_size, location=location)
        # One byte of slack past the declared size, so that overlong data is told apart (as a
        # SizeMismatchError) from data that merely reaches the size.
        limit = max_size if size is None else size + 1
        # Stored raw, the object's own size (the store's word, not the sender's) bounds it too.
        stored = _stream_size(raw) if codec.name == IdentityCodec.name else None
        stream = codec.decompress(raw, limit=limit, location=location)
    except BaseException:
        raw.close()
        raise
    reader = VerifyingReader(
        stream,
        size=size,
        hasher=hasher,
        expected_digest=expected_digest,
        checksum=checksum,
        location=location,
    )
    reader._stored_size = stored
    reader.raw = raw
    return reader


def _stream_size(raw: BinaryIO) -> int | None:
    """The size of the object a store's freshly opened stream reads, when the stream says so
    (:attr:`offload_core.store.StoreStream.size`: S3's ``Content-Length``, fsspec's size, a
    local file's length); never found by seeking, which can cost a round trip."""
    size = getattr(raw, "size", None)
    return size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None


class VerifyingReader(io.BufferedIOBase, BinaryIO):
    """The original bytes of a stored payload, counted and hashed as they are read.

    Raises :class:`~offload_core.errors.SizeMismatchError` as soon as more bytes arrive than
    declared, and at the end for a short payload; :class:`~offload_core.errors.DigestMismatchError`
    at the end for a wrong digest. The end is checked when a read returns nothing, or right after
    the declared size has been read. ``verified`` is True only after a clean end. An error is
    sticky: every later read raises it again. Bytes handed out before an error must be discarded.

    Iterating yields chunks of up to :data:`CHUNK_SIZE` bytes, not lines.
    """

    def __init__(
        self,
        stream: BinaryIO,
        *,
        size: int | None,
        hasher: HashLike | None,
        expected_digest: str | None,
        checksum: str | None,
        location: str | None,
    ) -> None:
        super().__init__()
        self._stream = stream
        #: The declared byte length of the original payload, if known.
        self.size = size
        self._hasher = None if hasher is None else _BackgroundHasher(hasher)
        self._expected = expected_digest
        self._checksum = checksum
        self.location = location
        self._count = 0
        #: The stored object's own size, when it holds the payload raw and the store said so.
        self._stored_size: int | None = None
        #: The store's stream underneath (what :func:`open_verified` was given).
        self.raw: BinaryIO | None = None
        self._error: IntegrityError | None = None
        #: True once the whole payload has been read and every available check has passed.
        self.verified = False
        #: The hex digest of the bytes read, once the end has been reached with a hasher.
        self.digest: str | None = None
        #: Wraps the final checks (an observer's ``verify`` step).
        self.verifying: Callable[[], AbstractContextManager[object]] = nullcontext
        #: Called once when the reader is done: verified (``None``), failed (the error), or
        #: closed before the end (``None``, ``verified`` False).
        self.on_end: Callable[[IntegrityError | None], None] | None = None
        self._final = False

    @property
    def bytes_read(self) -> int:
        """How many original bytes have been handed out so far."""
        return self._count

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return read_all(self)
        self._check_open()
        if self.verified or size == 0:
            return b""
        data = self._pull(self._stream.read, size)
        self._account(data)
        return data

    def read1(self, size: int = -1) -> bytes:
        return self.read(CHUNK_SIZE if size < 0 else size)

    def readinto(self, buffer: WriteableBuffer) -> int:
        return self._readinto(buffer, stable=False)

    def _readinto(self, buffer: WriteableBuffer, *, stable: bool) -> int:
        """``readinto``; ``stable``: the caller leaves the bytes read alone until the end is
        verified, so they may be hashed on the worker thread meanwhile."""
        self._check_open()
        view = memoryview(buffer).cast("B")
        if self.verified or not view:
            return 0
        count = self._pull(readinto, self._stream, view)
        self._account(view[:count], stable=stable)
        return count

    readinto1 = readinto

    def _release_views(self) -> None:
        """Finish hashing what ``_readinto(stable=True)`` handed over, dropping every view of
        the caller's buffer, so that the caller may resize or reuse it."""
        if self._hasher is not None:
            self._hasher.drain()

    def __next__(self) -> bytes:
        chunk = self.read(CHUNK_SIZE)
        if not chunk:
            raise StopIteration
        return chunk

    def close(self) -> None:
        if not self.closed:
            try:
                if self._hasher is not None:
                    self._hasher.close()
                self._stream.close()
            finally:
                super().close()
                self._ended(None)

    def _ended(self, error: IntegrityError | None) -> None:
        on_end, self.on_end = self.on_end, None
        if on_end is not None:
            on_end(error)

    def _check_open(self) -> None:
        if self._error is not None:
            raise self._error
        if self.closed:
            raise ValueError("I/O operation on closed file")

    def _pull(self, method: Callable[..., _R], *args: Any) -> _R:
        """Call the decompressed stream, remembering any integrity error it raises."""
        try:
            return method(*args)
        except IntegrityError as exc:
            self._fail(exc)

    def _account(self, data: ReadableBuffer, *, stable: bool = False) -> None:
        count = len(memoryview(data))
        if not count:
            self._finish()
            return
        self._count += count
        if self.size is not None and self._count > self.size:
            self._fail(
                SizeMismatchError(expected=self.size, actual=self._count, location=self.location)
            )
        if self._hasher is not None:
            self._hasher.update(data, stable=stable)
        if self.size is not None and self._count == self.size:
            self._account(self._pull(self._stream.read, 1))  # settle the end now

    def _finish(self) -> None:
        self._final = True
        try:
            with self.verifying():
                self._check_end()
        except IntegrityError as exc:
            self._ended(exc)
            raise
        self._ended(None)

    def _check_end(self) -> None:
        if self.size is not None and self._count != self.size:
            self._fail(
                SizeMismatchError(expected=self.size, actual=self._count, location=self.location)
            )
        if self._hasher is not None:
            self.digest = self._hasher.hexdigest()
            if self._expected is not None and self.digest.lower() != self._expected.lower():
                self._fail(
                    DigestMismatchError(
                        algorithm=self._checksum or "checksum",
                        expected=self._expected,
                        actual=self.digest,
                        location=self.location,
                    )
                )
        self.verified = True

    def _fail(self, error: IntegrityError) -> NoReturn:
        self._error = error
        if self._hasher is not None:
            self._hasher.close()  # the digest is moot now; drop the pieces it holds
        if not self._final:  # the final check reports its own end, after its step
            self._ended(error)
        raise error


def read_all(reader: BinaryIO) -> bytes:
    """Everything ``reader`` has left, as one ``bytes`` built in one buffer.

    A declared size is the sender's claim, so memory follows the bytes that arrive: with a
    :class:`VerifyingReader` of known size the buffer starts at the stored object's own size
    when the store tells it and the payload is stored raw, else at no more than
    ``_TRUSTED_SIZE``, and grows by a quarter each time it is full, never past the declared
    size. A lie then costs about the real payload's size and ends in ``SizeMismatchError``;
    an honest payload ends in a buffer of exactly its size, returned without a copy. What is
    filled is never written again, so it is hashed on the worker thread while the rest arrives.
    """
    buffer = io.BytesIO()
    try:
        piece = CHUNK_SIZE
        if isinstance(reader, VerifyingReader) and reader.size is not None:
            _fill(buffer, reader, reader.size - reader.bytes_read, reader._stored_size)
            piece = _PROBE_SIZE  # only a lie or a store that misjudged the size reads on
        while chunk := reader.read(piece):
            buffer.write(chunk)
        return buffer.getvalue()
    except BaseException as exc:
        # The traceback keeps the frames that held views of the buffer, and the reader keeps
        # the error: free the buffer now, not whenever that cycle is collected.
        traceback.clear_frames(exc.__traceback__)
        with suppress(BufferError):
            buffer.close()
        raise


def _fill(buffer: io.BytesIO, reader: VerifyingReader, left: int, known: int | None) -> None:
    """Read up to ``left`` bytes into ``buffer`` in place, growing it only as data arrives.
    When the store said how many bytes the object holds (``known``), that much is set aside at
    once and no more: the caller reads on, so a longer stream still fails as it should."""
    limit = left if known is None else min(left, known)
    filled = capacity = 0
    count = -1
    while filled < limit and count:
        if filled == capacity:
            reader._release_views()  # the buffer may move as it grows
            capacity = limit if known is not None else _grown(capacity, limit)
            buffer.seek(capacity - 1)
            buffer.write(b"\0")  # grows the buffer to exactly `capacity` bytes
        with buffer.getbuffer() as view:
            count = reader._readinto(view[filled:capacity], stable=True)
        filled += count
    reader._release_views()
    buffer.truncate(filled)
    buffer.seek(filled)


def _grown(capacity: int, declared: int) -> int:
    """The next buffer size for :func:`read_all`: a quarter more, or the declared size when
    the step after would pass it. Each step is then over the 12.5 % within which ``BytesIO``
    would over-allocate, so an honest payload ends in a buffer of exactly its size."""
    step = max(_TRUSTED_SIZE, capacity + capacity // 4)
    return declared if declared < step + step // 4 else step
