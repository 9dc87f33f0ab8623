"""The contract of a storage backend, and the helpers every store author needs.

A backend plugin registers a factory ``(url: str, **options) -> Store``. Keys are relative to the
store's root and use ``/`` as separator; a store rejects keys that would leave its root with
:class:`~offload_core.errors.UnsafeKeyError`, and maps its own failures to the
:class:`~offload_core.errors.StorageError` family (keeping the original as ``__cause__``).

Keys come from pointers, which are attacker-controlled, so a store runs :func:`validate_key`
before any I/O (it refuses every key of the conformance suite's ``UNSAFE_KEYS``). Locations are
a store's root URL joined with the raw key: nothing is percent-encoded, so :func:`key_under`
never decodes anything (``%2e%2e`` is a literal name). :func:`translating` and
:class:`StoreStream` turn a backend's own exceptions into that family as they happen.
"""

from __future__ import annotations

import errno
import io
import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Protocol, runtime_checkable

from .codecs import readinto
from .errors import (
    AccessDeniedError,
    OffloadError,
    PayloadNotFoundError,
    StorageError,
    TransientStorageError,
    UnsafeKeyError,
)

__all__ = [
    "MAX_KEY_BYTES",
    "ObjectInfo",
    "SizedReads",
    "Store",
    "StoreStream",
    "Translator",
    "key_problem",
    "key_under",
    "open_read",
    "translate_os_error",
    "translating",
    "validate_key",
]


@dataclass(frozen=True)
class ObjectInfo:
    """What a store knows about one stored object."""

    key: str
    size: int
    modified: datetime | None = None
    metadata: Mapping[str, str] | None = None


@runtime_checkable
class Store(Protocol):
    """Object storage under one root URL."""

    #: Canonical root URL, without a trailing slash (``file:///srv/payloads``, ``s3://b/prefix``).
    url: str

    def location(self, key: str) -> str:
        """The URL of ``key`` in this store, as pointers carry it."""
        ...

    def key_for(self, location: str) -> str | None:
        """The key of ``location`` if it lies under this store's root, else ``None``. No I/O."""
        ...

    def open_write(
        self, key: str, *, metadata: Mapping[str, str] | None = None, exclusive: bool = False
    ) -> AbstractContextManager[BinaryIO]:
        """A writable binary stream; the object appears only if the block exits without error.

        With ``exclusive`` an existing object is kept and ``FileExistsError`` raised instead.
        """
        ...

    def open_read(self, key: str) -> BinaryIO:
        """A readable binary stream of the object; ``PayloadNotFoundError`` if there is none."""
        ...

    def info(self, key: str) -> ObjectInfo:
        """Size and metadata of an object; ``PayloadNotFoundError`` if there is none."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; a missing object is not an error."""
        ...

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix``."""
        ...


@runtime_checkable
class SizedReads(Protocol):
    """What a store offers, besides :class:`Store`, to read faster when the caller already
    knows how large the object should be (the Offloader knows it from the pointer).

    Optional: a store without this method is read with ``open_read(key)``, and callers go
    through :func:`open_read`, which picks the method. S3 uses the size to start parallel
    ranged requests at once instead of learning the size from a first response.
    """

    def open_read_sized(self, key: str, size: int) -> BinaryIO:
        """As :meth:`Store.open_read`, for an object expected to hold ``size`` bytes; an object
        of another size raises :class:`~offload_core.errors.SizeMismatchError` (at once or while
        reading, never by handing over a different object's bytes as complete)."""
        ...


def open_read(store: Store, key: str, *, size: int | None = None) -> BinaryIO:
    """``store.open_read_sized(key, size)`` when the store offers it (:class:`SizedReads`) and
    ``size`` is known, else ``store.open_read(key)``. ``size`` is a claim (from a pointer) that
    the store checks, never an amount to allocate."""
    if size is not None and isinstance(store, SizedReads):
        return store.open_read_sized(key, size)
    return store.open_read(key)


# -- helpers for store authors -------------------------------------------------------------

#: The longest key, in UTF-8 bytes; S3's limit, so a key valid here is valid everywhere.
MAX_KEY_BYTES = 1024

_DRIVE = re.compile(r"[A-Za-z]:")


def key_problem(key: object) -> str | None:
    """Why ``key`` is unsafe, or ``None`` when it is a valid relative key."""
    if not isinstance(key, str):
        return "it is not a string"
    if not key:
        return "it is empty"
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        return "it is not valid Unicode (lone surrogate)"
    if size > MAX_KEY_BYTES:
        return f"it is {size} UTF-8 bytes long; the limit is {MAX_KEY_BYTES}"
    if any(unicodedata.category(ch) == "Cc" for ch in key):
        return "it contains a control character"
    if "\\" in key:
        return "it contains a backslash"
    if "::" in key:
        return "it contains '::', the URL chain separator"
    if key.startswith("/"):
        return "it is absolute (starts with '/')"
    for segment in key.split("/"):
        if not segment:
            return "it has an empty path segment"
        if segment in (".", ".."):
            return f"it has a {segment!r} path segment"
        if _DRIVE.match(segment):
            return "it has a drive letter"
    return None


def validate_key(key: str) -> str:
    """Return ``key`` unchanged if it is safe; raise :class:`UnsafeKeyError` otherwise."""
    problem = key_problem(key)
    if problem is not None:
        shown = repr(key) if len(repr(key)) <= 80 else repr(key)[:77] + "..."
        raise UnsafeKeyError(f"refusing key {shown}: {problem}")
    return key


def key_under(location: str, root: str) -> str | None:
    """The key of ``location`` below the root URL ``root``, or ``None``; never raises.

    ``None`` for anything else too: another root, a chained URL (``::``), or a key that
    :func:`validate_key` would refuse (``..``), so a pointer can never name a path outside.
    """
    if not isinstance(location, str) or "::" in location:
        return None
    prefix = root if root.endswith("/") else root + "/"
    if not location.startswith(prefix):
        return None
    key = location[len(prefix) :]
    return key if key_problem(key) is None else None


#: Turns a backend exception into an offload error, or ``None`` to let it through unchanged.
Translator = Callable[[BaseException, str], Exception | None]


def translate_os_error(exc: BaseException, location: str) -> Exception | None:
    """Map the ``OSError`` family to the ``StorageError`` tree (the caller chains the cause).

    ``FileExistsError`` is let through: it is how ``exclusive`` writes report an existing object.
    """
    if isinstance(exc, (OffloadError, FileExistsError)):
        return None
    if isinstance(exc, (FileNotFoundError, IsADirectoryError, NotADirectoryError)):
        return PayloadNotFoundError(f"no object at {location}", location=location)
    if isinstance(exc, PermissionError):
        return AccessDeniedError(f"access to {location} denied: {exc}", location=location)
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return TransientStorageError(f"{location}: {exc}; try again", location=location)
    if isinstance(exc, OSError):
        if exc.errno == errno.ELOOP:
            return UnsafeKeyError(
                f"{location} is a symbolic link; refusing to follow it", location=location
            )
        if exc.errno == errno.ENAMETOOLONG:
            return UnsafeKeyError(
                f"{location}: a path segment is too long for this filesystem", location=location
            )
        return StorageError(f"{location}: {exc}", location=location)
    return None


@contextmanager
def translating(translate: Translator, location: str) -> Iterator[None]:
    """Re-raise what ``translate`` recognises as an offload error, with the original as cause."""
    try:
        yield
    except Exception as exc:
        mapped = translate(exc, location)
        if mapped is None:
            raise
        raise mapped from exc


class StoreStream(io.BufferedIOBase, BinaryIO):
    """A binary stream over a backend's file object whose errors are offload errors.

    With ``keep_open`` (write streams) closing it only flushes: the store finishes the write
    when the ``open_write`` block exits, so code that closes the stream it was handed (as
    ``zstandard``'s ``stream_writer`` does) still stores the object.
    """

    def __init__(
        self, raw: BinaryIO, *, location: str, translate: Translator, keep_open: bool = False
    ) -> None:
        super().__init__()
        self._raw = raw
        self._location = location
        self._translate = translate
        self._keep_open = keep_open

    @property
    def size(self) -> int | None:
        """How many bytes the object holds, when the backend's stream tells without reading
        (a ``size`` it carries, such as S3's ``Content-Length``, or a local file's length)."""
        size = getattr(self._raw, "size", None)
        if isinstance(size, int) and not isinstance(size, bool):
            return size
        fileno = getattr(self._raw, "fileno", None)
        if fileno is None:
            return None
        try:
            return os.fstat(fileno()).st_size
        except (OSError, ValueError):
            return None

    def _guard(self) -> AbstractContextManager[None]:
        if self.closed:
            raise ValueError("I/O operation on closed file")
        return translating(self._translate, self._location)

    def readable(self) -> bool:
        return not self.closed and self._raw.readable()

    def writable(self) -> bool:
        return not self.closed and self._raw.writable()

    def seekable(self) -> bool:
        return not self.closed and self._raw.seekable()

    def read(self, size: int | None = -1, /) -> bytes:
        with self._guard():
            return self._raw.read(-1 if size is None else size)

    def read1(self, size: int = -1, /) -> bytes:
        return self.read(size)

    def readinto(self, buffer: bytearray | memoryview, /) -> int:  # type: ignore[override]
        # Straight into the caller's buffer where the file can: no temporary of its size.
        with self._guard():
            return readinto(self._raw, memoryview(buffer).cast("B"))

    def readline(self, size: int | None = -1, /) -> bytes:
        with self._guard():
            return self._raw.readline(-1 if size is None else size)

    def write(self, data: bytes | bytearray | memoryview, /) -> int:  # type: ignore[override]
        with self._guard():
            return self._raw.write(data)

    def writelines(self, lines: Iterable[bytes | bytearray | memoryview], /) -> None:  # type: ignore[override]
        for line in lines:
            self.write(line)

    def seek(self, offset: int, whence: int = io.SEEK_SET, /) -> int:
        with self._guard():
            return self._raw.seek(offset, whence)

    def tell(self) -> int:
        with self._guard():
            return self._raw.tell()

    def flush(self) -> None:
        if self.closed or self._raw.closed:
            return
        with translating(self._translate, self._location):
            self._raw.flush()

    def close(self) -> None:
        if self.closed:
            return
        try:
            super().close()  # flushes
        finally:
            if not self._keep_open:
                with translating(self._translate, self._location):
                    self._raw.close()
