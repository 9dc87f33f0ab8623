"""The fsspec fallback store: the conformance suite over several filesystems, chained roots,
refused chained locations, and the translation of fsspec and botocore errors."""

from __future__ import annotations

import errno
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest

from offload_backends.fsspec_store import FsspecStore, translate_fsspec_error
from offload_core import Plugins
from offload_core.errors import (
    AccessDeniedError,
    ConfigurationError,
    MissingDependencyError,
    OffloadError,
    PayloadNotFoundError,
    StorageError,
    TransientStorageError,
)
from offload_core.testing import BackendConformance
from offload_core.testing.aws import MotoServer


class TestFsspecStoreOverLocalFiles(BackendConformance):
    """``file://`` through fsspec writes in place: no atomic visibility."""

    atomic_writes = False

    @pytest.fixture
    def store(self, tmp_path: Path) -> FsspecStore:
        return FsspecStore(f"file://{tmp_path}/root", auto_mkdir=True)


class TestFsspecStoreOverAChainedRoot(BackendConformance):
    """A chained root is configuration; locations name the chain's last link.

    ``filecache`` with ``check_files`` revalidates its copies; ``simplecache`` would go on serving
    a deleted object from its cache (harmless for immutable payloads, but not this contract)."""

    atomic_writes = False

    @pytest.fixture
    def store(self, tmp_path: Path) -> FsspecStore:
        return FsspecStore(
            f"filecache::file://{tmp_path}/root",
            filecache={"cache_storage": str(tmp_path / "cache"), "check_files": True},
            file={"auto_mkdir": True},
        )


class TestFsspecStoreOverFsspecMemory(BackendConformance):
    """fsspec's own memory filesystem (reachable only by building the store directly, since
    ``memory://`` URLs open offload's memory store)."""

    atomic_writes = False

    @pytest.fixture
    def store(self) -> Iterator[FsspecStore]:
        root = f"memory://conformance-{uuid.uuid4().hex}"
        store = FsspecStore(root)
        yield store
        if store.fs.exists(store.root):
            store.fs.rm(store.root, recursive=True)


@pytest.fixture(scope="module")
def s3_endpoint(moto_server: MotoServer) -> str:
    """The session's moto server, with the conformance bucket."""
    moto_server.client("s3").create_bucket(Bucket="conformance")
    return moto_server.endpoint


def _s3_options(endpoint: str) -> dict[str, Any]:
    return {
        "key": "testing",
        "secret": "testing",
        "endpoint_url": endpoint,
        "client_kwargs": {"region_name": "us-east-1"},
    }


class TestFsspecStoreOverS3(BackendConformance):
    """s3fs against a real HTTP endpoint: buffered uploads appear only when closed."""

    @pytest.fixture
    def store(self, s3_endpoint: str) -> FsspecStore:
        url = f"s3://conformance/{uuid.uuid4().hex}"
        return FsspecStore(url, **_s3_options(s3_endpoint))


# -- roots and locations ------------------------------------------------------------------------


def test_a_chained_root_hands_out_plain_locations(tmp_path: Path) -> None:
    store = FsspecStore(f"simplecache::file://{tmp_path}/", file={"auto_mkdir": True})
    assert store.url == f"file://{tmp_path}"
    assert store.location("k") == f"file://{tmp_path}/k"
    assert store.key_for(f"file://{tmp_path}/k") == "k"


@pytest.mark.parametrize(
    "location",
    [
        "simplecache::file://{root}/k",
        "file://{root}/k::s3://bucket/k",
        "blockcache::file://{root}/k",
        "dir::file://{root}/k",
        "s3://{root}/k",
        "local://{root}/k",
        "file://{root}/../k",
        "file://{root}/a/../../k",
        "file://{root}_sibling/k",
    ],
)
def test_chained_or_foreign_locations_are_refused(tmp_path: Path, location: str) -> None:
    store = FsspecStore(f"file://{tmp_path}")
    assert store.key_for(location.format(root=tmp_path)) is None


def test_keys_cannot_form_a_chain(tmp_path: Path) -> None:
    store = FsspecStore(f"file://{tmp_path}")
    with pytest.raises(OffloadError):
        store.open_read("k::memory://x")


def test_unknown_schemes_fall_back_to_this_store() -> None:
    import offload_backends.plugin

    plugins = Plugins.from_modules(offload_backends.plugin)
    assert plugins.entry_for_url("gcs://bucket/p").load() is FsspecStore
    assert plugins.entry_for_url("simplecache::gcs://bucket/p").load() is FsspecStore


def test_an_unknown_protocol_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="nosuchproto"):
        FsspecStore("nosuchproto://x/y")


def test_a_missing_filesystem_package_names_it() -> None:
    if "gs" in fsspec.available_protocols() and _importable("gcsfs"):
        pytest.skip("gcsfs is installed")
    with pytest.raises(MissingDependencyError) as raised:
        FsspecStore("gs://bucket/prefix")
    assert raised.value.module == "gcsfs"


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def test_writing_below_a_missing_directory_says_how_to_fix_it(tmp_path: Path) -> None:
    store = FsspecStore(f"file://{tmp_path}/root")
    with pytest.raises(StorageError, match="auto_mkdir") as raised, store.open_write("a/k") as sink:
        sink.write(b"x")
    assert not isinstance(raised.value, PayloadNotFoundError)


def test_a_failed_s3_upload_is_aborted_not_committed(s3_endpoint: str) -> None:
    part = 5 * 1024 * 1024
    store = FsspecStore(
        f"s3://conformance/{uuid.uuid4().hex}",
        default_block_size=part,
        **_s3_options(s3_endpoint),
    )
    bucket = store.root.partition("/")[0]
    with pytest.raises(RuntimeError), store.open_write("big") as sink:  # noqa: PT012
        sink.write(b"x" * (2 * part + 1))  # two parts uploaded: a multipart upload is under way
        assert len(store.fs.call_s3("list_multipart_uploads", Bucket=bucket)["Uploads"]) == 1
        raise RuntimeError("publisher crashed")
    assert list(store.list()) == []
    assert store.fs.call_s3("list_multipart_uploads", Bucket=bucket).get("Uploads", []) == []


def test_a_missing_bucket_is_not_found(s3_endpoint: str) -> None:
    store = FsspecStore("s3://no-such-bucket/p", **_s3_options(s3_endpoint))
    with pytest.raises(PayloadNotFoundError) as raised:
        store.open_read("k")
    assert raised.value.__cause__ is not None


# -- error translation --------------------------------------------------------------------------


class ClientError(Exception):
    """Shaped like botocore's: ``response`` holds the parsed error."""

    def __init__(self, code: str, status: int) -> None:
        super().__init__(code)
        self.response = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}


class EndpointConnectionError(Exception):
    """Named like botocore's connection failure."""


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (ClientError("NoSuchKey", 404), PayloadNotFoundError),
        (ClientError("AccessDenied", 403), AccessDeniedError),
        (ClientError("SlowDown", 503), TransientStorageError),
        (ClientError("InternalError", 500), TransientStorageError),
        (ClientError("Whatever", 429), TransientStorageError),
        (ClientError("InvalidArgument", 400), StorageError),
        (EndpointConnectionError("no route"), TransientStorageError),
        (OSError(errno.EBUSY, "SlowDown, as s3fs translates it"), TransientStorageError),
        (FileNotFoundError(errno.ENOENT, "gone"), PayloadNotFoundError),
        (PermissionError(errno.EACCES, "no"), AccessDeniedError),
    ],
)
def test_backend_errors_map_to_storage_errors(
    raised: Exception, expected: type[StorageError]
) -> None:
    mapped = translate_fsspec_error(raised, "s3://b/k")
    assert type(mapped) is expected
    assert isinstance(mapped, StorageError)
    assert mapped.location == "s3://b/k" or isinstance(mapped, AccessDeniedError)


def test_errors_while_reading_keep_their_cause(tmp_path: Path) -> None:
    store = FsspecStore(f"file://{tmp_path}")
    with pytest.raises(PayloadNotFoundError) as raised:
        store.open_read("missing")
    assert isinstance(raised.value.__cause__, FileNotFoundError)


def test_objects_written_elsewhere_are_seen_despite_fsspec_listing_caches(
    s3_endpoint: str,
) -> None:
    url = f"s3://conformance/{uuid.uuid4().hex}"
    reader = FsspecStore(url, skip_instance_cache=True, **_s3_options(s3_endpoint))
    writer = FsspecStore(url, skip_instance_cache=True, **_s3_options(s3_endpoint))
    with writer.open_write("dir/old") as sink:
        sink.write(b"old")
    assert [info.key for info in reader.list("dir/")] == ["dir/old"]  # fills reader's cache
    with writer.open_write("dir/new") as sink:
        sink.write(b"new")
    assert reader.info("dir/new").size == 3
    assert reader.open_read("dir/new").read() == b"new"
    assert [info.key for info in reader.list("dir/")] == ["dir/new", "dir/old"]
    writer.delete("dir/old")
    assert [info.key for info in reader.list("dir/")] == ["dir/new"]
