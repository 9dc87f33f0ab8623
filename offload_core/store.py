"""The contract of a storage backend.

A backend plugin registers a factory ``(url: str, **options) -> Store``. Keys are relative to the
store's root and use ``/`` as separator; a store rejects keys that would leave its root with
:class:`~offload_core.errors.UnsafeKeyError`, and maps its own failures to the
:class:`~offload_core.errors.StorageError` family (keeping the original as ``__cause__``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Protocol, runtime_checkable

__all__ = ["ObjectInfo", "Store"]


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
