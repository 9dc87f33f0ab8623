"""Streaming S3 uploads and downloads in bounded memory, on one awaitable request call.

Each is written once, as coroutines on an event loop, and has two faces: an asynchronous one
(:class:`Upload`, :class:`ObjectReader`) awaited on the caller's loop, and a synchronous one
(:class:`MultipartWriter`, :class:`ObjectStream`), a file object for the calling thread that
runs the same coroutines on an I/O loop thread, one hand-over per part or range, and keeps the
CPU work (cutting parts, checksums) on the calling thread. ``call`` is s3fs's
``S3FileSystem._call_s3`` (s3fs's retries, ``requester_pays`` and ``s3_additional_kwargs`` then
apply to every request) or a boto3 client's methods on a thread pool
(:mod:`offload_backends._s3_boto3`):

* An upload fills parts of ``part_size`` bytes and uploads each full one while the next fills,
  at most ``concurrency`` at a time, so it holds at most ``concurrency + 1`` parts. A payload
  of at most ``multipart_threshold`` bytes is held and sent as a single ``PutObject`` (one
  request instead of three or more; the threshold bounds what is held). Past it, the multipart
  upload is created without stopping the writer: the parts wait on the event loop for its id
  while the next ones fill. Nothing is visible in S3 until ``commit``; ``abort`` stops the part
  uploads and aborts the multipart upload, once its creation has returned if it was on its way.
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
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Mapping
from contextlib import suppress
from typing import Any

from offload_core.aio.store import finish
from offload_core.aws.errors import error_status
from offload_core.errors import (
    DigestMismatchError,
    SizeMismatchError,
    StorageError,
    TransientStorageError,
)
from offload_core.pipeline import is_frozen

from ._errors import translate_fsspec_error
from ._loop import run
from ._s3_checksums import Digest, append, encode, expected_checksum, new_digest
from ._s3_limits import MAX_PARTS, MIN_PART_SIZE, grown_part_size

__all__ = [
    "MAX_PARTS",
    "MIN_PART_SIZE",
    "Call",
    "MultipartWriter",
    "ObjectReader",
    "ObjectStream",
    "Upload",
    "total_size",
]

log = logging.getLogger(__name__)

MiB = 1024 * 1024
#: The pieces a single-stream download hands over; two are prefetched.
STREAM_BLOCK = MiB

#: ``S3FileSystem._call_s3``: ``await call("get_object", Bucket=..., Key=...)``.
Call = Callable[..., Awaitable[Any]]
#: A ``CreateMultipartUpload`` on its way: a task on the loop, or its future in another thread.
Creating = asyncio.Future[str] | concurrent.futures.Future[str]


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


class _Upload:
    """What both faces of an upload share: the parts cut from the bytes written (on the
    writer's side, with their checksums, no I/O) and the coroutines that send them.

    With ``grow``, parts past :data:`~offload_backends._s3_limits.GROW_AFTER` get larger (and
    fewer go at once, down to one), so that a stream of unknown length never runs out of parts.
    """

    def __init__(
        self,
        call: Call,
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
        self._call = call
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
        self._creating: Creating | None = None
        self._submitted = 0
        #: Part uploads in flight (tasks on the loop), and their entries in the completion.
        self._pending: dict[asyncio.Task[str], dict[str, Any]] = {}
        self._uploaded: list[dict[str, Any]] = []
        #: Whether the request that makes the object visible succeeded for a caller cancelled
        #: while it was on its way: an abort then removes the object.
        self._written = False
        #: Bytes written so far.
        self.size = 0

    def _spawn(self, flow: Coroutine[Any, Any, str]) -> Creating:
        """Start ``flow`` on the requests' loop (the running one) without waiting for it."""
        return asyncio.ensure_future(flow)

    # -- the writer's side: parts and checksums, no I/O ---------------------------------------

    def _sends(self, data: bytes | bytearray | memoryview) -> Iterator[Coroutine[Any, Any, None]]:
        """Cut ``data`` into parts: for each part it completes, in order, the coroutine that
        sends it (its checksum computed here first). Past the threshold, the multipart upload is
        created at once, and the writer goes on filling parts (a round trip saved) while the
        request is on its way."""
        view = memoryview(data).cast("B")
        size = len(view)
        shared = size >= _SHARE_MIN and is_frozen(data)
        while len(view):
            room = self._part_size - self._part.size
            self._part.add(view[:room], shared=shared)
            view = view[room:]
            if self._creating is None and self._held_size + self._part.size > self._threshold:
                self._creating = self._spawn(self._create_upload())
            if self._part.size >= self._part_size:
                part = self._take()
                if self._creating is None:  # everything written may still fit one PutObject
                    self._held.append(part)
                    self._held_size += part.size
                    continue
                for entry, body in self._ready(part):
                    yield self._send(entry, body)
        self.size += size

    def _ready(self, *parts: _Part) -> Iterator[tuple[dict[str, Any], _PartBody]]:
        """The parts held so far and then ``parts``, numbered and checksummed: each one's entry
        in the completion and its body."""
        held, self._held, self._held_size = self._held, [], 0
        for part in (*held, *parts):
            if self._submitted >= MAX_PARTS:
                raise StorageError(
                    f"{self._location} would need more than {MAX_PARTS} parts of "
                    f"{self._part_size} bytes; configure a larger part_size",
                    location=self._location,
                )
            self._submitted += 1
            yield {"PartNumber": self._submitted, **self._checksum(part)}, _PartBody(part)

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

    def _committing(self) -> Coroutine[Any, Any, None]:
        """What makes the object visible, its checksums computed here: a ``PutObject`` of
        everything written, or the last parts and ``CompleteMultipartUpload``."""
        if self._creating is not None:
            last = [self._take()] if self._part.size else []
            return self._complete(list(self._ready(*last)))
        body = _Part()
        for part in (*self._held, self._take()):
            body.pieces += part.pieces
            body.size += part.size
        self._held, self._held_size = [], 0
        params: dict[str, Any] = {**self._target, **self._params, "Body": _PartBody(body)}
        if self._algorithm is not None:
            params["ChecksumAlgorithm"] = self._algorithm
            params.update(self._checksum(body))
        return self._conditional("put_object", params)

    def _aborting(self) -> Coroutine[Any, Any, None] | None:
        """Drop the bytes held; the coroutine that undoes what was sent, if anything was."""
        self._part = _Part()
        self._held, self._held_size = [], 0
        creating, self._creating = self._creating, None
        if creating is None and not self._pending and not self._written:
            return None
        return self._abort(creating)

    # -- the requests: coroutines on the loop ---------------------------------------------------

    async def _create_upload(self) -> str:
        params = {**self._target, **self._params}
        if self._algorithm is not None:
            kind = "FULL_OBJECT" if self._whole is not None else "COMPOSITE"
            params.update(ChecksumAlgorithm=self._algorithm, ChecksumType=kind)
        response = await self._call("create_multipart_upload", **params)
        return str(response["UploadId"])

    async def _send(self, entry: dict[str, Any], body: _PartBody) -> None:
        """Start one part's upload once fewer than ``concurrency`` are in flight (each waits for
        the upload id); a failed ``CreateMultipartUpload``, or part, is raised here."""
        creating = self._creating
        assert creating is not None
        if creating.done():
            creating.result()
        await self._wait_until(self._concurrency - 1)
        task = asyncio.ensure_future(
            self._upload_part(creating, {**self._target, "Body": body, **entry})
        )
        task.add_done_callback(_retrieved)
        self._pending[task] = entry

    async def _upload_part(self, creating: Creating, params: dict[str, Any]) -> str:
        # Shielded: a part cancelled by an abort leaves the creation to finish, so that the
        # upload it makes can be aborted.
        upload_id = await asyncio.shield(asyncio.wrap_future(creating))
        response = await self._call("upload_part", UploadId=upload_id, **params)
        return str(response["ETag"])

    async def _wait_until(self, limit: int) -> None:
        """Collect finished part uploads until at most ``limit`` are in flight; the first
        failed part's error is raised."""
        while len(self._pending) > limit:
            done, _ = await asyncio.wait(set(self._pending), return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                entry = self._pending.pop(task)
                entry["ETag"] = task.result()
                self._uploaded.append(entry)

    async def _complete(self, last: list[tuple[dict[str, Any], _PartBody]]) -> None:
        for entry, body in last:
            await self._send(entry, body)
        await self._wait_until(0)
        assert self._creating is not None
        upload_id = await asyncio.shield(asyncio.wrap_future(self._creating))
        parts = sorted(self._uploaded, key=lambda entry: int(entry["PartNumber"]))
        params = {**self._target, "UploadId": upload_id, "MultipartUpload": {"Parts": parts}}
        if self._whole is not None and self._algorithm is not None:
            params["ChecksumType"] = "FULL_OBJECT"
            params[f"Checksum{self._algorithm}"] = encode(self._whole.digest())
        await self._conditional("complete_multipart_upload", params)
        self._creating = None

    async def _conditional(self, method: str, params: dict[str, Any]) -> None:
        """The request that makes the object visible, sent to its end even if the caller is
        cancelled meanwhile (so that the outcome is known; an abort then removes the object).
        ``FileExistsError`` if exclusive and the key is taken."""
        if self._exclusive:
            params["IfNoneMatch"] = "*"
        request = asyncio.ensure_future(self._call(method, **params))
        try:
            await finish(request)
        except asyncio.CancelledError:
            self._written = not request.cancelled() and request.exception() is None
            raise
        except FileExistsError:
            raise
        except Exception as exc:
            if self._exclusive and error_status(exc) == 412:
                raise FileExistsError(
                    errno.EEXIST, "an object already exists", self._location
                ) from exc
            raise

    async def _abort(self, creating: Creating | None) -> None:
        """Stop the part uploads, then abort the multipart upload once its creation has
        returned, or remove the object a cancelled commit made; best effort, never raises."""
        tasks = list(self._pending)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._pending.clear()
        written, self._written = self._written, False
        try:
            if written:
                await self._call("delete_object", **self._target)
            elif creating is not None:
                try:
                    upload_id = await asyncio.shield(asyncio.wrap_future(creating))
                except Exception:
                    return  # no upload was created
                await self._call("abort_multipart_upload", **self._target, UploadId=upload_id)
        except Exception as exc:
            log.warning(
                "could not undo the failed write of %s: %s (%s)",
                self._location,
                exc,
                "it was written as its writer was cancelled; delete it"
                if written
                else "a bucket lifecycle rule with AbortIncompleteMultipartUpload removes the "
                "incomplete upload later",
            )


class Upload(_Upload):
    """An upload awaited on the running loop: :meth:`write` as the bytes come, then
    :meth:`commit` (the object appears) or :meth:`abort`."""

    async def write(self, data: bytes | bytearray | memoryview, /) -> int:
        for sending in self._sends(data):
            await sending
        return memoryview(data).nbytes

    async def commit(self) -> None:
        """Make the object visible: ``PutObject``, or the last parts and
        ``CompleteMultipartUpload``. ``FileExistsError`` if exclusive and the key is taken."""
        await self._committing()

    async def abort(self) -> None:
        """Stop the part uploads and abort the multipart upload (after its creation has
        returned, if it was on its way), to the end even if the caller is cancelled meanwhile;
        best effort, raises nothing but that cancellation."""
        aborting = self._aborting()
        if aborting is not None:
            await finish(asyncio.ensure_future(aborting))


class MultipartWriter(_Upload, io.RawIOBase):
    """An upload as a write-only stream for the calling thread, which cuts the parts and
    computes their checksums; the requests run on ``loop``. The object appears when
    :meth:`commit` is called."""

    def __init__(
        self, call: Call, loop: asyncio.AbstractEventLoop, bucket: str, key: str, **options: Any
    ) -> None:
        io.RawIOBase.__init__(self)
        _Upload.__init__(self, call, bucket, key, **options)
        self._loop = loop

    def _spawn(self, flow: Coroutine[Any, Any, str]) -> Creating:
        return asyncio.run_coroutine_threadsafe(flow, self._loop)

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview, /) -> int:  # type: ignore[override]
        for sending in self._sends(data):
            run(self._loop, sending)
        return memoryview(data).nbytes

    def commit(self) -> None:
        """As :meth:`Upload.commit`."""
        run(self._loop, self._committing())

    def abort(self) -> None:
        """As :meth:`Upload.abort`; never raises."""
        aborting = self._aborting()
        if aborting is not None:
            run(self._loop, aborting)


def _retrieved(task: asyncio.Future[Any]) -> None:
    """Mark a task's error as seen: whoever needs it takes it from the task, or a later one."""
    if not task.cancelled():
        task.exception()


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


class ObjectReader:
    """One S3 object's bytes, read on the running loop: the asynchronous face
    (:class:`ObjectStream` is the synchronous one, on the same reader).

    ``size`` is the object's size. Given ``response``, the ``GetObject`` response that opened
    it (the whole object, or for a ranged read its first ``span`` bytes; :func:`total_size` of
    it is ``size``, which the store has checked), the reader goes on from there. With
    ``concurrency > 1`` and an object larger than ``span``, the rest is read as ranges of
    ``span`` bytes, ``concurrency`` at a time; otherwise the first response is read as one
    stream.

    Without ``response`` (a read told the object's size, which must be ranged), :meth:`start`
    sends the first ``concurrency`` ranges at once and returns when the first range's response
    is in, raising its error if it failed (the object is missing, or is not ``size`` bytes:
    :class:`~offload_core.errors.SizeMismatchError`). The ranges sent before that response
    could carry ``If-Match`` must answer with its ETag; a range that answers with another
    raises :class:`~offload_core.errors.TransientStorageError`, as a failed ``If-Match`` does.
    """

    def __init__(
        self,
        call: Call,
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
        self._call = call
        self._target = {"Bucket": bucket, "Key": key}
        self._location = location
        #: The object's size.
        self.size = size
        ranged = concurrency > 1 and self.size > span
        if response is None and not ranged:
            raise ValueError("only a ranged read opens its own first response")
        #: Bytes per range, or per block of a single stream.
        self.span = span if ranged else STREAM_BLOCK
        self._ahead = concurrency if ranged else 2
        self._first = _Body(
            None if response is None else response["Body"],
            until=self.span if ranged else self.size,
        )
        self._shared = not ranged
        self._lock = asyncio.Lock()
        self._retries = retries
        #: Requests resumed after a mid-stream failure so far.
        self.resumed = 0
        #: Set when the first response is in (at once when the store gave it) or has failed:
        #: ranges sent before it wait for it to compare ETags.
        self._head = asyncio.Event()
        self._head_error: BaseException | None = None
        self._etag: str | None = None
        self._expected: tuple[str, str] | None = None
        self._digest: Digest | None = None
        if response is not None:
            self._learn(response)
        self._next = 0
        self._queue: deque[asyncio.Task[list[bytes]]] = deque()
        self._tasks: set[asyncio.Task[list[bytes]]] = set()
        self._blocks: deque[bytes] = deque()
        self._block = b""
        self._pos = 0
        self._delivered = 0
        self._done = False
        self._failure: BaseException | None = None

    def _learn(self, response: Mapping[str, Any]) -> None:
        """Take the ETag and any full-object checksum of the first response."""
        self._etag = response.get("ETag")
        self._expected = expected_checksum(response)
        self._digest = new_digest(self._expected[0]) if self._expected else None
        self._head.set()

    # -- the asynchronous face ------------------------------------------------------------------

    async def read(self, size: int = -1, /) -> bytes:
        """Up to ``size`` bytes (all the rest for a negative size), ``b""`` at the end."""
        if size < 0:
            chunks = []
            while chunk := await self.read(self.span):
                chunks.append(chunk)
            return b"".join(chunks)
        while (data := self.take(size)) is None:
            await self.fetch()
        return data

    async def aclose(self) -> None:
        """Stop reading: cancel the requests in flight and wait until they have ended (each
        gives its connection back), even if the caller is cancelled meanwhile."""
        await finish(asyncio.gather(*self.cancel(), return_exceptions=True))

    # -- the reader's side: the bytes received, no I/O ------------------------------------------

    def take(self, size: int) -> bytes | None:
        """Up to ``size`` of the bytes received (``b""`` at the end), or ``None`` when
        :meth:`fetch` must receive more first. They are counted and checksummed here."""
        if self._failure is not None:
            raise self._failure
        if self._pos >= len(self._block):
            if size == 0 or self._done:
                return b""
            if not self._blocks:
                return None
            self._block, self._pos = self._blocks.popleft(), 0
            self._delivered += len(self._block)
            if self._digest is not None:
                self._digest.update(self._block)
        if self._pos == 0 and size >= len(self._block):
            block, self._block = self._block, b""
            return block
        out = self._block[self._pos : self._pos + size]
        self._pos += len(out)
        return out

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

    # -- the event loop -------------------------------------------------------------------------

    async def start(self) -> None:
        """Send the first ranges; return once the first has answered, raising its error."""
        self._schedule()
        await self._head.wait()
        if self._head_error is not None:
            raise self._head_error

    async def fetch(self) -> None:
        """Receive the next range's blocks, and send the ranges after it; at the end, check
        the object's size and checksum."""
        if self._failure is not None:
            raise self._failure
        self._schedule()
        if not self._queue:
            self._finish()
            return
        request = self._queue.popleft()
        try:
            blocks = await request
        except BaseException as exc:
            # Nothing after a failed range is handed over: stop the requests in flight.
            self.cancel()
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

    def _schedule(self) -> None:
        while len(self._queue) < self._ahead and self._next < self.size:
            start, end = self._next, min(self._next + self.span, self.size)
            self._next = end
            flow = self._read_shared(start, end) if self._shared else self._read_range(start, end)
            request = asyncio.ensure_future(flow)
            self._tasks.add(request)
            request.add_done_callback(self._ended)
            self._queue.append(request)

    def _ended(self, request: asyncio.Task[list[bytes]]) -> None:
        self._tasks.discard(request)
        _retrieved(request)

    def cancel(self) -> list[asyncio.Task[list[bytes]]]:
        """Cancel the requests in flight, on the loop; each closes its response body (and so
        gives back its connection) as it ends. They are returned, to wait for."""
        requests = list(self._tasks)
        for request in requests:
            request.cancel()
        self._queue.clear()
        self._blocks.clear()
        self._first.close()
        return requests

    async def _read_shared(self, start: int, end: int) -> list[bytes]:
        async with self._lock:  # one stream, read in order: asyncio.Lock wakes waiters in FIFO
            return await self._fill(start, end, self._first)

    async def _read_range(self, start: int, end: int) -> list[bytes]:
        body = self._first if start == 0 else _Body(None, until=end)
        try:
            if start == 0 and not self._head.is_set():
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
            self._head_error = exc
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
        known = self._head.is_set()
        if known and self._etag:
            params["IfMatch"] = self._etag
        try:
            response = await self._call("get_object", **params)
        except Exception:
            if known:
                raise
            await self._head.wait()
            if self._head_error is not None:
                raise
            return await self._reopen(start, until)
        try:
            if not known:
                await self._head.wait()
                if self._head_error is not None:
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


class ObjectStream(io.RawIOBase):
    """An :class:`ObjectReader` as a read-only stream for the calling thread: its requests run
    on ``loop``, handed over a range at a time, and its bytes are checked on this thread."""

    def __init__(self, reader: ObjectReader, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._reader = reader
        self._loop = loop
        #: The object's size.
        self.size = reader.size

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1, /) -> bytes:
        if size is None or size < 0:
            return self.readall()
        while (data := self._reader.take(size)) is None:
            run(self._loop, self._reader.fetch())
        return data

    def readall(self) -> bytes:
        chunks = []
        while chunk := self.read(self._reader.span):
            chunks.append(chunk)
        return b"".join(chunks)

    def readinto(self, buffer: bytearray | memoryview, /) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if self.closed:
            return
        try:
            with suppress(RuntimeError):  # the loop is gone at interpreter exit
                self._loop.call_soon_threadsafe(self._reader.cancel)
        finally:
            super().close()
