"""The local store: the conformance suite plus confinement, atomic files and error mapping."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from offload_backends.local import TEMP_PREFIX, LocalStore
from offload_core import Plugins
from offload_core.errors import (
    AccessDeniedError,
    ConfigurationError,
    PayloadNotFoundError,
    StorageError,
    TransientStorageError,
    UnsafeKeyError,
)
from offload_core.store import translate_os_error, translating
from offload_core.testing import BackendConformance


class TestLocalStore(BackendConformance):
    @pytest.fixture
    def store(self, tmp_path: Path) -> LocalStore:
        return LocalStore((tmp_path / "root").as_uri())


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "root"


@pytest.fixture
def store(root: Path) -> LocalStore:
    return LocalStore(root.as_uri())


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory next to the root holding a secret; no store may touch it."""
    path = tmp_path / "outside"
    path.mkdir()
    (path / "secret").write_bytes(b"secret")
    return path


def write(store: LocalStore, key: str, data: bytes) -> None:
    with store.open_write(key) as sink:
        sink.write(data)


def tree(path: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(path)): p.read_bytes()
        for p in path.rglob("*")
        if p.is_file() and not p.is_symlink()
    }


# -- URLs and locations -------------------------------------------------------------------------


def test_url_is_canonical_and_the_root_is_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b"
    store = LocalStore(f"file://{path}/")
    assert store.url == f"file://{path}"
    assert path.is_dir()
    assert LocalStore(str(path)).url == store.url


@pytest.mark.parametrize("url", ["relative/path", "file://host/srv/p", "s3://bucket/x", "file:"])
def test_unusable_urls_are_configuration_errors(url: str) -> None:
    with pytest.raises(ConfigurationError):
        LocalStore(url)


def test_key_for_accepts_every_spelling_of_a_file_url(store: LocalStore, root: Path) -> None:
    for location in (f"file://{root}/a/k", f"file://localhost{root}/a/k", f"file:{root}/a/k"):
        assert store.key_for(location) == "a/k"
    assert store.key_for(f"{root}/a/k") == "a/k"
    assert store.key_for(f"file://evil{root}/a/k") is None
    assert store.key_for(f"file://{root}/a/../../outside/secret") is None


def test_the_file_scheme_and_plain_paths_open_this_store() -> None:
    import offload_backends.plugin

    plugins = Plugins.from_modules(offload_backends.plugin)
    assert plugins.entry_for_url("file:///srv/p").load() is LocalStore
    assert plugins.entry_for_url("/srv/p").load() is LocalStore


# -- confinement --------------------------------------------------------------------------------


def test_a_file_symlink_to_outside_is_refused(store: LocalStore, root: Path, outside: Path) -> None:
    (root / "link").symlink_to(outside / "secret")
    with pytest.raises(UnsafeKeyError):
        store.open_read("link")
    with pytest.raises(UnsafeKeyError):
        store.info("link")
    with pytest.raises(UnsafeKeyError):
        write(store, "link", b"overwritten")
    with pytest.raises(UnsafeKeyError):
        store.delete("link")
    assert tree(outside) == {"secret": b"secret"}
    assert (root / "link").is_symlink()
    assert list(store.list()) == []


def test_a_symlink_inside_the_root_is_refused_as_an_object(store: LocalStore, root: Path) -> None:
    write(store, "real", b"x")
    (root / "alias").symlink_to(root / "real")
    with pytest.raises(UnsafeKeyError):
        store.open_read("alias")
    assert [info.key for info in store.list()] == ["real"]


def test_a_directory_symlink_to_outside_is_refused(
    store: LocalStore, root: Path, outside: Path
) -> None:
    (root / "dir").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafeKeyError):
        store.open_read("dir/secret")
    with pytest.raises(UnsafeKeyError):
        store.info("dir/secret")
    with pytest.raises(UnsafeKeyError):
        write(store, "dir/secret", b"overwritten")
    with pytest.raises(UnsafeKeyError):
        write(store, "dir/new/deeper/k", b"planted")
    with pytest.raises(UnsafeKeyError):
        store.delete("dir/secret")
    with pytest.raises(UnsafeKeyError):
        list(store.list("dir/"))
    assert tree(outside) == {"secret": b"secret"}
    assert [info.key for info in store.list()] == []


def test_a_symlinked_intermediate_directory_is_refused(
    store: LocalStore, root: Path, outside: Path
) -> None:
    (root / "a").mkdir(parents=True)
    (root / "a" / "b").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafeKeyError):
        write(store, "a/b/c/k", b"planted")
    with pytest.raises(UnsafeKeyError):
        store.open_read("a/b/secret")
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]


def test_a_dangling_symlink_to_outside_creates_nothing_there(
    store: LocalStore, root: Path, tmp_path: Path
) -> None:
    target = tmp_path / "not-yet"
    (root / "dir").symlink_to(target, target_is_directory=True)
    with pytest.raises(UnsafeKeyError):
        write(store, "dir/k", b"planted")
    assert not target.exists()


def test_directory_symlinks_inside_the_root_are_followed(store: LocalStore, root: Path) -> None:
    write(store, "real/k", b"x")
    (root / "alias").symlink_to(root / "real", target_is_directory=True)
    assert store.open_read("alias/k").read() == b"x"
    assert [info.key for info in store.list("alias/")] == ["alias/k"]


def test_a_fifo_in_place_of_an_object_does_not_hang_the_reader(
    store: LocalStore, root: Path
) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    os.mkfifo(root / "fifo")
    with pytest.raises(PayloadNotFoundError):
        store.open_read("fifo")
    with pytest.raises(PayloadNotFoundError):
        store.info("fifo")


def test_reserved_temporary_names_are_refused(store: LocalStore) -> None:
    for key in (f"{TEMP_PREFIX}x", f"a/{TEMP_PREFIX}x", f"{TEMP_PREFIX}dir/k"):
        with pytest.raises(UnsafeKeyError):
            write(store, key, b"x")


# -- atomic files -------------------------------------------------------------------------------


def test_writes_go_through_a_temporary_file_in_the_destination_directory(
    store: LocalStore, root: Path
) -> None:
    with store.open_write("dir/k") as sink:
        sink.write(b"x")
        sink.flush()
        (temporary,) = (root / "dir").iterdir()
        assert temporary.name.startswith(TEMP_PREFIX)
        assert temporary.read_bytes() == b"x"
        assert list(store.list()) == []
    assert sorted(p.name for p in (root / "dir").iterdir()) == ["k"]


def test_temporary_files_are_removed_when_the_block_fails(store: LocalStore, root: Path) -> None:
    with pytest.raises(RuntimeError), store.open_write("dir/k") as sink:  # noqa: PT012
        sink.write(b"x" * 100_000)
        raise RuntimeError("publisher crashed")
    assert list((root / "dir").iterdir()) == []


def test_temporary_files_are_removed_when_exclusive_create_loses(
    store: LocalStore, root: Path
) -> None:
    write(store, "k", b"first")
    with pytest.raises(FileExistsError), store.open_write("k", exclusive=True) as sink:
        sink.write(b"second")
    assert sorted(p.name for p in root.iterdir()) == ["k"]


def test_exclusive_create_loses_to_a_writer_that_finished_first(
    store: LocalStore, root: Path
) -> None:
    with pytest.raises(FileExistsError), store.open_write("k", exclusive=True) as sink:  # noqa: PT012
        sink.write(b"slow")
        write(store, "k", b"fast")
    assert (root / "k").read_bytes() == b"fast"
    assert sorted(p.name for p in root.iterdir()) == ["k"]


def test_directories_are_created_as_needed(store: LocalStore, root: Path) -> None:
    write(store, "a/b/c/k", b"x")
    assert (root / "a" / "b" / "c" / "k").read_bytes() == b"x"


def test_a_key_below_an_object_is_a_storage_error_not_file_exists(store: LocalStore) -> None:
    write(store, "a", b"x")
    with pytest.raises(StorageError) as raised:
        write(store, "a/b", b"y")
    assert not isinstance(raised.value, FileExistsError)


@pytest.mark.parametrize("exclusive", [False, True])
def test_a_key_that_is_also_a_directory_is_a_storage_error(
    store: LocalStore, exclusive: bool
) -> None:
    write(store, "a/b", b"x")
    with (
        pytest.raises(StorageError, match="prefix") as raised,
        store.open_write("a", exclusive=exclusive) as sink,
    ):
        sink.write(b"y")
    assert type(raised.value) is StorageError  # not "not found", not FileExistsError
    assert store.open_read("a/b").read() == b"x"


def test_fsync_writes_round_trip(root: Path) -> None:
    store = LocalStore(root.as_uri(), fsync=True)
    write(store, "k", b"durable")
    assert store.open_read("k").read() == b"durable"


def test_without_mkdir_a_missing_root_is_an_error_and_is_not_created(root: Path) -> None:
    store = LocalStore(root.as_uri(), mkdir=False)
    with pytest.raises(StorageError, match="mkdir"):
        write(store, "k", b"x")
    assert not root.exists()
    root.mkdir()
    write(store, "k", b"x")
    assert store.open_read("k").read() == b"x"


def test_new_files_get_the_usual_permissions(store: LocalStore, root: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    write(store, "k", b"x")
    assert stat.S_IMODE((root / "k").stat().st_mode) == 0o666 & ~umask


# -- error mapping ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (FileNotFoundError(errno.ENOENT, "gone"), PayloadNotFoundError),
        (IsADirectoryError(errno.EISDIR, "dir"), PayloadNotFoundError),
        (PermissionError(errno.EACCES, "no"), AccessDeniedError),
        (TimeoutError("slow"), TransientStorageError),
        (ConnectionResetError(errno.ECONNRESET, "reset"), TransientStorageError),
        (OSError(errno.ELOOP, "loop"), UnsafeKeyError),
        (OSError(errno.ENAMETOOLONG, "long"), UnsafeKeyError),
        (OSError(errno.ENOSPC, "full"), StorageError),
    ],
)
def test_os_errors_map_to_storage_errors_with_the_cause(
    raised: OSError, expected: type[StorageError]
) -> None:
    with pytest.raises(expected) as caught, translating(translate_os_error, "file:///x/k"):
        raise raised
    assert type(caught.value) is expected
    assert caught.value.__cause__ is raised


def test_file_exists_and_foreign_errors_pass_unchanged() -> None:
    for raised in (FileExistsError(errno.EEXIST, "exists"), ValueError("bug")):
        with pytest.raises(type(raised)) as caught, translating(translate_os_error, "file:///x"):
            raise raised
        assert caught.value is raised


def _in_unprivileged_child(action: Callable[[], object]) -> str:
    """Run ``action`` in a forked child without root's privileges; the name of what it raised."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            os.close(reader)
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
            action()
            outcome = "no error"
        except BaseException as exc:
            cause = type(exc.__cause__).__name__ if exc.__cause__ else "-"
            outcome = f"{type(exc).__name__} from {cause}"
        os.write(writer, outcome.encode())
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        outcome = pipe.read().decode()
    os.waitpid(pid, 0)
    return outcome


@pytest.fixture
def locked_store() -> Iterator[LocalStore]:
    """A store whose root and one object belong to another user (or are mode 000)."""
    base = tempfile.mkdtemp()  # not under pytest's 0700 tree, so an unprivileged user can enter
    try:
        os.chmod(base, 0o755)
        store = LocalStore(Path(base, "root").as_uri())
        write(store, "k", b"private")
        if os.geteuid() == 0:
            os.chmod(Path(base, "root", "k"), 0o600)  # root's file, unreadable by nobody
        else:
            os.chmod(Path(base, "root", "k"), 0)
            os.chmod(Path(base, "root"), 0o555)
        yield store
    finally:
        os.chmod(Path(base, "root"), 0o755)
        shutil.rmtree(base)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork to drop privileges")
@pytest.mark.skipif(sys.platform == "darwin", reason="fork in a threaded test process")
def test_permission_errors_become_access_denied(locked_store: LocalStore) -> None:
    # Root ignores file modes, so the checks run in a child that dropped to "nobody".
    def read() -> object:
        return locked_store.open_read("k").read()

    def create() -> None:
        write(locked_store, "new", b"x")

    assert _in_unprivileged_child(read) == "AccessDeniedError from PermissionError"
    assert _in_unprivileged_child(create) == "AccessDeniedError from PermissionError"
