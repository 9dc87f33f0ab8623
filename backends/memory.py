"""A store in process memory, for tests and demos.

``memory://name[/prefix]``: every store with the same ``name`` in one process shares one space
of objects (thread-safe), so a publisher and a consumer built from the same URL see each other's
objects. :meth:`MemoryStore.clear_all` empties every space between tests.
"""

from __future__ import annotations

import errno
import io
import threading
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import MappingProxyType
from typing import TYPE_CHECKING, BinaryIO, ClassVar

from offload_core.errors import ConfigurationError, PayloadNotFoundError
from offload_core.store import ObjectInfo, StoreStream, key_problem, key_under, validate_key

if TYPE_CHECKING:
    from offload_core.aio.store import InlineStore

__all__ = ["MemoryStore"]

_SCHEME = "memory://"


@dataclass(frozen=True)
class _Object:
    data: bytes
    metadata: Mapping[str, str]
    modified: datetime


@dataclass
class _Space:
    objects: dict[str, _Object] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _no_translation(exc: BaseException, location: str) -> Exception | None:
    return None


def _exists(location: str) -> FileExistsError:
    return FileExistsError(errno.EEXIST, "an object already exists", location)


class MemoryStore:
    """Objects in a named, process-wide space; writes appear only when their block exits."""

    _spaces: ClassVar[dict[str, _Space]] = {}
    _spaces_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, url: str) -> None:
        if not url.startswith(_SCHEME):
            raise ConfigurationError(f"a memory store URL looks like memory://name, got {url!r}")
        name, _, prefix = url[len(_SCHEME) :].rstrip("/").partition("/")
        problem = key_problem(name) or (key_problem(prefix) if prefix else None)
        if problem:
            raise ConfigurationError(f"unusable memory store URL {url!r}: {problem}")
        self.name = name
        self.prefix = prefix
        self.url = _SCHEME + name + (f"/{prefix}" if prefix else "")
        with self._spaces_lock:
            self._space = self._spaces.setdefault(name, _Space())

    def __repr__(self) -> str:
        return f"MemoryStore({self.url!r})"

    def async_store(self) -> InlineStore:
        """The asynchronous face: this store's calls in place (it does no I/O)."""
        from offload_core.aio.store import InlineStore

        return InlineStore(self)

    @classmethod
    def clear_all(cls) -> None:
        """Forget every object in every space (stores already built stay usable)."""
        with cls._spaces_lock:
            spaces = list(cls._spaces.values())
        for space in spaces:
            with space.lock:
                space.objects.clear()

    def _full(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def location(self, key: str) -> str:
        validate_key(key)
        return f"{self.url}/{key}"

    def key_for(self, location: str) -> str | None:
        return key_under(location, self.url)

    def open_write(
        self, key: str, *, metadata: Mapping[str, str] | None = None, exclusive: bool = False
    ) -> AbstractContextManager[BinaryIO]:
        full = self._full(key)
        return self._write(full, self.location(key), dict(metadata or {}), exclusive)

    @contextmanager
    def _write(
        self, full: str, location: str, metadata: dict[str, str], exclusive: bool
    ) -> Iterator[BinaryIO]:
        if exclusive:
            with self._space.lock:
                if full in self._space.objects:
                    raise _exists(location)
        buffer = io.BytesIO()
        stream = StoreStream(buffer, location=location, translate=_no_translation, keep_open=True)
        try:
            yield stream
            stream.close()
            stored = _Object(
                buffer.getvalue(), MappingProxyType(metadata), datetime.now(timezone.utc)
            )
            with self._space.lock:
                if exclusive and full in self._space.objects:
                    raise _exists(location)
                self._space.objects[full] = stored
        finally:
            stream.close()
            buffer.close()

    def _get(self, key: str) -> _Object:
        full = self._full(key)
        with self._space.lock:
            found = self._space.objects.get(full)
        if found is None:
            location = self.location(key)
            raise PayloadNotFoundError(f"no object at {location}", location=location)
        return found

    def open_read(self, key: str) -> BinaryIO:
        return io.BytesIO(self._get(key).data)  # shares the immutable bytes until written to

    def info(self, key: str) -> ObjectInfo:
        found = self._get(key)
        return ObjectInfo(key, len(found.data), found.modified, found.metadata)

    def delete(self, key: str) -> None:
        full = self._full(key)
        with self._space.lock:
            self._space.objects.pop(full, None)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        start = f"{self.prefix}/" if self.prefix else ""
        with self._space.lock:
            matching = sorted(
                (
                    (full[len(start) :], obj)
                    for full, obj in self._space.objects.items()
                    if full.startswith(start) and full[len(start) :].startswith(prefix)
                ),
                key=lambda item: item[0],
            )
        for key, obj in matching:
            yield ObjectInfo(key, len(obj.data), obj.modified, obj.metadata)
