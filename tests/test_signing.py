"""Signed pointers: signing, verifying before any storage request, key rotation, and keys from
the environment and from plugins."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import BinaryIO

import pytest
from hypothesis import given, settings
from test_formats_properties import native_pointers

from offload_core import HmacSigner, Plugins, Pointer, Signer, hookimpl
from offload_core.errors import (
    ConfigurationError,
    IncompatibleOptionsError,
    PayloadNotFoundError,
    PluginConflictError,
    PointerError,
    SignatureError,
)
from offload_core.formats.native import NativeFormat
from offload_core.offloader import Offloader
from offload_core.policy import Limits
from offload_core.signing import (
    KEY_ID_VARIABLE,
    KEYS_VARIABLE,
    canonical_bytes,
    sign_pointer,
    signers_from_env,
)
from offload_core.store import ObjectInfo

SMALL = Limits(max_size=1024)
PAYLOAD = b"p" * 5000
SECRET_OLD = bytes(range(32))
SECRET_NEW = bytes(range(100, 140))
OLD = HmacSigner("key-2025", SECRET_OLD)
NEW = HmacSigner("key-2026", SECRET_NEW)
PAST = datetime(2020, 1, 1, tzinfo=timezone.utc)
SECOND = timedelta(seconds=1)


class RecordingStore:
    """A small in-memory store that records every call made to it."""

    def __init__(self, url: str = "rec://payloads") -> None:
        self.url = url
        self.objects: dict[str, bytes] = {}
        self.calls: list[str] = []

    def location(self, key: str) -> str:
        self.calls.append("location")
        return f"{self.url}/{key}"

    def key_for(self, location: str) -> str | None:
        self.calls.append("key_for")
        prefix = self.url + "/"
        return location[len(prefix) :] if location.startswith(prefix) else None

    @contextmanager
    def open_write(
        self, key: str, *, metadata: Mapping[str, str] | None = None, exclusive: bool = False
    ) -> Iterator[BinaryIO]:
        self.calls.append("open_write")
        if exclusive and key in self.objects:
            raise FileExistsError(key)
        sink = io.BytesIO()
        yield sink
        self.objects[key] = sink.getvalue()

    def open_read(self, key: str) -> BinaryIO:
        self.calls.append("open_read")
        if key not in self.objects:
            raise PayloadNotFoundError(f"no object {key!r}", location=f"{self.url}/{key}")
        return io.BytesIO(self.objects[key])

    def info(self, key: str) -> ObjectInfo:
        self.calls.append("info")
        if key not in self.objects:
            raise PayloadNotFoundError(f"no object {key!r}", location=f"{self.url}/{key}")
        return ObjectInfo(key, len(self.objects[key]))

    def delete(self, key: str) -> None:
        self.calls.append("delete")
        self.objects.pop(key, None)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        self.calls.append("list")
        for key, data in sorted(self.objects.items()):
            if key.startswith(prefix):
                yield ObjectInfo(key, len(data))


@pytest.fixture(autouse=True)
def _no_keys_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEYS_VARIABLE, raising=False)
    monkeypatch.delenv(KEY_ID_VARIABLE, raising=False)


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return (tmp_path / "store").as_uri()


@pytest.fixture
def store() -> RecordingStore:
    return RecordingStore()


def b64(secret: bytes) -> str:
    return base64.b64encode(secret).decode()


def edited(body: str, **changes: object) -> str:
    """``body`` with native pointer fields replaced (or, given ``None``, removed)."""
    doc = json.loads(body)
    for name, value in changes.items():
        if value is None:
            doc.pop(name, None)
        else:
            doc[name] = value
    return json.dumps(doc, separators=(",", ":"))


def expired_body(publisher: Offloader, signer: Signer) -> str:
    """A correctly signed pointer to a stored payload whose expiry has passed."""
    pointer = replace(publisher.store_payload(PAYLOAD), expires=PAST)
    return NativeFormat().encode(sign_pointer(pointer, signer)).body


# -- round trip ----------------------------------------------------------------------------


def test_signed_pointer_round_trips_through_a_local_store(store_url: str) -> None:
    publisher = Offloader(store_url, sign_with=OLD, expires_after=timedelta(days=1))
    msg = publisher.prepare(PAYLOAD, limits=SMALL)
    doc = json.loads(msg.body)
    assert list(doc)[-2:] == ["kid", "mac"]
    assert doc["kid"] == "key-2025"
    assert len(base64.urlsafe_b64decode(doc["mac"] + "=")) == 32
    consumer = Offloader(store_url, verify_with=["key-2025", OLD], require_signatures=True)
    assert consumer.resolve(msg.body, msg.attributes) == PAYLOAD
    with consumer.open(msg.body, msg.attributes) as stream:
        assert stream.read() == PAYLOAD


def test_the_signing_offloader_verifies_its_own_pointers_by_default(store_url: str) -> None:
    off = Offloader(store_url, sign_with=OLD, require_signatures=True)
    msg = off.prepare(PAYLOAD, limits=SMALL)
    assert off.resolve(msg.body, msg.attributes) == PAYLOAD


# -- rejection, and proof that it happens before any storage request ------------------------


@pytest.fixture
def published(store: RecordingStore) -> dict[str, str]:
    """Bodies of pointers into ``store``: signed by OLD (two of them), unsigned, signed by an
    untrusted key, and expired; each payload really stored."""
    signed = Offloader(store, sign_with=OLD, mode="always", expires_after=timedelta(days=1))
    return {
        "signed": signed.prepare(PAYLOAD).body,
        "other": signed.prepare(b"another object in the same trusted store").body,
        "unsigned": Offloader(store, mode="always").prepare(PAYLOAD).body,
        "untrusted": Offloader(store, sign_with=NEW, mode="always").prepare(PAYLOAD).body,
        "expired": expired_body(signed, OLD),
    }


def _tampered(bodies: Mapping[str, str]) -> dict[str, tuple[str, str, str | None]]:
    """Forgeries of the ``signed`` pointer: (body, expected reason, expected key id)."""
    body, other = bodies["signed"], json.loads(bodies["other"])
    doc = json.loads(body)
    mac = bytearray(base64.urlsafe_b64decode(doc["mac"] + "="))
    mac[0] ^= 1
    forged_mac = base64.urlsafe_b64encode(bytes(mac)).rstrip(b"=").decode()
    return {
        "size": (edited(body, size=doc["size"] - 1), "bad-signature", "key-2025"),
        "digest": (edited(body, digest=other["digest"]), "bad-signature", "key-2025"),
        "location": (edited(body, location=other["location"]), "bad-signature", "key-2025"),
        "expires": (edited(body, expires="2999-01-01T00:00:00Z"), "bad-signature", "key-2025"),
        "expires removed": (edited(body, expires=None), "bad-signature", "key-2025"),
        "codec": (edited(body, codec="zstd"), "bad-signature", "key-2025"),
        "content_type": (edited(body, content_type="text/html"), "bad-signature", "key-2025"),
        "mac": (edited(body, mac=forged_mac), "bad-signature", "key-2025"),
        "kid swapped": (edited(body, kid="key-2026"), "bad-signature", "key-2026"),
        "unsigned": (bodies["unsigned"], "unsigned", None),
        "signature removed": (edited(body, kid=None, mac=None), "unsigned", None),
        "unknown key": (bodies["untrusted"], "unknown-key", "key-2026"),
        "unknown kid": (edited(body, kid="key-1999"), "unknown-key", "key-1999"),
        "expired": (bodies["expired"], "expired", "key-2025"),
    }


CASES = [
    "size",
    "digest",
    "location",
    "expires",
    "expires removed",
    "codec",
    "content_type",
    "mac",
    "kid swapped",
    "unsigned",
    "signature removed",
    "unknown key",
    "unknown kid",
    "expired",
]


@pytest.mark.parametrize("case", CASES)
def test_requiring_consumer_rejects_before_any_storage_request(
    store: RecordingStore, published: dict[str, str], case: str
) -> None:
    body, reason, key_id = _tampered(published)[case]
    trusted = [OLD, NEW] if case == "kid swapped" else [OLD]
    consumer = Offloader(store, verify_with=trusted, require_signatures=True)
    store.calls.clear()
    with pytest.raises(SignatureError) as info:
        consumer.resolve(body)
    assert (info.value.reason, info.value.key_id) == (reason, key_id)
    assert isinstance(info.value, PointerError)
    with pytest.raises(SignatureError):
        consumer.open(body)
    assert store.calls == []  # not even the allowlist lookup saw the location


def test_accepted_pointer_is_then_read_from_the_store(
    store: RecordingStore, published: dict[str, str]
) -> None:
    consumer = Offloader(store, verify_with=[OLD], require_signatures=True)
    store.calls.clear()
    assert consumer.resolve(published["signed"]) == PAYLOAD
    assert store.calls == ["key_for", "open_read"]


def test_consumer_not_requiring_signatures_still_rejects_bad_and_expired_ones(
    store: RecordingStore, published: dict[str, str]
) -> None:
    consumer = Offloader(store, verify_with=[OLD])
    forgeries = _tampered(published)
    store.calls.clear()
    for case in ("size", "location", "mac", "expired"):
        body, reason, _ = forgeries[case]
        with pytest.raises(SignatureError) as info:
            consumer.resolve(body)
        assert info.value.reason == reason
    assert store.calls == []
    # Without a trusted signature it reads as before: stripping the signature gains nothing.
    assert consumer.resolve(published["unsigned"]) == PAYLOAD
    assert consumer.resolve(published["untrusted"]) == PAYLOAD


def test_consumer_without_signing_options_ignores_signatures_it_cannot_check(
    store: RecordingStore, published: dict[str, str]
) -> None:
    consumer = Offloader(store)
    assert consumer.signing.trusted == frozenset()
    assert consumer.resolve(published["signed"]) == PAYLOAD


# -- keys ----------------------------------------------------------------------------------


def test_key_rotation_old_key_still_verifies_while_the_new_one_signs(store_url: str) -> None:
    before = Offloader(store_url, sign_with=OLD).prepare(PAYLOAD, limits=SMALL)
    after = Offloader(store_url, sign_with=NEW).prepare(PAYLOAD, limits=SMALL)
    assert json.loads(after.body)["kid"] == "key-2026"
    consumer = Offloader(store_url, verify_with=[OLD, NEW], require_signatures=True)
    assert consumer.resolve(before.body) == PAYLOAD
    assert consumer.resolve(after.body) == PAYLOAD
    retired = Offloader(store_url, verify_with=[NEW], require_signatures=True)
    assert retired.resolve(after.body) == PAYLOAD
    with pytest.raises(SignatureError) as info:
        retired.resolve(before.body)
    assert info.value.reason == "unknown-key"


def test_keys_and_signing_key_from_the_environment(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    unpadded_urlsafe = base64.urlsafe_b64encode(SECRET_NEW).rstrip(b"=").decode()
    monkeypatch.setenv(KEYS_VARIABLE, f" key-2025:{b64(SECRET_OLD)} , key-2026:{unpadded_urlsafe},")
    monkeypatch.setenv(KEY_ID_VARIABLE, "key-2026")
    old = Offloader(store_url, sign_with="key-2025").prepare(PAYLOAD, limits=SMALL)
    off = Offloader(store_url, require_signatures=True)
    assert off.signing.trusted == {"key-2025", "key-2026"}
    assert off.pointer_format == "native"
    msg = off.prepare(PAYLOAD, limits=SMALL)
    assert json.loads(msg.body)["kid"] == "key-2026"
    assert msg.pointer is not None
    assert msg.pointer.signature is not None
    assert NEW.verify(canonical_bytes(msg.pointer), msg.pointer.signature.mac)
    assert off.resolve(msg.body) == PAYLOAD
    assert off.resolve(old.body) == PAYLOAD


def test_signers_from_env_reads_each_key() -> None:
    env = {KEYS_VARIABLE: f"a:{b64(SECRET_OLD)},arn:aws:kms:eu-west-1:1:key/x:{b64(SECRET_NEW)}"}
    signers = signers_from_env(env)
    assert sorted(signers) == ["a", "arn:aws:kms:eu-west-1:1:key/x"]
    assert signers["a"].sign(b"x") == OLD.sign(b"x")
    assert signers_from_env({}) == {}
    assert signers_from_env({KEYS_VARIABLE: " "}) == {}


SECRET_TEXT = b64(b"s" * 40)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (SECRET_TEXT, "entry 1 must be 'key-id:base64-secret'"),
        (f":{SECRET_TEXT}", "entry 1 must be 'key-id:base64-secret'"),
        (f"a:{b64(SECRET_OLD)},bad id:{SECRET_TEXT}", "entry 2 has an invalid key id"),
        (f"k:{SECRET_TEXT}!", "(key 'k'): the secret is not base64"),
        (f"k:{b64(b'short secret')}", "has 12 bytes; HMAC-SHA256 keys need at least 32"),
        (f"k:{SECRET_TEXT},k:{SECRET_TEXT}", "entry 2: key id 'k' appears more than once"),
    ],
)
def test_malformed_signing_keys_are_a_clear_configuration_error(
    value: str, message: str, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        signers_from_env({KEYS_VARIABLE: value})
    monkeypatch.setenv(KEYS_VARIABLE, value)
    with pytest.raises(ConfigurationError) as info:
        Offloader(store_url)
    assert SECRET_TEXT not in str(info.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sign_with": "key-2099"}, "sign_with names unknown signing key"),
        ({"verify_with": ["key-2099"]}, "verify_with names unknown signing key"),
        ({"require_signatures": True}, "require_signatures needs a key"),
        ({"verify_with": [], "sign_with": OLD, "require_signatures": True}, "needs a key"),
        ({"sign_with": HmacSigner("k", SECRET_OLD), "verify_with": ["k", "x"]}, "'x'"),
    ],
)
def test_signing_options_that_cannot_work_fail_at_construction(
    store_url: str, options: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Offloader(store_url, **options)  # type: ignore[arg-type]


def test_signing_key_id_from_the_environment_must_be_known(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ID_VARIABLE, "key-2099")
    with pytest.raises(ConfigurationError, match="unknown signing key"):
        Offloader(store_url)


def test_hmac_signer_checks_its_key_and_hides_its_secret() -> None:
    with pytest.raises(ConfigurationError, match="at least 32"):
        HmacSigner("k", b"x" * 31)
    with pytest.raises(ConfigurationError, match="key id"):
        HmacSigner("has space", SECRET_OLD)
    assert isinstance(OLD, Signer)
    assert repr(OLD) == "HmacSigner(key_id='key-2025')"
    mac = OLD.sign(b"data")
    assert OLD.verify(b"data", mac)
    assert not OLD.verify(b"data!", mac)
    assert not NEW.verify(b"data", mac)
    assert not OLD.verify(b"data", mac[:16])


# -- plugins -------------------------------------------------------------------------------


class KmsLikeSigner:
    """Stands in for a KMS-backed signer (GenerateMac/VerifyMac): HMAC-SHA512, key inside."""

    def __init__(self, key_id: str) -> None:
        self.key_id = key_id
        self._key = hashlib.sha256(key_id.encode()).digest()

    def sign(self, data: bytes) -> bytes:
        return hmac.digest(self._key, data, "sha512")

    def verify(self, data: bytes, mac: bytes) -> bool:
        return hmac.compare_digest(self.sign(data), mac)


class SignerPlugin:
    """A plugin that supplies one signer and counts how often it was built."""

    key_id = "alias/orders-mac"

    def __init__(self) -> None:
        self.built = 0

    @hookimpl
    def offload_register_signers(self, register):  # type: ignore[no-untyped-def]
        register(self.key_id, self.make, description="HMAC-SHA512 in KMS")

    def make(self) -> Signer:
        self.built += 1
        return KmsLikeSigner(self.key_id)


def test_a_plugin_supplies_a_signer_built_only_when_used(store_url: str) -> None:
    plugin = SignerPlugin()
    plugins = Plugins.from_entry_points(env={})
    plugins.register(plugin, name="kms-signer")
    consumer = Offloader(store_url, plugins=plugins, require_signatures=True)
    assert consumer.signing.trusted == {"alias/orders-mac"}
    assert plugin.built == 0
    publisher = Offloader(store_url, plugins=plugins, sign_with="alias/orders-mac")
    assert plugin.built == 1
    msg = publisher.prepare(PAYLOAD, limits=SMALL)
    assert msg.pointer is not None
    assert msg.pointer.signature is not None
    assert len(msg.pointer.signature.mac) == 64
    assert consumer.resolve(msg.body) == PAYLOAD
    assert consumer.resolve(msg.body) == PAYLOAD
    assert plugin.built == 2  # one for each offloader, then reused
    row = next(r for r in plugins.describe() if r["name"] == "kms-signer")
    assert row["signers"] == [
        {
            "name": "alias/orders-mac",
            "target": row["signers"][0]["target"],  # type: ignore[index]
            "description": "HMAC-SHA512 in KMS",
        }
    ]
    assert "offload_register_signers" in row["hooks"]  # type: ignore[operator]


def test_a_key_from_both_a_plugin_and_the_environment_is_a_conflict(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugins = Plugins.from_entry_points(env={})
    plugins.register(SignerPlugin(), name="kms-signer")
    monkeypatch.setenv(KEYS_VARIABLE, f"alias/orders-mac:{b64(SECRET_OLD)}")
    with pytest.raises(PluginConflictError) as info:
        Offloader(store_url, plugins=plugins)
    assert info.value.plugins == (KEYS_VARIABLE, "kms-signer")


def test_a_plugin_signer_under_another_key_id_is_refused(store_url: str) -> None:
    class Mislabelled:
        @hookimpl
        def offload_register_signers(self, register):  # type: ignore[no-untyped-def]
            register("key-a", lambda: KmsLikeSigner("key-b"))

    plugins = Plugins.from_entry_points(env={})
    plugins.register(Mislabelled(), name="mislabelled")
    with pytest.raises(ConfigurationError, match="registered as 'key-a' has key id 'key-b'"):
        Offloader(store_url, plugins=plugins, sign_with="key-a")


# -- formats and failures --------------------------------------------------------------------


def test_signing_with_the_aws_format_fails_at_construction() -> None:
    s3 = RecordingStore("s3://orders-payloads/p")
    assert Offloader(s3).pointer_format == "aws"
    assert Offloader(s3, sign_with=OLD).pointer_format == "native"
    with pytest.raises(IncompatibleOptionsError, match="cannot carry signatures"):
        Offloader(s3, pointer_format="aws", sign_with=OLD)
    assert s3.calls.count("open_write") == 0


def test_requiring_consumer_refuses_aws_format_pointers_as_unsigned() -> None:
    s3 = RecordingStore("s3://orders-payloads/p")
    msg = Offloader(s3, mode="always").prepare(PAYLOAD)
    assert msg.body.startswith('["software.amazon.payloadoffloading.PayloadS3Pointer"')
    consumer = Offloader(s3, verify_with=[OLD], require_signatures=True)
    s3.calls.clear()
    with pytest.raises(SignatureError) as info:
        consumer.resolve(msg.body, msg.attributes)
    assert (info.value.reason, info.value.dialect) == ("unsigned", "aws")
    assert s3.calls == []
    assert (
        consumer.resolve("an inline message is not a pointer")
        == b"an inline message is not a pointer"
    )


class BrokenSigner:
    """Signs with too short a MAC, or fails the way a remote key service can."""

    key_id = "broken"

    def __init__(self, mac: bytes | None) -> None:
        self.mac = mac

    def sign(self, data: bytes) -> bytes:
        if self.mac is None:
            raise TimeoutError("key service did not answer")
        return self.mac

    def verify(self, data: bytes, mac: bytes) -> bool:
        return False


@pytest.mark.parametrize(
    ("mac", "error"), [(None, TimeoutError), (b"short", ConfigurationError)], ids=["fails", "short"]
)
def test_failed_signing_removes_the_stored_payload(
    store: RecordingStore, mac: bytes | None, error: type[Exception]
) -> None:
    off = Offloader(store, sign_with=BrokenSigner(mac))
    with pytest.raises(error):
        off.prepare(PAYLOAD, limits=SMALL)
    assert store.objects == {}
    assert "open_write" in store.calls


# -- canonical bytes -------------------------------------------------------------------------

HELLO = hashlib.sha256(b"hello").hexdigest()


def test_canonical_bytes_are_pinned() -> None:
    pointer = Pointer(
        "s3://b-1/k",
        size=5,
        checksum="sha256",
        digest=HELLO,
        expires=datetime(2026, 12, 1, 1, tzinfo=timezone(timedelta(hours=1))),
    )
    expected = (
        b"offload-pointer-signature:1\n"
        b'{"checksum":"sha256","codec":"none","content_type":null,'
        b'"digest":"' + HELLO.encode() + b'","expires":"2026-12-01T00:00:00Z",'
        b'"location":"s3://b-1/k","size":5,"stored_size":null}'
    )
    assert canonical_bytes(pointer) == expected
    assert canonical_bytes(replace(pointer, dialect="aws")) == expected
    assert canonical_bytes(sign_pointer(pointer, OLD)) == expected
    mac = HmacSigner("k", bytes(32)).sign(expected)
    assert mac.hex() == "43bd7aeefb842e1fb8cc2cb264863726a958ed352137ea408121c07e4fe14c61"


def test_canonical_bytes_tell_every_field_apart() -> None:
    base = Pointer("s3://b-1/k", size=5, stored_size=5)
    variants = [
        base,
        replace(base, size=None),
        replace(base, stored_size=None),
        replace(base, size=5, stored_size=None, codec="5"),
        replace(base, location="s3://b-1/k5"),
        replace(base, content_type="5"),
        replace(base, checksum="sha256", digest="05"),
        replace(base, checksum="sha2", digest="5605"),
        replace(base, expires=PAST),
    ]
    assert len({canonical_bytes(p) for p in variants}) == len(variants)


@settings(max_examples=100, deadline=None)
@given(native_pointers())
def test_signature_survives_the_native_round_trip(pointer: Pointer) -> None:
    signed = sign_pointer(pointer, OLD)
    encoded = NativeFormat().encode(signed)
    decoded = NativeFormat().decode(encoded.body, encoded.attributes)
    assert decoded == signed
    assert canonical_bytes(decoded) == canonical_bytes(pointer)
    assert OLD.verify(canonical_bytes(decoded), decoded.signature.mac)  # type: ignore[union-attr]


def test_a_pointer_signed_by_hand_is_checked_like_any_other(
    store: RecordingStore,
) -> None:
    publisher = Offloader(store, mode="always")
    pointer = sign_pointer(publisher.store_payload(PAYLOAD), NEW)
    consumer = Offloader(store, verify_with=[NEW], require_signatures=True)
    assert consumer.read_pointer(pointer) == PAYLOAD
    with pytest.raises(SignatureError, match="altered or forged"):
        consumer.read_pointer(replace(pointer, size=4999))
    consumer.signing.check(sign_pointer(replace(pointer, expires=PAST), NEW), now=PAST - SECOND)
    with pytest.raises(SignatureError, match="expired"):
        consumer.signing.check(sign_pointer(replace(pointer, expires=PAST), NEW), now=PAST)
