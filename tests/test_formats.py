"""Pointer formats: byte-exact writing, reading every dialect, and rejecting malformed pointers."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone

import pytest
from sample_messages import DIGEST, EXPECTED, FORMATS, KEY, load_sample, sample_names

from offload_core.detect import unwrap_sns
from offload_core.errors import IncompatibleOptionsError, PointerError, UnsupportedVersionError
from offload_core.formats._json import loads_strict
from offload_core.formats.aws import AwsFormat, parse_s3_location
from offload_core.formats.foreign import BbcFormat, BigPayloadFormat, DotnetFormat, PysqsFormat
from offload_core.formats.native import NativeFormat
from offload_core.message import Attribute
from offload_core.pointer import Pointer, PointerFormat, Signature

AWS_CLASS = "software.amazon.payloadoffloading.PayloadS3Pointer"
SIZE = {"ExtendedPayloadSize": Attribute("Number", "859754")}


def test_every_sample_has_an_expectation() -> None:
    assert sorted(EXPECTED) == sample_names()


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_formats_satisfy_the_protocol(fmt: PointerFormat) -> None:
    assert isinstance(fmt, PointerFormat)
    assert fmt.writable is (fmt.name in {"native", "aws"})


@pytest.mark.parametrize("name", sample_names())
def test_exactly_one_format_reads_each_sample(name: str) -> None:
    body, attributes = unwrap_sns(*load_sample(name))
    decoded = {fmt.name: fmt.decode(body, attributes) for fmt in FORMATS}
    expected = EXPECTED[name]
    if expected is None:
        assert set(decoded.values()) == {None}
    else:
        assert {n: p for n, p in decoded.items() if p is not None} == {expected.dialect: expected}


# -- writing --------------------------------------------------------------------------------


def test_native_is_written_compact_in_fixed_order() -> None:
    encoded = NativeFormat().encode(EXPECTED["native"])
    assert encoded.body == (
        f'{{"offload_pointer":1,"location":"s3://orders-payloads/2026/11/30/{KEY}",'
        '"size":859754,"stored_size":212004,"codec":"zstd","checksum":"sha256",'
        f'"digest":"{DIGEST}","content_type":"application/json",'
        '"expires":"2026-12-01T00:00:00Z"}'
    )
    assert encoded.attributes == {}


def test_native_omits_fields_that_are_none() -> None:
    encoded = NativeFormat().encode(Pointer("memory://t/k", size=5))
    assert encoded.body == '{"offload_pointer":1,"location":"memory://t/k","size":5,"codec":"none"}'


def test_native_writes_expiry_in_utc_with_microseconds_only_when_set() -> None:
    plus_two = timezone(timedelta(hours=2))
    whole = Pointer("memory://t/k", size=1, expires=datetime(2026, 12, 1, 2, tzinfo=plus_two))
    fine = Pointer("memory://t/k", size=1, expires=datetime(2026, 1, 1, 0, 0, 0, 5, timezone.utc))
    assert '"expires":"2026-12-01T00:00:00Z"' in NativeFormat().encode(whole).body
    assert '"expires":"2026-01-01T00:00:00.000005Z"' in NativeFormat().encode(fine).body


def test_aws_body_without_integrity_fields_is_the_java_body_byte_for_byte() -> None:
    encoded = AwsFormat().encode(Pointer(f"s3://my-bucket/{KEY}", dialect="aws"))
    assert encoded.body == (
        '["software.amazon.payloadoffloading.PayloadS3Pointer",'
        f'{{"s3BucketName":"my-bucket","s3Key":"{KEY}"}}]'
    )
    assert encoded.attributes == {}


def test_aws_appends_integrity_fields_after_the_key_and_sets_the_size_attribute() -> None:
    pointer = Pointer(
        f"s3://my-bucket/{KEY}", size=859754, checksum="sha256", digest=DIGEST, dialect="aws"
    )
    encoded = AwsFormat().encode(pointer)
    assert encoded.body == (
        f'["{AWS_CLASS}",{{"s3BucketName":"my-bucket","s3Key":"{KEY}",'
        f'"offloadSize":859754,"offloadChecksum":"sha256:{DIGEST}"}}]'
    )
    assert encoded.attributes == SIZE


def test_aws_exact_bytes_and_legacy_attribute_on_request() -> None:
    """What the Java and official Python clients write, for readers of either attribute name."""
    pointer = Pointer(
        f"s3://my-bucket/{KEY}", size=859754, checksum="sha256", digest=DIGEST, dialect="aws"
    )
    fmt = AwsFormat(extension_fields=False, legacy_attribute=True)
    encoded = fmt.encode(pointer)
    assert encoded.body == f'["{AWS_CLASS}",{{"s3BucketName":"my-bucket","s3Key":"{KEY}"}}]'
    assert encoded.attributes == {"SQSLargePayloadSize": Attribute("Number", "859754")}
    assert AwsFormat().decode(encoded.body, encoded.attributes) == Pointer(
        f"s3://my-bucket/{KEY}", size=859754, dialect="aws"
    )
    extended = AwsFormat(legacy_attribute=True).encode(pointer)
    assert extended.attributes == {"SQSLargePayloadSize": Attribute("Number", "859754")}
    assert '"offloadChecksum"' in extended.body


@pytest.mark.parametrize(
    "fields",
    [
        '{"s3BucketName":"my-bucket","s3Key":"k","contentType":"application/json"}',
        '{"contentType":"text/plain","s3BucketName":"my-bucket","s3Key":"k"}',
        '{"s3BucketName":"my-bucket","s3Key":"k","x":{"nested":[1,2,null]},"y":true}',
        '{"s3Key":"k","bucket":"evil","s3BucketName":"my-bucket","location":"file:///etc/passwd"}',
        '{"s3BucketName":"my-bucket","s3Key":"k","offloadSize":859754,"future":"field"}',
    ],
    ids=["trailing", "leading", "nested", "decoy-location", "beside-ours"],
)
def test_aws_reader_ignores_unknown_fields_as_aws_clients_do(fields: str) -> None:
    pointer = AwsFormat().decode(aws(fields), SIZE)
    assert pointer == Pointer("s3://my-bucket/k", size=859754, dialect="aws")


def test_aws_writes_non_ascii_keys_unescaped_as_java_does() -> None:
    encoded = AwsFormat().encode(Pointer("s3://my-bucket/café/ü.json", dialect="aws"))
    assert '"s3Key":"café/ü.json"' in encoded.body


def test_aws_refuses_compression() -> None:
    with pytest.raises(IncompatibleOptionsError, match="cannot decompress"):
        AwsFormat().encode(Pointer(f"s3://my-bucket/{KEY}", size=10, codec="zstd"))


@pytest.mark.parametrize(
    "location",
    ["file:///srv/payloads/k", "memory://t/k", "s3://Bad_Bucket/k", "s3://my-bucket/", "s3://b"],
)
def test_aws_needs_an_s3_location(location: str) -> None:
    with pytest.raises(IncompatibleOptionsError, match="needs an S3 store"):
        AwsFormat().encode(Pointer(location, size=10))


@pytest.mark.parametrize(
    "pointer",
    [
        Pointer("memory://t/k"),
        Pointer("memory://t/k", size=1, checksum="sha256"),
        Pointer("memory://t/k", size=1, digest="ab"),
        Pointer("memory://t/k", size=-1),
        Pointer("no-scheme", size=1),
        Pointer("memory://t/k", size=1, codec="Zstd"),
        Pointer("memory://t/k", size=1, expires=datetime(2026, 1, 1)),
    ],
    ids=["no size", "checksum only", "digest only", "negative", "no scheme", "codec", "naive"],
)
def test_native_refuses_to_write_what_it_would_not_read(pointer: Pointer) -> None:
    with pytest.raises(IncompatibleOptionsError):
        NativeFormat().encode(pointer)


@pytest.mark.parametrize("fmt", [f for f in FORMATS if not f.writable], ids=lambda f: f.name)
def test_foreign_dialects_are_read_only(fmt: PointerFormat) -> None:
    with pytest.raises(IncompatibleOptionsError, match="read-only dialect"):
        fmt.encode(Pointer(f"s3://my-bucket/{KEY}", size=1))


@pytest.mark.parametrize(
    "pointer",
    [
        EXPECTED["native"],
        Pointer("file:///srv/p/k", size=3, content_type="text/plain; charset=utf-8"),
        Pointer("s3://b-1/ключ", size=3, expires=datetime(2026, 1, 1, 0, 0, 0, 5, timezone.utc)),
    ],
)
def test_native_round_trip(pointer: Pointer) -> None:
    encoded = NativeFormat().encode(pointer)
    assert NativeFormat().decode(encoded.body, encoded.attributes) == pointer


@pytest.mark.parametrize(
    "pointer",
    [EXPECTED[name] for name in ("aws-offload", "aws-mrap")]
    + [Pointer("s3://my-bucket/a b/c?d", dialect="aws")],
)
def test_aws_round_trip(pointer: Pointer) -> None:
    encoded = AwsFormat().encode(pointer)
    assert AwsFormat().decode(encoded.body, encoded.attributes) == pointer


# -- S3 locations ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("s3://my-bucket/k", ("my-bucket", "k")),
        ("s3://my-bucket/a/b/c", ("my-bucket", "a/b/c")),
        ("s3://my-bucket//lead", ("my-bucket", "/lead")),
        (
            "s3://arn:aws:s3::123456789012:accesspoint/abcd1234.mrap/a/b",
            ("arn:aws:s3::123456789012:accesspoint/abcd1234.mrap", "a/b"),
        ),
        (
            "s3://arn:aws:s3:eu-west-1:123456789012:accesspoint/my-ap/k",
            ("arn:aws:s3:eu-west-1:123456789012:accesspoint/my-ap", "k"),
        ),
        ("s3://my-bucket", None),
        ("s3://arn:aws:s3:::my-bucket/k", None),
        ("file:///srv/k", None),
    ],
)
def test_parse_s3_location(location: str, expected: tuple[str, str] | None) -> None:
    assert parse_s3_location(location) == expected


# -- strict JSON ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"a":1,"a":2}', "duplicate key 'a'"),
        ("[NaN]", "NaN is not allowed"),
        ("[-Infinity]", "-Infinity is not allowed"),
        ("[[[[[1]]]]]", "nested deeper than 4"),
        ('{"a":{"b":{"c":{"d":{}}}}}', "nested deeper than 4"),
        ("[" * 100_000, "nested deeper than 4"),
        ("[" + "1" * 25 + "]", "too long"),
        ("[1e999]", "out of range"),
        ('["[[[[[", {"a": 1', "unbalanced"),
        ('["[[[[[", {"a" 1}]', "Expecting ':'"),
    ],
)
def test_strict_json_rejects(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        loads_strict(text)


def test_strict_json_allows_what_pointers_and_envelopes_need() -> None:
    value = {"a": {"b": {"c": "[[[[[{{{", "n": [123456789012345678901, -1.5e3]}}, "s": '\\"'}
    assert loads_strict(json.dumps(value)) == value


# -- malformed pointers ---------------------------------------------------------------------


def native(**fields: object) -> str:
    return json.dumps({"offload_pointer": 1, "location": "s3://b-1/k", "size": 5, **fields})


def aws(fields: str, cls: str = AWS_CLASS) -> str:
    return f'["{cls}",{fields}]'


MALFORMED = {
    "native duplicate key": ('{"offload_pointer":1,"location":"s3://b-1/k","size":5,"size":6}', {}),
    "native duplicate version": ('{"offload_pointer":1,"offload_pointer":1}', {}),
    "native NaN": ('{"offload_pointer":1,"location":"s3://b-1/k","size":NaN}', {}),
    "native Infinity": ('{"offload_pointer":1,"location":"s3://b-1/k","size":-Infinity}', {}),
    "native deep nesting": (native(size=[[[[1]]]]), {}),
    "native huge int": (
        '{"offload_pointer":1,"location":"s3://b-1/k","size":' + "9" * 30 + "}",
        {},
    ),
    "native unknown field": (native(colour="red"), {}),
    "native missing size": ('{"offload_pointer":1,"location":"s3://b-1/k"}', {}),
    "native size too large": (native(size=2**53 + 1), {}),
    "native bool size": (native(size=True), {}),
    "native float size": (native(size=5.0), {}),
    "native null stored_size": (native(stored_size=None), {}),
    "native checksum without digest": (native(checksum="sha256"), {}),
    "native digest without checksum": (native(digest=DIGEST), {}),
    "native uppercase digest": (native(checksum="sha256", digest=DIGEST.upper()), {}),
    "native bad codec": (native(codec="../zstd"), {}),
    "native location without scheme": (native(location="/etc/passwd"), {}),
    "native location with newline": (native(location="s3://b-1/k\nx"), {}),
    "native location too long": (native(location="s3://b-1/" + "k" * 4096), {}),
    "native lone surrogate": ('{"offload_pointer":1,"location":"s3://b-1/\\ud800","size":1}', {}),
    "native expires without Z": (native(expires="2026-12-01T00:00:00+00:00"), {}),
    "native expires impossible": (native(expires="2026-02-30T00:00:00Z"), {}),
    "native content_type not ascii": (native(content_type="text/plain; é"), {}),
    "native not an object body": ('{"offload_pointer":1,"location":"s3://b-1/k","size":5', {}),
    "aws bad bucket": (aws('{"s3BucketName":"Bad_Bucket","s3Key":"k"}'), SIZE),
    "aws ip bucket": (aws('{"s3BucketName":"192.168.1.1","s3Key":"k"}'), SIZE),
    "aws bad arn": (aws('{"s3BucketName":"arn:aws:iam::123456789012:role/x","s3Key":"k"}'), SIZE),
    "aws empty key": (aws('{"s3BucketName":"my-bucket","s3Key":""}'), SIZE),
    "aws NUL in key": (aws('{"s3BucketName":"my-bucket","s3Key":"a\\u0000b"}'), SIZE),
    "aws key too long": (aws(json.dumps({"s3BucketName": "my-bucket", "s3Key": "é" * 513})), SIZE),
    "aws lone surrogate key": (aws('{"s3BucketName":"my-bucket","s3Key":"\\udc00"}'), SIZE),
    "aws key not a string": (aws('{"s3BucketName":"my-bucket","s3Key":7}'), SIZE),
    "aws missing key": (aws('{"s3BucketName":"my-bucket"}'), SIZE),
    "aws duplicate key": (aws('{"s3BucketName":"my-bucket","s3Key":"k","s3Key":"j"}'), SIZE),
    "aws three elements": (f'["{AWS_CLASS}",{{"s3BucketName":"my-bucket","s3Key":"k"}},1]', SIZE),
    "aws object missing": (f'["{AWS_CLASS}"]', SIZE),
    "aws truncated": (f'["{AWS_CLASS}",{{"s3BucketName":"my-bucket"', SIZE),
    "aws sizes disagree": (
        aws('{"s3BucketName":"my-bucket","s3Key":"k","offloadSize":5}'),
        {"ExtendedPayloadSize": Attribute("Number", "6")},
    ),
    "aws size attributes disagree": (
        aws('{"s3BucketName":"my-bucket","s3Key":"k"}'),
        {
            "ExtendedPayloadSize": Attribute("Number", "5"),
            "SQSLargePayloadSize": Attribute("Number", "6"),
        },
    ),
    "aws size attribute not a number": (
        aws('{"s3BucketName":"my-bucket","s3Key":"k"}'),
        {"ExtendedPayloadSize": Attribute("Number", "-1")},
    ),
    "aws checksum without digest": (
        aws('{"s3BucketName":"my-bucket","s3Key":"k","offloadChecksum":"sha256"}'),
        SIZE,
    ),
    "pysqs bad bucket": (
        '{"s3BucketName":"x","s3Key":"k"}',
        {"SQSLargePayloadSize": Attribute("Number", "5")},
    ),
    "pysqs duplicate key": (
        '{"s3BucketName":"my-bucket","s3Key":"k","s3Key":"j"}',
        {"SQSLargePayloadSize": Attribute("Number", "5")},
    ),
    "dotnet empty key": (
        '{"S3Key":"","S3BucketName":"my-bucket"}',
        {"SQSLargePayloadSize": Attribute("Number", "5")},
    ),
    "big-payload missing bucket": ('{"S3Payload":{"Id":"x","Key":"k.json"}}', {}),
    "big-payload unknown field": ('{"S3Payload":{"Bucket":"my-bucket","Key":"k","Size":1}}', {}),
    "big-payload not an object": ('{"S3Payload":"s3://my-bucket/k"}', {}),
    "big-payload NaN": ('{"S3Payload":{"Bucket":"my-bucket","Key":"k","Id":NaN}}', {}),
    "bbc attribute disagrees": (
        '{"s3Payload":{"bucket":"my-bucket","key":"k"}}',
        {"S3MessageBodyKey": Attribute("String", "(other-bucket)k")},
    ),
    "bbc duplicate key": ('{"s3Payload":{"bucket":"my-bucket","key":"k"},"s3Payload":1}', {}),
}


@pytest.mark.parametrize(("body", "attributes"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_pointer_is_an_error(body: str, attributes: dict[str, Attribute]) -> None:
    raised = []
    for fmt in FORMATS:
        try:
            assert fmt.decode(body, attributes) is None
        except PointerError as exc:
            raised.append((fmt.name, exc.dialect))
    assert len(raised) == 1, raised
    assert raised[0][0] == raised[0][1]


@pytest.mark.parametrize("version", ["2", "0", "true", "1.0", '"1"', "null", "[1]"])
def test_unknown_native_version_is_unsupported(version: str) -> None:
    body = f'{{"offload_pointer":{version},"location":"s3://b-1/k","size":5,"new":1}}'
    with pytest.raises(UnsupportedVersionError) as info:
        NativeFormat().decode(body, {})
    assert info.value.version == json.loads(version)


def test_native_fields_may_come_in_any_order_and_spacing() -> None:
    body = '{ "size" : 5,\n  "location" : "s3://b-1/k", "offload_pointer" : 1 }'
    assert NativeFormat().decode(body, {}) == Pointer("s3://b-1/k", size=5)


@pytest.mark.parametrize("marker", ["ExtendedPayloadSize", "SQSLargePayloadSize"])
@pytest.mark.parametrize("fmt", [DotnetFormat(), PysqsFormat()], ids=lambda f: f.name)
def test_bare_object_dialects_accept_either_size_attribute(fmt: PointerFormat, marker: str) -> None:
    body = json.dumps({fmt.bucket_field: "my-bucket", fmt.key_field: "k"})  # type: ignore[attr-defined]
    attributes = {marker: Attribute("Number", "42")}
    assert fmt.decode(body, attributes) == Pointer("s3://my-bucket/k", size=42, dialect=fmt.name)
    assert fmt.decode(body, {}) is None


def test_bbc_without_its_attribute_is_still_read() -> None:
    body = '{"s3Payload":{"bucket":"my-bucket","key":"k"}}'
    assert BbcFormat().decode(body, {}) == Pointer("s3://my-bucket/k", dialect="bbc-sqs-extended")


def test_big_payload_location_url_is_never_used() -> None:
    body = json.dumps(
        {"S3Payload": {"Bucket": "my-bucket", "Key": "k.json", "Location": "https://evil.example/"}}
    )
    pointer = BigPayloadFormat().decode(body, {})
    assert pointer is not None
    assert pointer.location == "s3://my-bucket/k.json"


# -- the official Python clients ------------------------------------------------------------

# Runs in a child process: importing sqs_extended_client replaces boto3.Session globally.
OFFICIAL_CLIENT = textwrap.dedent(
    """
    import io, json, sys
    from types import SimpleNamespace
    from sqs_extended_client import client

    ours = sys.stdin.read()
    puts = []
    s3 = SimpleNamespace(
        put_object=lambda **kw: puts.append(kw),
        get_object=lambda Bucket, Key: {"Body": io.BytesIO(f"{Bucket}|{Key}".encode())},
    )
    written = {}
    for legacy in (False, True):
        me = SimpleNamespace(
            large_payload_support="my-bucket", always_through_s3=True, s3_client=s3,
            use_legacy_attribute=legacy, is_large=lambda body, attrs: True,
            check_message_attributes=lambda attrs: None, get_s3_key=lambda attrs: "the-key",
        )
        written[str(legacy)] = client._store_message_in_s3(me, "payload", {})
    read = client._retrieve_message_from_s3(SimpleNamespace(s3_client=s3), ours)
    print(json.dumps({"written": written, "read": read}))
    """
)


def test_official_python_client_and_aws_format_read_each_other() -> None:
    ours = AwsFormat().encode(
        Pointer(f"s3://my-bucket/{KEY}", size=7, checksum="sha256", digest=DIGEST)
    )
    result = subprocess.run(
        [sys.executable, "-c", OFFICIAL_CLIENT],
        input=ours.body,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    out = json.loads(result.stdout)
    assert out["read"] == f"my-bucket|{KEY}"
    for legacy, (body, raw_attributes) in out["written"].items():
        attributes = {
            name: Attribute(a["DataType"], a["StringValue"]) for name, a in raw_attributes.items()
        }
        assert (legacy == "True") == ("SQSLargePayloadSize" in attributes)
        assert AwsFormat().decode(body, attributes) == Pointer(
            "s3://my-bucket/the-key", size=len(b"payload"), dialect="aws"
        )


# -- signatures (native only) ---------------------------------------------------------------

MAC = bytes(range(32))
MAC_TEXT = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"


def test_native_writes_a_signature_as_trailing_kid_and_mac() -> None:
    pointer = Pointer("memory://t/k", size=5, signature=Signature("key-2026", MAC))
    encoded = NativeFormat().encode(pointer)
    assert encoded.body == (
        '{"offload_pointer":1,"location":"memory://t/k","size":5,"codec":"none",'
        f'"kid":"key-2026","mac":"{MAC_TEXT}"}}'
    )
    assert NativeFormat().decode(encoded.body, {}) == pointer


def test_aws_format_does_not_carry_signatures() -> None:
    pointer = Pointer(f"s3://my-bucket/{KEY}", size=5, signature=Signature("k", MAC))
    encoded = AwsFormat().encode(pointer)
    assert "kid" not in encoded.body
    decoded = AwsFormat().decode(encoded.body, encoded.attributes)
    assert decoded is not None
    assert decoded.signature is None


MALFORMED_SIGNATURES = {
    "kid without mac": native(kid="k"),
    "mac without kid": native(mac=MAC_TEXT),
    "kid not a string": native(kid=1, mac=MAC_TEXT),
    "kid empty": native(kid="", mac=MAC_TEXT),
    "kid with a comma": native(kid="a,b", mac=MAC_TEXT),
    "kid with a space": native(kid="a b", mac=MAC_TEXT),
    "kid too long": native(kid="k" * 257, mac=MAC_TEXT),
    "mac not a string": native(kid="k", mac=[1]),
    "mac padded": native(kid="k", mac=MAC_TEXT + "="),
    "mac standard base64": native(kid="k", mac="+/" + MAC_TEXT[2:]),
    "mac not canonical": native(kid="k", mac=MAC_TEXT[:-1] + "f"),
    "mac impossible length": native(kid="k", mac=MAC_TEXT[:41]),
    "mac of 15 bytes": native(kid="k", mac="AAECAwQFBgcICQoLDA0O"),
    "mac of 65 bytes": native(kid="k", mac="A" * 87),
    "mac empty": native(kid="k", mac=""),
}


@pytest.mark.parametrize("body", MALFORMED_SIGNATURES.values(), ids=MALFORMED_SIGNATURES.keys())
def test_malformed_signature_fields_are_a_pointer_error(body: str) -> None:
    with pytest.raises(PointerError, match=r"invalid native pointer: (kid|mac)") as info:
        NativeFormat().decode(body, {})
    assert info.value.dialect == "native"


@pytest.mark.parametrize("size", [16, 64])
def test_native_reads_macs_of_16_to_64_bytes(size: int) -> None:
    pointer = Pointer("memory://t/k", size=5, signature=Signature("alias/k", bytes(size)))
    encoded = NativeFormat().encode(pointer)
    assert NativeFormat().decode(encoded.body, {}) == pointer
