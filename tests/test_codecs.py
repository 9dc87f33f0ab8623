"""Codecs: streaming compression, and decompression that stays bounded on hostile input."""

from __future__ import annotations

import io
import json
import os
import tracemalloc
from pathlib import Path

import pytest
import zstandard

import offload_core.builtin
from offload_core import Plugins
from offload_core.codecs import Codec, IdentityCodec, ZstdCodec, looks_incompressible
from offload_core.errors import DecompressionLimitError, IntegrityError

MIB = 1024 * 1024


def json_lines(count: int) -> bytes:
    rows = (
        {"id": i, "name": f"user-{i}", "tags": ["a", "b"], "score": i % 97} for i in range(count)
    )
    return b"\n".join(json.dumps(row).encode() for row in rows)


def zstd_frame(data: bytes, **params: int) -> bytes:
    """One streamed frame (no declared content size), optionally with explicit parameters."""
    if params:
        cctx = zstandard.ZstdCompressor(
            compression_params=zstandard.ZstdCompressionParameters(**params)
        )
    else:
        cctx = zstandard.ZstdCompressor()
    compressor = cctx.compressobj()
    return compressor.compress(data) + compressor.flush()


def frame_declaring(content_size: int) -> bytes:
    """A frame header that declares ``content_size`` (8-byte field), then one empty last block."""
    descriptor = bytes([0b1100_0000])  # 8-byte content size, not single-segment, no checksum
    window = bytes([(20 - 10) << 3])  # 1 MiB window
    empty_last_raw_block = (1).to_bytes(3, "little")
    return (
        b"\x28\xb5\x2f\xfd"
        + descriptor
        + window
        + content_size.to_bytes(8, "little")
        + empty_last_raw_block
    )


def decompress_all(codec: Codec, stored: bytes, *, limit: int, piece: int = MIB) -> bytes:
    out = bytearray()
    with codec.decompress(io.BytesIO(stored), limit=limit, location="mem://t/k") as stream:
        while chunk := stream.read(piece):
            assert len(chunk) <= piece
            out += chunk
    return bytes(out)


@pytest.fixture(scope="module")
def zero_bomb() -> bytes:
    """1 GiB of zeros compressed by real streaming zstd: a few tens of KiB on disk."""
    zeros = bytes(8 * MIB)
    compressor = zstandard.ZstdCompressor(level=1).compressobj()
    parts = [compressor.compress(zeros) for _ in range(128)]
    parts.append(compressor.flush())
    bomb = b"".join(parts)
    assert len(bomb) < 256 * 1024
    return bomb


# -- the contract ----------------------------------------------------------------------------


@pytest.mark.parametrize("codec", [IdentityCodec(), ZstdCodec()], ids=["none", "zstd"])
def test_codecs_follow_the_protocol(codec: Codec) -> None:
    assert isinstance(codec, Codec)


def test_builtin_registration_resolves_to_these_classes() -> None:
    plugins = Plugins.from_modules(offload_core.builtin)
    assert plugins.get("compressor", "none") is IdentityCodec
    assert plugins.get("compressor", "zstd") is ZstdCodec
    assert IdentityCodec.name == "none"
    assert ZstdCodec.name == "zstd"


@pytest.mark.parametrize("codec", [IdentityCodec(), ZstdCodec(), ZstdCodec(level=1, threads=2)])
def test_round_trip_of_many_chunks(codec: Codec) -> None:
    data = json_lines(50_000)
    chunks = [data[i : i + 100_000] for i in range(0, len(data), 100_000)]
    stored = b"".join(codec.compress(iter(chunks)))
    assert decompress_all(codec, stored, limit=len(data)) == data


def test_identity_stores_chunks_unchanged() -> None:
    chunks = [b"ab", b"", b"cde"]
    assert list(IdentityCodec().compress(chunks)) == chunks


def test_zstd_output_pieces_stay_about_one_input_chunk() -> None:
    chunks = [os.urandom(MIB) for _ in range(8)]  # incompressible: the worst case for size
    pieces = list(ZstdCodec().compress(iter(chunks)))
    assert sum(map(len, pieces)) > 8 * MIB
    assert max(map(len, pieces)) <= 2 * MIB


def test_zstd_round_trips_the_empty_payload() -> None:
    stored = b"".join(ZstdCodec().compress(iter([])))
    assert stored
    assert decompress_all(ZstdCodec(), stored, limit=0) == b""


def test_streams_support_readinto_and_close_their_source(tmp_path: Path) -> None:
    data = json_lines(2000)
    path = tmp_path / "stored.zst"
    path.write_bytes(b"".join(ZstdCodec().compress([data])))
    source = path.open("rb")
    stream = ZstdCodec().decompress(source, limit=len(data))
    buffer = bytearray(1000)
    out = bytearray()
    while count := stream.readinto(buffer):  # type: ignore[attr-defined]
        out += buffer[:count]
    assert out == data
    stream.close()
    assert source.closed


# -- limits ----------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", [IdentityCodec(), ZstdCodec()], ids=["none", "zstd"])
def test_output_up_to_the_limit_is_allowed_and_one_byte_more_is_not(codec: Codec) -> None:
    data = json_lines(1000)
    stored = b"".join(codec.compress([data]))
    assert decompress_all(codec, stored, limit=len(data)) == data
    with pytest.raises(DecompressionLimitError) as caught:
        decompress_all(codec, stored, limit=len(data) - 1)
    assert caught.value.limit == len(data) - 1
    assert caught.value.location == "mem://t/k"
    assert caught.value.check == "decompressed-size"


def test_zstd_bomb_is_stopped_at_the_limit_without_allocating_the_output(
    zero_bomb: bytes,
) -> None:
    stream = ZstdCodec().decompress(io.BytesIO(zero_bomb), limit=64 * MIB)
    produced = 0

    def drain() -> None:
        nonlocal produced
        while chunk := stream.read(MIB):
            produced += len(chunk)

    tracemalloc.start()
    try:
        with pytest.raises(DecompressionLimitError):
            drain()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert produced == 64 * MIB
    assert peak < 4 * MIB


def test_zstd_bomb_read_in_one_call_is_still_capped(zero_bomb: bytes) -> None:
    stream = ZstdCodec().decompress(io.BytesIO(zero_bomb), limit=MIB)
    with pytest.raises(DecompressionLimitError):
        stream.read()


def test_frame_declaring_a_huge_content_size_is_refused_before_decoding() -> None:
    stream = ZstdCodec().decompress(io.BytesIO(frame_declaring(2**40)), limit=100 * MIB)
    with pytest.raises(DecompressionLimitError) as caught:
        stream.read(1)
    assert caught.value.limit == 100 * MIB


def test_declared_content_size_just_over_the_limit_is_refused() -> None:
    data = b"x" * 1000
    stored = zstandard.ZstdCompressor().compress(data)  # one-shot: declares 1000 bytes
    assert zstandard.get_frame_parameters(stored).content_size == 1000
    with pytest.raises(DecompressionLimitError):
        ZstdCodec().decompress(io.BytesIO(stored), limit=999).read(1)
    assert decompress_all(ZstdCodec(), stored, limit=1000) == data


def test_frame_asking_for_a_window_above_max_window_log_is_refused() -> None:
    stored = zstd_frame(json_lines(100), window_log=28)
    assert zstandard.get_frame_parameters(stored).window_size == 2**28
    with pytest.raises(DecompressionLimitError, match="window") as caught:
        decompress_all(ZstdCodec(), stored, limit=MIB)
    assert caught.value.limit == 2**27
    assert decompress_all(ZstdCodec(max_window_log=28), stored, limit=MIB) == json_lines(100)


def test_max_window_log_is_validated() -> None:
    with pytest.raises(ValueError, match="max_window_log"):
        ZstdCodec(max_window_log=40)


# -- several frames --------------------------------------------------------------------------


def test_concatenated_frames_decode_to_the_concatenation() -> None:
    first, second = json_lines(3000), os.urandom(5000)
    stored = zstd_frame(first) + zstandard.ZstdCompressor().compress(second)
    assert decompress_all(ZstdCodec(), stored, limit=len(first) + len(second)) == first + second


def test_concatenated_frames_share_one_limit() -> None:
    frame = zstd_frame(json_lines(3000))
    size = len(json_lines(3000))
    with pytest.raises(DecompressionLimitError):
        decompress_all(ZstdCodec(), frame * 3, limit=2 * size + 10)


def test_declared_sizes_of_all_frames_count_against_the_limit() -> None:
    frame = zstandard.ZstdCompressor().compress(b"y" * 600)  # declares 600 bytes
    stream = ZstdCodec().decompress(io.BytesIO(frame * 2), limit=1000)
    with pytest.raises(DecompressionLimitError):
        stream.read(1)


def test_skippable_frames_are_passed_over() -> None:
    skippable = (0x184D2A53).to_bytes(4, "little") + (3).to_bytes(4, "little") + b"abc"
    data = json_lines(100)
    stored = skippable + zstd_frame(data) + skippable
    assert decompress_all(ZstdCodec(), stored, limit=len(data)) == data


# -- corrupt input ---------------------------------------------------------------------------


def _codec_error(stored: bytes) -> IntegrityError:
    with pytest.raises(IntegrityError) as caught:
        decompress_all(ZstdCodec(), stored, limit=100 * MIB)
    assert type(caught.value) is IntegrityError
    assert caught.value.check == "codec"
    assert caught.value.location == "mem://t/k"
    return caught.value


def test_garbage_instead_of_zstd_is_a_codec_error() -> None:
    assert "not a zstd frame" in str(_codec_error(b'{"this": "is plain JSON"}' * 100))


def test_empty_input_is_a_codec_error() -> None:
    assert "empty" in str(_codec_error(b""))


@pytest.mark.parametrize("keep", [3, 10, 0.5, -1])
def test_truncated_frame_is_a_codec_error(keep: float) -> None:
    stored = zstd_frame(os.urandom(300_000))
    cut = int(len(stored) * keep) if isinstance(keep, float) else keep
    _codec_error(stored[:cut])


def test_trailing_garbage_is_a_codec_error() -> None:
    _codec_error(zstd_frame(json_lines(100)) + b"trailing")


def test_flipped_byte_is_a_codec_error() -> None:
    stored = bytearray(b"".join(ZstdCodec().compress([json_lines(20_000)])))
    stored[len(stored) // 2] ^= 0x40
    _codec_error(bytes(stored))


def test_reserved_block_type_is_a_codec_error() -> None:
    header = frame_declaring(10)[:-3]
    _codec_error(header + (0b111).to_bytes(3, "little"))


# -- sampling --------------------------------------------------------------------------------


def test_random_bytes_look_incompressible() -> None:
    assert looks_incompressible(os.urandom(256 * 1024))
    assert looks_incompressible(zstd_frame(os.urandom(100_000)))


def test_text_does_not_look_incompressible() -> None:
    assert not looks_incompressible(json_lines(5000))
    assert not looks_incompressible(b"")
