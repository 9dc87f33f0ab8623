"""The ``s3`` backend: payloads in an S3 bucket or access point, through s3fs's client or a
boto3 client.

``S3Store("s3://bucket/optional/prefix", **storage_options)``. With s3fs installed (the ``s3``
extra), storage options go to :class:`s3fs.S3FileSystem` unchanged (``key``/``secret``/
``token``, ``profile``, ``session``, ``endpoint_url``, ``client_kwargs``, ``config_kwargs``,
``requester_pays``, ``s3_additional_kwargs``, ...). Without it (the ``lambda`` extra), or with
``client=boto3.client("s3")``, requests go through boto3 (:mod:`offload_backends._s3_boto3`:
the same uploads, downloads and checks, on a thread pool) and the storage options are
``key``/``secret``/``token``, ``profile``, ``endpoint_url``, ``client_kwargs`` and
``config_kwargs``. The store's own options are keyword-only and listed on :class:`S3Store`.
Keys are passed to S3 as ``Bucket``/``Key`` parameters, never as s3fs paths, so
no key character (``?versionId=``, ``#``) is taken for anything else.

What the store does on every write: server-side encryption and a canned ACL if configured,
``ExpectedBucketOwner`` if configured (on every request, reads and lists included), user
metadata as ``x-amz-meta-*``, a CRC checksum S3 checks (per part, and for the whole object), and
``If-None-Match: *`` for exclusive writes, so that a retried content-addressed publish never
writes twice. It never changes bucket configuration.

The plugin registers :func:`offload_backends.s3_factory.open_store` for ``s3://`` URLs, which
opens an :class:`~offload_backends.mrap.MrapStore` for a Multi-Region Access Point ARN.
"""

from __future__ import annotations

import errno
import importlib.util
import re
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import Any, BinaryIO, Literal, cast

from offload_core.aws.arn import is_mrap_arn
from offload_core.aws.errors import BucketNotFoundError, error_status
from offload_core.errors import ConfigurationError, MissingDependencyError, StorageError
from offload_core.formats.aws import parse_s3_location, s3_location_problem
from offload_core.store import ObjectInfo, StoreStream, key_problem, translating, validate_key

from ._errors import translate_fsspec_error
from ._loop import sync
from ._s3_boto3 import Boto3Requests, boto3_s3_client
from ._s3_checksums import upload_digest
from ._s3_limits import MAX_PART_SIZE, MIN_PART_SIZE

__all__ = ["BucketNotFoundError", "S3Store", "split_url"]

MiB = 1024 * 1024

_CANNED_ACLS = frozenset(
    {"private", "public-read", "public-read-write", "authenticated-read", "aws-exec-read",
     "bucket-owner-read", "bucket-owner-full-control"}
)  # fmt: skip
_SSE = frozenset({"AES256", "aws:kms", "aws:kms:dsse"})
_META_NAME = re.compile(r"[a-z0-9!#$%&'*+.^_`|~-]+\Z")
_META_VALUE = re.compile(r"[\x20-\x7e]*\Z")
#: S3's limit on user metadata: names and values, in bytes.
MAX_METADATA_BYTES = 2048


#: botocore knows ``ChecksumType`` and ``If-None-Match`` on multipart uploads from 1.36 on; s3fs
#: silently drops parameters the installed botocore does not know, so older ones are refused.
MIN_BOTOCORE = (1, 36)


def _require_botocore() -> None:
    try:
        import botocore
    except ImportError as exc:
        raise MissingDependencyError("the s3 backend", module="boto3", extra="aws") from exc

    found = tuple(int(part) for part in botocore.__version__.split(".")[:2])
    if found < MIN_BOTOCORE:
        raise MissingDependencyError(
            f"the s3 backend (found botocore {botocore.__version__}; full-object checksums and "
            "conditional multipart completion need 1.36 or later)",
            module="botocore",
            extra="aws",
        )


def split_url(url: str) -> tuple[str, str]:
    """``(bucket, prefix)`` of a store URL ``s3://bucket[/prefix]``; the bucket may be an access
    point or Multi-Region Access Point ARN."""
    if not isinstance(url, str) or not url.startswith("s3://"):
        raise ConfigurationError(f"{url!r} is not an s3:// URL")
    parsed = parse_s3_location(url.rstrip("/") + "/")
    if parsed is None:
        raise ConfigurationError(f"{url!r} names no bucket")
    bucket, prefix = parsed[0], parsed[1].rstrip("/")
    problem = s3_location_problem(bucket, prefix or "k")
    if problem is None and prefix:
        problem = key_problem(prefix)
    if problem is not None:
        raise ConfigurationError(f"{url!r} is not a valid store URL: {problem}")
    return bucket, prefix


def _metadata_params(metadata: Mapping[str, str] | None, location: str) -> dict[str, Any]:
    """``PutObject`` parameters for user metadata; ``content-type`` also sets ``Content-Type``."""
    if not metadata:
        return {}
    out: dict[str, str] = {}
    for name, value in metadata.items():
        lowered = name.lower()
        if (
            not _META_NAME.match(lowered)
            or not isinstance(value, str)
            or not _META_VALUE.match(value)
        ):
            raise StorageError(
                f"metadata {name!r}: {value!r} cannot be stored on {location}: S3 metadata names "
                "are HTTP header tokens and values printable ASCII",
                location=location,
            )
        out[lowered] = value
    size = sum(len(name) + len(value) for name, value in out.items())
    if size > MAX_METADATA_BYTES:
        raise StorageError(
            f"{size} bytes of metadata for {location}; S3 allows {MAX_METADATA_BYTES}",
            location=location,
        )
    params: dict[str, Any] = {"Metadata": out}
    if "content-type" in out:
        params["ContentType"] = out["content-type"]
    return params


class S3Store:
    """Objects under ``s3://bucket/prefix``, written and read as streams in bounded memory.

    :param part_size: bytes per multipart part (5 MiB to 5 GiB). Objects can have at most 10,000
        parts.
    :param multipart_threshold: payloads of at most this many bytes (default: 16 MiB, and at
        least one part) are held in memory and sent as one ``PutObject``; larger ones are
        uploaded in parts as they are written.
    :param concurrency: parts uploaded at once; a write holds at most ``concurrency + 1`` parts,
        or ``multipart_threshold`` bytes and one part, whichever is more.
    :param read_concurrency: ranged parts downloaded at once for objects larger than a part
        (default: ``concurrency``); 1 reads one ``GetObject`` stream.
    :param read_retries: mid-stream download failures resumed (with ranged requests) per read.
    :param checksum_algorithm: ``"CRC32"``, ``"CRC32C"`` or ``"CRC64NVME"`` requested on upload,
        or ``None`` for endpoints that do not support additional checksums. Downloads check any
        full-object checksum the object has, whoever wrote it.
    :param checksum_type: ``"FULL_OBJECT"``: one checksum of the whole object, which S3 checks
        when the upload completes and readers check on every download; ``"COMPOSITE"``: a
        checksum of each part only (S3 checks the parts; readers cannot check the object), for
        endpoints without full-object checksums of multipart uploads.
    :param sse: ``"AES256"`` (SSE-S3), ``"aws:kms"`` or ``"aws:kms:dsse"``; default: the
        bucket's default encryption.
    :param kms_key_id: the KMS key for ``aws:kms`` (implies it when ``sse`` is not given).
    :param acl: a canned ACL for new objects; off by default, and refused by buckets whose
        Object Ownership is "Bucket owner enforced".
    :param expected_bucket_owner: the account id that must own the bucket; sent with every
        request, so a bucket re-created by another account is never written or read.
    :param client: a boto3 S3 client to send every request through, instead of s3fs (the
        default when s3fs is installed); then no other storage options are taken.
    :param storage_options: passed to :class:`s3fs.S3FileSystem` unchanged, or, without s3fs,
        used to make a boto3 client.
    """

    #: Canonical root URL: ``s3://bucket`` or ``s3://bucket/prefix``.
    url: str

    def __init__(
        self,
        url: str,
        *,
        part_size: int = 8 * MiB,
        multipart_threshold: int = 16 * MiB,
        concurrency: int = 4,
        read_concurrency: int | None = None,
        read_retries: int = 5,
        checksum_algorithm: str | None = "CRC32",
        checksum_type: Literal["FULL_OBJECT", "COMPOSITE"] = "FULL_OBJECT",
        sse: str | None = None,
        kms_key_id: str | None = None,
        acl: str | None = None,
        expected_bucket_owner: str | None = None,
        client: Any = None,
        **storage_options: Any,
    ) -> None:
        _require_botocore()
        bucket, prefix = split_url(url)
        if is_mrap_arn(bucket) and not self._serves_mrap():
            raise ConfigurationError(
                f"{bucket} is a Multi-Region Access Point: open it with the mrap backend "
                "(offload_backends.mrap.MrapStore, which s3:// URLs select automatically)"
            )
        if not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
            raise ConfigurationError(
                f"part_size must be between {MIN_PART_SIZE} and {MAX_PART_SIZE} bytes (S3's part "
                f"limits), not {part_size}"
            )
        if not 0 < multipart_threshold <= MAX_PART_SIZE:
            raise ConfigurationError(
                f"multipart_threshold must be between 1 and {MAX_PART_SIZE} bytes (S3's largest "
                f"PutObject), not {multipart_threshold}"
            )
        read_concurrency = concurrency if read_concurrency is None else read_concurrency
        if concurrency < 1 or read_concurrency < 1 or read_retries < 0:
            raise ConfigurationError(
                "concurrency and read_concurrency must be at least 1, read_retries at least 0"
            )
        self._digest = upload_digest(checksum_algorithm)
        if checksum_type not in ("FULL_OBJECT", "COMPOSITE"):
            raise ConfigurationError(
                f"checksum_type must be FULL_OBJECT or COMPOSITE, not {checksum_type!r}"
            )
        if checksum_type == "COMPOSITE" and checksum_algorithm == "CRC64NVME":
            raise ConfigurationError("S3 keeps CRC64NVME checksums as FULL_OBJECT only")
        config_given = "config_kwargs" in storage_options
        extra = dict(storage_options.pop("s3_additional_kwargs", None) or {})
        extra.update(_request_options(sse, kms_key_id, acl, expected_bucket_owner))
        config = dict(storage_options.pop("config_kwargs", None) or {})
        config.setdefault("max_pool_connections", max(10, 2 * max(concurrency, read_concurrency)))
        #: The bucket name, or access point ARN, objects are stored in.
        self.bucket = bucket
        #: The key prefix of every object, without a trailing slash ("" for none).
        self.prefix = prefix
        self.url = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        self.part_size = part_size
        self.multipart_threshold = max(part_size, multipart_threshold)
        self.concurrency = concurrency
        self.read_concurrency = read_concurrency
        self.read_retries = read_retries
        self.checksum_algorithm = checksum_algorithm
        self.checksum_type = checksum_type
        #: The s3fs filesystem whose client (and event loop) every request goes through, or
        #: ``None`` when a boto3 :attr:`client` does.
        self.fs: Any = None
        #: The boto3 client every request goes through, or ``None`` when s3fs's does.
        self.client: Any = None
        if client is None and importlib.util.find_spec("s3fs") is not None:
            from s3fs import S3FileSystem

            self.fs = S3FileSystem(
                s3_additional_kwargs=extra, config_kwargs=config, **storage_options
            )
            self._io: Any = _S3fsRequests(self.fs)
        else:
            if client is not None and (storage_options or config_given):
                given = sorted([*storage_options, *(["config_kwargs"] if config_given else [])])
                raise ConfigurationError(
                    f"the S3 store on a given client takes no storage options "
                    f"({', '.join(given)}): configure the client"
                )
            self.client = client or boto3_s3_client({**storage_options, "config_kwargs": config})
            threads = 2 * max(concurrency, read_concurrency) + 2
            self._io = Boto3Requests(self.client, extra, threads)

    @classmethod
    def _serves_mrap(cls) -> bool:
        return False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    # -- keys and locations --------------------------------------------------------------------

    def location(self, key: str) -> str:
        validate_key(key)
        return f"{self.url}/{key}"

    def key_for(self, location: str) -> str | None:
        """The key of ``location`` if it is this store's root URL plus a safe key. An access
        point ARN contains ``::``, so the root is compared before the key is checked."""
        if not isinstance(location, str) or not location.startswith(self.url + "/"):
            return None
        key = location[len(self.url) + 1 :]
        return key if key_problem(key) is None else None

    def _object_key(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    # -- requests ------------------------------------------------------------------------------

    def _request(self, method: str, **params: Any) -> Any:
        """One S3 request from this thread, with the store's request options."""
        return self._io.request(method, Bucket=self.bucket, **params)

    def _get(self, object_key: str) -> Any:
        """The ``GetObject`` response (headers and an open body) that a read starts from."""
        return self._request("get_object", Key=object_key, ChecksumMode="ENABLED")

    def _head(self, object_key: str) -> Any:
        return self._request("head_object", Key=object_key)

    def _exists(self, object_key: str) -> bool:
        """Whether the object is there; ``False`` for 403 too, which may hide either answer."""
        try:
            self._request("head_object", Key=object_key)
        except Exception as exc:
            if error_status(exc) in (403, 404):
                return False
            raise
        return True

    # -- the Store protocol --------------------------------------------------------------------

    def open_write(
        self, key: str, *, metadata: Mapping[str, str] | None = None, exclusive: bool = False
    ) -> AbstractContextManager[BinaryIO]:
        """A stream that becomes the object when the block exits cleanly.

        ``exclusive`` sends ``If-None-Match: *``; an object already there (seen by a ``HeadObject``
        first, to skip the upload, or by S3 when committing) raises ``FileExistsError``.
        """
        object_key = self._object_key(key)
        location = self.location(key)
        return self._write(object_key, location, _metadata_params(metadata, location), exclusive)

    @contextmanager
    def _write(
        self, object_key: str, location: str, params: dict[str, Any], exclusive: bool
    ) -> Iterator[BinaryIO]:
        if exclusive:
            with translating(translate_fsspec_error, location):
                if self._exists(object_key):
                    raise FileExistsError(errno.EEXIST, "an object already exists", location)
        from ._s3_io import MultipartWriter

        writer = MultipartWriter(
            self._io.call,
            self._io.loop,
            self.bucket,
            object_key,
            location=location,
            part_size=self.part_size,
            concurrency=self.concurrency,
            multipart_threshold=self.multipart_threshold,
            checksum_algorithm=self.checksum_algorithm,
            digest=self._digest,
            full_object=self.checksum_type == "FULL_OBJECT",
            exclusive=exclusive,
            params=params,
        )
        stream = StoreStream(
            cast(BinaryIO, writer),
            location=location,
            translate=translate_fsspec_error,
            keep_open=True,
        )
        try:
            yield stream
            stream.close()
            with translating(translate_fsspec_error, location):
                writer.commit()
        except BaseException:
            writer.abort()
            with suppress(Exception):
                stream.close()
            raise
        finally:
            writer.close()

    def open_read(self, key: str) -> BinaryIO:
        object_key = self._object_key(key)
        location = self.location(key)
        with translating(translate_fsspec_error, location):
            response = self._get(object_key)
        from ._s3_io import ObjectReader

        reader = ObjectReader(
            self._io.call,
            self._io.loop,
            self.bucket,
            object_key,
            response,
            location=location,
            part_size=self.part_size,
            concurrency=self.read_concurrency,
            retries=self.read_retries,
        )
        return StoreStream(
            cast(BinaryIO, reader), location=location, translate=translate_fsspec_error
        )

    def info(self, key: str) -> ObjectInfo:
        object_key = self._object_key(key)
        with translating(translate_fsspec_error, self.location(key)):
            response = self._head(object_key)
        metadata = {str(k): str(v) for k, v in (response.get("Metadata") or {}).items()}
        return ObjectInfo(
            key, int(response["ContentLength"]), response.get("LastModified"), metadata
        )

    def delete(self, key: str) -> None:
        """Delete the object; S3 answers success for a missing key. A 403 is raised, never
        taken to mean the object is gone."""
        object_key = self._object_key(key)
        with translating(translate_fsspec_error, self.location(key)):
            self._request("delete_object", Key=object_key)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Objects whose key starts with ``prefix``, from ``ListObjectsV2`` (needs
        ``s3:ListBucket``); keys that would not be valid store keys are skipped."""
        return self._list(prefix)

    def _list(self, prefix: str) -> Iterator[ObjectInfo]:
        root = f"{self.prefix}/" if self.prefix else ""
        params: dict[str, Any] = {"Prefix": root + prefix}
        while True:
            with translating(translate_fsspec_error, self.url):
                page = self._request("list_objects_v2", **params)
            for item in page.get("Contents", ()):
                name = str(item["Key"])
                key = name[len(root) :]
                if name.startswith(root) and key_problem(key) is None:
                    yield ObjectInfo(key, int(item["Size"]), item.get("LastModified"), None)
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return
            params["ContinuationToken"] = token


class _S3fsRequests:
    """Requests through s3fs's client on fsspec's I/O loop (s3fs's retries and additional
    kwargs apply), in the shape :class:`~offload_backends._s3_boto3.Boto3Requests` has. The
    loop is asked for on every use: fsspec refuses it in a process forked after it started."""

    def __init__(self, fs: Any) -> None:
        self._fs = fs

    async def call(self, method: str, **params: Any) -> Any:
        return await self._fs._call_s3(method, **params)

    @property
    def loop(self) -> Any:
        return self._fs.loop

    def request(self, method: str, **params: Any) -> Any:
        return sync(self.loop, self._fs._call_s3, method, **params)


def _request_options(
    sse: str | None, kms_key_id: str | None, acl: str | None, expected_bucket_owner: str | None
) -> dict[str, str]:
    """s3fs ``s3_additional_kwargs``; s3fs passes each only to the operations that take it."""
    out: dict[str, str] = {}
    if kms_key_id is not None and sse is None:
        sse = "aws:kms"
    if sse is not None:
        if sse not in _SSE:
            raise ConfigurationError(f"sse must be one of {sorted(_SSE)}, not {sse!r}")
        out["ServerSideEncryption"] = sse
    if kms_key_id is not None:
        if sse == "AES256":
            raise ConfigurationError("kms_key_id needs sse='aws:kms' or 'aws:kms:dsse'")
        out["SSEKMSKeyId"] = kms_key_id
    if acl is not None:
        if acl not in _CANNED_ACLS:
            raise ConfigurationError(
                f"acl must be a canned ACL ({sorted(_CANNED_ACLS)}), not {acl!r}"
            )
        out["ACL"] = acl
    if expected_bucket_owner is not None:
        if not re.fullmatch(r"[0-9]{12}", expected_bucket_owner):
            raise ConfigurationError(
                "expected_bucket_owner must be a 12-digit account id, "
                f"not {expected_bucket_owner!r}"
            )
        out["ExpectedBucketOwner"] = expected_bucket_owner
    return out
