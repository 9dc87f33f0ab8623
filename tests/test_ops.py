"""The operator commands' logic (``offload_core.ops``), in process, on real stores."""

from __future__ import annotations

import base64
import io
import json
import os
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sample_messages import EXPECTED, MESSAGES, sample_names

import offload_core.builtin
from offload_core import Offloader, Plugins, ops
from offload_core.errors import (
    ConfigurationError,
    DigestMismatchError,
    IncompatibleOptionsError,
    LocationNotAllowedError,
)
from offload_core.message import Attribute
from offload_core.store import ObjectInfo, Store

OPS_DATA = Path(__file__).parent / "data" / "ops"
SNS_ENVELOPED = {"sns-aws", "sns-inline", "sns-native"}
PAYLOAD = b"".join(b"record %d: some json-ish text\n" % i for i in range(40_000))


@pytest.fixture
def memory_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A memory store of this test's own, emptied afterwards."""
    url = f"memory://ops-{request.node.name.replace('[', '-').replace(']', '')}"
    yield url
    store = Offloader(url).store
    for info in list(store.list()):
        store.delete(info.key)


def put_bytes(offloader: Offloader, tmp_path: Path, data: bytes = PAYLOAD) -> ops.Message:
    source = tmp_path / "payload.bin"
    source.write_bytes(data)
    sent = ops.put_file(offloader, source)
    return ops.Message(sent.body, sent.attributes)


# -- reading messages --------------------------------------------------------------------------


def test_read_input_takes_the_value_stdin_or_a_file(tmp_path: Path) -> None:
    assert ops.read_input("hello") == "hello"
    assert ops.read_input("-", io.BytesIO(b"from stdin")) == "from stdin"
    (tmp_path / "m.json").write_text("from a file", encoding="utf-8")
    assert ops.read_input(f"@{tmp_path / 'm.json'}") == "from a file"


@pytest.mark.parametrize(
    ("value", "stdin", "problem"),
    [
        ("@/nonexistent/message.json", None, "cannot read the message file"),
        ("-", io.BytesIO(b"\xff\xfe"), "not UTF-8"),
        ("-", io.BytesIO(b"x" * (ops.MAX_INPUT_BYTES + 1)), "not a payload"),
        ("-", None, "standard input"),
    ],
)
def test_read_input_refuses_what_is_not_a_message(
    value: str, stdin: io.BytesIO | None, problem: str
) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        ops.read_input(value, stdin)


def test_a_plain_body_is_one_message_without_attributes() -> None:
    (message,) = ops.parse_messages('["not", "an", "envelope"]')
    assert message == ops.Message('["not", "an", "envelope"]', {}, "message body")


def test_an_sqs_message_as_boto3_returns_it() -> None:
    raw = {
        "MessageId": "m-1",
        "Body": "payload",
        "Attributes": {"ApproximateReceiveCount": "1"},
        "MessageAttributes": {
            "ExtendedPayloadSize": {"DataType": "Number", "StringValue": "7"},
            "blob": {"DataType": "Binary", "BinaryValue": base64.b64encode(b"\x00\x01").decode()},
        },
    }
    (message,) = ops.parse_messages(json.dumps(raw))
    assert message.body == "payload"
    assert message.attributes == {
        "ExtendedPayloadSize": Attribute("Number", "7"),
        "blob": Attribute("Binary", b"\x00\x01"),
    }
    many = ops.parse_messages(json.dumps({"Messages": [raw, raw]}))
    assert [m.source for m in many] == ["SQS message 0", "SQS message 1"]


def test_a_lambda_sqs_event_gives_every_record_with_its_attributes() -> None:
    first, second = ops.load_messages(f"@{OPS_DATA / 'lambda-sqs-event.json'}")
    assert first.attributes == {"ExtendedPayloadSize": Attribute("Number", "859754")}
    assert first.source == "Lambda event record 0"
    assert second.body == '{"order": 42}'
    assert second.attributes == {"tenant": Attribute("String", "acme")}


def test_a_lambda_sns_record_is_unwrapped_like_an_envelope() -> None:
    (message,) = ops.load_messages(f"@{OPS_DATA / 'lambda-sns-event.json'}")
    found = ops.inspect_message(message)
    assert found.sns_envelope
    assert found.pointer == EXPECTED["native"]
    assert found.attributes == ("tenant",)


def test_an_eventbridge_event_gives_its_detail_also_inside_an_sqs_record() -> None:
    text = (OPS_DATA / "eventbridge-event.json").read_text(encoding="utf-8")
    (direct,) = ops.parse_messages(text)
    assert ops.inspect_message(direct).pointer == EXPECTED["native"]
    (wrapped,) = ops.parse_messages(json.dumps({"Records": [{"body": text}]}))
    assert wrapped.source.endswith("(EventBridge event)")
    assert ops.inspect_message(wrapped).pointer == EXPECTED["native"]


def test_put_output_reads_back_without_the_aws_plugin(memory_url: str, tmp_path: Path) -> None:
    """AWS's shapes are the transports plugin's to read; what ``offload put`` prints is the
    core's own, and reads back without it."""
    core_only = Plugins.from_modules(offload_core.builtin)
    sent = ops.put_file(Offloader(memory_url), _write(tmp_path / "p", PAYLOAD))
    (message,) = ops.parse_messages(json.dumps(sent.to_json()), core_only)
    assert (message.body, message.attributes, message.wrapped) == (sent.body, sent.attributes, True)
    text = (OPS_DATA / "lambda-sqs-event.json").read_text(encoding="utf-8")
    assert ops.parse_messages(text, core_only) == [ops.Message(text)]
    with pytest.raises(ConfigurationError, match="HTTP"):
        ops.check_store_url("https://bucket.s3.amazonaws.com/x", core_only)


@pytest.mark.parametrize(
    "raw",
    [
        {"Records": [{"messageId": "no body"}]},
        {"Records": ["not an object"]},
        {"Body": "x", "MessageAttributes": {"a": {"DataType": "String"}}},
        {"Body": "x", "MessageAttributes": {"a": {"DataType": "Binary", "BinaryValue": "!!"}}},
        {"Body": "x", "MessageAttributes": ["not", "a", "mapping"]},
    ],
)
def test_malformed_wrappers_are_usage_errors(raw: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        ops.parse_messages(json.dumps(raw))


@pytest.mark.parametrize("name", sample_names())
def test_every_sample_message_file_inspects_as_its_dialect(name: str) -> None:
    (message,) = ops.load_messages(f"@{MESSAGES / f'{name}.json'}")
    found = ops.inspect_message(message)
    expected = EXPECTED[name]
    assert found.dialect == (expected.dialect if expected else "inline")
    assert found.pointer == expected
    assert found.sns_envelope == (name in SNS_ENVELOPED)
    assert found.allowed is None
    assert found.resolution is None
    assert found.ok


def test_a_malformed_pointer_is_reported_not_raised() -> None:
    message = ops.Message("not a pointer", {"ExtendedPayloadSize": Attribute("Number", "5")})
    found = ops.inspect_message(message)
    assert found.dialect is None
    assert found.error is not None
    assert "PointerError" in found.error
    assert not found.ok


# -- put and get -------------------------------------------------------------------------------


def test_put_then_save_round_trips_verified(memory_url: str, tmp_path: Path) -> None:
    publisher = Offloader(memory_url, compression="zstd")
    source = tmp_path / "payload.bin"
    source.write_bytes(PAYLOAD)
    progress: list[int] = []
    sent = ops.put_file(publisher, source, content_type="text/plain", progress=progress.append)
    assert sum(progress) == len(PAYLOAD)
    assert sent.pointer.codec == "zstd"

    consumer = ops.consumer([memory_url])
    received = consumer.parse(sent.body, sent.attributes)
    dest = tmp_path / "out" / "payload.bin"
    dest.parent.mkdir()
    got: list[int] = []
    saved = ops.save_payload(consumer, received, dest, progress=got.append)
    assert dest.read_bytes() == PAYLOAD
    assert sum(got) == saved.size == len(PAYLOAD)
    assert saved.checks == ("size", "sha256 digest")
    assert saved.digest == sent.pointer.digest
    assert os.listdir(dest.parent) == ["payload.bin"]


def test_put_json_is_read_back_as_a_message(memory_url: str, tmp_path: Path) -> None:
    sent = ops.put_file(Offloader(memory_url), _write(tmp_path / "p", PAYLOAD))
    (message,) = ops.parse_messages(json.dumps(sent.to_json()))
    assert ops.inspect_message(message).pointer == sent.pointer


def test_a_corrupted_payload_leaves_no_file_and_keeps_an_old_one(
    memory_url: str, tmp_path: Path
) -> None:
    publisher = Offloader(memory_url)
    message = put_bytes(publisher, tmp_path)
    received = publisher.parse(message.body, message.attributes)
    assert received.pointer is not None
    key = publisher.store.key_for(received.pointer.location)
    assert key is not None
    with publisher.store.open_write(key) as sink:  # same size, one byte changed
        sink.write(b"X" + PAYLOAD[1:])
    out = tmp_path / "out"
    out.mkdir()
    (out / "kept.bin").write_bytes(b"previous contents")
    with pytest.raises(DigestMismatchError):
        ops.save_payload(ops.consumer([memory_url]), received, out / "new.bin")
    with pytest.raises(DigestMismatchError):
        ops.save_payload(ops.consumer([memory_url]), received, out / "kept.bin")
    assert os.listdir(out) == ["kept.bin"]
    assert (out / "kept.bin").read_bytes() == b"previous contents"


def test_save_refuses_an_untrusted_location_before_creating_anything(
    memory_url: str, tmp_path: Path
) -> None:
    message = put_bytes(Offloader(memory_url), tmp_path)
    consumer = ops.consumer(["memory://somebody-else"])
    received = consumer.parse(message.body, message.attributes)
    with pytest.raises(LocationNotAllowedError):
        ops.save_payload(consumer, received, tmp_path / "out.bin")
    assert not (tmp_path / "out.bin").exists()
    assert sorted(os.listdir(tmp_path)) == ["payload.bin"]


def test_an_inline_message_is_saved_as_its_body(tmp_path: Path) -> None:
    consumer = ops.consumer(["memory://inline"])
    saved = ops.save_payload(consumer, consumer.parse("hello"), tmp_path / "out.txt")
    assert (tmp_path / "out.txt").read_text() == "hello"
    assert not saved.offloaded
    assert saved.checks == ()


def test_a_consumer_needs_a_trusted_store() -> None:
    with pytest.raises(ConfigurationError, match="no trusted store"):
        ops.consumer([], [])


def test_save_needs_an_existing_directory(tmp_path: Path) -> None:
    consumer = ops.consumer(["memory://inline"])
    with pytest.raises(ConfigurationError, match="not a directory"):
        ops.save_payload(consumer, consumer.parse("x"), tmp_path / "missing" / "out")


def test_write_payload_spools_then_writes_only_verified_bytes(
    memory_url: str, tmp_path: Path
) -> None:
    publisher = Offloader(memory_url)
    message = put_bytes(publisher, tmp_path)
    consumer = ops.consumer([memory_url])
    received = consumer.parse(message.body, message.attributes)
    out = io.BytesIO()
    saved = ops.write_payload(consumer, received, out)
    assert out.getvalue() == PAYLOAD
    assert (saved.path, saved.size, saved.checks) == ("-", len(PAYLOAD), ("size", "sha256 digest"))

    assert received.pointer is not None
    key = publisher.store.key_for(received.pointer.location)
    assert key is not None
    with publisher.store.open_write(key) as sink:
        sink.write(PAYLOAD[:-1] + b"X")
    out = io.BytesIO()
    with pytest.raises(DigestMismatchError):
        ops.write_payload(consumer, received, out)
    assert out.getvalue() == b""


def test_receive_refuses_a_bare_body_that_is_no_pointer(tmp_path: Path) -> None:
    consumer = ops.consumer(["memory://receive"])
    with pytest.raises(ConfigurationError, match="--inline"):
        ops.receive(consumer, ops.Message("hello"), given="hello")
    assert ops.receive(consumer, ops.Message("hello"), inline=True).body == "hello"
    (wrapped,) = ops.parse_messages(json.dumps({"Body": "hello"}))
    assert ops.receive(consumer, wrapped).body == "hello"
    (enveloped,) = ops.load_messages(f"@{MESSAGES / 'sns-inline.json'}")
    assert ops.receive(consumer, enveloped).pointer is None

    (tmp_path / "ptr").write_text("not a message")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with pytest.raises(ConfigurationError, match="pass @ptr"):
            ops.receive(consumer, ops.Message("ptr"), given="ptr")
    finally:
        os.chdir(cwd)


def test_choose_message_needs_a_record_number_for_several() -> None:
    messages = [ops.Message("a"), ops.Message("b")]
    with pytest.raises(ConfigurationError, match=r"--record 0\.\.1"):
        ops.choose_message(messages)
    assert ops.choose_message(messages, 1).body == "b"
    with pytest.raises(ConfigurationError, match="--record 2"):
        ops.choose_message(messages, 2)


def test_a_publisher_refuses_an_expiry_its_format_cannot_carry() -> None:
    s3 = ops.S3Options(endpoint_url="http://127.0.0.1:9", region="us-east-1")  # never reached
    with pytest.raises(IncompatibleOptionsError, match="--format native"):
        ops.publisher("s3://some-bucket", expires_after=timedelta(days=1), s3=s3)
    native = ops.publisher(
        "s3://some-bucket", expires_after=timedelta(days=1), pointer_format="native", s3=s3
    )
    assert native.expires_after == timedelta(days=1)


# -- store URLs and S3 options -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "advice"),
    [
        ("http://example.com/bucket/p", "--store s3://bucket/p --endpoint-url http://example.com"),
        ("https://localhost:4566", "--store s3://BUCKET --endpoint-url https://localhost:4566"),
        ("https://bucket.s3.amazonaws.com/x/y", "use 's3://bucket/x/y'"),
        ("https://my.bucket.s3.amazonaws.com", "use 's3://my.bucket'"),
        (
            "https://bucket.s3.eu-west-1.amazonaws.com/x",
            "'s3://bucket/x' (with --region eu-west-1)",
        ),
        (
            "https://bucket.s3-us-west-2.amazonaws.com/x",
            "'s3://bucket/x' (with --region us-west-2)",
        ),
        (
            "https://bucket.s3.dualstack.ap-south-1.amazonaws.com",
            "'s3://bucket' (with --region ap-south-1)",
        ),
        ("http://s3.amazonaws.com/bucket/x", "use 's3://bucket/x'"),
        (
            "https://s3.us-gov-west-1.amazonaws.com/bucket",
            "'s3://bucket' (with --region us-gov-west-1)",
        ),
        (
            "https://bucket.s3.cn-north-1.amazonaws.com.cn/x",
            "'s3://bucket/x' (with --region cn-north-1)",
        ),
        (
            "https://orders-123456789012.s3-accesspoint.eu-west-1.amazonaws.com/p",
            "'s3://arn:aws:s3:eu-west-1:123456789012:accesspoint/orders/p'",
        ),
        (
            "https://mfzwi23gnjvgw.mrap.accesspoint.s3-global.amazonaws.com",
            "'s3://arn:aws:s3::ACCOUNT:accesspoint/mfzwi23gnjvgw.mrap'",
        ),
        ("HTTPS://bucket.s3.amazonaws.com/x", "use 's3://bucket/x'"),
        ("S3://bucket/x", "URL schemes are lower case: use 's3://bucket/x'"),
        ("File:///tmp/x", "use 'file:///tmp/x'"),
        ("s4://bucket", "Did you mean 's3://bucket'?"),
        ("gz://bucket", "Did you mean 'gs://bucket'?"),
        ("nosuchscheme://bucket", "Stores: a directory path, file://, memory://, s3://"),
        ("s3a://bucket/x", "use 's3://bucket/x'"),
        ("s3n://bucket", "use 's3://bucket'"),
        ("s3:/bucket", "use 's3://bucket'"),
        ("s3:bucket", "use 's3://bucket'"),
        ("file:/tmp/x", "use 'file:///tmp/x'"),
    ],
)
def test_store_urls_that_are_not_stores_say_what_to_use(url: str, advice: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        ops.check_store_url(url)
    assert advice in str(raised.value)


@pytest.mark.parametrize(
    "url",
    ["s3://bucket/x", "file:///tmp/x", "/tmp/x", "relative/dir", "memory://x", "gs://bucket",
     "simplecache::s3://bucket", "C:\\payloads", "weird:name"],
)  # fmt: skip
def test_store_urls_that_are_stores_pass(url: str) -> None:
    ops.check_store_url(url)


def test_memory_stores_are_refused_where_they_must_outlive_the_process() -> None:
    with pytest.raises(ConfigurationError, match="lives inside one process"):
        ops.check_store_url("memory://x", persistent=True)
    with pytest.raises(ConfigurationError, match="lives inside one process"):
        ops.consumer(["memory://x"], persistent=True)


def test_s3_options_map_onto_the_s3_store_and_only_it(tmp_path: Path) -> None:
    s3 = ops.S3Options(
        endpoint_url="http://127.0.0.1:9",
        profile="team",
        region="eu-west-1",
        sse="aws:kms",
        kms_key_id="alias/payloads",
    )
    store: Any = ops.open_store("s3://bucket/prefix", s3=s3)
    assert store.fs.endpoint_url == "http://127.0.0.1:9"
    assert store.fs.client_kwargs == {"region_name": "eu-west-1"}
    assert store.fs.kwargs["profile"] == "team"
    assert store.fs.s3_additional_kwargs == {
        "ServerSideEncryption": "aws:kms",
        "SSEKMSKeyId": "alias/payloads",
    }
    local = ops.open_store(tmp_path.as_uri(), s3=s3)  # not an S3 store: left alone
    assert local.url == tmp_path.as_uri()
    consumer = ops.consumer([tmp_path.as_uri()], ["s3://bucket/prefix"], s3=s3)
    assert consumer.store.url == tmp_path.as_uri()


# -- inspect against stores --------------------------------------------------------------------


def test_inspect_checks_the_allowlist_and_resolves_by_info_or_read(
    memory_url: str, tmp_path: Path
) -> None:
    message = put_bytes(Offloader(memory_url, compression="zstd"), tmp_path)
    consumer = ops.consumer([memory_url])

    by_info = ops.inspect_message(message, consumer)
    assert by_info.allowed
    assert by_info.store == memory_url
    assert by_info.resolution is not None
    assert by_info.resolution.method == "info"
    assert by_info.resolution.ok
    assert by_info.ok

    by_read = ops.inspect_message(message, consumer, read=True)
    assert by_read.resolution is not None
    assert by_read.resolution.method == "read"
    assert by_read.resolution.ok
    assert "sha256 digest" in by_read.resolution.detail

    elsewhere = ops.inspect_message(message, ops.consumer(["memory://elsewhere"]))
    assert elsewhere.allowed is False
    assert elsewhere.resolution is None
    assert not elsewhere.ok


def test_inspect_reports_a_missing_or_resized_object(memory_url: str, tmp_path: Path) -> None:
    publisher = Offloader(memory_url)
    message = put_bytes(publisher, tmp_path)
    pointer = publisher.parse(message.body).pointer
    assert pointer is not None
    key = publisher.store.key_for(pointer.location)
    assert key is not None
    with publisher.store.open_write(key) as sink:
        sink.write(PAYLOAD[:-1])
    resized = ops.inspect_message(message, publisher)
    assert resized.resolution is not None
    assert not resized.resolution.ok
    assert "bytes are stored" in (resized.resolution.error or "")

    publisher.store.delete(key)
    for read in (False, True):
        missing = ops.inspect_message(message, publisher, read=read)
        assert missing.resolution is not None
        assert not missing.resolution.ok
        assert "PayloadNotFoundError" in (missing.resolution.error or "")
        assert not missing.ok


def test_inspect_says_whether_a_pointer_has_expired() -> None:
    (message,) = ops.load_messages(f"@{MESSAGES / 'native.json'}")
    before = datetime(2026, 11, 30, tzinfo=timezone.utc)
    assert ops.inspect_message(message, now=before).expired is False
    assert ops.inspect_message(message, now=before + timedelta(days=2)).expired is True
    as_json = ops.inspect_message(message, now=before).to_json()
    assert as_json["pointer"]["expires"] == "2026-12-01T00:00:00+00:00"
    json.dumps(as_json)


# -- gc ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("12h", timedelta(hours=12)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        ("1d12h", timedelta(days=1, hours=12)),
        (" 45S ", timedelta(seconds=45)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert ops.parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "7", "d", "7x", "-1d", "1.5h", "0d", "7 d"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        ops.parse_duration(text)


def _write(path: Path, data: bytes, *, age: timedelta | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if age is not None:
        then = time.time() - age.total_seconds()
        os.utime(path, (then, then))
    return path


def test_gc_lists_then_deletes_only_what_is_old(tmp_path: Path) -> None:
    root = tmp_path / "store"
    _write(root / "2026/01/old-a", b"a" * 10, age=timedelta(days=8))
    _write(root / "2026/01/old-b", b"b" * 20, age=timedelta(days=30))
    _write(root / "2026/02/young", b"c" * 30, age=timedelta(days=6))
    _write(root / "fresh", b"d")
    store = Offloader(root.as_uri()).store

    dry = ops.collect_garbage(store, timedelta(days=7))
    assert dry.dry_run
    assert [o.key for o in dry.matched] == ["2026/01/old-a", "2026/01/old-b"]
    assert (dry.matched_bytes, dry.kept, dry.deleted) == (30, 2, ())
    assert (root / "2026/01/old-a").exists()

    only_feb = ops.collect_garbage(store, timedelta(days=7), prefix="2026/02/")
    assert only_feb.matched == ()
    assert only_feb.kept == 1

    done = ops.collect_garbage(store, timedelta(days=7), delete=True)
    assert not done.dry_run
    assert [o.key for o in done.deleted] == ["2026/01/old-a", "2026/01/old-b"]
    assert done.deleted_bytes == 30
    assert done.failed == ()
    assert sorted(o.key for o in store.list()) == ["2026/02/young", "fresh"]
    report = done.to_json()
    assert (report["deleted_count"], report["kept"]) == (2, 2)
    json.dumps(report)


class _RewrittenAfterListing:
    """A store whose objects are all rewritten right after they are listed."""

    def __init__(self, store: Store, root: Path) -> None:
        self._store = store
        self._root = root
        self.url = store.url

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        listed = list(self._store.list(prefix))
        for info in listed:
            os.utime(self._root / info.key)
        return iter(listed)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def test_gc_keeps_an_object_rewritten_since_it_was_listed(tmp_path: Path) -> None:
    root = tmp_path / "store"
    _write(root / "old", b"x", age=timedelta(days=9))
    store = _RewrittenAfterListing(Offloader(root.as_uri()).store, root)
    report = ops.collect_garbage(store, timedelta(days=7), delete=True)
    assert [o.key for o in report.matched] == ["old"]
    assert report.deleted == ()
    assert report.kept == 1
    assert (root / "old").exists()


def test_gc_on_a_memory_store_uses_the_given_clock(memory_url: str, tmp_path: Path) -> None:
    offloader = Offloader(memory_url)
    put_bytes(offloader, tmp_path)
    now = datetime.now(timezone.utc)
    assert ops.collect_garbage(offloader.store, timedelta(hours=1), now=now).matched == ()
    later = now + timedelta(hours=2)
    report = ops.collect_garbage(offloader.store, timedelta(hours=1), delete=True, now=later)
    assert len(report.deleted) == 1
    assert list(offloader.store.list()) == []
