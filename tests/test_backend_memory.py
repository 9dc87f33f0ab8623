"""The memory store: the conformance suite plus named, shared, process-wide spaces."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from offload_backends.memory import MemoryStore
from offload_core import Plugins
from offload_core.errors import ConfigurationError
from offload_core.testing import BackendConformance


@pytest.fixture(autouse=True)
def _empty_spaces() -> Iterator[None]:
    MemoryStore.clear_all()
    yield
    MemoryStore.clear_all()


class TestMemoryStore(BackendConformance):
    supports_metadata = True

    @pytest.fixture
    def store(self) -> MemoryStore:
        return MemoryStore("memory://conformance")


class TestMemoryStoreUnderAPrefix(BackendConformance):
    supports_metadata = True

    @pytest.fixture
    def store(self) -> MemoryStore:
        return MemoryStore("memory://conformance/some/prefix/")


def write(store: MemoryStore, key: str, data: bytes) -> None:
    with store.open_write(key) as sink:
        sink.write(data)


def test_stores_with_the_same_url_share_objects() -> None:
    write(MemoryStore("memory://shared"), "k", b"x")
    assert MemoryStore("memory://shared").open_read("k").read() == b"x"
    assert [info.key for info in MemoryStore("memory://other").list()] == []


def test_a_prefixed_store_sees_its_part_of_the_space() -> None:
    whole, part = MemoryStore("memory://space"), MemoryStore("memory://space/tenant")
    write(part, "k", b"x")
    assert [info.key for info in whole.list()] == ["tenant/k"]
    assert whole.open_read("tenant/k").read() == b"x"
    assert part.url == "memory://space/tenant"
    assert part.location("k") == "memory://space/tenant/k"
    assert whole.key_for(part.location("k")) == "tenant/k"
    assert part.key_for(whole.location("k")) is None


def test_clear_all_empties_spaces_of_existing_stores() -> None:
    store = MemoryStore("memory://to-clear")
    write(store, "k", b"x")
    MemoryStore.clear_all()
    assert list(store.list()) == []
    write(store, "k", b"y")
    assert MemoryStore("memory://to-clear").open_read("k").read() == b"y"


def test_metadata_is_an_immutable_copy() -> None:
    store = MemoryStore("memory://meta")
    metadata = {"a": "1"}
    with store.open_write("k", metadata=metadata) as sink:
        sink.write(b"x")
    metadata["a"] = "changed"
    kept = store.info("k").metadata
    assert kept == {"a": "1"}
    with pytest.raises(TypeError):
        kept["a"] = "2"  # type: ignore[index]


def test_concurrent_exclusive_writers_store_exactly_one_object() -> None:
    store = MemoryStore("memory://race")
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def writer(n: int) -> None:
        barrier.wait()
        try:
            with store.open_write("k", exclusive=True) as sink:
                sink.write(str(n).encode())
            outcomes.append("stored")
        except FileExistsError:
            outcomes.append("refused")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused"] * 7 + ["stored"]


@pytest.mark.parametrize(
    "url", ["memory://", "file:///x", "memory://a/../b", "memory://a//b", "memory://a::b"]
)
def test_unusable_urls_are_configuration_errors(url: str) -> None:
    with pytest.raises(ConfigurationError):
        MemoryStore(url)


def test_the_memory_scheme_opens_this_store() -> None:
    import offload_backends.plugin

    plugins = Plugins.from_modules(offload_backends.plugin)
    factory = plugins.entry_for_url("memory://x").load()
    assert factory is MemoryStore
