"""The s3 backend against the session's moto server, over HTTP.

The conformance suite (single-stream and ranged reads); what each write sends (encryption, ACL,
metadata, checksums, the expected bucket owner, conditional create); bounded memory; aborted
uploads; resumed downloads; errors; and a subscriber in another account reading the publisher's
bucket.

Only what moto cannot produce is faked, each time by a real HTTP peer: a TCP relay that cuts
responses mid-body (network failures), and a stub endpoint answering one fixed S3 error
(throttling, 5xx, ACLs disabled by Object Ownership), which moto never sends.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import subprocess
import sys
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fsspec.asyn import sync
from s3_faults import CuttingProxy, ErrorStub

import offload_backends.plugin
from offload_backends._s3_boto3 import boto3_s3_client
from offload_backends._s3_checksums import UPLOAD_ALGORITHMS, encode, new_digest
from offload_backends._s3_io import MultipartWriter
from offload_backends._s3_limits import (
    GROW_AFTER,
    MAX_PARTS,
    READ_WINDOW,
    grown_part_size,
    read_plan,
)
from offload_backends.s3 import BucketNotFoundError, S3Store
from offload_backends.s3_factory import open_store
from offload_core import Plugins
from offload_core.errors import (
    AccessDeniedError,
    ConfigurationError,
    DigestMismatchError,
    MissingDependencyError,
    PayloadNotFoundError,
    SizeMismatchError,
    StorageError,
    TransientStorageError,
)
from offload_core.offloader import Offloader
from offload_core.testing import BackendConformance
from offload_core.testing.aws import DEFAULT_ACCOUNT, MotoServer

MiB = 1024 * 1024
PART = 5 * MiB  # S3's smallest part: payloads above it go multipart
OTHER_ACCOUNT = "222222222222"

MakeStore = Callable[..., S3Store]


@pytest.fixture(scope="module")
def bucket(moto_server: MotoServer) -> str:
    name = f"offload-s3-{uuid.uuid4().hex[:12]}"
    moto_server.client("s3").create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="module")
def s3(moto_server: MotoServer) -> Any:
    """A boto3 client, to look at what the store did from outside."""
    return moto_server.client("s3")


@pytest.fixture
def make_store(moto_server: MotoServer, bucket: str) -> MakeStore:
    """Stores under a fresh prefix of the module's bucket, with the smallest part size, and
    payloads over one part uploaded in parts."""

    def make(**options: Any) -> S3Store:
        connection = {} if "client" in options else moto_server.storage_options()
        options = {"part_size": PART, "multipart_threshold": PART, **connection, **options}
        return S3Store(f"s3://{bucket}/{uuid.uuid4().hex}", **options)

    return make


def write(store: S3Store, key: str, data: bytes, **options: Any) -> None:
    with store.open_write(key, **options) as sink:
        for start in range(0, len(data), MiB):
            sink.write(data[start : start + MiB])


def read(store: S3Store, key: str) -> bytes:
    with store.open_read(key) as source:
        return source.read()


def read_sized(store: S3Store, key: str, size: int) -> bytes:
    with store.open_read_sized(key, size) as source:
        return source.read()


def object_key(store: S3Store, key: str) -> str:
    return f"{store.prefix}/{key}"


def uploads_in_progress(s3: Any, store: S3Store) -> list[Any]:
    found: list[Any] = s3.list_multipart_uploads(Bucket=store.bucket, Prefix=store.prefix).get(
        "Uploads", []
    )
    return found


def record_requests(store: S3Store) -> list[tuple[str, dict[str, str]]]:
    """(operation, headers) of every request the store's client sends, from botocore's events."""
    seen: list[tuple[str, dict[str, str]]] = []
    client = sync(store.fs.loop, store.fs.set_session)

    def on_send(request: Any, event_name: str, **_: Any) -> None:
        headers = {
            k.lower(): v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()
        }
        seen.append((event_name.rsplit(".", 1)[-1], headers))

    client.meta.events.register("before-send.s3", on_send)
    return seen


# -- conformance --------------------------------------------------------------------------------


class TestS3Store(BackendConformance):
    """One ``GetObject`` stream per read; the 20 MiB payload goes up in four parts."""

    supports_metadata = True

    @pytest.fixture
    def store(self, make_store: MakeStore) -> S3Store:
        return make_store(read_concurrency=1)


class TestS3StoreRangedReads(TestS3Store):
    """Objects larger than a part are read as concurrent ranged requests."""

    @pytest.fixture
    def store(self, make_store: MakeStore) -> S3Store:
        return make_store(read_concurrency=3)


class TestS3StoreOnBoto3(TestS3Store):
    """The same store with every request on a boto3 client (the Lambda path, no s3fs)."""

    @pytest.fixture
    def store(self, make_store: MakeStore, moto_server: MotoServer) -> S3Store:
        return make_boto3_store(make_store, moto_server, read_concurrency=1)


class TestS3StoreOnBoto3RangedReads(TestS3Store):
    @pytest.fixture
    def store(self, make_store: MakeStore, moto_server: MotoServer) -> S3Store:
        return make_boto3_store(make_store, moto_server, read_concurrency=3)


class SizedReadsStore(S3Store):
    """Every read through :meth:`S3Store.open_read_sized`, told the size ``HeadObject`` gives."""

    def open_read(self, key: str) -> Any:
        return self.open_read_sized(key, self.info(key).size)


class TestS3StoreSizedReads(TestS3Store):
    """Reads told the object's size (as the Offloader tells them): ranges from the first
    request on."""

    @pytest.fixture
    def store(self, make_store: MakeStore, moto_server: MotoServer) -> S3Store:
        url = make_store().url
        return SizedReadsStore(url, part_size=PART, **moto_server.storage_options())


class TestS3StoreOnBoto3SizedReads(TestS3Store):
    @pytest.fixture
    def store(self, make_store: MakeStore, moto_server: MotoServer) -> S3Store:
        return SizedReadsStore(make_store().url, part_size=PART, client=moto_server.client("s3"))


def make_boto3_store(make_store: MakeStore, moto_server: MotoServer, **options: Any) -> S3Store:
    client = moto_server.client("s3")
    store = make_store(client=client, **options)
    assert store.fs is None
    assert store.client is client
    return store


# -- selection and configuration ----------------------------------------------------------------


def test_s3_urls_select_this_backend() -> None:
    plugins = Plugins.from_modules(offload_backends.plugin)
    entry = plugins.entry_for_url("s3://bucket/prefix")
    assert (entry.name, entry.extra) == ("s3", "aws")
    assert entry.load() is open_store


def test_the_offloader_opens_s3_urls_with_this_store(moto_server: MotoServer, bucket: str) -> None:
    off = Offloader(f"s3://{bucket}/orders/", storage_options=moto_server.storage_options())
    assert isinstance(off.store, S3Store)
    assert off.store.url == f"s3://{bucket}/orders"
    assert off.pointer_format == "aws"


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("s3://b-1", "s3://b-1"),
        ("s3://b-1/", "s3://b-1"),
        ("s3://b-1/a/b/", "s3://b-1/a/b"),
        (
            "s3://arn:aws:s3:eu-west-1:123456789012:accesspoint/payloads/p",
            "s3://arn:aws:s3:eu-west-1:123456789012:accesspoint/payloads/p",
        ),
    ],
)
def test_store_urls_are_canonical(url: str, canonical: str) -> None:
    store = S3Store(url, key="k", secret="s")
    assert store.url == canonical
    assert store.key_for(canonical + "/k") == "k"


@pytest.mark.parametrize(
    "url",
    ["s3://", "s3:///p", "s3://Bad_Bucket/p", "s3://b-1//p", "s3://b-1/a/../p", "gs://b-1/p"],
)
def test_bad_store_urls_are_refused(url: str) -> None:
    with pytest.raises(ConfigurationError):
        S3Store(url)


@pytest.mark.parametrize(
    "options",
    [
        {"part_size": 4 * MiB},
        {"multipart_threshold": 0},
        {"multipart_threshold": 6 * 1024 * MiB},
        {"concurrency": 0},
        {"read_retries": -1},
        {"sse": "rot13"},
        {"sse": "AES256", "kms_key_id": "k"},
        {"acl": "everyone"},
        {"expected_bucket_owner": "me"},
        {"checksum_algorithm": "MD5"},
        {"checksum_type": "PARTIAL"},
        {"checksum_algorithm": "CRC64NVME", "checksum_type": "COMPOSITE"},
    ],
)
def test_bad_options_are_refused_before_any_request(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        S3Store("s3://b-1/p", **options)


def test_a_botocore_that_would_drop_parameters_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """s3fs drops parameters its botocore does not know; IfNoneMatch must never be dropped."""
    import botocore

    monkeypatch.setattr(botocore, "__version__", "1.35.99")
    with pytest.raises(MissingDependencyError, match=r"1\.36 or later") as raised:
        S3Store("s3://b-1/p")
    assert raised.value.extra == "aws"


# -- what a write sends -------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1000, PART + 10], ids=["put", "multipart"])
def test_sse_kms_uses_the_configured_key(
    make_store: MakeStore, s3: Any, moto_server: MotoServer, size: int
) -> None:
    key_id = moto_server.client("kms").create_key()["KeyMetadata"]["KeyId"]
    store = make_store(kms_key_id=key_id)
    write(store, "k", b"x" * size)
    head = s3.head_object(Bucket=store.bucket, Key=object_key(store, "k"))
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"].endswith(key_id)
    assert read(store, "k") == b"x" * size


@pytest.mark.parametrize("size", [1000, PART + 10], ids=["put", "multipart"])
def test_sse_s3_and_a_canned_acl(make_store: MakeStore, s3: Any, size: int) -> None:
    store = make_store(sse="AES256", acl="authenticated-read")
    write(store, "k", b"x" * size)
    key = object_key(store, "k")
    assert s3.head_object(Bucket=store.bucket, Key=key)["ServerSideEncryption"] == "AES256"
    grants = s3.get_object_acl(Bucket=store.bucket, Key=key)["Grants"]
    assert any(
        g["Grantee"].get("URI", "").endswith("/AuthenticatedUsers") and g["Permission"] == "READ"
        for g in grants
    )


def test_no_acl_is_sent_unless_configured(make_store: MakeStore) -> None:
    store = make_store(skip_instance_cache=True)
    seen = record_requests(store)
    write(store, "small", b"x")
    write(store, "big", b"x" * (PART + 1))
    assert seen
    assert not any("x-amz-acl" in headers for _, headers in seen)


def test_metadata_is_visible_to_operators(make_store: MakeStore, s3: Any) -> None:
    store = make_store()
    metadata = {"content-type": "application/json", "offload-codec": "none", "Offload-Size": "2"}
    write(store, "k", b"{}", metadata=metadata)
    head = s3.head_object(Bucket=store.bucket, Key=object_key(store, "k"))
    assert head["ContentType"] == "application/json"
    assert head["Metadata"] == {k.lower(): v for k, v in metadata.items()}


@pytest.mark.parametrize("size", [1000, 2 * PART + 1], ids=["put", "multipart"])
def test_an_offloaded_payload_says_what_it_is(make_store: MakeStore, s3: Any, size: int) -> None:
    """What ``aws s3api head-object`` shows an operator about an object the Offloader wrote."""
    store = make_store()
    off = Offloader(store, compression="zstd", expires_after=timedelta(hours=1), mode="always")
    payload = json.dumps(["x" * 40] * (size // 45)).encode()
    message = off.prepare(payload, content_type="application/json")
    assert message.pointer is not None
    assert message.pointer.expires is not None
    key = store.key_for(message.pointer.location)
    assert key is not None
    head = s3.head_object(Bucket=store.bucket, Key=object_key(store, key))
    assert head["ContentType"] == "application/json"
    assert head["Metadata"] == {
        "offload-size": str(len(payload)),
        "offload-codec": "zstd",
        "offload-checksum": "sha256",
        "offload-expires": message.pointer.expires.isoformat(),
        "content-type": "application/json",
    }


@pytest.mark.parametrize(
    "metadata",
    [{"bad name": "v"}, {"k": "naïve"}, {"k": "line\nbreak"}, {"k": "v" * 2048}],
)
def test_metadata_s3_cannot_store_is_refused(
    make_store: MakeStore, metadata: dict[str, str]
) -> None:
    store = make_store()
    with pytest.raises(StorageError, match="metadata"):
        store.open_write("k", metadata=metadata)
    assert list(store.list()) == []


def test_every_request_names_the_expected_bucket_owner(make_store: MakeStore) -> None:
    store = make_store(
        expected_bucket_owner=DEFAULT_ACCOUNT, read_concurrency=2, skip_instance_cache=True
    )
    seen = record_requests(store)
    write(store, "small", b"x")
    write(store, "big", b"x" * (PART + 1), exclusive=True)
    with pytest.raises(RuntimeError), store.open_write("failed") as sink:  # noqa: PT012
        sink.write(b"x" * (2 * PART + 1))  # past the threshold: the upload has started
        raise RuntimeError("publisher crashed")
    assert read(store, "big") == b"x" * (PART + 1)  # ranged: two GETs
    store.info("small")
    assert [info.key for info in store.list()] == ["big", "small"]
    store.delete("small")
    operations = {operation for operation, _ in seen}
    assert operations >= {
        "PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload",
        "AbortMultipartUpload", "GetObject", "HeadObject", "ListObjectsV2", "DeleteObject",
    }  # fmt: skip
    owners = {headers.get("x-amz-expected-bucket-owner") for _, headers in seen}
    assert owners == {DEFAULT_ACCOUNT}


# -- checksums ----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1000, 2 * PART + 123], ids=["put", "multipart"])
def test_uploads_carry_a_full_object_crc32(make_store: MakeStore, s3: Any, size: int) -> None:
    data = os.urandom(size)
    expected = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    store = make_store(skip_instance_cache=True)
    seen = record_requests(store)
    write(store, "k", data)
    # What the store sent, which S3 checks against the bytes it assembled...
    commit = "CompleteMultipartUpload" if size > PART else "PutObject"
    assert [h["x-amz-checksum-crc32"] for op, h in seen if op == commit] == [expected]
    # ...and what the endpoint, which computes its own, keeps.
    head = s3.head_object(Bucket=store.bucket, Key=object_key(store, "k"), ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == expected
    if size > PART:
        assert head["ChecksumType"] == "FULL_OBJECT"


def test_the_whole_object_crc_without_awscrt(
    make_store: MakeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without awscrt the part CRCs cannot be combined: the parts are read a second time."""
    with monkeypatch.context() as hidden:  # while the store picks its checksum functions
        for name in [m for m in sys.modules if m == "awscrt" or m.startswith("awscrt.")]:
            hidden.setitem(sys.modules, name, None)
        store = make_store(skip_instance_cache=True)
    data = os.urandom(2 * PART + 5)
    seen = record_requests(store)
    write(store, "k", data)
    sent = [h["x-amz-checksum-crc32"] for op, h in seen if op == "CompleteMultipartUpload"]
    assert sent == [base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()]


@pytest.mark.parametrize("algorithm", UPLOAD_ALGORITHMS)
def test_each_upload_algorithm_round_trips(make_store: MakeStore, s3: Any, algorithm: str) -> None:
    digest = new_digest(algorithm)
    if digest is None:
        pytest.skip(f"no {algorithm} implementation installed")
    data = os.urandom(PART + 1000)
    digest.update(data)
    store = make_store(checksum_algorithm=algorithm)
    write(store, "k", data)
    head = s3.head_object(Bucket=store.bucket, Key=object_key(store, "k"), ChecksumMode="ENABLED")
    # moto combines the parts' bytes itself: its value checks ours end to end.
    assert head[f"Checksum{algorithm}"] == encode(digest.digest())
    assert read(store, "k") == data


def test_composite_checksums_describe_the_parts(make_store: MakeStore, s3: Any) -> None:
    store = make_store(checksum_type="COMPOSITE")
    data = os.urandom(2 * PART + 1)
    write(store, "k", data)
    got = s3.get_object(Bucket=store.bucket, Key=object_key(store, "k"), ChecksumMode="ENABLED")
    got["Body"].close()
    assert got["ChecksumType"] == "COMPOSITE"
    assert got["ChecksumCRC32"].endswith("-3")  # a checksum of part checksums
    assert read(store, "k") == data  # nothing to check the whole object against


def test_checksums_can_be_turned_off(make_store: MakeStore, s3: Any) -> None:
    store = make_store(checksum_algorithm=None)
    write(store, "k", b"x" * (PART + 1))
    head = s3.head_object(Bucket=store.bucket, Key=object_key(store, "k"), ChecksumMode="ENABLED")
    assert "ChecksumCRC32" not in head
    assert read(store, "k") == b"x" * (PART + 1)


@pytest.mark.parametrize(
    ("read_concurrency", "size"),
    [(1, PART + 1000), (3, PART + 1000), (None, 300_000)],
    ids=["stream", "ranged", "sized-small"],
)
def test_a_read_that_does_not_match_the_stored_checksum_fails(
    make_store: MakeStore, s3: Any, read_concurrency: int | None, size: int
) -> None:
    store = make_store(read_concurrency=read_concurrency)
    data = os.urandom(size)
    wrong = base64.b64encode((zlib.crc32(data) ^ 1).to_bytes(4, "big")).decode()
    # moto stores a checksum it is given without checking it, as a corrupt upload would look.
    s3.put_object(
        Bucket=store.bucket,
        Key=object_key(store, "k"),
        Body=data,
        ChecksumAlgorithm="CRC32",
        ChecksumCRC32=wrong,
    )
    opened = store.open_read("k") if read_concurrency else store.open_read_sized("k", size)
    with pytest.raises(DigestMismatchError) as raised, opened as source:  # noqa: PT012
        while source.read(MiB):
            pass
    assert raised.value.expected == wrong


# -- exclusive writes ---------------------------------------------------------------------------


@pytest.mark.parametrize("size", [10, PART + 10], ids=["put", "multipart"])
def test_an_object_created_during_an_exclusive_write_wins(
    make_store: MakeStore, s3: Any, size: int
) -> None:
    store = make_store()
    with pytest.raises(FileExistsError), store.open_write("k", exclusive=True) as sink:  # noqa: PT012
        sink.write(b"x" * size)
        s3.put_object(Bucket=store.bucket, Key=object_key(store, "k"), Body=b"the other writer")
    assert read(store, "k") == b"the other writer"
    assert uploads_in_progress(s3, store) == []


def test_a_retried_content_addressed_publish_writes_once(moto_server: MotoServer, s3: Any) -> None:
    name = f"offload-versions-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    off = Offloader(
        f"s3://{name}/p",
        storage_options={
            "part_size": PART,
            "multipart_threshold": PART,
            **moto_server.storage_options(),
        },
        content_addressed=True,
        mode="always",
    )
    payload = base64.b64encode(os.urandom(PART))  # text: the AWS pointer format stores text
    first = off.prepare(payload)
    again = off.prepare(payload)
    assert first.body == again.body
    versions = s3.list_object_versions(Bucket=name)["Versions"]
    assert len(versions) == 1
    assert off.resolve(again.body, again.attributes) == payload


# -- bounded memory and failures ----------------------------------------------------------------


MEMORY_PROBE = """
import json, os, sys
from offload_backends.s3 import S3Store

def peak():  # high-water RSS since the last reset, in bytes
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) * 1024 for l in status if l.startswith("VmHWM"))

def reset():
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")

url, size, part = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
options = json.loads(sys.argv[4])
store = S3Store(
    url, part_size=part, multipart_threshold=part, concurrency=2, read_concurrency=2, **options
)
block = os.urandom(1 << 20)
list(store.list("warm-up"))
reset(); idle = peak()
with store.open_write("big") as sink:
    for index in range(size >> 20):
        sink.write(index.to_bytes(4, "big") + block[4:])
written = peak() - idle
reset(); idle = peak()
total = 0
with store.open_read("big") as source:
    while chunk := source.read(1 << 20):
        total += len(chunk)
print(json.dumps({"write": written, "read": peak() - idle, "total": total}))
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc")
def test_a_large_payload_streams_in_bounded_memory(moto_server: MotoServer, bucket: str) -> None:
    """Peak RSS of a client process (moto runs in this one) writing and reading 96 MiB."""
    size = 96 * MiB
    url = f"s3://{bucket}/{uuid.uuid4().hex}"
    probe = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, url, str(size), str(PART),
         json.dumps(moto_server.storage_options())],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    peaks = json.loads(probe.stdout.strip().splitlines()[-1])
    bound = 3 * PART + 24 * MiB  # concurrency + 1 parts, and the first use of the HTTP layers
    assert peaks["total"] == size
    assert peaks["write"] < bound, f"write grew RSS by {peaks['write'] / MiB:.1f} MiB"
    assert peaks["read"] < bound, f"read grew RSS by {peaks['read'] / MiB:.1f} MiB"


def operations(seen: list[tuple[str, dict[str, str]]]) -> list[str]:
    return [operation for operation, _ in seen]


@pytest.mark.parametrize("exclusive", [False, True], ids=["plain", "exclusive"])
def test_payloads_up_to_the_threshold_are_one_put(
    make_store: MakeStore, s3: Any, exclusive: bool
) -> None:
    store = make_store(multipart_threshold=3 * PART, skip_instance_cache=True)
    seen = record_requests(store)
    data = os.urandom(3 * PART)  # three full parts, held until the write ends
    write(store, "held", data, exclusive=exclusive)
    assert [op for op in operations(seen) if op != "HeadObject"] == ["PutObject"]
    assert read(store, "held") == data
    head = s3.head_object(Bucket=store.bucket, Key=f"{store.prefix}/held", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def test_a_payload_past_the_threshold_is_uploaded_in_parts(make_store: MakeStore) -> None:
    store = make_store(multipart_threshold=2 * PART, skip_instance_cache=True)
    seen = record_requests(store)
    data = os.urandom(2 * PART + 1)
    write(store, "parts", data)
    sent = operations(seen)
    assert sent.count("PutObject") == 0
    assert sent.count("UploadPart") == 3
    assert sent[0] == "CreateMultipartUpload"
    assert sent[-1] == "CompleteMultipartUpload"
    assert read(store, "parts") == data


def test_the_defaults_keep_30_mib_of_parts_in_flight() -> None:
    store = S3Store("s3://b-1/p")
    assert (store.part_size, store.concurrency) == (PART, 6)
    assert store.multipart_threshold == 8 * MiB
    assert store.read_concurrency is None  # chosen from each object's size
    bigger = S3Store("s3://b-1/p", part_size=32 * MiB, multipart_threshold=MiB)
    assert bigger.multipart_threshold == 32 * MiB  # at least one part
    assert bigger.concurrency == 1
    given = S3Store("s3://b-1/p", part_size=8 * MiB, concurrency=3, read_concurrency=2)
    assert (given.part_size, given.concurrency, given.read_concurrency) == (8 * MiB, 3, 2)


def test_a_write_that_fails_below_the_threshold_sends_nothing(make_store: MakeStore) -> None:
    store = make_store(multipart_threshold=3 * PART, skip_instance_cache=True)
    seen = record_requests(store)
    with pytest.raises(RuntimeError), store.open_write("never") as sink:  # noqa: PT012
        sink.write(b"x" * (2 * PART + 1))
        raise RuntimeError("publisher crashed")
    assert [op for op in operations(seen) if op != "HeadObject"] == []
    with pytest.raises(PayloadNotFoundError):
        store.info("never")


def test_a_failed_write_aborts_its_multipart_upload(make_store: MakeStore, s3: Any) -> None:
    store = make_store()
    with pytest.raises(RuntimeError), store.open_write("big") as sink:  # noqa: PT012
        sink.write(b"x" * (2 * PART + 1))
        # Created on the way, while the writer goes on.
        wait_for(lambda: len(uploads_in_progress(s3, store)) == 1, "no upload")
        raise RuntimeError("publisher crashed")
    assert uploads_in_progress(s3, store) == []
    with pytest.raises(PayloadNotFoundError):
        store.info("big")


def test_keys_that_look_like_version_ids_are_plain_keys(make_store: MakeStore, s3: Any) -> None:
    # s3fs cuts paths at "?versionId="; the store never passes keys through s3fs paths.
    store = make_store()
    write(store, "k?versionId=abc", b"data")
    assert read(store, "k?versionId=abc") == b"data"
    assert s3.get_object(Bucket=store.bucket, Key=object_key(store, "k?versionId=abc"))
    assert [info.key for info in store.list()] == ["k?versionId=abc"]


# -- resumed downloads --------------------------------------------------------------------------


@pytest.fixture
def cutting_proxy(moto_server: MotoServer) -> Iterator[CuttingProxy]:
    proxy = CuttingProxy(moto_server.endpoint, cut_after=MiB, cuts=0)
    yield proxy
    proxy.close()


def _through(
    proxy: CuttingProxy, store: S3Store, moto_server: MotoServer, **options: Any
) -> S3Store:
    """The same store, reached through ``proxy``."""
    storage = {**moto_server.storage_options(), "endpoint_url": proxy.endpoint}
    return S3Store(
        store.url,
        part_size=PART,
        multipart_threshold=PART,
        skip_instance_cache=True,
        **storage,
        **options,
    )


@pytest.mark.parametrize("read_concurrency", [1, 2], ids=["stream", "ranged"])
def test_a_download_cut_mid_stream_resumes_where_it_stopped(
    make_store: MakeStore,
    moto_server: MotoServer,
    cutting_proxy: CuttingProxy,
    read_concurrency: int,
) -> None:
    data = os.urandom(3 * MiB + 12345) if read_concurrency == 1 else os.urandom(2 * PART + 7)
    direct = make_store()
    write(direct, "k", data)
    store = _through(cutting_proxy, direct, moto_server, read_concurrency=read_concurrency)
    cutting_proxy.cuts_left = 2
    got = read(store, "k") if read_concurrency == 1 else read_sized(store, "k", len(data))
    assert got == data
    assert cutting_proxy.cuts_left == 0
    ranged = [
        r for r in cutting_proxy.requests if r.startswith("GET ") and "\r\nrange:" in r.lower()
    ]
    # A sized read opens with as many ranges as it reads at once, sent before any ETag is known.
    resumed = ranged if read_concurrency == 1 else ranged[read_concurrency:]
    assert len(resumed) >= 2
    etag = direct.fs.call_s3("head_object", Bucket=direct.bucket, Key=object_key(direct, "k"))[
        "ETag"
    ]
    assert all(f"if-match: {etag}".lower() in r.lower() for r in resumed)


def test_a_download_that_keeps_failing_gives_up_after_its_budget(
    make_store: MakeStore, moto_server: MotoServer, cutting_proxy: CuttingProxy
) -> None:
    direct = make_store()
    write(direct, "k", os.urandom(4 * MiB))
    store = _through(cutting_proxy, direct, moto_server, read_retries=2, read_concurrency=1)
    cutting_proxy.cut_after = 256 * 1024
    cutting_proxy.cuts_left = 1000
    with pytest.raises(TransientStorageError, match="3 times") as raised:
        read(store, "k")
    assert raised.value.retryable
    assert raised.value.__cause__ is not None


@pytest.mark.parametrize("sized", [False, True], ids=["stream", "ranges"])
def test_an_object_replaced_during_a_read_is_not_spliced(
    make_store: MakeStore,
    moto_server: MotoServer,
    cutting_proxy: CuttingProxy,
    s3: Any,
    sized: bool,
) -> None:
    direct = make_store()
    write(direct, "k", b"a" * (3 * MiB))
    store = _through(cutting_proxy, direct, moto_server, read_concurrency=1 + sized)
    cutting_proxy.on_cut = lambda: s3.put_object(
        Bucket=direct.bucket, Key=object_key(direct, "k"), Body=b"b" * (3 * MiB)
    )
    cutting_proxy.cuts_left = 1
    with pytest.raises(TransientStorageError, match="replaced") as raised:
        read_sized(store, "k", 3 * MiB) if sized else read(store, "k")
    assert raised.value.retryable
    assert read(direct, "k") == b"b" * (3 * MiB)


# -- errors -------------------------------------------------------------------------------------


def stub_store(stub: ErrorStub, **options: Any) -> S3Store:
    """A store whose every request gets the stub's error, tried once."""
    store = S3Store(
        "s3://stub-bucket/p",
        key="k",
        secret="s",
        endpoint_url=stub.endpoint,
        client_kwargs={"region_name": "us-east-1"},
        config_kwargs={"retries": {"max_attempts": 1}},
        skip_instance_cache=True,
        **options,
    )
    store.fs.retries = 1  # s3fs's own retry loop, on top of botocore's
    return store


def test_a_missing_bucket_is_named(moto_server: MotoServer) -> None:
    store = S3Store("s3://offload-no-such-bucket/p", **moto_server.storage_options())
    for operation in (
        lambda: store.open_read("k"),
        lambda: write(store, "k", b"x"),
        lambda: list(store.list()),
    ):
        with pytest.raises(BucketNotFoundError, match="offload-no-such-bucket") as raised:
            operation()
        assert isinstance(raised.value, PayloadNotFoundError)
        assert isinstance(raised.value, ConfigurationError)
        assert raised.value.__cause__ is not None


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (503, "SlowDown"),
        (500, "InternalError"),
        (503, "ServiceUnavailable"),
        (409, "ConditionalRequestConflict"),
    ],
)
def test_throttling_and_server_errors_are_retryable(status: int, code: str) -> None:
    stub = ErrorStub(status, code)
    try:
        with pytest.raises(TransientStorageError) as raised:
            stub_store(stub).open_read("k")
        assert raised.value.retryable
        assert raised.value.location == "s3://stub-bucket/p/k"
    finally:
        stub.close()


def test_acls_refused_by_object_ownership_say_what_to_do() -> None:
    stub = ErrorStub(400, "AccessControlListNotSupported")
    try:
        with pytest.raises(ConfigurationError, match=r"Bucket owner enforced.*acl"):
            write(stub_store(stub, acl="bucket-owner-full-control"), "k", b"x")
    finally:
        stub.close()


# -- accounts and permissions -------------------------------------------------------------------


def test_a_subscriber_in_another_account_reads_the_publishers_bucket(
    moto_server: MotoServer, bucket: str
) -> None:
    publisher = Offloader(
        f"s3://{bucket}/cross", storage_options=moto_server.storage_options(), mode="always"
    )
    credentials = moto_server.assume_role(OTHER_ACCOUNT, "subscriber")
    sts = moto_server.client("sts", **credentials)
    assert sts.get_caller_identity()["Account"] == OTHER_ACCOUNT
    assert bucket not in {
        b["Name"] for b in moto_server.client("s3", **credentials).list_buckets()["Buckets"]
    }
    subscriber = Offloader(
        S3Store(
            f"s3://{bucket}/cross",
            expected_bucket_owner=DEFAULT_ACCOUNT,
            **moto_server.storage_options(credentials=credentials),
        )
    )
    payload = json.dumps({"order": 1, "lines": ["x" * 100] * 1000}).encode()
    message = publisher.prepare(payload)
    assert message.body.startswith(
        f'["software.amazon.payloadoffloading.PayloadS3Pointer",{{"s3BucketName":"{bucket}",'
    )
    assert subscriber.resolve(message.body, message.attributes) == payload


@pytest.fixture
def roles(moto_server: MotoServer, bucket: str) -> dict[str, dict[str, str]]:
    """Credentials for roles in another account: one allowed s3:GetObject on the bucket, one
    allowed nothing. Created before IAM is enforced."""
    admin = moto_server.assume_role(OTHER_ACCOUNT, "admin")
    iam = moto_server.client("iam", **admin)
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
    }
    suffix = uuid.uuid4().hex[:8]
    reader, nobody = f"reader-{suffix}", f"nobody-{suffix}"
    for role in (reader, nobody):
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))
    statement = {
        "Effect": "Allow",
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/*",
    }
    iam.put_role_policy(
        RoleName=reader,
        PolicyName="read-payloads",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [statement]}),
    )
    return {
        "reader": moto_server.assume_role(OTHER_ACCOUNT, reader),
        "nobody": moto_server.assume_role(OTHER_ACCOUNT, nobody),
    }


def test_permissions_are_enforced_and_denials_are_not_taken_for_deletions(
    moto_server: MotoServer, make_store: MakeStore, roles: dict[str, dict[str, str]]
) -> None:
    publisher = make_store()
    write(publisher, "k", b"payload")

    def as_role(name: str) -> S3Store:
        options = moto_server.storage_options(credentials=roles[name])
        return S3Store(publisher.url, skip_instance_cache=True, **options)

    strangers = S3Store(
        publisher.url,
        skip_instance_cache=True,
        **moto_server.storage_options(
            credentials={"aws_access_key_id": "AKIAUNKNOWN000000000", "aws_secret_access_key": "x"}
        ),
    )
    with moto_server.iam_enforced():
        assert read(as_role("reader"), "k") == b"payload"
        with pytest.raises(AccessDeniedError, match="s3:ListBucket") as denied:
            as_role("nobody").open_read("k")
        with pytest.raises(AccessDeniedError, match="rejected the credentials"):
            strangers.open_read("k")
    assert not isinstance(denied.value, PayloadNotFoundError)
    assert denied.value.__cause__ is not None


def test_a_read_through_a_closed_stream_raises(make_store: MakeStore) -> None:
    store = make_store()
    write(store, "k", b"data")
    source = store.open_read("k")
    source.close()
    with pytest.raises(ValueError, match="closed"):
        source.read()
    assert isinstance(source, io.IOBase)


def test_a_read_stream_says_the_object_size_so_reads_follow_it(make_store: MakeStore) -> None:
    """The store's Content-Length is what ``resolve`` sets aside for a raw payload, whatever
    size the pointer claims: a lie ends in SizeMismatchError after the object's own bytes."""
    store = make_store()
    off = Offloader(store, mode="always", pointer_format="native")
    payload = b"y" * (3 * PART // 2)
    message = off.prepare(payload)
    assert message.pointer is not None
    key = store.key_for(message.pointer.location)
    assert key is not None
    with store.open_read(key) as stream:
        assert stream.size == len(payload)  # type: ignore[attr-defined]
    with off.open(message.body) as reader:
        assert reader._stored_size == len(payload)  # type: ignore[attr-defined]
    lying = json.loads(message.body) | {"size": 15 * 2**30}
    with pytest.raises(SizeMismatchError):
        off.resolve(json.dumps(lying))


# -- the boto3 client: fork and abort ---------------------------------------------------------


@pytest.mark.parametrize("on", ["s3fs", "boto3"])
def test_a_store_used_after_fork_raises_instead_of_waiting_forever(
    make_store: MakeStore, moto_server: MotoServer, on: str
) -> None:
    store = make_store(client=moto_server.client("s3")) if on == "boto3" else make_store()
    write(store, "k", b"before the fork")
    assert read(store, "k") == b"before the fork"  # the loop and its threads are running
    pid = os.fork()
    if pid == 0:  # the child: any outcome but a hang
        code = 3
        try:
            read(store, "k")
            code = 1
        except RuntimeError:
            code = 0
        finally:
            os._exit(code)
    for _ in range(300):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the child hung on a store made before fork()")
    assert os.waitstatus_to_exitcode(status) == 0


def test_an_aborted_upload_on_boto3_waits_for_the_parts_on_their_way(
    make_store: MakeStore, moto_server: MotoServer, s3: Any
) -> None:
    client = moto_server.client("s3")
    sent: list[str] = []

    def slow_part(**_: Any) -> None:
        time.sleep(0.3)

    client.meta.events.register("before-send.s3.UploadPart", slow_part)
    client.meta.events.register(
        "after-call.s3",
        lambda model, **_: sent.append(model.name),  # type: ignore[misc]
    )
    store = make_store(client=client, concurrency=3)

    def upload_then_fail() -> None:
        with store.open_write("k") as sink:
            for _ in range(4):
                sink.write(os.urandom(PART))
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        upload_then_fail()
    assert "AbortMultipartUpload" in sent
    assert sent[-1] == "AbortMultipartUpload"  # no part finished after the abort
    assert uploads_in_progress(s3, store) == []


# -- sizes, ranges and round trips ---------------------------------------------------------------


def gets(seen: list[tuple[str, dict[str, str]]]) -> list[dict[str, str]]:
    return [headers for operation, headers in seen if operation == "GetObject"]


@pytest.mark.parametrize("size", [300_000, 3 * MiB], ids=["one-get", "ranges"])
@pytest.mark.parametrize("claimed", [-1, 1], ids=["smaller", "larger"])
def test_a_sized_read_of_another_size_raises_before_reading(
    make_store: MakeStore, size: int, claimed: int
) -> None:
    store = make_store()
    write(store, "k", os.urandom(size))
    with pytest.raises(SizeMismatchError) as raised:
        store.open_read_sized("k", size + claimed)
    assert (raised.value.expected, raised.value.actual) == (size + claimed, size)
    assert raised.value.location == store.location("k")


def test_an_empty_object_reads_as_empty_and_is_no_larger_object(make_store: MakeStore) -> None:
    store = make_store()
    write(store, "empty", b"")
    assert read_sized(store, "empty", 0) == b""
    assert read(store, "empty") == b""
    # A ranged GET of an empty object gets 416 from S3: it is reported as the size it is.
    with pytest.raises(SizeMismatchError) as raised:
        store.open_read_sized("empty", 5 * MiB)
    assert (raised.value.expected, raised.value.actual) == (5 * MiB, 0)
    with pytest.raises(PayloadNotFoundError):
        store.open_read_sized("missing", 5 * MiB)


@pytest.mark.parametrize("size", [300_000, 1_500_000, 2 * MiB])
def test_a_sized_read_of_a_small_object_is_one_whole_object_get(
    make_store: MakeStore, size: int
) -> None:
    """Up to 2 MiB: one GET, nothing fetched twice (a known size over one range's span once
    made the reader fetch the object's second half again as a range)."""
    store = make_store(skip_instance_cache=True)
    data = os.urandom(size)
    write(store, "k", data)
    seen = record_requests(store)
    assert read_sized(store, "k", len(data)) == data
    assert operations(seen) == ["GetObject"]
    assert "range" not in gets(seen)[0]  # and so S3 returns its checksum, which is checked


def range_start(headers: dict[str, str]) -> int:
    return int(headers["range"].removeprefix("bytes=").partition("-")[0])


def test_sized_reads_split_the_object_into_ranges_from_its_size(make_store: MakeStore) -> None:
    store = make_store(skip_instance_cache=True)
    data = os.urandom(10 * MiB)
    write(store, "k", data)
    seen = record_requests(store)
    assert read_sized(store, "k", len(data)) == data
    ranges = [headers["range"] for headers in sorted(gets(seen), key=range_start)]
    assert ranges == [f"bytes={i * MiB}-{(i + 1) * MiB - 1}" for i in range(10)]
    # All ten went out at once, before any response told the ETag.
    assert not any("if-match" in headers for headers in gets(seen))


def test_ranges_after_those_sent_at_once_are_conditional_on_the_first_etag(
    make_store: MakeStore, s3: Any
) -> None:
    store = make_store(read_concurrency=2, skip_instance_cache=True)
    data = os.urandom(10 * MiB)
    write(store, "k", data)
    etag = s3.head_object(Bucket=store.bucket, Key=object_key(store, "k"))["ETag"]
    seen = record_requests(store)
    assert read_sized(store, "k", len(data)) == data
    together, later = gets(seen)[:2], gets(seen)[2:]
    assert sorted(headers["range"] for headers in together) == [
        f"bytes=0-{4 * MiB - 1}",
        f"bytes={4 * MiB}-{8 * MiB - 1}",
    ]
    assert not any("if-match" in headers for headers in together)
    assert [(h["range"], h["if-match"]) for h in later] == [
        (f"bytes={8 * MiB}-{10 * MiB - 1}", etag)
    ]


def test_a_given_read_concurrency_is_honoured(make_store: MakeStore) -> None:
    store = make_store(read_concurrency=2, skip_instance_cache=True)
    data = os.urandom(6 * MiB)
    write(store, "k", data)
    seen = record_requests(store)
    assert read_sized(store, "k", len(data)) == data
    assert [headers["range"] for headers in gets(seen)] == [
        f"bytes=0-{3 * MiB - 1}",
        f"bytes={3 * MiB}-{6 * MiB - 1}",
    ]
    single = make_store(read_concurrency=1, skip_instance_cache=True)
    write(single, "k", data)
    seen = record_requests(single)
    assert read_sized(single, "k", len(data)) == data
    assert [headers.get("range") for headers in gets(seen)] == [None]


@pytest.mark.parametrize(
    ("size", "concurrency", "plan"),
    [
        (300_000, None, (300_000, 1)),
        (0, None, (1, 1)),
        (10 * MiB, None, (MiB, 10)),
        (10 * MiB + 1, None, (MiB + 1, 10)),
        (256 * MiB, None, (4 * MiB, 10)),
        (2048 * MiB, None, (4 * MiB, 10)),
        (3 * MiB, None, (MiB, 3)),
        (256 * MiB, 1, (256 * MiB, 1)),
        (256 * MiB, 4, (4 * MiB, 4)),
        (256 * MiB, 40, (MiB, 40)),
        (6 * MiB, 2, (3 * MiB, 2)),
    ],
)
def test_ranges_keep_the_read_window(size: int, concurrency: int | None, plan: Any) -> None:
    assert read_plan(size, concurrency) == plan
    span, ahead = plan
    assert ahead == 1 or span * ahead <= READ_WINDOW


def test_parts_grow_so_that_a_stream_never_runs_out_of_them() -> None:
    sizes = [grown_part_size(PART, number) for number in range(1, MAX_PARTS + 1)]
    assert sizes[:GROW_AFTER] == [PART] * GROW_AFTER
    assert sizes[GROW_AFTER] == 2 * PART
    assert sum(sizes) > 300 * 1024 * MiB
    writer = MultipartWriter(
        None,  # type: ignore[arg-type]  # no request is made
        None,  # type: ignore[arg-type]
        "b",
        "k",
        location="s3://b/k",
        part_size=PART,
        concurrency=6,
        checksum_algorithm=None,
        digest=None,
        exclusive=False,
        params={},
        grow=True,
    )
    writer._cut = GROW_AFTER - 2  # the next part is number GROW_AFTER
    writer._take()
    assert (writer._part_size, writer._concurrency) == (PART, 6)
    writer._take()
    assert (writer._part_size, writer._concurrency) == (2 * PART, 3)


@pytest.mark.parametrize("on", ["s3fs", "boto3"])
def test_uploads_send_their_bodies_without_waiting_for_100_continue(
    moto_server: MotoServer, bucket: str, on: str
) -> None:
    url = f"s3://{bucket}/{uuid.uuid4().hex}"
    options: dict[str, Any] = {"multipart_threshold": PART, "part_size": PART}
    connection = moto_server.storage_options()
    if on == "boto3":  # the client the store makes without s3fs
        client = boto3_s3_client(connection)
        store = S3Store(url, client=client, **options)
        seen: list[tuple[str, dict[str, str]]] = []
        client.meta.events.register(
            "before-send.s3",
            lambda request, event_name, **_: seen.append(
                (event_name.rsplit(".", 1)[-1], {k.lower(): v for k, v in request.headers.items()})
            ),
        )
    else:
        store = S3Store(url, **options, **connection, skip_instance_cache=True)
        seen = record_requests(store)
    write(store, "small", b"x" * 1000)
    write(store, "large", os.urandom(PART + 1))
    sent = [(op, headers) for op, headers in seen if op in ("PutObject", "UploadPart")]
    assert [op for op, _ in sent] == ["PutObject", "UploadPart", "UploadPart"]
    assert all("expect" not in headers for _, headers in sent)


def test_a_payload_just_over_the_sqs_limit_is_one_put_and_one_get(make_store: MakeStore) -> None:
    store = make_store(skip_instance_cache=True)
    off = Offloader(store, checksum="sha256")
    seen = record_requests(store)
    payload = os.urandom(150_000).hex().encode()  # 300 KB of text
    message = off.prepare(payload)
    assert message.pointer is not None
    assert operations(seen) == ["PutObject"]
    seen.clear()
    assert off.resolve(message.body, message.attributes) == payload
    assert operations(seen) == ["GetObject"]
    assert "range" not in gets(seen)[0]


@pytest.mark.parametrize("size", [3 * MiB, 12 * MiB])
def test_the_offloader_tells_the_store_the_size_and_a_lie_is_caught(
    make_store: MakeStore, size: int
) -> None:
    store = make_store(skip_instance_cache=True)
    off = Offloader(store, checksum="sha256", mode="always", pointer_format="native")
    payload = os.urandom(size)
    message = off.prepare(payload)
    seen = record_requests(store)
    assert off.resolve(message.body) == payload
    assert "range" in gets(seen)[0]  # ranges from the first request: no whole-object GET
    lying = json.loads(message.body) | {"size": size + 1, "stored_size": size + 1}
    with pytest.raises(SizeMismatchError):
        off.resolve(json.dumps(lying))


# -- ranges sent at once, multipart uploads created on the way ----------------------------------


def store_on(on: str, make_store: MakeStore, moto_server: MotoServer, **options: Any) -> S3Store:
    """A store with a client of its own: s3fs's, or a boto3 client."""
    if on == "boto3":
        return make_store(client=moto_server.client("s3"), **options)
    return make_store(skip_instance_cache=True, **options)


def on_requests(store: S3Store, event: str, handler: Callable[..., Any]) -> None:
    """Register ``handler`` on ``event`` of the store's client. On s3fs's client it runs on the
    event loop, and may be a coroutine function."""
    client = store.client if store.fs is None else sync(store.fs.loop, store.fs.set_session)
    client.meta.events.register(event, handler)


def wait_for(condition: Callable[[], object], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"still {what} after {timeout}s")
        time.sleep(0.02)


def reader_requests(store: S3Store) -> list[str]:
    """The range requests of readers still running on the store's event loop."""

    async def running() -> list[str]:
        names = [task.get_coro().__qualname__ for task in asyncio.all_tasks()]  # type: ignore[union-attr]
        return [name for name in names if name.startswith("ObjectReader.")]

    return asyncio.run_coroutine_threadsafe(running(), store._io.loop).result(5)


def connections_in_use(store: S3Store) -> int:
    """Connections s3fs's aiohttp sessions have handed out and not had back."""
    client = sync(store.fs.loop, store.fs.set_session)
    sessions = client._endpoint.http_session._sessions or {}
    return sum(len(session.connector._acquired) for session in sessions.values())


def range_of(request: Any) -> str:
    value = request.headers.get("Range", b"")
    return value.decode() if isinstance(value, bytes) else str(value)


@pytest.mark.parametrize("on", ["s3fs", "boto3"])
def test_a_sized_read_sends_its_first_ranges_before_any_has_answered(
    make_store: MakeStore, moto_server: MotoServer, on: str
) -> None:
    store = store_on(on, make_store, moto_server)
    data = os.urandom(10 * MiB)  # ten ranges of 1 MiB, all at once
    write(store, "k", data)
    if on == "boto3":
        threads = threading.Barrier(10, timeout=10)

        def hold(request: Any, **_: Any) -> None:
            threads.wait()  # breaks (and fails the read) unless all ten are sent together

        on_requests(store, "before-send.s3.GetObject", hold)
    else:
        tasks = asyncio.Barrier(10)

        async def hold_on_loop(request: Any, **_: Any) -> None:
            await asyncio.wait_for(tasks.wait(), 10)

        on_requests(store, "before-send.s3.GetObject", hold_on_loop)
    assert read_sized(store, "k", len(data)) == data


@pytest.mark.parametrize("on", ["s3fs", "boto3"])
def test_a_sized_read_of_a_missing_object_fails_at_open_and_leaves_nothing_running(
    make_store: MakeStore, moto_server: MotoServer, on: str
) -> None:
    store = store_on(on, make_store, moto_server)
    with pytest.raises(PayloadNotFoundError) as raised:
        store.open_read_sized("missing", 40 * MiB)
    assert raised.value.location == store.location("missing")
    wait_for(lambda: not reader_requests(store), "reading")


@pytest.mark.parametrize("on", ["s3fs", "boto3"])
def test_an_object_replaced_between_ranges_sent_at_once_is_not_spliced(
    make_store: MakeStore, moto_server: MotoServer, s3: Any, on: str
) -> None:
    """The first range answers for the object as it was; it is then replaced by one of the same
    size before the other ranges (sent with it, so without If-Match) reach S3."""
    store = store_on(on, make_store, moto_server)
    old, new = b"a" * (10 * MiB), b"b" * (10 * MiB)
    write(store, "k", old)

    def replace(parsed: Any, model: Any, **_: Any) -> None:
        if model.name == "GetObject" and str(parsed.get("ContentRange")).startswith("bytes 0-"):
            s3.put_object(Bucket=store.bucket, Key=object_key(store, "k"), Body=new)
            replaced.set()

    if on == "boto3":
        replaced: Any = threading.Event()

        def hold(request: Any, **_: Any) -> None:
            if not range_of(request).startswith("bytes=0-"):
                assert replaced.wait(10)

        on_requests(store, "before-send.s3.GetObject", hold)
    else:
        replaced = asyncio.Event()

        async def hold_on_loop(request: Any, **_: Any) -> None:
            if not range_of(request).startswith("bytes=0-"):
                await asyncio.wait_for(replaced.wait(), 10)

        on_requests(store, "before-send.s3.GetObject", hold_on_loop)
    on_requests(store, "after-call.s3.GetObject", replace)
    got = b""
    with (  # noqa: PT012
        pytest.raises(TransientStorageError, match="replaced") as raised,
        store.open_read_sized("k", len(old)) as source,
    ):
        while chunk := source.read(MiB):
            got += chunk
    assert raised.value.retryable
    assert got == old[: len(got)]  # only bytes of the object the first range answered for
    assert len(got) < len(old)
    wait_for(lambda: not reader_requests(store), "reading")


@pytest.mark.parametrize("on", ["s3fs", "boto3"])
def test_closing_a_sized_read_early_cancels_its_ranges_and_gives_back_their_connections(
    make_store: MakeStore, moto_server: MotoServer, on: str
) -> None:
    """Ten ranges in flight, the reader closed after its first block, five times over; the
    client has as many connections as a read uses, so any not given back would stall the
    read that follows."""
    options = {} if on == "boto3" else {"config_kwargs": {"max_pool_connections": 10}}
    store = store_on(on, make_store, moto_server, **options)
    data = os.urandom(20 * MiB)  # ten ranges of 2 MiB
    write(store, "k", data)
    for _ in range(5):
        with store.open_read_sized("k", len(data)) as source:
            assert source.read(1000) == data[:1000]
        wait_for(lambda: not reader_requests(store), "reading after close")
        if on == "s3fs":
            wait_for(lambda: connections_in_use(store) == 0, "holding connections")
    done: list[bytes] = []
    reading = threading.Thread(target=lambda: done.append(read_sized(store, "k", len(data))))
    reading.start()
    reading.join(30)
    assert done == [data]


@pytest.mark.parametrize("on", ["s3fs", "boto3"])
def test_a_range_sent_at_once_that_fails_is_sent_again_once_the_first_answered(
    make_store: MakeStore, moto_server: MotoServer, on: str
) -> None:
    """As from a replica the object had not reached yet: one range sent with the first gets a
    404, and is asked for again, conditional on the first range's ETag."""
    store = store_on(on, make_store, moto_server)
    data = os.urandom(3 * MiB)  # three ranges of 1 MiB
    write(store, "k", data)
    sent: list[tuple[str, str]] = []

    def lagging(request: Any, **_: Any) -> Any:
        if_match = request.headers.get("If-Match", b"")
        sent.append((range_of(request), if_match.decode() if isinstance(if_match, bytes) else ""))
        if range_of(request) == f"bytes={MiB}-{2 * MiB - 1}" and not if_match:
            request.url = request.url + "-not-replicated-yet"
        return None

    on_requests(store, "before-send.s3.GetObject", lagging)
    assert read_sized(store, "k", len(data)) == data
    second = [match for span, match in sent if span == f"bytes={MiB}-{2 * MiB - 1}"]
    assert len(second) == 2
    assert second[0] == ""
    assert second[1]  # If-Match: the first range's ETag


def slow_multipart_create(store: S3Store, on: str, delay: float) -> list[str]:
    """Hold every ``CreateMultipartUpload`` of ``store`` for ``delay`` seconds (on its client's
    own thread or loop); the names of the calls answered, in order, fill the list returned."""
    answered: list[str] = []
    if on == "boto3":

        def slow_create(**_: Any) -> None:
            time.sleep(delay)

        on_requests(store, "before-send.s3.CreateMultipartUpload", slow_create)
    else:

        async def slow_create_on_loop(**_: Any) -> None:
            await asyncio.sleep(delay)

        on_requests(store, "before-send.s3.CreateMultipartUpload", slow_create_on_loop)
    on_requests(store, "after-call.s3", lambda model, **_: answered.append(model.name))
    return answered


@pytest.mark.parametrize("on", ["s3fs", "boto3"])
def test_a_write_fills_parts_while_its_multipart_upload_is_created(
    make_store: MakeStore, moto_server: MotoServer, s3: Any, on: str
) -> None:
    delay = 1.0
    store = store_on(on, make_store, moto_server)
    answered = slow_multipart_create(store, on, delay)
    data = os.urandom(4 * PART)
    with store.open_write("k") as sink:
        started = time.monotonic()
        for start in range(0, len(data), MiB):
            sink.write(data[start : start + MiB])
        assert time.monotonic() - started < delay  # the writer never waited for the upload id
        assert "CreateMultipartUpload" not in answered
    assert answered[0] == "CreateMultipartUpload"
    assert answered.count("UploadPart") == 4
    assert answered[-1] == "CompleteMultipartUpload"
    assert read(store, "k") == data
    assert uploads_in_progress(s3, store) == []


@pytest.mark.parametrize("on", ["s3fs", "boto3"])
def test_a_write_aborted_while_its_multipart_upload_is_created_leaves_no_upload(
    make_store: MakeStore, moto_server: MotoServer, s3: Any, on: str
) -> None:
    delay = 0.5
    store = store_on(on, make_store, moto_server)
    answered = slow_multipart_create(store, on, delay)
    with pytest.raises(RuntimeError, match="publisher crashed"), store.open_write("k") as sink:  # noqa: PT012
        sink.write(os.urandom(3 * PART))
        assert answered == []  # the upload is still being created
        raise RuntimeError("publisher crashed")
    assert answered == ["CreateMultipartUpload", "AbortMultipartUpload"]  # and no part
    assert uploads_in_progress(s3, store) == []
    with pytest.raises(PayloadNotFoundError):
        store.info("k")
