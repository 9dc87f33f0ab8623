"""Compressors: streaming compression on the way out, bounded decompression on the way in.

A codec compresses an iterable of chunks into an iterable of chunks, and decompresses a readable
stream into a readable stream that never yields more than ``limit`` bytes: the stored bytes are
attacker-controlled, so a small object must not be able to expand without bound (a
"decompression bomb"). Output comes in pieces no larger than the reader asks for.

Zstandard input is scanned frame by frame as it is read, so a frame whose header declares a
content size or a window above the limits is refused before it is decompressed, and a stream
cut short inside a frame is reported instead of silently ending early.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from types import ModuleType
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, TypeAlias, TypeVar, runtime_checkable

from .errors import DecompressionLimitError, IntegrityError, MissingDependencyError

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["Codec", "Frozen", "IdentityCodec", "ZstdCodec", "looks_incompressible"]

#: How much of a payload :func:`looks_incompressible` tries to compress.
SAMPLE_SIZE = 64 * 1024
#: Compressed size / sample size above which a sample counts as incompressible.
INCOMPRESSIBLE_RATIO = 0.95
#: Piece size for reads this module makes on its own (compressed input, ``readall``).
_READ_SIZE = 1024 * 1024

_R = TypeVar("_R")

#: A piece that cannot change: ``bytes``, or a read-only view into a ``bytes`` object (a slice
#: of a ``bytes`` payload, taken without copying it).
Frozen: TypeAlias = "bytes | memoryview"


@runtime_checkable
class Codec(Protocol):
    """A compressor registered with ``offload_register_compressors``; ``name`` goes in pointers."""

    name: str

    def compress(self, chunks: Iterable[Frozen]) -> Iterator[Frozen]:
        """The compressed form of the concatenated ``chunks`` (``bytes``, or read-only views
        into ``bytes``: keep them if needed, never write to them), as chunks of bounded size."""
        ...

    def decompress(self, source: BinaryIO, *, limit: int, location: str | None = None) -> BinaryIO:
        """A readable stream of the decompressed bytes of ``source``.

        Reading raises :class:`~offload_core.errors.DecompressionLimitError` as soon as the
        output would exceed ``limit`` bytes (bytes up to the limit are returned first), and
        :class:`~offload_core.errors.IntegrityError` with ``check="codec"`` for data that is not
        valid in this format. Closing the stream closes ``source``.
        """
        ...


class _LimitedReader(io.RawIOBase, BinaryIO):
    """Reads through ``inner`` but never produces more than ``limit`` bytes.

    Reads are clipped to the bytes left; once at the limit, one more byte from ``inner`` means the
    output is too large. ``translate`` turns the inner stream's own exceptions into ours.
    """

    def __init__(
        self,
        inner: Any,
        *,
        limit: int,
        location: str | None,
        translate: Callable[[Exception], Exception | None] | None = None,
    ) -> None:
        super().__init__()
        if limit < 0:
            raise ValueError("limit must not be negative")
        self._inner = inner
        self._limit = limit
        self._location = location
        self._translate = translate
        self._produced = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        remaining = self._limit - self._produced
        if remaining == 0:
            self._check_end()
            return b""
        data: bytes = self._guard(self._inner.read, min(size, remaining))
        self._produced += len(data)
        return data

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        remaining = self._limit - self._produced
        if remaining == 0:
            self._check_end()
            return 0
        count: int = self._guard(readinto, self._inner, view[: min(len(view), remaining)])
        self._produced += count
        return count

    def readall(self) -> bytes:
        parts = []
        while chunk := self.read(_READ_SIZE):
            parts.append(chunk)
        return b"".join(parts)

    def close(self) -> None:
        if not self.closed:
            try:
                self._inner.close()
            finally:
                super().close()

    def _check_end(self) -> None:
        if self._guard(self._inner.read, 1):
            raise DecompressionLimitError(limit=self._limit, location=self._location)

    def _guard(self, method: Callable[..., _R], *args: Any) -> _R:
        try:
            return method(*args)
        except Exception as exc:
            mapped = self._translate(exc) if self._translate else None
            if mapped is None:
                raise
            raise mapped from exc


class IdentityCodec:
    """No compression: bytes are stored as they are (the only codec AWS extended clients read)."""

    name = "none"

    def compress(self, chunks: Iterable[Frozen]) -> Iterator[Frozen]:
        """The chunks unchanged."""
        return iter(chunks)

    def decompress(self, source: BinaryIO, *, limit: int, location: str | None = None) -> BinaryIO:
        """``source`` itself, capped at ``limit`` bytes."""
        return _LimitedReader(source, limit=limit, location=location)


#: Payloads whose first chunk is smaller than this are compressed on the caller's thread:
#: zstd's workers split the input into jobs of this size, so a smaller one gains nothing.
THREADED_MIN = 2 * 1024 * 1024


def default_threads() -> int:
    """Worker threads for zstd by default: two where the process may run on two CPUs or more
    (compression is then rarely the bottleneck of an upload on a fast network), else none."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cpus = os.cpu_count() or 1
    return 2 if cpus >= 2 else 0


class ZstdCodec:
    """Streaming Zstandard with frame checksums; decompression bounded in output and window.

    ``level`` 2 by default: on JSON and logs it stores about what zstd's own default (3) does,
    at about 1.4 times its speed. ``threads`` > 0 compresses payloads of at least
    :data:`THREADED_MIN` with that many worker threads (in jobs of that size, which bounds
    their memory), 0 on the caller's thread; by default two where two CPUs are available
    (:func:`default_threads`). The stored frame is the same either way. ``max_window_log`` caps
    the history a frame may ask the decoder to keep (2**27 = 128 MiB by default, zstd's own
    default limit).
    """

    name = "zstd"

    def __init__(
        self, level: int = 2, threads: int | None = None, max_window_log: int = 27
    ) -> None:
        if not 10 <= max_window_log <= 31:
            raise ValueError("max_window_log must be between 10 and 31")
        if threads is not None and threads < 0:
            raise ValueError("threads must be 0 (the caller's thread) or more")
        self.level = level
        self.threads = default_threads() if threads is None else threads
        self.max_window_log = max_window_log

    def __repr__(self) -> str:
        return (
            f"ZstdCodec(level={self.level}, threads={self.threads}, "
            f"max_window_log={self.max_window_log})"
        )

    def compress(self, chunks: Iterable[Frozen]) -> Iterator[Frozen]:
        """One frame, emitted as the compressor produces it (each piece about a chunk or less)."""
        zstd = _zstandard()
        pieces = iter(chunks)
        first = next(pieces, b"")
        threads = self.threads if len(first) >= THREADED_MIN else 0
        params = zstd.ZstdCompressionParameters.from_level(
            self.level,
            threads=threads,
            job_size=THREADED_MIN if threads else 0,
            write_checksum=True,
        )
        compressor = zstd.ZstdCompressor(compression_params=params).compressobj()
        for chunk in chain((first,), pieces):
            if out := compressor.compress(chunk):
                yield out
        yield compressor.flush()

    def decompress(self, source: BinaryIO, *, limit: int, location: str | None = None) -> BinaryIO:
        """A bounded reader over all the concatenated frames of ``source``."""
        zstd = _zstandard()
        max_window = 1 << self.max_window_log
        dctx = zstd.ZstdDecompressor(max_window_size=max_window)
        scanner = _FrameScanner(source, limit=limit, max_window=max_window, location=location)
        reader = dctx.stream_reader(scanner, read_size=_READ_SIZE, read_across_frames=True)

        def translate(exc: Exception) -> Exception | None:
            if isinstance(exc, zstd.ZstdError):
                return _codec_error(f"invalid zstd data ({exc})", location)
            return None

        return _LimitedReader(reader, limit=limit, location=location, translate=translate)


def looks_incompressible(sample: bytes) -> bool:
    """Whether compressing is likely a waste: fast zstd on up to 64 KiB saves under 5 %."""
    sample = sample[:SAMPLE_SIZE]
    if not sample:
        return False
    compressed = _zstandard().ZstdCompressor(level=1).compress(sample)
    return len(compressed) > INCOMPRESSIBLE_RATIO * len(sample)


def readinto(stream: Any, buffer: memoryview) -> int:
    """``stream.readinto(buffer)``, or a ``read`` copied into it for streams without one."""
    if hasattr(stream, "readinto"):
        return int(stream.readinto(buffer) or 0)
    data = stream.read(len(buffer))
    buffer[: len(data)] = data
    return len(data)


def _zstandard() -> ModuleType:
    try:
        import zstandard
    except ImportError as exc:  # a core dependency; missing only in a broken install
        raise MissingDependencyError("zstd compression", module="zstandard", extra=None) from exc
    return zstandard


def _codec_error(message: str, location: str | None) -> IntegrityError:
    return IntegrityError(f"{message} at {location or '?'}", location=location, check="codec")


# Zstandard frame layout (RFC 8878): magic, header, blocks of 3-byte header + body, optional
# 4-byte checksum; skippable frames are a magic, a 4-byte length and that many bytes.
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_SKIPPABLE_MAGIC_LOW = 0x184D2A50
_MAX_BLOCK = 128 * 1024
_CONTENT_SIZE_UNKNOWN = 2**64 - 2  # this and above: ZSTD_CONTENTSIZE_ERROR / _UNKNOWN


class _FrameScanner:
    """Follows the frame structure of compressed bytes as they are read, without decoding.

    Checks every frame header (declared content size against ``limit``, window against
    ``max_window``) before the decoder sees the frame, and that the input ends between frames.
    It walks headers only, skipping block bodies, so it costs a few steps per 128 KiB block.
    """

    def __init__(
        self, source: BinaryIO, *, limit: int, max_window: int, location: str | None
    ) -> None:
        self._source = source
        self._limit = limit
        self._max_window = max_window
        self._location = location
        self._pending = bytearray()  # bytes of the field being collected
        self._need = 4  # length the field being collected must reach
        self._skip = 0  # body bytes to pass over before the next field
        self._state = "magic"
        self._last_block = False
        self._has_checksum = False
        self._declared = 0
        self._frames = 0

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        if data:
            self._scan(memoryview(data))
        elif self._state != "magic" or self._pending:
            raise _codec_error("zstd stream ends inside a frame (truncated)", self._location)
        elif not self._frames:
            raise _codec_error("empty zstd stream", self._location)
        return data

    def close(self) -> None:
        self._source.close()

    def _scan(self, data: memoryview) -> None:
        pos, end = 0, len(data)
        while pos < end:
            if self._skip:
                step = min(self._skip, end - pos)
                self._skip -= step
                pos += step
                if not self._skip:
                    self._body_done()
                continue
            step = min(self._need - len(self._pending), end - pos)
            self._pending += data[pos : pos + step]
            pos += step
            if len(self._pending) == self._need:
                self._field_done()

    def _field_done(self) -> None:
        field = bytes(self._pending)
        if self._state == "magic":
            if field == _ZSTD_MAGIC:
                self._state, self._need = "descriptor", 5
                return
            if int.from_bytes(field, "little") & ~0xF == _SKIPPABLE_MAGIC_LOW:
                self._state, self._need = "skippable", 8
                return
            raise _codec_error("not a zstd frame", self._location)
        if self._state == "descriptor":
            self._state, self._need = "header", self._header_size(field)
            if self._need > len(field):
                return
        if self._state == "header":
            self._check_header(field)
            self._next_block()
        elif self._state == "skippable":
            self._pending.clear()
            self._state = "skippable-body"
            self._skip = int.from_bytes(field[4:8], "little")
            self._frames += 1
            if not self._skip:
                self._body_done()
        elif self._state == "block":
            self._start_block(int.from_bytes(field, "little"))

    def _header_size(self, start: bytes) -> int:
        try:
            return int(_zstandard().frame_header_size(start))
        except Exception as exc:
            raise _codec_error(f"invalid zstd frame header ({exc})", self._location) from exc

    def _check_header(self, header: bytes) -> None:
        try:
            params = _zstandard().get_frame_parameters(header)
        except Exception as exc:
            raise _codec_error(f"invalid zstd frame header ({exc})", self._location) from exc
        if params.window_size > self._max_window:
            error = DecompressionLimitError(limit=self._max_window, location=self._location)
            error.args = (
                f"zstd frame at {self._location or '?'} asks for a {params.window_size}-byte "
                f"window, more than the {self._max_window} bytes allowed (max_window_log); "
                "refusing to decompress it",
            )
            raise error
        if params.content_size < _CONTENT_SIZE_UNKNOWN:
            self._declared += params.content_size
            if self._declared > self._limit:
                raise DecompressionLimitError(limit=self._limit, location=self._location)
        self._has_checksum = bool(params.has_checksum)
        self._frames += 1

    def _next_block(self) -> None:
        self._pending.clear()
        self._state, self._need = "block", 3

    def _start_block(self, header: int) -> None:
        self._pending.clear()
        self._last_block = bool(header & 1)
        block_type = (header >> 1) & 3
        block_size = header >> 3
        if block_type == 3 or block_size > _MAX_BLOCK:
            raise _codec_error("corrupt zstd block header", self._location)
        self._state = "body"
        self._skip = 1 if block_type == 1 else block_size
        if not self._skip:
            self._body_done()

    def _body_done(self) -> None:
        if self._state == "body" and not self._last_block:
            self._next_block()
        elif self._state == "body" and self._has_checksum:
            self._state, self._skip = "checksum", 4
        else:  # end of a frame: a data frame's last block or checksum, or a skippable frame
            self._state, self._need = "magic", 4
