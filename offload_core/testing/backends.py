"""The conformance suite every storage backend should pass (fsspec's ``tests/abstract`` idea).

Subclass :class:`BackendConformance` in a test module, give it a ``store`` fixture that returns a
fresh, empty store, and say what the store can do::

    import pytest
    from offload_core.testing import BackendConformance

    class TestMyStore(BackendConformance):
        supports_metadata = True

        @pytest.fixture
        def store(self, tmp_path):
            return MyStore(f"mys://{tmp_path.name}")

The suite uses only pytest and the :class:`~offload_core.store.Store` API. Locations are taken to
be ``store.url + "/" + key``, as pointers carry them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import ClassVar

import pytest

from offload_core.errors import PayloadNotFoundError, UnsafeKeyError
from offload_core.store import ObjectInfo, Store

__all__ = ["ODD_KEYS", "UNSAFE_KEYS", "BackendConformance"]

MiB = 1024 * 1024

#: Keys every store must refuse with ``UnsafeKeyError``, before any I/O.
UNSAFE_KEYS: tuple[tuple[str, str], ...] = (
    ("empty", ""),
    ("dot", "."),
    ("dotdot", ".."),
    ("dotdot-first", "../x"),
    ("dotdot-middle", "a/../b"),
    ("dotdot-last", "a/.."),
    ("dotdot-deep", "a/../../../../etc/passwd"),
    ("dot-first", "./a"),
    ("dot-middle", "a/./b"),
    ("empty-segment", "a//b"),
    ("trailing-slash", "a/"),
    ("absolute", "/etc/passwd"),
    ("slash", "/"),
    ("backslash", "a\\b"),
    ("backslash-dotdot", "..\\x"),
    ("nul", "a\x00b"),
    ("newline", "a\nb"),
    ("escape", "a\x1bb"),
    ("del", "a\x7fb"),
    ("c1-control", "a\x85b"),
    ("drive", "C:/Windows"),
    ("drive-relative", "c:x"),
    ("drive-later", "a/D:b"),
    ("url-chain", "a::b"),
    ("lone-surrogate", "a\ud800b"),
    ("too-long", "k" * 1025),
    ("too-long-utf8", "é" * 513),
)

#: Keys that must work: spaces, non-ASCII text, characters URLs would escape.
ODD_KEYS: tuple[str, ...] = (
    "with space.bin",
    "dir with space/ünïcødé file.txt",
    "日本語/データ.json",
    "emoji 🎉/x y",
    "percent%2e%2e/%2F literal",
    "question?mark#hash&amp",
    "dots.../..x/x..",
    "tab-free 'quotes' \"double\"",
)


class _Boom(Exception):
    """Raised inside write blocks; must come out unchanged."""


def _write(store: Store, key: str, data: bytes, *, exclusive: bool = False) -> None:
    with store.open_write(key, exclusive=exclusive) as sink:
        sink.write(data)


def _read(store: Store, key: str) -> bytes:
    with store.open_read(key) as source:
        return source.read()


def _write_then_fail(store: Store, key: str, data: bytes) -> None:
    with store.open_write(key) as sink:
        sink.write(data)
        raise _Boom


_KEYED_OPERATIONS: dict[str, Callable[[Store, str], object]] = {
    "open_write": lambda store, key: _write(store, key, b"x"),
    "exclusive_write": lambda store, key: _write(store, key, b"x", exclusive=True),
    "open_read": lambda store, key: store.open_read(key).close(),
    "info": lambda store, key: store.info(key),
    "delete": lambda store, key: store.delete(key),
    "location": lambda store, key: store.location(key),
}


def _keys(infos: Iterable[ObjectInfo]) -> list[str]:
    items = list(infos)
    assert all(isinstance(info, ObjectInfo) for info in items)
    return sorted(info.key for info in items)


class BackendConformance:
    """Behaviour every :class:`~offload_core.store.Store` must show; subclass with ``Test``."""

    #: ``info().metadata`` returns what ``open_write(metadata=...)`` was given.
    supports_metadata: ClassVar[bool] = False
    #: ``open_write(exclusive=True)`` refuses to replace an object with ``FileExistsError``.
    supports_exclusive: ClassVar[bool] = True
    #: An object appears only when its write block exits cleanly, and a failed overwrite keeps
    #: the previous object (false for filesystems that write in place).
    atomic_writes: ClassVar[bool] = True
    #: Size of the streamed round trip; written and read in ``chunk_size`` pieces.
    large_payload_size: ClassVar[int] = 20 * MiB
    chunk_size: ClassVar[int] = MiB

    @pytest.fixture
    def store(self) -> Store:
        """Override in the subclass: a fresh, empty store."""
        raise NotImplementedError(
            f"{type(self).__name__} must define a `store` fixture returning a fresh, empty Store"
        )

    # -- the contract itself -----------------------------------------------------------------

    def test_store_follows_the_protocol(self, store: Store) -> None:
        assert isinstance(store, Store)
        assert "://" in store.url
        assert not store.url.endswith("/")

    def test_new_store_is_empty(self, store: Store) -> None:
        assert _keys(store.list()) == []

    # -- round trips -------------------------------------------------------------------------

    def test_small_payload_round_trips(self, store: Store) -> None:
        _write(store, "small.bin", b"hello, claim check")
        assert _read(store, "small.bin") == b"hello, claim check"

    def test_empty_payload_round_trips(self, store: Store) -> None:
        _write(store, "empty.bin", b"")
        assert _read(store, "empty.bin") == b""
        assert store.info("empty.bin").size == 0

    def test_nested_key_round_trips(self, store: Store) -> None:
        _write(store, "a/b/c/d.bin", b"deep")
        assert _read(store, "a/b/c/d.bin") == b"deep"

    def test_large_payload_streams_in_chunks(self, store: Store) -> None:
        block = os.urandom(self.chunk_size)
        count = self.large_payload_size // self.chunk_size
        written = hashlib.sha256()
        with store.open_write("large.bin") as sink:
            for index in range(count):
                chunk = index.to_bytes(8, "big") + block[8:]  # every chunk differs
                sink.write(chunk)
                written.update(chunk)
        assert store.info("large.bin").size == count * self.chunk_size
        read = hashlib.sha256()
        total = 0
        with store.open_read("large.bin") as source:
            while chunk := source.read(self.chunk_size):
                assert len(chunk) <= self.chunk_size
                read.update(chunk)
                total += len(chunk)
        assert total == count * self.chunk_size
        assert read.hexdigest() == written.hexdigest()

    def test_read_stream_ends_with_empty_reads(self, store: Store) -> None:
        _write(store, "k", b"abc")
        with store.open_read("k") as source:
            assert source.read(2) == b"ab"
            assert source.read(2) == b"c"
            assert source.read(2) == b""
            assert source.read() == b""

    def test_overwrite_replaces_the_object(self, store: Store) -> None:
        _write(store, "k", b"first version, longer")
        _write(store, "k", b"second")
        assert _read(store, "k") == b"second"
        assert store.info("k").size == len(b"second")

    def test_closing_the_stream_inside_the_block_still_stores(self, store: Store) -> None:
        # Compressing writers (zstandard's stream_writer) close the stream they were given.
        with store.open_write("k") as sink:
            sink.write(b"payload")
            sink.close()
        assert _read(store, "k") == b"payload"

    # -- atomicity ---------------------------------------------------------------------------

    def test_object_is_invisible_until_the_write_block_exits(self, store: Store) -> None:
        if not self.atomic_writes:
            pytest.skip("this store writes in place")
        with store.open_write("k") as sink:
            sink.write(b"partial" * 1000)
            sink.flush()
            with pytest.raises(PayloadNotFoundError):
                store.info("k")
            with pytest.raises(PayloadNotFoundError):
                store.open_read("k")
            assert _keys(store.list()) == []
        assert _read(store, "k") == b"partial" * 1000

    def test_exception_in_the_write_block_leaves_nothing_behind(self, store: Store) -> None:
        with pytest.raises(_Boom):
            _write_then_fail(store, "dir/k", b"x" * 100_000)
        with pytest.raises(PayloadNotFoundError):
            store.info("dir/k")
        with pytest.raises(PayloadNotFoundError):
            store.open_read("dir/k")
        assert _keys(store.list()) == []

    def test_failed_overwrite_keeps_the_previous_object(self, store: Store) -> None:
        if not self.atomic_writes:
            pytest.skip("this store writes in place")
        _write(store, "k", b"good")
        with pytest.raises(_Boom):
            _write_then_fail(store, "k", b"bad")
        assert _read(store, "k") == b"good"
        assert _keys(store.list()) == ["k"]

    def test_exclusive_write_refuses_to_overwrite(self, store: Store) -> None:
        if not self.supports_exclusive:
            pytest.skip("this store has no exclusive create")
        _write(store, "k", b"first")
        with pytest.raises(FileExistsError):
            _write(store, "k", b"second", exclusive=True)
        assert _read(store, "k") == b"first"
        assert _keys(store.list()) == ["k"]

    def test_exclusive_write_creates_a_new_object(self, store: Store) -> None:
        if not self.supports_exclusive:
            pytest.skip("this store has no exclusive create")
        _write(store, "new/k", b"only", exclusive=True)
        assert _read(store, "new/k") == b"only"

    # -- info, delete, list ------------------------------------------------------------------

    def test_info_reports_key_and_size(self, store: Store) -> None:
        _write(store, "dir/k.bin", b"12345")
        info = store.info("dir/k.bin")
        assert (info.key, info.size) == ("dir/k.bin", 5)
        if info.modified is not None:
            assert isinstance(info.modified, datetime)
            assert info.modified.tzinfo is not None

    def test_info_of_a_missing_key_raises_not_found(self, store: Store) -> None:
        with pytest.raises(PayloadNotFoundError):
            store.info("missing")

    def test_open_read_of_a_missing_key_raises_not_found(self, store: Store) -> None:
        with pytest.raises(PayloadNotFoundError):
            store.open_read("missing/key")

    def test_a_prefix_of_other_keys_is_not_an_object(self, store: Store) -> None:
        _write(store, "dir/k", b"x")
        with pytest.raises(PayloadNotFoundError):
            store.info("dir")
        with pytest.raises(PayloadNotFoundError):
            store.open_read("dir")

    def test_delete_removes_the_object(self, store: Store) -> None:
        _write(store, "k", b"x")
        store.delete("k")
        with pytest.raises(PayloadNotFoundError):
            store.info("k")
        assert _keys(store.list()) == []

    def test_delete_is_idempotent(self, store: Store) -> None:
        store.delete("never/written")
        _write(store, "k", b"x")
        store.delete("k")
        store.delete("k")

    def test_delete_of_a_prefix_keeps_the_objects_under_it(self, store: Store) -> None:
        _write(store, "dir/k", b"x")
        store.delete("dir")
        assert _read(store, "dir/k") == b"x"

    def test_list_filters_by_prefix(self, store: Store) -> None:
        for key in ("a/1", "a/2", "a/sub/3", "ab", "b/1"):
            _write(store, key, key.encode())
        assert _keys(store.list()) == ["a/1", "a/2", "a/sub/3", "ab", "b/1"]
        assert _keys(store.list("a/")) == ["a/1", "a/2", "a/sub/3"]
        assert _keys(store.list("a")) == ["a/1", "a/2", "a/sub/3", "ab"]
        assert _keys(store.list("a/s")) == ["a/sub/3"]
        assert _keys(store.list("c")) == []
        assert _keys(store.list("a/missing/")) == []

    def test_list_reports_sizes(self, store: Store) -> None:
        _write(store, "one", b"1")
        _write(store, "three", b"333")
        assert {info.key: info.size for info in store.list()} == {"one": 1, "three": 3}

    @pytest.mark.parametrize("prefix", ["../", "..", "/", "a/../../"])
    def test_list_never_leaves_the_store(self, store: Store, prefix: str) -> None:
        _write(store, "a/k", b"x")
        try:
            found = _keys(store.list(prefix))
        except UnsafeKeyError:
            return
        assert found == []

    # -- locations ---------------------------------------------------------------------------

    @pytest.mark.parametrize("key", ["k", "dir/sub/k.bin", *ODD_KEYS])
    def test_location_round_trips_through_key_for(self, store: Store, key: str) -> None:
        location = store.location(key)
        assert location == f"{store.url}/{key}"
        assert store.key_for(location) == key

    @pytest.mark.parametrize(
        "make",
        [
            pytest.param(lambda url: url, id="the-root-itself"),
            pytest.param(lambda url: url + "/", id="the-root-with-slash"),
            pytest.param(lambda url: url + "-sibling/k", id="sibling-root"),
            pytest.param(lambda url: url + "sibling/k", id="sibling-prefix"),
            pytest.param(lambda url: "x" + url + "/k", id="other-scheme"),
            pytest.param(lambda url: "other://" + url.split("://", 1)[1] + "/k", id="swap-scheme"),
            pytest.param(lambda url: url + "/../k", id="dotdot"),
            pytest.param(lambda url: url + "/a/../../k", id="dotdot-deep"),
            pytest.param(lambda url: url + "/a/./k", id="dot"),
            pytest.param(lambda url: url + "//k", id="empty-segment"),
            pytest.param(lambda url: url + "/a\\..\\..\\k", id="backslash"),
            pytest.param(lambda url: url + "/k\x00", id="nul"),
            pytest.param(lambda url: "simplecache::" + url + "/k", id="chain-before"),
            pytest.param(lambda url: url + "/k::s3://bucket/k", id="chain-after"),
            pytest.param(lambda url: "zip://k::" + url + "/a.zip", id="chain-zip"),
        ],
    )
    def test_key_for_refuses_locations_outside_the_root(
        self, store: Store, make: Callable[[str], str]
    ) -> None:
        location = make(store.url)
        with contextlib.suppress(UnsafeKeyError):
            assert store.key_for(location) is None

    def test_key_for_never_decodes_percent_escapes(self, store: Store) -> None:
        # Decoding would turn %2e%2e into "..": a location is not an RFC 3986 URL here.
        found = store.key_for(store.url + "/%2e%2e/k")
        assert found in (None, "%2e%2e/k")

    # -- unsafe and odd keys -----------------------------------------------------------------

    @pytest.mark.parametrize("key", [pytest.param(k, id=name) for name, k in UNSAFE_KEYS])
    @pytest.mark.parametrize("operation", sorted(_KEYED_OPERATIONS))
    def test_unsafe_keys_are_refused(self, store: Store, key: str, operation: str) -> None:
        with pytest.raises(UnsafeKeyError):
            _KEYED_OPERATIONS[operation](store, key)
        assert _keys(store.list()) == []

    @pytest.mark.parametrize("key", ODD_KEYS)
    def test_keys_with_spaces_and_unicode_work(self, store: Store, key: str) -> None:
        _write(store, key, key.encode())
        assert _read(store, key) == key.encode()
        assert store.info(key).size == len(key.encode())
        assert _keys(store.list()) == [key]
        store.delete(key)
        assert _keys(store.list()) == []

    def test_a_key_of_1024_bytes_works(self, store: Store) -> None:
        key = "/".join(["s" * 200] * 5) + "/" + "e" * 19
        assert len(key.encode()) == 1024
        _write(store, key, b"x")
        assert _read(store, key) == b"x"
        assert _keys(store.list()) == [key]

    # -- metadata ----------------------------------------------------------------------------

    def test_metadata_round_trips(self, store: Store) -> None:
        if not self.supports_metadata:
            pytest.skip("this store does not keep metadata")
        metadata = {"content-type": "application/json", "x-trace": "abc 123"}
        with store.open_write("k", metadata=metadata) as sink:
            sink.write(b"{}")
        assert dict(store.info("k").metadata or {}) == metadata

    def test_metadata_is_accepted_even_if_not_kept(self, store: Store) -> None:
        with store.open_write("k", metadata={"content-type": "text/plain"}) as sink:
            sink.write(b"text")
        assert _read(store, "k") == b"text"
