"""A store over any fsspec filesystem (``gs://``, ``az://``, ``sftp://`` ...): the fallback backend.

The root URL is configuration and may be chained (``simplecache::gs://bucket/payloads``); the
store's :attr:`~FsspecStore.url`, and so every location it hands out, is the chain's last link
(``gs://bucket/payloads``). Locations from pointers never reach fsspec as URLs: :meth:`key_for`
accepts only that exact root and refuses any ``::`` chain, and keys are joined to the root path.

Writes use ``fs.open(path, "wb")``. Object stores built on fsspec's buffered files (s3fs, gcsfs,
adlfs) only create the object when the stream is closed, so a failed block is discarded unseen.
Other filesystems (``file://``, for one) write in place: the partial object is visible while the
block runs and is removed, best effort, if it fails. ``exclusive`` checks for the object and then
writes; that is not atomic, so two writers racing on one key may both succeed. Metadata is not
stored (``info().metadata`` is ``None``).
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, suppress
from datetime import datetime, timezone
from typing import Any, BinaryIO

from fsspec.core import split_protocol, url_to_fs
from fsspec.registry import get_filesystem_class
from fsspec.spec import AbstractBufferedFile

from offload_core.errors import (
    ConfigurationError,
    MissingDependencyError,
    PayloadNotFoundError,
    StorageError,
)
from offload_core.store import (
    ObjectInfo,
    StoreStream,
    key_problem,
    key_under,
    translating,
    validate_key,
)

from ._errors import translate_fsspec_error

__all__ = ["FsspecStore", "translate_fsspec_error"]  # the latter from ._errors

log = logging.getLogger(__name__)

# How s3fs translates throttling (EBUSY) and S3 InternalError (EREMOTEIO) into OSError.


def _canonical_url(url: str) -> str:
    """``protocol://path`` of the chain's last link, with fsspec's own path normalisation."""
    target = url.rsplit("::", 1)[-1]
    protocol = split_protocol(target)[0] or "file"
    cls = get_filesystem_class(protocol)
    name = cls.protocol if isinstance(cls.protocol, str) else cls.protocol[0]
    path = str(cls._strip_protocol(target))
    return f"{name}://{path.rstrip('/') or path}"


def _modified(details: Mapping[str, Any]) -> datetime | None:
    """The modification time in an fsspec ``info`` dict, whichever spelling it uses."""
    for field in ("LastModified", "mtime", "last_modified", "updated", "modified", "created"):
        value = details.get(field)
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, tz=timezone.utc)
    return None


class FsspecStore:
    """Objects under ``url`` in any installed fsspec filesystem.

    ``storage_options`` go to :func:`fsspec.core.url_to_fs` unchanged (credentials, endpoint,
    options of chained filesystems as ``simplecache={...}``).
    """

    def __init__(self, url: str, **storage_options: Any) -> None:
        try:
            fs, root = url_to_fs(url, **storage_options)
            canonical = _canonical_url(url)
        except ImportError as exc:  # fsspec names the package in the ImportError it chains
            module = exc.name or getattr(exc.__cause__, "name", None) or "fsspec"
            raise MissingDependencyError(
                f"the fsspec filesystem for {url!r}", module=module, extra=None
            ) from exc
        except ValueError as exc:
            raise ConfigurationError(f"fsspec cannot open {url!r}: {exc}") from exc
        #: The fsspec filesystem objects are stored in.
        self.fs: Any = fs
        #: The root as a path of :attr:`fs` (no protocol, no trailing slash).
        self.root: str = root.rstrip("/") or root
        if not self.root:
            raise ConfigurationError(f"{url!r} names no bucket or directory to store objects in")
        self.url = canonical

    def __repr__(self) -> str:
        return f"FsspecStore({self.url!r})"

    def location(self, key: str) -> str:
        validate_key(key)
        return f"{self.url}/{key}"

    def key_for(self, location: str) -> str | None:
        """The key of ``location`` if it is exactly this store's root URL plus a safe key."""
        return key_under(location, self.url)

    def _path(self, key: str) -> str:
        """The path of ``key`` in :attr:`fs`, with fsspec's cached listings of it dropped: an
        object another process wrote since this one listed its directory must be found."""
        validate_key(key)
        path = self.root + key if self.root.endswith("/") else f"{self.root}/{key}"
        self.fs.invalidate_cache(path)
        return path

    def open_read(self, key: str) -> BinaryIO:
        path = self._path(key)
        location = self.location(key)
        with translating(translate_fsspec_error, location):
            raw = self.fs.open(path, "rb")
            # Object stores open a "directory" (a prefix of other keys) as an empty file; the
            # details fetched by the open say which it was.
            if isinstance(raw, AbstractBufferedFile) and raw.details.get("type") != "file":
                raw.close()
                raise PayloadNotFoundError(f"no object at {location}", location=location)
        return StoreStream(raw, location=location, translate=translate_fsspec_error)

    def info(self, key: str) -> ObjectInfo:
        path = self._path(key)
        location = self.location(key)
        with translating(translate_fsspec_error, location):
            details = self.fs.info(path)
        if details.get("type") != "file":
            raise PayloadNotFoundError(f"no object at {location}", location=location)
        return ObjectInfo(key, int(details["size"]), _modified(details), None)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Objects whose key starts with ``prefix`` (fsspec's ``find`` below its directory)."""
        directory = prefix.rpartition("/")[0]
        base = self._path(directory) if directory else self.root
        return self._find(base, prefix)

    def _find(self, base: str, prefix: str) -> Iterator[ObjectInfo]:
        with translating(translate_fsspec_error, self.url):
            found: dict[str, dict[str, Any]] = self.fs.find(base, withdirs=False, detail=True)
        root = self.root if self.root.endswith("/") else self.root + "/"
        for name, details in sorted(found.items()):
            key = name[len(root) :] if name.startswith(root) else None
            if (
                key is None
                or not key.startswith(prefix)
                or key_problem(key) is not None
                or details.get("type") != "file"
            ):
                continue
            yield ObjectInfo(key, int(details["size"]), _modified(details), None)

    def open_write(
        self, key: str, *, metadata: Mapping[str, str] | None = None, exclusive: bool = False
    ) -> AbstractContextManager[BinaryIO]:
        """A stream to ``fs.open(path, "wb")``; ``metadata`` is accepted and not stored."""
        return self._write(self._path(key), self.location(key), exclusive)

    @contextmanager
    def _write(self, path: str, location: str, exclusive: bool) -> Iterator[BinaryIO]:
        with translating(translate_fsspec_error, location):
            if exclusive and self.fs.isfile(path):
                raise FileExistsError(errno.EEXIST, "an object already exists", location)
            try:
                raw = self.fs.open(path, "wb")
            except FileNotFoundError as exc:
                raise StorageError(
                    f"cannot create {location}: its directory does not exist "
                    "(for local filesystems pass auto_mkdir=True)",
                    location=location,
                ) from exc
            except IsADirectoryError as exc:
                raise StorageError(
                    f"cannot write {location}: this filesystem has a directory there",
                    location=location,
                ) from exc
        stream = StoreStream(
            raw, location=location, translate=translate_fsspec_error, keep_open=True
        )
        try:
            yield stream
            stream.close()
            with translating(translate_fsspec_error, location):
                raw.close()
        except BaseException:
            self._abandon(raw, path)
            with suppress(Exception):  # nothing left to flush once raw is closed
                stream.close()
            raise

    def _abandon(self, raw: Any, path: str) -> None:
        """Best effort: leave no object behind after a failed write."""
        try:
            if isinstance(raw, AbstractBufferedFile):
                raw.discard()  # abort a pending multipart upload
                raw.closed = True  # closing would commit what was buffered
            else:
                raw.close()
                self.fs.rm_file(path)
        except FileNotFoundError:
            pass
        except Exception as exc:
            log.warning("could not remove the partial object %s: %s", path, exc)

    def delete(self, key: str) -> None:
        path = self._path(key)
        with translating(translate_fsspec_error, self.location(key)):
            try:
                self.fs.rm_file(path)
            except (FileNotFoundError, IsADirectoryError):
                return
