"""The Offloader end to end over real stores (memory and local disk): policy, round trips,
allowlist, integrity, cleanup."""

from __future__ import annotations

import io
import json
import os
import tracemalloc
import uuid
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offload_core import Attribute, Plugins, hookimpl
from offload_core.delivery import Delivery
from offload_core.errors import (
    ConfigurationError,
    DecompressionLimitError,
    DigestMismatchError,
    IncompatibleOptionsError,
    IntegrityError,
    LocationNotAllowedError,
    MessageTooLargeError,
    PayloadNotFoundError,
    PluginNotFoundError,
    PointerError,
    SizeMismatchError,
)
from offload_core.offloader import Offloader
from offload_core.policy import Limits, message_size
from offload_core.testing.aws import MotoServer

SMALL = Limits(max_size=1024)


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return (tmp_path / "store").as_uri()


@pytest.fixture
def off(store_url: str) -> Offloader:
    return Offloader(store_url)


def stored_files(url: str) -> list[Path]:
    root = Path(url.removeprefix("file://"))
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_small_payload_travels_inline_and_stores_nothing(off: Offloader, store_url: str) -> None:
    msg = off.prepare('{"hello": "world"}', limits=SMALL)
    assert not msg.offloaded
    assert msg.body == '{"hello": "world"}'
    assert stored_files(store_url) == []
    assert off.resolve(msg.body, msg.attributes) == b'{"hello": "world"}'


def test_size_is_counted_in_utf8_bytes_not_characters(off: Offloader) -> None:
    text = "é" * 600  # 600 characters, 1200 bytes
    msg = off.prepare(text, limits=SMALL)
    assert msg.offloaded
    assert off.resolve(msg.body, msg.attributes) == text.encode()


def test_attributes_count_towards_the_limit(off: Offloader) -> None:
    body = "x" * 1000
    assert not off.prepare(body, limits=SMALL).offloaded
    attrs = {"trace": Attribute.string("t" * 30)}
    msg = off.prepare(body, attributes=attrs, limits=SMALL)
    assert msg.offloaded
    assert msg.attributes["trace"] == attrs["trace"]
    assert message_size(msg.body, msg.attributes) <= SMALL.max_size


def test_configured_threshold_below_the_transport_limit(store_url: str) -> None:
    off = Offloader(store_url, threshold=100)
    assert off.prepare("x" * 100, limits=SMALL).offloaded is False
    assert off.prepare("x" * 101, limits=SMALL).offloaded is True


def test_threshold_above_the_transport_limit_is_capped_by_it(store_url: str) -> None:
    off = Offloader(store_url, threshold=10_000)
    assert off.prepare("x" * 1025, limits=SMALL).offloaded is True


def test_mode_always_offloads_even_tiny_payloads(store_url: str) -> None:
    msg = Offloader(store_url, mode="always").prepare("hi", limits=SMALL)
    assert msg.offloaded
    assert len(stored_files(store_url)) == 1


def test_mode_never_refuses_before_storing(store_url: str) -> None:
    off = Offloader(store_url, mode="never")
    with pytest.raises(MessageTooLargeError) as info:
        off.prepare("x" * 2000, limits=SMALL)
    assert info.value.limit == 1024
    assert stored_files(store_url) == []


def test_binary_payload_is_offloaded_even_when_small(off: Offloader) -> None:
    data = b"\xff\xfe\x00binary"
    msg = off.prepare(data, limits=SMALL)
    assert msg.offloaded
    assert off.resolve(msg.body, msg.attributes) == data


def test_inline_body_that_looks_like_a_pointer_is_offloaded(off: Offloader) -> None:
    lookalike = json.dumps({"offload_pointer": 1, "location": "file:///etc/passwd", "size": 1})
    msg = off.prepare(lookalike, limits=SMALL)
    assert msg.offloaded
    assert off.resolve(msg.body, msg.attributes) == lookalike.encode()


def test_reserved_and_too_many_attributes_are_refused(off: Offloader) -> None:
    with pytest.raises(IncompatibleOptionsError, match="reserved"):
        off.prepare("x", attributes={"ExtendedPayloadSize": Attribute.number(1)})
    eleven = {f"a{i}": Attribute.string("v") for i in range(11)}
    with pytest.raises(IncompatibleOptionsError, match="allows 10"):
        off.prepare("x", attributes=eleven)


def test_pointer_message_too_large_removes_the_stored_payload(store_url: str) -> None:
    off = Offloader(store_url, mode="always")
    huge = {"blob": Attribute.string("v" * 2000)}
    with pytest.raises(MessageTooLargeError):
        off.prepare("payload", attributes=huge, limits=SMALL)
    assert stored_files(store_url) == []


@pytest.mark.parametrize("compression", [None, "zstd"])
@pytest.mark.parametrize("kind", ["bytes", "str", "file", "chunks"])
def test_round_trip_of_every_payload_kind(
    store_url: str, compression: str | None, kind: str
) -> None:
    data = (b'{"k": "v", "n": 12345}\n' * 100_000)[: 2 * 2**20 + 7]
    payload: object = {
        "bytes": data,
        "str": data.decode(),
        "file": io.BytesIO(data),
        "chunks": iter([data[:1000], data[1000:]]),
    }[kind]
    off = Offloader(store_url, compression=compression)
    msg = off.prepare(payload, limits=SMALL)  # type: ignore[arg-type]
    assert msg.pointer is not None
    assert msg.pointer.size == len(data)
    assert msg.pointer.codec == (compression or "none")
    if compression:
        assert msg.pointer.stored_size is not None
        assert msg.pointer.stored_size < len(data) // 5
    consumer = Offloader(store_url)
    assert consumer.resolve(msg.body, msg.attributes) == data
    with consumer.open(msg.body, msg.attributes) as stream:
        assert stream.read() == data


def test_consumer_refuses_locations_outside_its_stores(tmp_path: Path, off: Offloader) -> None:
    other = Offloader((tmp_path / "other").as_uri(), mode="always")
    msg = other.prepare("secret", limits=SMALL)
    with pytest.raises(LocationNotAllowedError) as info:
        off.resolve(msg.body, msg.attributes)
    assert info.value.location == msg.pointer.location  # type: ignore[union-attr]
    allowed = Offloader(off.store, allow=[other.store.url])
    assert allowed.resolve(msg.body, msg.attributes) == b"secret"


def test_hostile_pointer_to_a_system_file_is_refused(off: Offloader) -> None:
    body = json.dumps(
        {"offload_pointer": 1, "location": "file:///etc/passwd", "size": 10}, separators=(",", ":")
    )
    with pytest.raises(LocationNotAllowedError):
        off.resolve(body)


def _only_file(url: str) -> Path:
    (path,) = stored_files(url)
    return path


def test_corrupted_payload_raises_digest_mismatch(off: Offloader, store_url: str) -> None:
    msg = off.prepare(b"a" * 5000, limits=SMALL)
    path = _only_file(store_url)
    path.write_bytes(b"b" * 5000)
    with pytest.raises(DigestMismatchError):
        off.resolve(msg.body, msg.attributes)


def test_truncated_payload_raises_size_mismatch(off: Offloader, store_url: str) -> None:
    msg = off.prepare(b"a" * 5000, limits=SMALL)
    path = _only_file(store_url)
    path.write_bytes(b"a" * 4000)
    with pytest.raises(SizeMismatchError):
        off.resolve(msg.body, msg.attributes)


def test_declared_size_over_the_cap_is_refused_before_reading(store_url: str) -> None:
    publisher = Offloader(store_url)
    msg = publisher.prepare(b"a" * 5000, limits=SMALL)
    consumer = Offloader(store_url, max_payload_size=4096)
    with pytest.raises(DecompressionLimitError):
        consumer.resolve(msg.body, msg.attributes)


def test_unknown_codec_in_a_pointer_is_a_typed_error(off: Offloader, store_url: str) -> None:
    msg = off.prepare(b"a" * 5000, limits=SMALL)
    doc = json.loads(msg.body)
    doc["codec"] = "lz5"
    with pytest.raises(PluginNotFoundError):
        off.resolve(json.dumps(doc, separators=(",", ":")))


def test_unknown_checksum_in_a_pointer_is_a_typed_error(off: Offloader) -> None:
    msg = off.prepare(b"a" * 5000, limits=SMALL)
    doc = json.loads(msg.body)
    doc["checksum"] = "md9"
    with pytest.raises(PluginNotFoundError):
        off.resolve(json.dumps(doc, separators=(",", ":")))


def test_failed_send_removes_the_stored_payload(off: Offloader, store_url: str) -> None:
    def send(_msg: object) -> None:
        raise ConnectionError("queue unreachable")

    with pytest.raises(ConnectionError):
        off.publish(b"z" * 5000, send, limits=SMALL)
    assert stored_files(store_url) == []


def test_successful_send_keeps_the_payload(off: Offloader, store_url: str) -> None:
    sent = off.publish(b"z" * 5000, lambda m: m, limits=SMALL)
    assert sent.offloaded
    assert len(stored_files(store_url)) == 1


def test_aws_format_with_compression_fails_at_construction(store_url: str) -> None:
    with pytest.raises(IncompatibleOptionsError):
        Offloader(store_url, pointer_format="aws")


def test_content_addressed_retries_store_one_object(store_url: str) -> None:
    off = Offloader(store_url, content_addressed=True, compression="zstd")
    data = b"same payload " * 1000
    first = off.prepare(data, limits=SMALL)
    second = off.prepare(io.BytesIO(data), limits=SMALL)
    assert first.pointer == second.pointer
    assert len(stored_files(store_url)) == 1
    assert off.resolve(second.body) == data


def test_content_addressed_needs_a_rewindable_payload(store_url: str) -> None:
    off = Offloader(store_url, content_addressed=True)
    with pytest.raises(IncompatibleOptionsError, match="seekable"):
        off.prepare(iter([b"x" * 5000]), limits=SMALL)


def test_sns_envelope_is_unwrapped_for_inline_and_pointer(off: Offloader) -> None:
    pointer_msg = off.prepare(b"p" * 5000, limits=SMALL)

    def envelope(message: str, attrs: dict[str, Attribute]) -> str:
        return json.dumps(
            {
                "Type": "Notification",
                "MessageId": str(uuid.uuid4()),
                "TopicArn": "arn:aws:sns:us-east-1:111111111111:orders",
                "Message": message,
                "Timestamp": "2026-11-27T12:00:00.000Z",
                "MessageAttributes": {
                    k: {"Type": v.data_type, "Value": v.value} for k, v in attrs.items()
                },
            }
        )

    assert off.resolve(envelope("just text", {})) == b"just text"
    body = envelope(pointer_msg.body, dict(pointer_msg.attributes))
    assert off.resolve(body) == b"p" * 5000


def test_observers_see_stored_and_resolved_events(store_url: str) -> None:
    seen: list[object] = []

    class Recorder:
        @hookimpl
        def offload_stored(self, event):  # type: ignore[no-untyped-def]
            seen.append(("stored", event.size))

        @hookimpl
        def offload_resolved(self, event):  # type: ignore[no-untyped-def]
            seen.append(("resolved", event.size))

        @hookimpl
        def offload_error(self, event):  # type: ignore[no-untyped-def]
            seen.append(("error", type(event.error).__name__))

    plugins = Plugins.from_entry_points(env={})
    plugins.register(Recorder(), name="recorder")
    off = Offloader(store_url, plugins=plugins)
    msg = off.prepare(b"e" * 5000, limits=SMALL)
    off.resolve(msg.body, msg.attributes)
    _only_file(store_url).write_bytes(b"f" * 5000)
    with pytest.raises(DigestMismatchError):
        off.resolve(msg.body, msg.attributes)
    assert seen == [("stored", 5000), ("resolved", 5000), ("error", "DigestMismatchError")]


def _chunked(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.one_of(
        st.binary(max_size=3000),
        st.integers(1018, 1030).map(lambda n: b"q" * n),
        st.text(max_size=1200).map(str.encode),
    ),
    chunk=st.integers(1, 2048),
    compression=st.sampled_from([None, "zstd"]),
)
def test_round_trip_of_arbitrary_bytes_around_the_threshold(
    tmp_path: Path, data: bytes, chunk: int, compression: str | None
) -> None:
    url = (tmp_path / "prop").as_uri()
    off = Offloader(url, compression=compression)
    msg = off.prepare(_chunked(data, chunk), limits=SMALL)
    assert message_size(msg.body, msg.attributes) <= SMALL.max_size
    assert off.resolve(msg.body, msg.attributes) == data
    if not msg.offloaded:
        assert msg.body.encode() == data


def test_os_urandom_is_not_compressed(store_url: str) -> None:
    off = Offloader(store_url, compression="zstd")
    msg = off.prepare(os.urandom(300_000), limits=SMALL)
    assert msg.pointer is not None
    assert msg.pointer.codec == "none"


def test_a_bytes_payload_is_offloaded_without_copies(off: Offloader) -> None:
    """Deciding whether to offload looks at the first bytes only, and the stored bytes are
    slices of the caller's object: sending 24 MiB allocates a small fraction of that."""
    payload = b"x" * (24 * 1024 * 1024)
    tracemalloc.start()
    try:
        message = off.prepare(payload)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert message.pointer is not None
    assert off.resolve(message.body, message.attributes) == payload
    assert peak < 2 * 1024 * 1024


# -- what a stored object says about itself -------------------------------------------------------


def stored_metadata(off: Offloader, message: Any) -> Mapping[str, str] | None:
    key = off.store.key_for(message.pointer.location)
    assert key is not None
    return off.store.info(key).metadata


def test_stored_objects_carry_metadata_an_operator_can_read() -> None:
    off = Offloader(
        f"memory://meta-{uuid.uuid4().hex}",
        compression="zstd",
        expires_after=timedelta(days=7),
        mode="always",
    )
    payload = json.dumps([{"id": n, "name": "item"} for n in range(5000)]).encode()
    message = off.prepare(payload, content_type="application/json")
    pointer = message.pointer
    assert pointer is not None
    assert pointer.expires is not None
    assert stored_metadata(off, message) == {
        "offload-size": str(len(payload)),
        "offload-codec": "zstd",
        "offload-checksum": "sha256",
        "offload-expires": pointer.expires.isoformat(),
        "content-type": "application/json",
    }


def test_metadata_names_the_codec_really_used() -> None:
    off = Offloader(f"memory://meta-{uuid.uuid4().hex}", compression="zstd", mode="always")
    message = off.prepare(os.urandom(200_000))  # incompressible: stored raw
    assert message.pointer is not None
    assert message.pointer.codec == "none"
    metadata = stored_metadata(off, message)
    assert metadata is not None
    assert metadata["offload-codec"] == "none"


def test_metadata_has_the_size_when_it_is_known_before_reading(tmp_path: Path) -> None:
    off = Offloader(f"memory://meta-{uuid.uuid4().hex}", mode="always")
    path = tmp_path / "payload"
    path.write_bytes(b"h" * 100 + b"p" * 5000)
    with path.open("rb") as file:
        file.seek(100)  # the payload is the rest of the file
        from_file = off.prepare(file)
    assert from_file.pointer is not None
    assert from_file.pointer.size == 5000
    assert (stored_metadata(off, from_file) or {})["offload-size"] == "5000"
    streamed = off.prepare(iter([b"a" * 3000, b"b" * 3000]))  # a one-shot stream: unknown
    assert "offload-size" not in (stored_metadata(off, streamed) or {})
    assert (stored_metadata(off, off.prepare("é" * 10)) or {}).get("offload-size") is None


def test_content_addressed_objects_carry_their_digest() -> None:
    off = Offloader(f"memory://meta-{uuid.uuid4().hex}", content_addressed=True, mode="always")
    message = off.prepare(b"payload" * 1000)
    assert message.pointer is not None
    metadata = stored_metadata(off, message)
    assert metadata is not None
    assert metadata["offload-digest"] == message.pointer.digest


# -- deliveries ---------------------------------------------------------------------------------


def test_a_delivery_reads_inline_and_offloaded_payloads(off: Offloader) -> None:
    team = {"team": Attribute.string("orders")}
    inline = Delivery(off, '{"a": 1}', team)
    assert (inline.offloaded, inline.payload(), inline.attributes) == (False, b'{"a": 1}', team)
    sent = off.prepare(b"p" * 5000, attributes=team, limits=SMALL)
    delivery = Delivery(off, sent.body, sent.attributes)
    assert delivery.offloaded
    assert delivery.attributes == team  # pointer markers removed
    assert delivery.payload() == b"p" * 5000
    delivery.check_deliverable()


def test_a_delivery_remembers_why_its_payload_was_not_delivered(off: Offloader) -> None:
    sent = off.prepare(b"p" * 5000, limits=SMALL)
    opened = Delivery(off, sent.body, sent.attributes)
    with opened.open() as stream:
        stream.read(10)
    with pytest.raises(IntegrityError, match="not verified"):
        opened.check_deliverable()  # opened, not read to its end
    assert sent.pointer is not None
    off.discard(sent.pointer)
    missing = Delivery(off, sent.body, sent.attributes)
    with pytest.raises(PayloadNotFoundError):
        missing.payload()
    assert isinstance(missing.error, PayloadNotFoundError)
    with pytest.raises(PayloadNotFoundError):
        missing.check_deliverable()
    malformed = Delivery(
        off,
        '["software.amazon.payloadoffloading.PayloadS3Pointer", {"s3Key": "k"}]',
        {"ExtendedPayloadSize": Attribute.number(10)},
    )
    assert isinstance(malformed.error, PointerError)
    assert malformed.attributes == {}
    with pytest.raises(PointerError):
        malformed.open()


def test_a_file_being_compressed_is_read_in_small_pieces(tmp_path: Path, store_url: str) -> None:
    """Compressed output fills the store's parts, so large reads would only be held longer."""
    path = tmp_path / "payload.json"
    with path.open("wb") as file:
        for n in range(48):
            file.write(json.dumps([{"n": n, "row": r} for r in range(40_000)]).encode())
    off = Offloader(store_url, compression="zstd", mode="always")
    tracemalloc.start()
    try:
        with path.open("rb") as file:
            message = off.prepare(file)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert message.pointer is not None
    assert message.pointer.codec == "zstd"
    assert message.pointer.size == path.stat().st_size > 40 * 1024 * 1024
    assert peak < 12 * 1024 * 1024


@pytest.mark.parametrize(
    "options",
    [
        {"pointer_format": "native", "pointer_format_options": {"legacy_attribute": True}},
        {"compression": "zstd", "compression_options": {"level": 3, "colour": "red"}},
        {"compression": "zstd", "compression_options": {"max_window_log": 99}},
    ],
    ids=["format-option-it-lacks", "unknown-codec-option", "codec-option-out-of-range"],
)
def test_plugin_options_it_does_not_take_are_a_configuration_error(
    options: dict[str, Any],
) -> None:
    with pytest.raises(ConfigurationError, match="invalid options for the"):
        Offloader("memory://options", **options)


def test_storage_options_belong_to_the_store_they_were_given_for(
    tmp_path: Path, moto_server: MotoServer, bucket: str
) -> None:
    """S3 options reach the S3 store and other S3 URLs in ``allow`` (same backend: same
    endpoint and credentials), never a local store; an ``allow`` entry may bring its own."""
    local = Offloader(tmp_path.as_uri(), mode="always", pointer_format="native")
    other_bucket = f"{bucket}-other"
    moto_server.client("s3").create_bucket(Bucket=other_bucket)
    options = moto_server.storage_options()
    other = Offloader(f"s3://{other_bucket}/p", storage_options=options, mode="always")
    consumer = Offloader(
        f"s3://{bucket}/p",
        storage_options=options,
        allow=[tmp_path.as_uri(), f"s3://{other_bucket}/p"],
    )
    from_disk = local.prepare(b"from disk")
    from_other = other.prepare(b"from the other bucket")
    assert consumer.resolve(from_disk.body, from_disk.attributes) == b"from disk"
    assert consumer.resolve(from_other.body, from_other.attributes) == b"from the other bucket"
    paired = Offloader("memory://paired", allow=[(tmp_path.as_uri(), {"fsync": True})])
    assert paired.resolve(from_disk.body, from_disk.attributes) == b"from disk"


def test_options_a_store_does_not_take_are_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"local store .* does not take these options"):
        Offloader("memory://x", allow=[(tmp_path.as_uri(), {"key": "AKIA", "secret": "s"})])
    with pytest.raises(ConfigurationError, match="endpoint_url"):
        Offloader(tmp_path.as_uri(), storage_options={"endpoint_url": "http://127.0.0.1:1"})


def test_store_payload_with_the_aws_format_refuses_bytes_aws_clients_cannot_read(
    moto_server: MotoServer, bucket: str
) -> None:
    """Not only ``prepare``: storing directly (as ``offload put`` does) checks UTF-8 too."""
    off = Offloader(f"s3://{bucket}/utf8", storage_options=moto_server.storage_options())
    assert off.pointer_format == "aws"
    with pytest.raises(IncompatibleOptionsError, match="UTF-8"):
        off.store_payload(b"\xff\xfe binary" * 1000)
    assert list(off.store.list()) == []
    assert off.resolve(off.encode(off.store_payload("text é")).body, {}) == "text é".encode()


def test_an_unknown_aws_profile_is_a_configuration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bucket: str
) -> None:
    (tmp_path / "config").write_text("[default]\nregion = us-east-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "config"))
    off = Offloader(f"s3://{bucket}/p", storage_options={"profile": "no-such-profile"})
    with pytest.raises(ConfigurationError, match="no-such-profile"):
        off.store_payload(b"x")


def test_an_iterable_of_text_says_what_an_iterable_payload_is() -> None:
    off = Offloader("memory://iterables", mode="always")
    with pytest.raises(TypeError, match=r"stream of bytes chunks \(a dict or list is sent as JSON"):
        off.prepare(("text", "pieces"))
    assert off.resolve(off.prepare(["a", "list"]).body) == b'["a","list"]'
