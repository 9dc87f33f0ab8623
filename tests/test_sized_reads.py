"""Reads told the stored size: :func:`offload_core.store.open_read` passes it only to stores
that offer :class:`~offload_core.store.SizedReads`, and the Offloader tells it from the pointer.
Third-party stores with ``open_read(key)`` alone keep working unchanged."""

from __future__ import annotations

import uuid
from typing import Any, BinaryIO

import pytest

from offload_backends.memory import MemoryStore
from offload_core.offloader import Offloader
from offload_core.store import SizedReads, Store, open_read


class PlainStore(MemoryStore):
    """A store as a third party writes it: ``open_read(key)`` only."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.reads: list[str] = []

    def open_read(self, key: str) -> BinaryIO:
        self.reads.append(key)
        return super().open_read(key)


class SizedStore(PlainStore):
    """A store that takes the expected size and records it."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.sizes: list[int] = []

    def open_read_sized(self, key: str, size: int) -> BinaryIO:
        self.sizes.append(size)
        return super().open_read(key)


def fresh(kind: type[PlainStore]) -> Any:
    return kind(f"memory://sized-{uuid.uuid4().hex}")


def test_only_stores_that_offer_sized_reads_are_told_the_size() -> None:
    plain, sized = fresh(PlainStore), fresh(SizedStore)
    for store in (plain, sized):
        with store.open_write("k") as sink:
            sink.write(b"data")
    assert isinstance(plain, Store)
    assert not isinstance(plain, SizedReads)
    assert isinstance(sized, SizedReads)
    with open_read(plain, "k", size=4) as stream:
        assert stream.read() == b"data"
    assert plain.reads == ["k"]
    with open_read(sized, "k", size=4) as stream:
        assert stream.read() == b"data"
    assert sized.sizes == [4]
    with open_read(sized, "k") as stream:  # no size known: the plain method
        assert stream.read() == b"data"
    assert sized.sizes == [4]


@pytest.mark.parametrize(
    ("options", "stored"),
    [({}, 300_000), ({"compression": "zstd"}, None)],
    ids=["raw", "compressed"],
)
def test_the_offloader_tells_the_stored_size_from_the_pointer(
    options: dict[str, Any], stored: int | None
) -> None:
    sized = fresh(SizedStore)
    off = Offloader(sized, mode="always", pointer_format="native", **options)
    payload = b"ab" * 150_000
    message = off.prepare(payload)
    assert message.pointer is not None
    assert off.resolve(message.body) == payload
    expected = message.pointer.stored_size if stored is None else stored
    assert sized.sizes == [expected]


def test_a_store_without_sized_reads_works_through_the_offloader() -> None:
    plain = fresh(PlainStore)
    off = Offloader(plain, mode="always", checksum="sha256")
    message = off.prepare(b"x" * 300_000)
    assert off.resolve(message.body, message.attributes) == b"x" * 300_000
    assert len(plain.reads) == 1
