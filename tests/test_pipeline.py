"""The streaming pipeline: payload → checksum → codec → file, and back with every check."""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

import offload_core.builtin
from offload_core import Plugins, pipeline
from offload_core.codecs import Codec, IdentityCodec, ZstdCodec
from offload_core.errors import (
    DecompressionLimitError,
    DigestMismatchError,
    IntegrityError,
    SizeMismatchError,
)
from offload_core.pipeline import (
    CHUNK_SIZE,
    Chunk,
    HashLike,
    VerifyingReader,
    WriteResult,
    is_frozen,
    iter_chunks,
    open_verified,
    read_all,
    start_write,
)
from offload_core.store import StoreStream, translate_os_error

MIB = 1024 * 1024
CODECS: dict[str, Callable[[], Codec]] = {"none": IdentityCodec, "zstd": ZstdCodec}
CHECKSUMS = ("sha256", "crc32c", "xxh3-128", "blake3")


def new_hasher(name: str) -> HashLike:
    factory = Plugins.from_modules(offload_core.builtin).get("checksum", name)
    hasher: HashLike = factory()
    return hasher


def json_lines(count: int, salt: int = 0) -> bytes:
    rows = (
        {"id": i, "user": f"u{(i * 7919 + salt) % 1000}", "ok": i % 3 == 0} for i in range(count)
    )
    return b"\n".join(json.dumps(row).encode() for row in rows)


def store(
    path: Path,
    payload: Any,
    *,
    codec: str = "zstd",
    checksum: str = "sha256",
    skip_incompressible: bool = True,
    chunk_size: int = CHUNK_SIZE,
) -> WriteResult:
    with path.open("wb") as sink:
        return start_write(
            iter_chunks(payload, chunk_size),
            sink,
            codec=CODECS[codec](),
            checksum=checksum,
            hasher=new_hasher(checksum),
            skip_incompressible=skip_incompressible,
        ).result()


def open_stored(
    path: Path, result: WriteResult, *, max_size: int = 2**40, **overrides: Any
) -> VerifyingReader:
    options: dict[str, Any] = {
        "codec": CODECS[result.codec](),
        "size": result.size,
        "hasher": new_hasher(result.checksum),
        "expected_digest": result.digest,
        "checksum": result.checksum,
        "max_size": max_size,
        "location": f"file://{path}",
    }
    raw = overrides.pop("raw", None) or path.open("rb")
    options.update(overrides)
    return open_verified(raw, **options)


# -- iter_chunks -----------------------------------------------------------------------------


def test_bytes_like_payloads_are_sliced() -> None:
    data = bytes(range(256)) * 10
    for payload in (data, bytearray(data), memoryview(data)):
        chunks = list(iter_chunks(payload, 1000))
        assert [len(c) for c in chunks] == [1000, 1000, 560]
        assert b"".join(chunks) == data
    assert list(iter_chunks(data)) == [data]
    assert list(iter_chunks(b"")) == []


def test_immutable_payloads_are_sliced_without_copies() -> None:
    data = bytes(range(256)) * 10
    for payload in (data, memoryview(data)):
        chunks = list(iter_chunks(payload, 1000))
        assert all(isinstance(c, memoryview) and c.obj is data for c in chunks)
        assert all(is_frozen(c) for c in chunks)


def test_mutable_payloads_are_copied_as_they_are_sliced() -> None:
    buffer = bytearray(bytes(range(256)) * 10)
    for payload in (buffer, memoryview(buffer)):
        chunks = list(iter_chunks(payload, 1000))
        buffer[0] ^= 0xFF  # the caller reuses its buffer: what was sliced must not change
        assert all(type(c) is bytes for c in chunks)
        assert chunks[0][0] == (bytes(range(256)) * 10)[0]
        buffer[0] ^= 0xFF


def test_str_payload_is_utf8_encoded_piece_by_piece() -> None:
    text = "añ€😀" * 1000
    chunks = list(iter_chunks(text, 7))
    assert b"".join(chunks) == text.encode("utf-8")
    assert max(map(len, chunks)) <= 4 * 7


def test_file_payload_is_read_in_chunk_size_pieces(tmp_path: Path) -> None:
    path = tmp_path / "payload"
    path.write_bytes(os.urandom(2500))
    with path.open("rb") as file:
        chunks = list(iter_chunks(file, 1000))
    assert [len(c) for c in chunks] == [1000, 1000, 500]
    assert b"".join(chunks) == path.read_bytes()


def test_iterable_items_pass_through_frozen() -> None:
    buffer = bytearray(b"abc")
    items: list[Chunk] = [b"x" * 10, b"", buffer, memoryview(b"yz"), memoryview(buffer)]
    chunks = list(iter_chunks(iter(items)))
    buffer[:] = b"ABC"  # reused by the caller: the chunks taken from it were copies
    assert chunks == [b"x" * 10, b"abc", b"yz", b"abc"]
    assert all(is_frozen(c) for c in chunks)
    assert [type(c) for c in chunks] == [bytes, bytes, memoryview, bytes]


@pytest.mark.parametrize(
    "payload", [12, [b"ok", "text"], iter([1, 2]), io.StringIO("text")], ids=repr
)
def test_non_bytes_payloads_are_refused(payload: Any) -> None:
    with pytest.raises(TypeError):
        list(iter_chunks(payload))


def test_chunk_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        list(iter_chunks(b"x", 0))


# -- round trips -----------------------------------------------------------------------------


def payload_variants(tmp_path: Path, data: bytes) -> dict[str, Any]:
    source = tmp_path / "source"
    source.write_bytes(data)
    return {
        "bytes": data,
        "str": data.decode("utf-8"),
        "file": source.open("rb"),
        "iterator": (data[i : i + 777] for i in range(0, len(data), 777)),
    }


@pytest.mark.parametrize("checksum", CHECKSUMS)
@pytest.mark.parametrize("codec", ["none", "zstd"])
@pytest.mark.parametrize("kind", ["bytes", "str", "file", "iterator"])
def test_round_trip(tmp_path: Path, kind: str, codec: str, checksum: str) -> None:
    data = json_lines(3000)
    payload = payload_variants(tmp_path, data)[kind]
    stored = tmp_path / "stored"
    result = store(stored, payload, codec=codec, checksum=checksum, chunk_size=5000)
    if kind == "file":
        payload.close()

    reference = new_hasher(checksum)
    reference.update(data)
    assert result == WriteResult(
        size=len(data),
        stored_size=stored.stat().st_size,
        codec=codec,
        checksum=checksum,
        digest=reference.hexdigest(),
    )
    with open_stored(stored, result) as reader:
        assert read_all(reader) == data
        assert reader.verified
        assert reader.digest == result.digest


def test_empty_payload_round_trips(tmp_path: Path) -> None:
    for codec in ("none", "zstd"):
        result = store(tmp_path / codec, b"", codec=codec)
        assert result.size == 0
        with open_stored(tmp_path / codec, result) as reader:
            assert reader.read() == b""
            assert reader.verified


def test_incompressible_payload_is_stored_raw(tmp_path: Path) -> None:
    data = os.urandom(3 * MIB)
    stored = tmp_path / "stored"
    result = store(stored, data, codec="zstd", chunk_size=MIB)
    assert result.codec == "none"
    assert result.stored_size == result.size == len(data)
    assert stored.read_bytes() == data
    with open_stored(stored, result) as reader:
        assert read_all(reader) == data


def test_incompressible_sample_is_gathered_across_small_chunks(tmp_path: Path) -> None:
    data = json_lines(20_000)
    result = store(tmp_path / "stored", data, codec="zstd", chunk_size=100)
    assert result.codec == "zstd"


def test_skipping_incompressible_data_can_be_turned_off(tmp_path: Path) -> None:
    data = os.urandom(MIB)
    result = store(tmp_path / "stored", data, codec="zstd", skip_incompressible=False)
    assert result.codec == "zstd"
    assert result.stored_size > result.size
    with open_stored(tmp_path / "stored", result) as reader:
        assert read_all(reader) == data


def test_json_like_payload_compresses(tmp_path: Path) -> None:
    data = json_lines(50_000)
    result = store(tmp_path / "stored", data, codec="zstd")
    assert result.codec == "zstd"
    assert result.stored_size < result.size / 4


def test_reused_chunk_buffers_are_copied(tmp_path: Path) -> None:
    data = json_lines(5000)

    def reusing_one_buffer() -> Iterator[memoryview]:
        buffer = bytearray(100)
        for start in range(0, len(data), 100):
            piece = data[start : start + 100]
            buffer[: len(piece)] = piece
            yield memoryview(buffer)[: len(piece)]

    with (tmp_path / "stored").open("wb") as sink:
        result = start_write(
            reusing_one_buffer(),
            sink,
            codec=ZstdCodec(),
            checksum="sha256",
            hasher=hashlib.sha256(),
        ).result()
    assert result.digest == hashlib.sha256(data).hexdigest()
    with open_stored(tmp_path / "stored", result) as reader:
        assert read_all(reader) == data


# -- reading: the stream interface -----------------------------------------------------------


@pytest.fixture
def stored_json(tmp_path: Path) -> tuple[Path, WriteResult, bytes]:
    data = json_lines(40_000)
    path = tmp_path / "stored"
    return path, store(path, data, codec="zstd"), data


def test_read_in_pieces_verifies_at_the_end(stored_json: tuple[Path, WriteResult, bytes]) -> None:
    path, result, data = stored_json
    with open_stored(path, result) as reader:
        first = reader.read(1000)
        assert not reader.verified
        assert reader.bytes_read == 1000
        rest = reader.read()
        assert first + rest == data
        assert reader.verified
        assert reader.read(10) == b""


def test_reading_exactly_the_declared_size_settles_the_end(
    stored_json: tuple[Path, WriteResult, bytes],
) -> None:
    path, result, data = stored_json
    with open_stored(path, result) as reader:
        out = bytearray()
        while len(out) < len(data):
            out += reader.read(len(data) - len(out))
        assert reader.verified


def test_readinto_and_iteration(stored_json: tuple[Path, WriteResult, bytes]) -> None:
    path, result, data = stored_json
    with open_stored(path, result) as reader:
        buffer = bytearray(4096)
        count = reader.readinto(buffer)
        chunks = list(reader)
        assert bytes(buffer[:count]) + b"".join(chunks) == data
        assert all(len(chunk) <= CHUNK_SIZE for chunk in chunks)
        assert reader.verified


def test_closing_the_reader_closes_the_stored_stream(
    stored_json: tuple[Path, WriteResult, bytes],
) -> None:
    path, result, _ = stored_json
    raw = path.open("rb")
    reader = open_verified(
        raw,
        codec=ZstdCodec(),
        size=result.size,
        hasher=None,
        expected_digest=None,
        checksum=None,
        max_size=result.size,
    )
    with reader:
        reader.read(10)
    assert raw.closed
    assert reader.closed
    with pytest.raises(ValueError, match="closed"):
        reader.read(1)


def test_digest_comparison_ignores_case(stored_json: tuple[Path, WriteResult, bytes]) -> None:
    path, result, data = stored_json
    with open_stored(path, result, expected_digest=result.digest.upper()) as reader:
        assert read_all(reader) == data


def test_expected_digest_needs_a_hasher(stored_json: tuple[Path, WriteResult, bytes]) -> None:
    path, result, _ = stored_json
    with pytest.raises(ValueError, match="hasher"):
        open_stored(path, result, hasher=None)


def test_no_hashing_thread_outlives_its_stream(tmp_path: Path) -> None:
    data = os.urandom(4 * MIB)
    result = store(tmp_path / "stored", data, chunk_size=MIB)
    with open_stored(tmp_path / "stored", result) as reader:
        reader.read(2 * MIB)  # leaves hashing work queued
    assert not [t for t in threading.enumerate() if t.name.startswith("offload-hash")]


class RecordingHasher:
    """sha256, noting the thread and size of every update."""

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self.updates: list[tuple[str, int]] = []

    def update(self, data: Any) -> None:
        self.updates.append((threading.current_thread().name, memoryview(data).nbytes))
        self._sha.update(data)

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


def test_stream_blocks_are_hashed_in_batches_on_the_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(20 * MIB)
    result = store(tmp_path / "stored", data)
    hasher = RecordingHasher()
    batches: list[int] = []
    feed = pipeline._feed

    def counted(target: Any, pieces: list[Any]) -> None:
        batches.append(len(pieces))
        feed(target, pieces)

    monkeypatch.setattr(pipeline, "_feed", counted)
    with open_stored(tmp_path / "stored", result, hasher=hasher) as reader:
        while reader.read(MIB):  # bytes: kept, and hashed on the worker a batch at a time
            pass
        assert reader.verified
    assert batches == [4, 4, 4, 4, 4]  # five hand-offs for twenty blocks
    workers = [size for thread, size in hasher.updates if thread.startswith("offload-hash")]
    assert sum(workers) >= 16 * MIB
    assert len(hasher.updates) == 20  # every block, in order, none twice
    assert hasher.hexdigest() == hashlib.sha256(data).hexdigest()


def test_readinto_a_callers_buffer_is_hashed_at_once(tmp_path: Path) -> None:
    """The caller may reuse its buffer as soon as readinto returns."""
    data = os.urandom(4 * MIB)
    result = store(tmp_path / "stored", data)
    hasher = RecordingHasher()
    buffer = bytearray(MIB)
    with open_stored(tmp_path / "stored", result, hasher=hasher) as reader:
        while reader.readinto(buffer):
            buffer[:] = bytes(MIB)  # reused
        assert reader.verified
    assert {thread for thread, _ in hasher.updates} == {threading.current_thread().name}


def test_read_all_hashes_what_it_filled_on_the_worker(tmp_path: Path) -> None:
    data = os.urandom(20 * MIB)
    result = store(tmp_path / "stored", data)
    hasher = RecordingHasher()
    with open_stored(tmp_path / "stored", result, hasher=hasher) as reader:
        assert read_all(reader) == data
        assert reader.verified
    workers = [size for thread, size in hasher.updates if thread.startswith("offload-hash")]
    assert sum(workers) >= 16 * MIB
    assert sum(size for _, size in hasher.updates) == len(data)


def test_read_all_of_a_corrupted_payload_fails(tmp_path: Path) -> None:
    data = bytearray(os.urandom(20 * MIB))
    result = store(tmp_path / "stored", bytes(data))
    data[15 * MIB] ^= 1
    (tmp_path / "stored").write_bytes(data)
    with open_stored(tmp_path / "stored", result) as reader, pytest.raises(DigestMismatchError):
        read_all(reader)


def test_a_write_can_commit_before_its_digest_is_done(tmp_path: Path) -> None:
    data = os.urandom(24 * MIB)
    with (tmp_path / "stored").open("wb") as sink:
        pending = start_write(
            iter_chunks(data),
            sink,
            codec=IdentityCodec(),
            checksum="sha256",
            hasher=RecordingHasher(),
        )
    result = pending.result()  # after the sink is closed
    assert (result.size, result.stored_size) == (len(data), len(data))
    assert result.digest == hashlib.sha256(data).hexdigest()
    assert not [t for t in threading.enumerate() if t.name.startswith("offload-hash")]


def test_a_pending_write_that_is_closed_stops_its_thread(tmp_path: Path) -> None:
    with (tmp_path / "stored").open("wb") as sink:
        pending = start_write(
            iter_chunks(os.urandom(24 * MIB)),
            sink,
            codec=IdentityCodec(),
            checksum="sha256",
            hasher=hashlib.sha256(),
        )
    pending.close()  # an idle worker is let go without a join: its thread ends by itself
    deadline = time.monotonic() + 5
    while [t for t in threading.enumerate() if t.name.startswith("offload-hash")]:
        assert time.monotonic() < deadline, "the hashing thread did not end"
        time.sleep(0.01)


# -- reading: integrity ----------------------------------------------------------------------


def test_corrupted_byte_is_a_digest_mismatch(tmp_path: Path) -> None:
    data = os.urandom(2 * MIB)
    path = tmp_path / "stored"
    result = store(path, data, codec="none", chunk_size=MIB)
    corrupted = bytearray(path.read_bytes())
    corrupted[12345] ^= 1
    path.write_bytes(corrupted)
    reader = open_stored(path, result)
    with pytest.raises(DigestMismatchError) as caught:
        read_all(reader)
    error = caught.value
    assert (error.algorithm, error.expected, error.check) == ("sha256", result.digest, "digest")
    assert error.actual == hashlib.sha256(corrupted).hexdigest()
    assert error.location == f"file://{path}"
    assert not reader.verified
    with pytest.raises(DigestMismatchError):  # sticky: no later read pretends all is well
        reader.read(1)
    reader.close()


def test_codec_errors_are_sticky_too(tmp_path: Path) -> None:
    path = tmp_path / "stored"
    path.write_bytes(b"not zstd at all" * 100)
    result = WriteResult(size=1500, stored_size=1500, codec="zstd", checksum="sha256", digest="0")
    reader = open_stored(path, result)
    with pytest.raises(IntegrityError) as first:
        reader.read(100)
    assert first.value.check == "codec"
    with pytest.raises(IntegrityError) as again:
        reader.read(100)
    assert again.value is first.value
    assert not reader.verified
    reader.close()


@pytest.mark.parametrize("cut", [0, 1, 100_000])
def test_truncated_raw_payload_is_a_size_mismatch(tmp_path: Path, cut: int) -> None:
    data = json_lines(20_000)
    path = tmp_path / "stored"
    result = store(path, data, codec="none")
    path.write_bytes(data[: len(data) - cut - 1])
    with open_stored(path, result) as reader, pytest.raises(SizeMismatchError) as caught:
        read_all(reader)
    assert caught.value.expected == len(data)
    assert caught.value.actual == len(data) - cut - 1


def test_truncated_zstd_payload_is_an_integrity_error(
    stored_json: tuple[Path, WriteResult, bytes],
) -> None:
    path, result, _ = stored_json
    path.write_bytes(path.read_bytes()[:-100])
    with open_stored(path, result) as reader, pytest.raises(IntegrityError):
        read_all(reader)


def test_extra_bytes_are_a_size_mismatch(tmp_path: Path) -> None:
    data = json_lines(20_000)
    path = tmp_path / "stored"
    result = store(path, data, codec="none")
    path.write_bytes(data + b"!")
    with open_stored(path, result) as reader, pytest.raises(SizeMismatchError) as caught:
        list(reader)
    assert (caught.value.expected, caught.value.actual) == (len(data), len(data) + 1)


def test_payload_larger_than_declared_is_stopped_at_the_first_extra_byte(
    stored_json: tuple[Path, WriteResult, bytes],
) -> None:
    path, result, _ = stored_json
    with open_stored(path, result, size=1000) as reader, pytest.raises(SizeMismatchError) as caught:
        reader.read()
    assert (caught.value.expected, caught.value.actual) == (1000, 1001)


def test_declared_size_above_max_size_is_refused_before_reading(
    stored_json: tuple[Path, WriteResult, bytes],
) -> None:
    path, result, _ = stored_json
    raw = path.open("rb")
    with pytest.raises(DecompressionLimitError) as caught:
        open_verified(
            raw,
            codec=ZstdCodec(),
            size=result.size,
            hasher=None,
            expected_digest=None,
            checksum=None,
            max_size=result.size - 1,
        )
    assert caught.value.limit == result.size - 1
    assert raw.closed


def test_without_declared_size_max_size_caps_the_output(
    stored_json: tuple[Path, WriteResult, bytes],
) -> None:
    path, result, data = stored_json
    with open_stored(path, result, size=None) as reader:
        assert read_all(reader) == data
    reader = open_stored(path, result, size=None, max_size=len(data) - 1)
    with reader, pytest.raises(DecompressionLimitError):
        read_all(reader)


@pytest.fixture(scope="module")
def zero_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1 GiB of zeros compressed by streaming zstd into a small file."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.zst"
    compressor = zstandard.ZstdCompressor(level=1).compressobj()
    zeros = bytes(8 * MIB)
    with path.open("wb") as out:
        for _ in range(128):
            out.write(compressor.compress(zeros))
        out.write(compressor.flush())
    assert path.stat().st_size < 256 * 1024
    return path


@pytest.mark.parametrize("declared", [None, 1000])
def test_zstd_bomb_stays_small_in_memory(zero_bomb: Path, declared: int | None) -> None:
    reader = open_verified(
        zero_bomb.open("rb"),
        codec=ZstdCodec(),
        size=declared,
        hasher=hashlib.sha256(),
        expected_digest="00" * 32,
        checksum="sha256",
        max_size=32 * MIB,
        location="s3://bucket/bomb",
    )
    tracemalloc.start()
    try:
        with reader, pytest.raises(IntegrityError) as caught:
            for _ in reader:
                pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    expected = DecompressionLimitError if declared is None else SizeMismatchError
    assert type(caught.value) is expected
    assert caught.value.location == "s3://bucket/bomb"
    assert peak < 3 * CHUNK_SIZE + 2 * MIB


# -- memory ----------------------------------------------------------------------------------


def generated_payload(total: int) -> tuple[Iterator[bytes], Any]:
    """``total`` bytes of JSON-like text made on the fly, and a hasher fed the same bytes."""
    digest = hashlib.sha256()
    block = json_lines(60_000)  # about 2.5 MiB, so pieces are hashed on the worker thread

    def chunks() -> Iterator[bytes]:
        produced, n = 0, 0
        while produced < total:
            chunk = (b"%08d" % n + block)[: total - produced]
            digest.update(chunk)
            produced += len(chunk)
            n += 1
            yield chunk

    return chunks(), digest


@pytest.mark.parametrize("codec", ["none", "zstd"])
def test_streaming_200_mib_stays_in_bounded_memory(tmp_path: Path, codec: str) -> None:
    total = 200 * MIB
    chunks, expected = generated_payload(total)
    path = tmp_path / "stored"
    tracemalloc.start()
    try:
        with path.open("wb") as sink:
            result = start_write(
                iter_chunks(chunks),
                sink,
                codec=CODECS[codec](),
                checksum="sha256",
                hasher=hashlib.sha256(),
            ).result()
        _, write_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        read_back = hashlib.sha256()
        with open_stored(path, result) as reader:
            for chunk in reader:
                read_back.update(chunk)
            assert reader.verified
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.size == total
    assert result.digest == expected.hexdigest() == read_back.hexdigest()
    assert write_peak < 40 * MIB
    assert read_peak < 40 * MIB


def test_read_all_holds_one_payload_sized_buffer(tmp_path: Path) -> None:
    data = os.urandom(48 * MIB)
    result = store(tmp_path / "stored", data, codec="none")
    reader = open_stored(tmp_path / "stored", result)
    tracemalloc.start()
    try:
        out = read_all(reader)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        reader.close()
    assert out == data
    assert peak < len(data) + 4 * MIB


@pytest.mark.parametrize(
    ("codec", "allowance"),
    [("none", 3 * MIB // 2), ("zstd", 12 * MIB)],
    ids=["raw: the object's own size", "compressed: grows with the data"],
)
def test_read_all_under_a_lying_size_holds_about_the_real_size(
    tmp_path: Path, codec: str, allowance: int
) -> None:
    """A size claimed far beyond the object costs what arrives: a raw payload no more than the
    object's own size (the store's word) and one 1 MiB read; a compressed one at most a first
    8 MiB step."""
    data = os.urandom(2 * MIB) if codec == "none" else json_lines(40_000)
    path = tmp_path / "stored"
    result = store(path, data, codec=codec, skip_incompressible=False)
    # As a store hands it over: a stream that knows the object's size (here a file's length).
    raw = StoreStream(path.open("rb"), location=path.as_uri(), translate=translate_os_error)
    reader = open_stored(path, result, size=15 * 2**30, raw=raw)
    tracemalloc.start()
    try:
        with pytest.raises(SizeMismatchError):
            read_all(reader)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        reader.close()
    assert peak < len(data) + allowance, f"{peak / MIB:.1f} MiB for {len(data) / MIB:.1f} MiB"


def test_read_all_of_any_binary_stream() -> None:
    assert read_all(io.BytesIO(b"abc" * 1000)) == b"abc" * 1000


# -- properties ------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    data=st.binary(max_size=50_000),
    chunk_size=st.integers(1, 20_000),
    read_size=st.integers(1, 30_000),
    codec=st.sampled_from(["none", "zstd"]),
)
def test_any_bytes_round_trip_through_any_chunking(
    data: bytes, chunk_size: int, read_size: int, codec: str
) -> None:
    sink = io.BytesIO()
    result = start_write(
        iter_chunks(data, chunk_size),
        sink,
        codec=CODECS[codec](),
        checksum="sha256",
        hasher=hashlib.sha256(),
        skip_incompressible=False,
    ).result()
    assert result.codec == codec
    assert result.stored_size == len(sink.getvalue())
    reader = open_verified(
        io.BytesIO(sink.getvalue()),
        codec=CODECS[codec](),
        size=len(data),
        hasher=hashlib.sha256(),
        expected_digest=hashlib.sha256(data).hexdigest(),
        checksum="sha256",
        max_size=len(data),
    )
    out = bytearray()
    while chunk := reader.read(read_size):
        out += chunk
    assert out == data
    assert reader.verified
