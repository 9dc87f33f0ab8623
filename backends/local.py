"""A store in a local directory: atomic writes, confined to its root.

Confinement: keys are validated first; then the object's directory is resolved with
``realpath`` and must lie inside the resolved root, so a symbolic link (to a file or to a
directory) that points outside turns into :class:`~offload_core.errors.UnsafeKeyError` before
anything is read or written. The object's own name is never followed: it is opened with
``O_NOFOLLOW`` where the platform has it, so a symlink in its place is refused too.

Writes go to a temporary file (``.offload-tmp-*``) in the destination directory and are renamed
into place when the ``open_write`` block exits cleanly; names starting with that prefix are
reserved and never listed. Metadata is not stored (``info().metadata`` is ``None``): a sidecar
file would need its own atomicity and extended attributes are not portable.
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
import stat
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, suppress
from datetime import datetime, timezone
from typing import BinaryIO

from offload_core.errors import (
    ConfigurationError,
    PayloadNotFoundError,
    StorageError,
    UnsafeKeyError,
)
from offload_core.store import (
    ObjectInfo,
    StoreStream,
    key_problem,
    key_under,
    translate_os_error,
    translating,
    validate_key,
)

__all__ = ["TEMP_PREFIX", "LocalStore"]

log = logging.getLogger(__name__)

#: Name prefix of in-progress writes; keys with a segment starting with it are refused.
TEMP_PREFIX = ".offload-tmp-"

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


def _file_path(url: str) -> str | None:
    """The path named by a ``file:`` URL (``file:///p``, ``file://localhost/p``, ``file:/p``)
    or by a plain absolute path; ``None`` for anything else. Nothing is percent-decoded."""
    if url.startswith("file://localhost/"):
        return url[len("file://localhost") :]
    if url.startswith("file://"):
        rest = url[len("file://") :]
        return rest if rest.startswith("/") else None  # file://host/... names another machine
    if url.startswith("file:/"):
        return url[len("file:") :]
    if url.startswith("/"):
        return url
    return None


class LocalStore:
    """Objects as files under one directory.

    ``url`` is ``file:///absolute/path`` or a plain absolute path. With ``mkdir`` the root is
    created if missing (directories below it are always created as keys need them); without it a
    missing root is an error, so an unmounted volume is never silently written underneath. With
    ``fsync`` each write is flushed to disk, file and directory, before it becomes visible.
    """

    def __init__(self, url: str, *, mkdir: bool = True, fsync: bool = False) -> None:
        path = _file_path(url)
        if path is None or not os.path.isabs(path):
            raise ConfigurationError(
                f"a local store needs file:///absolute/path or an absolute path, got {url!r}"
            )
        #: The root directory, absolute and normalised (symbolic links not resolved).
        self.root = os.path.normpath(path)
        self.url = "file://" + self.root
        self.mkdir = mkdir
        self.fsync = fsync
        if mkdir:
            with translating(translate_os_error, self.url):
                os.makedirs(self.root, exist_ok=True)

    def __repr__(self) -> str:
        return f"LocalStore({self.url!r})"

    # -- keys and locations ------------------------------------------------------------------

    def location(self, key: str) -> str:
        validate_key(key)
        return self.url + key if self.url.endswith("/") else f"{self.url}/{key}"

    def key_for(self, location: str) -> str | None:
        """The key of a ``file:`` URL (or absolute path) under the root; ``None`` otherwise,
        including for locations with ``..`` or other unsafe segments. Never raises, no I/O."""
        path = _file_path(location) if isinstance(location, str) else None
        return None if path is None else key_under("file://" + path, self.url)

    def _real_root(self) -> str:
        real = os.path.realpath(self.root)
        if not self.mkdir:
            with translating(translate_os_error, self.url):
                try:
                    is_directory = stat.S_ISDIR(os.stat(real).st_mode)
                except FileNotFoundError:
                    is_directory = False
            if not is_directory:
                raise StorageError(
                    f"the store root {self.root} is not a directory; create it or pass mkdir=True",
                    location=self.url,
                )
        return real

    def _path(self, key: str) -> str:
        """The filesystem path of ``key``: its directory resolved and checked, its name not."""
        segments = validate_key(key).split("/")
        if any(segment.startswith(TEMP_PREFIX) for segment in segments):
            raise UnsafeKeyError(f"refusing key {key!r}: {TEMP_PREFIX}* names are reserved")
        return os.path.join(self._inside(key, segments[:-1]), segments[-1])

    def _inside(self, key: str, segments: list[str]) -> str:
        """The real path of the directory ``segments``, which must not leave the real root."""
        real_root = self._real_root()
        real = os.path.realpath(os.path.join(real_root, *segments))
        if real != real_root and os.path.commonpath([real_root, real]) != real_root:
            raise UnsafeKeyError(
                f"refusing key {key!r}: a symbolic link leads outside the store root",
                location=self.location(key),
            )
        return real

    # -- reading -----------------------------------------------------------------------------

    def open_read(self, key: str) -> BinaryIO:
        path = self._path(key)
        location = self.location(key)
        flags = os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC | _O_BINARY | _O_NONBLOCK
        with translating(translate_os_error, location):
            fd = os.open(path, flags)  # O_NONBLOCK: a FIFO planted here must not hang us
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    raise PayloadNotFoundError(f"no object at {location}", location=location)
                if _O_NONBLOCK:
                    os.set_blocking(fd, True)
                raw = os.fdopen(fd, "rb")
            except BaseException:
                os.close(fd)
                raise
        return StoreStream(raw, location=location, translate=translate_os_error)

    def info(self, key: str) -> ObjectInfo:
        path = self._path(key)
        location = self.location(key)
        with translating(translate_os_error, location):
            st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            raise UnsafeKeyError(f"{location} is a symbolic link; refusing it", location=location)
        if not stat.S_ISREG(st.st_mode):
            raise PayloadNotFoundError(f"no object at {location}", location=location)
        return _object_info(key, st)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Objects whose key starts with ``prefix``; symlinks and unusable names are skipped."""
        directory = prefix.rpartition("/")[0]
        if directory:
            start = self._inside(directory, validate_key(directory).split("/"))
        else:
            start = self._real_root()
        return self._walk(start, directory, prefix)

    def _walk(self, start: str, directory: str, prefix: str) -> Iterator[ObjectInfo]:
        def fail(exc: OSError) -> None:
            if not isinstance(exc, (FileNotFoundError, NotADirectoryError)):
                raise exc

        with translating(translate_os_error, self.url):
            for dirpath, dirnames, filenames in os.walk(start, onerror=fail):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith(TEMP_PREFIX))
                for name in sorted(filenames):
                    full = os.path.join(dirpath, name)
                    relative = os.path.relpath(full, start).replace(os.sep, "/")
                    key = f"{directory}/{relative}" if directory else relative
                    if (
                        name.startswith(TEMP_PREFIX)
                        or not key.startswith(prefix)
                        or key_problem(key) is not None
                    ):
                        continue
                    try:
                        st = os.lstat(full)
                    except FileNotFoundError:
                        continue  # deleted while we walked
                    if stat.S_ISREG(st.st_mode):
                        yield _object_info(key, st)

    # -- writing -----------------------------------------------------------------------------

    def open_write(
        self, key: str, *, metadata: Mapping[str, str] | None = None, exclusive: bool = False
    ) -> AbstractContextManager[BinaryIO]:
        """A stream to a temporary file, renamed to ``key`` when the block exits cleanly.

        ``metadata`` is accepted and not stored. ``exclusive`` publishes with ``os.link``, which
        fails atomically if the object exists (and on filesystems without hard links).
        """
        path = self._path(key)  # validate now, not when the block is entered
        return self._write(self.location(key), path, exclusive)

    @contextmanager
    def _write(self, location: str, path: str, exclusive: bool) -> Iterator[BinaryIO]:
        parent = os.path.dirname(path)
        with translating(translate_os_error, location):
            if _object_exists(path, location) and exclusive:
                raise FileExistsError(errno.EEXIST, "an object already exists", location)
            try:
                os.makedirs(parent, exist_ok=True)
            except (FileExistsError, NotADirectoryError) as exc:
                raise StorageError(
                    f"cannot write {location}: part of its path is an object, not a directory",
                    location=location,
                ) from exc
            fd, tmp = _create_temp(parent, location)
        raw = os.fdopen(fd, "wb")
        stream = StoreStream(raw, location=location, translate=translate_os_error, keep_open=True)
        published = False
        try:
            yield stream
            stream.close()
            with translating(translate_os_error, location):
                raw.flush()
                if self.fsync:
                    os.fsync(raw.fileno())
                raw.close()
                try:
                    if exclusive:
                        os.link(tmp, path)  # FileExistsError, untranslated, if someone was first
                    else:
                        os.replace(tmp, path)
                        published = True
                except IsADirectoryError as exc:
                    raise _directory_in_the_way(location) from exc
                if self.fsync:
                    _fsync_directory(parent)
        finally:
            with suppress(Exception):  # already closed unless the block failed
                stream.close()
            with suppress(Exception):
                raw.close()
            if not published:
                try:
                    os.unlink(tmp)
                except OSError as exc:
                    log.warning("could not remove temporary file %s: %s", tmp, exc)

    def delete(self, key: str) -> None:
        path = self._path(key)
        location = self.location(key)
        with translating(translate_os_error, location):
            try:
                mode = os.lstat(path).st_mode
            except (FileNotFoundError, NotADirectoryError):
                return
            if stat.S_ISLNK(mode):
                raise UnsafeKeyError(
                    f"{location} is a symbolic link; refusing it", location=location
                )
            if stat.S_ISDIR(mode):
                return  # a "directory" is not an object
            with suppress(FileNotFoundError):
                os.unlink(path)


def _object_info(key: str, st: os.stat_result) -> ObjectInfo:
    modified = datetime.fromtimestamp(st.st_mtime, tz=timezone.utc)
    return ObjectInfo(key=key, size=st.st_size, modified=modified, metadata=None)


def _object_exists(path: str, location: str) -> bool:
    """Whether a file is at ``path``; a symlink or a directory there cannot be written over."""
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return False
    if stat.S_ISLNK(mode):
        raise UnsafeKeyError(f"{location} is a symbolic link; refusing it", location=location)
    if stat.S_ISDIR(mode):
        raise _directory_in_the_way(location)
    return True


def _directory_in_the_way(location: str) -> StorageError:
    return StorageError(
        f"cannot write {location}: it is a directory holding other keys (on local disk a key "
        "cannot also be a prefix of other keys)",
        location=location,
    )


def _create_temp(directory: str, location: str) -> tuple[int, str]:
    """Create a fresh temporary file in ``directory`` (mode 0o666 less the umask)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC | _O_BINARY
    for _ in range(16):
        tmp = os.path.join(directory, TEMP_PREFIX + secrets.token_hex(8))
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise StorageError(f"could not create a temporary file for {location}", location=location)


def _fsync_directory(directory: str) -> None:
    """Persist a rename on POSIX; a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
