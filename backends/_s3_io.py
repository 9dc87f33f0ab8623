"""Streaming S3 uploads and downloads in bounded memory, on one awaitable request call.

Both sides are file objects for the calling thread while the requests run on an event loop
thread: ``call`` is s3fs's ``S3FileSystem._call_s3`` on fsspec's I/O loop (s3fs's retries,
``requester_pays`` and ``s3_additional_kwargs`` then apply to every request) or a boto3 client's
methods on a thread pool (:mod:`offload_backends._s3_boto3`):

* :class:`MultipartWriter` fills parts of ``part_size`` bytes and uploads each full one while the
  next fills, at most ``concurrency`` at a time, so it holds at most ``concurrency + 1`` parts.
  A payload of at most ``multipart_threshold`` bytes is held and sent as a single ``PutObject``
  (one request instead of three or more; the threshold bounds what is held). Past it, the
  multipart upload is created without stopping the writer: the parts wait on the event loop for
  its id while the next ones fill. Nothing is visible in S3 until
  :meth:`~MultipartWriter.commit`; :meth:`~MultipartWriter.abort` stops the part uploads and
  aborts the multipart upload, once its creation has returned if it was on its way.
* :class:`ObjectReader` reads one ``GetObject`` stream, prefetching two small blocks, or, with
  ``concurrency > 1`` and an object larger than a span, up to ``concurrency`` ranged requests
  at once. Either the store opens the first response (a whole-object ``GetObject``) and every
  later request is conditional on its ETag, or, for a read told the object's size, the reader
  sends its first ``concurrency`` ranges at once: the store waits for the first range's
  response (a missing object, or one of another size, fails the open), the ranges sent with it
  must answer with its ETag, and every later request is conditional on it. A request that
  fails mid-stream is resumed from the byte it reached, within one retry budget per read. The
  bytes are checked at the end against the object's full-object checksum when the first
  response carried one (ranged responses never do) and always against the object's size.
"""

from __future__ import annotations

import asyncio
import bisect
import concurrent.futures
import errno
import io
import itertools
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import suppress
from typing import Any

from offload_core.aws.errors import error_status
from offload_core.errors import (
    DigestMismatchError,
    SizeMismatchError,
    StorageError,
    TransientStorageError,
)
from offload_core.pipeline import is_frozen

from ._errors import translate_fsspec_error
from ._loop import sync
from ._s3_checksums import Digest, append, encode, expected_checksum, new_digest
from ._s3_limits import MAX_PARTS, MIN_PART_SIZE, grown_part_size

__all__ = [
    "MAX_PARTS",
    "MIN_PART_SIZE",
    "Call",
    "MultipartWriter",
    "ObjectReader",
    "total_size",
]

log = logging.getLogger(__name__)

MiB = 1024 * 1024
#: The pieces a single-stream download hands over; two are prefetched.
STREAM_BLOCK = MiB

#: ``S3FileSystem._call_s3``: ``await call("get_object", Bucket=..., Key=...)``.
Call = Callable[..., Awaitable[Any]]


#: Writes of immutable ``bytes`` at least this large are kept by reference rather than copied.
_SHARE_MIN = 256 * 1024
#: The slices aiohttp is handed when it sends a part.
_SEND_SLICE = 256 * 1024


class _Part:
    """The bytes of one part, as written. ``bytes`` (and views into them) cannot change after
    the write returns, so large ones are kept by reference (the pipeline's chunks, and slices of
    a ``bytes`` payload, become parts without a copy); anything else is copied."""

    __slots__ = ("pieces", "size")

    def __init__(self) -> None:
        self.pieces: list[memoryview | bytearray] = []
        self.size = 0

    def add(self, view: memoryview, *, shared: bool) -> None:
        if shared:
            self.pieces.append(view)
        elif self.pieces and isinstance(self.pieces[-1], bytearray):
            self.pieces[-1] += view
        else:
            self.pieces.append(bytearray(view))
        self.size += len(view)


class _PartBody:
    """A part's bytes as botocore and aiohttp take a request body.

    botocore sees a file (``read``, ``seek``, ``tell``, ``len``): it reads it to sign it and
    rewinds it to send it again on a retry. aiohttp sees an async iterable, and sends it in
    slices as the socket drains. Given ``bytes`` it would copy the whole part into the socket's
    send buffer (a second copy of every part in flight), and given a file it would read each
    64 KiB through a thread pool. Deliberately not an ``io.IOBase``, which aiohttp takes for a
    file.
    """

    def __init__(self, part: _Part) -> None:
        self._views = [memoryview(piece).cast("B") for piece in part.pieces]
        self._starts = list(itertools.accumulate((len(v) for v in self._views), initial=0))
        self._size = part.size
        self._pos = 0

    def __len__(self) -> int:
        return self._size

    def _take(self, size: int) -> list[memoryview]:
        """Views of the next ``size`` bytes (fewer at the end), advancing the position."""
        end = min(self._size, self._pos + max(size, 0))
        out = []
        index = bisect.bisect_right(self._starts, self._pos) - 1
        while self._pos < end:
            view, start = self._views[index], self._starts[index]
            piece = view[self._pos - start : end - start]
            out.append(piece)
            self._pos += len(piece)
            index += 1
        return out

    def read(self, size: int | None = -1, /) -> bytes | memoryview:
        """The next ``size`` bytes, as a view into the part when they lie in one piece: botocore
        only hashes what it reads, so nothing needs copying."""
        pieces = self._take(self._size if size is None or size < 0 else size)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def seek(self, offset: int, whence: int = io.SEEK_SET, /) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def __aiter__(self) -> AsyncIterator[memoryview]:
        return self._slices()

    async def _slices(self) -> AsyncIterator[memoryview]:
        while pieces := self._take(_SEND_SLICE):
            for piece in pieces:
                yield piece


class MultipartWriter(io.RawIOBase):
    """A write-only stream that becomes one S3 object when :meth:`commit` is called.

    With ``grow``, parts past :data:`~offload_backends._s3_limits.GROW_AFTER` get larger (and
    fewer go at once, down to one), so that a stream of unknown length never runs out of parts.
    """

    def __init__(
        self,
        call: Call,
        loop: asyncio.AbstractEventLoop,
        bucket: str,
        key: str,
        *,
        location: str,
        part_size: int,
        concurrency: int,
        multipart_threshold: int | None = None,
        checksum_algorithm: str | None,
        digest: Callable[[], Digest] | None,
        full_object: bool = True,
        exclusive: bool,
        params: Mapping[str, Any],
        grow: bool = False,
    ) -> None:
        super().__init__()
        self._call = call
        self._loop = loop
        self._target = {"Bucket": bucket, "Key": key}
        self._location = location
        self._part_size = part_size
        self._concurrency = concurrency
        self._first_part_size = part_size if grow else None
        self._first_concurrency = concurrency
        #: Parts cut from the stream so far (held, uploading or uploaded).
        self._cut = 0
        self._threshold = max(part_size, multipart_threshold or 0)
        #: Full parts kept back while the payload may still fit one ``PutObject``, and their bytes.
        self._held: list[_Part] = []
        self._held_size = 0
        self._algorithm = checksum_algorithm if digest is not None else None
        self._digest = digest
        self._whole = digest() if digest is not None and full_object else None
        self._exclusive = exclusive
        self._params = dict(params)
        self._part = _Part()
        #: The ``CreateMultipartUpload`` request and then its upload id, once the payload is past
        #: the threshold; ``None`` for a single ``PutObject`` and after the upload is completed.
        self._creating: concurrent.futures.Future[str] | None = None
        self._submitted = 0
        self._pending: dict[concurrent.futures.Future[str], dict[str, Any]] = {}
        self._uploaded: list[dict[str, Any]] = []
        self._tasks: set[asyncio.Task[Any]] = set()  # touched only on the loop
        #: Bytes written so far.
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview, /) -> int:  # type: ignore[override]
        view = memoryview(data).cast("B")
        size = len(view)
        shared = size >= _SHARE_MIN and is_frozen(data)
        while len(view):
            room = self._part_size - self._part.size
            self._part.add(view[:room], shared=shared)
            view = view[room:]
            if self._creating is None and self._held_size + self._part.size > self._threshold:
                self._create()
            if self._part.size >= self._part_size:
                self._full(self._take())
        self.size += size
        return size

    def _full(self, part: _Part) -> None:
        """Hold a full part while everything written still fits one ``PutObject``; past the
        threshold, send it after the parts held so far."""
        if self._creating is None:
            self._held.append(part)
            self._held_size += part.size
            return
        self._release_held()
        self._send(part)

    def _release_held(self) -> None:
        held, self._held, self._held_size = self._held, [], 0
        for part in held:
            self._send(part)

    def _take(self) -> _Part:
        part, self._part = self._part, _Part()
        self._cut += 1
        if self._first_part_size is not None:
            self._part_size = grown_part_size(self._first_part_size, self._cut + 1)
            doublings = (self._part_size // self._first_part_size).bit_length() - 1
            self._concurrency = max(1, self._first_concurrency >> doublings)
        return part

    def _checksum(self, part: _Part) -> dict[str, str]:
        """The part's checksum parameter; the whole-object checksum is extended too, from the
        part's CRC if the two combine, else by reading the part a second time."""
        if self._digest is None or self._algorithm is None:
            return {}
        digest = self._digest()
        for piece in part.pieces:
            digest.update(piece)
        if self._whole is not None and not append(self._whole, digest, part.size):
            for piece in part.pieces:
                self._whole.update(piece)
        return {f"Checksum{self._algorithm}": encode(digest.digest())}

    def _send(self, part: _Part) -> None:
        """Queue one part for upload, first waiting until fewer than ``concurrency`` are in
        flight (each waits for the upload id on the loop); a failed ``CreateMultipartUpload``
        is raised here."""
        creating = self._creating or self._create()
        if creating.done():
            creating.result()
        if self._submitted >= MAX_PARTS:
            raise StorageError(
                f"{self._location} would need more than {MAX_PARTS} parts of {self._part_size} "
                "bytes; configure a larger part_size",
                location=self._location,
            )
        self._submitted += 1
        entry: dict[str, Any] = {"PartNumber": self._submitted, **self._checksum(part)}
        self._wait_until(self._concurrency - 1)
        params = {**self._target, "Body": _PartBody(part), **entry}
        future = asyncio.run_coroutine_threadsafe(self._upload_part(creating, params), self._loop)
        self._pending[future] = entry

    def _create(self) -> concurrent.futures.Future[str]:
        """Send ``CreateMultipartUpload`` and return at once: the writer goes on filling parts
        (a round trip saved) while the request is on its way."""
        params = {**self._target, **self._params}
        if self._algorithm is not None:
            kind = "FULL_OBJECT" if self._whole is not None else "COMPOSITE"
            params.update(ChecksumAlgorithm=self._algorithm, ChecksumType=kind)
        self._creating = asyncio.run_coroutine_threadsafe(self._create_upload(params), self._loop)
        return self._creating

    async def _create_upload(self, params: dict[str, Any]) -> str:
        response = await self._call("create_multipart_upload", **params)
        return str(response["UploadId"])

    async def _upload_part(
        self, creating: concurrent.futures.Future[str], params: dict[str, Any]
    ) -> str:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            # Shielded: a part cancelled by abort() leaves the creation to finish, so that the
            # upload it makes can be aborted.
            upload_id = await asyncio.shield(asyncio.wrap_future(creating))
            response = await self._call("upload_part", UploadId=upload_id, **params)
            return str(response["ETag"])
        finally:
            if task is not None:
                self._tasks.discard(task)

    def _wait_until(self, limit: int) -> None:
        """Collect finished part uploads until at most ``limit`` are in flight; the first
        failed part's error is raised."""
        while len(self._pending) > limit:
            done, _ = concurrent.futures.wait(
                self._pending, return_when=concurrent.futures.FIRST_COMPLETED
            )
            for future in done:
                entry = self._pending.pop(future)
                entry["ETag"] = future.result()
                self._uploaded.append(entry)

    def commit(self) -> None:
        """Make the object visible: ``PutObject``, or the last part and
        ``CompleteMultipartUpload``. ``FileExistsError`` if exclusive and the key is taken."""
        if self._creating is None:
            body = _Part()
            for part in (*self._held, self._take()):
                body.pieces += part.pieces
                body.size += part.size
            self._held, self._held_size = [], 0
            params: dict[str, Any] = {**self._target, **self._params, "Body": _PartBody(body)}
            if self._algorithm is not None:
                params["ChecksumAlgorithm"] = self._algorithm
                params.update(self._checksum(body))
            self._conditional("put_object", params)
            return
        self._release_held()
        if self._part.size:
            self._send(self._take())
        self._wait_until(0)
        assert self._creating is not None
        parts = sorted(self._uploaded, key=lambda entry: int(entry["PartNumber"]))
        params = {
            **self._target,
            "UploadId": self._creating.result(),
            "MultipartUpload": {"Parts": parts},
        }
        if self._whole is not None and self._algorithm is not None:
            params["ChecksumType"] = "FULL_OBJECT"
            params[f"Checksum{self._algorithm}"] = encode(self._whole.digest())
        self._conditional("complete_multipart_upload", params)
        self._creating = None

    def _conditional(self, method: str, params: dict[str, Any]) -> None:
        if self._exclusive:
            params["IfNoneMatch"] = "*"
        try:
            sync(self._loop, self._call, method, **params)
        except FileExistsError:
            raise
        except Exception as exc:
            if self._exclusive and error_status(exc) == 412:
                raise FileExistsError(
                    errno.EEXIST, "an object already exists", self._location
                ) from exc
            raise

    def abort(self) -> None:
        """Stop the part uploads and abort the multipart upload, after its creation has
        returned if it is on its way; best effort, never raises."""
        self._part = _Part()
        self._held, self._held_size = [], 0
        creating, self._creating = self._creating, None
        if creating is None:
            return
        try:
            sync(self._loop, self._abort, creating)
        except Exception as exc:
            upload_id = "(being created)"
            with suppress(BaseException):
                upload_id = creating.result(timeout=0)
            log.warning(
                "could not abort multipart upload %s of %s: %s (a bucket lifecycle rule with "
                "AbortIncompleteMultipartUpload removes it later)",
                upload_id,
                self._location,
                exc,
            )
        finally:
            self._pending.clear()

    async def _abort(self, creating: concurrent.futures.Future[str]) -> None:
        # Parts queued before this coroutine have registered their tasks by now: the loop runs
        # callbacks in the order they were scheduled.
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            upload_id = await asyncio.shield(asyncio.wrap_future(creating))
        except Exception:
            return  # no upload was created
        await self._call("abort_multipart_upload", **self._target, UploadId=upload_id)


class _Truncated(Exception):
    """A response body ended before the bytes it announced."""


class _Body:
    """One response body being read, and the end of the range it was asked for."""

    __slots__ = ("read", "stream", "until")

    def __init__(self, stream: Any, until: int) -> None:
        self.until = until
        self.stream: Any = None
        self.read: Callable[[int], Awaitable[bytes]] = _closed
        self.open(stream)

    def open(self, stream: Any) -> None:
        """Read ``stream``, an aiobotocore body. With aiohttp underneath (s3fs's default) its
        chunks are taken from aiohttp directly: botocore would otherwise compute the object's
        checksum a second time, which the reader does itself across resumes and ranges."""
        self.stream = stream
        if stream is None:
            self.read = _closed
            return
        content = getattr(getattr(stream, "raw_stream", None), "content", None)
        read = getattr(content, "read", None)
        self.read = read if callable(read) else stream.read

    def close(self) -> None:
        stream = self.stream
        self.open(None)
        if stream is not None:
            with suppress(Exception):
                stream.close()


async def _closed(size: int) -> bytes:
    raise _Truncated("the response body was closed")


def total_size(response: Mapping[str, Any]) -> int:
    """The size of the object a ``GetObject`` response is part of: the total of its
    ``Content-Range`` when it has one (a ranged response), else its ``Content-Length``."""
    content_range = response.get("ContentRange")
    if content_range:
        total = str(content_range).rpartition("/")[2]
        if total.isdigit():
            return int(total)
    return int(response["ContentLength"])


class ObjectReader(io.RawIOBase):
    """A read-only stream of one S3 object.

    ``size`` is the object's size. Given ``response``, the ``GetObject`` response that opened
    it (the whole object, or for a ranged read its first ``span`` bytes; :func:`total_size` of
    it is ``size``, which the store has checked), the reader goes on from there. With
    ``concurrency > 1`` and an object larger than ``span``, the rest is read as ranges of
    ``span`` bytes, ``concurrency`` at a time; otherwise the first response is read as one
    stream.

    Without ``response`` (a read told the object's size, which must be ranged), the reader
    sends its first ``concurrency`` ranges at once; :attr:`opened` is done when the first
    range's response is in, with its error if it failed (the object is missing, or is not
    ``size`` bytes: :class:`~offload_core.errors.SizeMismatchError`). The ranges sent before
    that response could carry ``If-Match`` must answer with its ETag; a range that answers with
    another raises :class:`~offload_core.errors.TransientStorageError`, as a failed ``If-Match``
    does.
    """

    def __init__(
        self,
        call: Call,
        loop: asyncio.AbstractEventLoop,
        bucket: str,
        key: str,
        response: Mapping[str, Any] | None,
        *,
        location: str,
        size: int,
        span: int,
        concurrency: int,
        retries: int,
    ) -> None:
        super().__init__()
        self._call = call
        self._loop = loop
        self._target = {"Bucket": bucket, "Key": key}
        self._location = location
        #: The object's size.
        self.size = size
        ranged = concurrency > 1 and self.size > span
        if response is None and not ranged:
            raise ValueError("only a ranged read opens its own first response")
        self._span = span if ranged else STREAM_BLOCK
        self._ahead = concurrency if ranged else 2
        self._first = _Body(
            None if response is None else response["Body"],
            until=self._span if ranged else self.size,
        )
        self._shared = not ranged
        self._lock = asyncio.Lock()
        self._retries = retries
        #: Requests resumed after a mid-stream failure so far.
        self.resumed = 0
        #: Done when the first response is in (at once when the store gave it), with the
        #: error that response ended in, if any.
        self.opened: concurrent.futures.Future[None] = concurrent.futures.Future()
        #: Set on the loop when the first response is in, or failed: ranges sent before it wait
        #: for it to compare ETags.
        self._head = asyncio.Event()
        self._head_failed = False
        self._etag: str | None = None
        self._expected: tuple[str, str] | None = None
        self._digest: Digest | None = None
        if response is not None:
            self._learn(response)
        self._next = 0
        self._queue: deque[concurrent.futures.Future[list[bytes]]] = deque()
        self._blocks: deque[bytes] = deque()
        self._block = b""
        self._pos = 0
        self._delivered = 0
        self._done = False
        self._failure: BaseException | None = None
        if response is None:
            self._schedule()

    def _learn(self, response: Mapping[str, Any]) -> None:
        """Take the ETag and any full-object checksum of the first response."""
        self._etag = response.get("ETag")
        self._expected = expected_checksum(response)
        self._digest = new_digest(self._expected[0]) if self._expected else None
        self.opened.set_result(None)

    def readable(self) -> bool:
        return True

    # -- the calling thread --------------------------------------------------------------------

    def read(self, size: int | None = -1, /) -> bytes:
        if size is None or size < 0:
            return self.readall()
        if self._pos >= len(self._block):
            if size == 0:
                return b""
            self._block, self._pos = self._next_block(), 0
        if self._pos == 0 and size >= len(self._block):
            block, self._block = self._block, b""
            return block
        out = self._block[self._pos : self._pos + size]
        self._pos += len(out)
        return out

    def readall(self) -> bytes:
        chunks = []
        while chunk := self.read(self._span):
            chunks.append(chunk)
        return b"".join(chunks)

    def readinto(self, buffer: bytearray | memoryview, /) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def _schedule(self) -> None:
        while len(self._queue) < self._ahead and self._next < self.size:
            start, end = self._next, min(self._next + self._span, self.size)
            self._next = end
            coro = self._read_shared(start, end) if self._shared else self._read_range(start, end)
            self._queue.append(asyncio.run_coroutine_threadsafe(coro, self._loop))

    def _next_block(self) -> bytes:
        if self._failure is not None:
            raise self._failure
        if not self._blocks:
            self._schedule()
            if not self._queue:
                self._finish()
                return b""
            future = self._queue.popleft()
            try:
                blocks = future.result()
            except BaseException as exc:
                # Nothing after a failed range is handed over: stop the requests in flight.
                self._cancel()
                self._failure = (
                    exc
                    if isinstance(exc, Exception)
                    else TransientStorageError(
                        f"reading {self._location} was interrupted", location=self._location
                    )
                )
                raise
            self._schedule()
            self._blocks.extend(blocks)
        data = self._blocks.popleft()
        self._delivered += len(data)
        if self._digest is not None:
            self._digest.update(data)
        return data

    def _finish(self) -> None:
        """At the end: the size announced and the full-object checksum, if any, must match."""
        if self._done:
            return
        self._done = True
        failure: BaseException | None = None
        if self._delivered != self.size:
            failure = SizeMismatchError(
                expected=self.size, actual=self._delivered, location=self._location
            )
        elif self._digest is not None and self._expected is not None:
            actual = encode(self._digest.digest())
            if actual != self._expected[1]:
                failure = DigestMismatchError(
                    algorithm=f"S3 {self._expected[0]}",
                    expected=self._expected[1],
                    actual=actual,
                    location=self._location,
                )
        if failure is not None:
            self._failure = failure
            raise failure

    def _cancel(self) -> None:
        """Cancel the requests in flight; each closes its response body (and so gives back its
        connection) as it ends."""
        for future in self._queue:
            future.cancel()
        self._queue.clear()
        self._blocks.clear()
        with suppress(RuntimeError):  # the loop is gone at interpreter exit
            self._loop.call_soon_threadsafe(self._first.close)

    def close(self) -> None:
        if self.closed:
            return
        try:
            self._cancel()
        finally:
            super().close()

    # -- the event loop ------------------------------------------------------------------------

    async def _read_shared(self, start: int, end: int) -> list[bytes]:
        async with self._lock:  # one stream, read in order: asyncio.Lock wakes waiters in FIFO
            return await self._fill(start, end, self._first)

    async def _read_range(self, start: int, end: int) -> list[bytes]:
        body = self._first if start == 0 else _Body(None, until=end)
        try:
            if start == 0 and not self.opened.done():
                body.open(await self._open(end))
            return await self._fill(start, end, body)
        finally:
            body.close()

    async def _open(self, until: int) -> Any:
        """The body of the first range, whose response the other ranges are checked against;
        its failure is the open's."""
        try:
            response = await self._call(
                "get_object", **self._target, Range=f"bytes=0-{until - 1}", ChecksumMode="ENABLED"
            )
            total = total_size(response)
            if total != self.size:
                with suppress(Exception):
                    response["Body"].close()
                raise SizeMismatchError(expected=self.size, actual=total, location=self._location)
            self._learn(response)
        except BaseException as exc:
            self._head_failed = True
            if isinstance(exc, asyncio.CancelledError):
                self.opened.cancel()
            else:
                self.opened.set_exception(exc)
            raise
        finally:
            self._head.set()
        return response["Body"]

    async def _reopen(self, start: int, until: int) -> Any:
        """A ranged request for ``[start, until)``: conditional on the first response's ETag
        once that is known, else (a range sent with the first) checked against it. A range
        sent with the first that fails is sent again, conditional, once the first has answered:
        where replicas lag (a Multi-Region Access Point), it may have reached one that did not
        have the object yet."""
        params: dict[str, Any] = {**self._target, "Range": f"bytes={start}-{until - 1}"}
        known = self.opened.done()
        if known and self._etag:
            params["IfMatch"] = self._etag
        try:
            response = await self._call("get_object", **params)
        except Exception:
            if known:
                raise
            await self._head.wait()
            if self._head_failed:
                raise
            return await self._reopen(start, until)
        try:
            if not known:
                await self._head.wait()
                if self._head_failed:
                    raise StorageError(
                        f"{self._location} could not be opened", location=self._location
                    )
            total = total_size(response)
            if total != self.size:  # only from endpoints that ignore If-Match
                raise TransientStorageError(
                    f"{self._location} is now {total} bytes, not {self.size}: it was replaced "
                    "while it was being read; read it again",
                    location=self._location,
                )
            if not known and response.get("ETag") != self._etag:
                raise TransientStorageError(
                    f"{self._location} was replaced while it was being read (its ETag is no "
                    f"longer {self._etag}); read it again",
                    location=self._location,
                )
        except BaseException:
            with suppress(Exception):
                response["Body"].close()
            raise
        return response["Body"]

    async def _fill(self, start: int, end: int, body: _Body) -> list[bytes]:
        """Bytes ``[start, end)`` from ``body``, reopened with a ranged request after a failure,
        as the blocks the body gives (at most :data:`STREAM_BLOCK` each): handed over as they
        came, they are never copied."""
        blocks: list[bytes] = []
        position = start
        while position < end:
            try:
                if body.stream is None:
                    body.open(await self._reopen(position, body.until))
                chunk = await body.read(min(end - position, STREAM_BLOCK))
                if not chunk:
                    raise _Truncated(f"the response ended at byte {position} of {self.size}")
            except Exception as exc:
                body.close()
                await self._recover(exc, position)
                continue
            blocks.append(chunk)
            position += len(chunk)
        return blocks

    async def _recover(self, exc: Exception, position: int) -> None:
        """Return if the read may resume (after a pause), else raise."""
        if error_status(exc) == 412:
            raise TransientStorageError(
                f"{self._location} was replaced while it was being read (its ETag is no longer "
                f"{self._etag}); read it again",
                location=self._location,
            ) from exc
        mapped = translate_fsspec_error(exc, self._location)
        if not isinstance(exc, _Truncated) and not isinstance(mapped, TransientStorageError):
            raise exc
        if self.resumed >= self._retries:
            raise TransientStorageError(
                f"reading {self._location} failed mid-stream {self.resumed + 1} times, last at "
                f"byte {position}: {exc}; try again",
                location=self._location,
            ) from exc
        self.resumed += 1
        log.info(
            "resuming %s at byte %d after %s (%d of %d)",
            self._location,
            position,
            exc,
            self.resumed,
            self._retries,
        )
        await asyncio.sleep(min(0.05 * 2 ** (self.resumed - 1), 2.0))
