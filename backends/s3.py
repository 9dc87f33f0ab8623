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

Reads check the object's size and any full-object checksum S3 keeps. A reader that knows the
size (the Offloader, from the pointer) calls :meth:`S3Store.open_read_sized`, and a large
object is then read as parallel ranged requests from the first request on.

Every request, upload and read is written once, as coroutines on a request path. The store's
methods (the synchronous face) run them on an I/O loop thread; :meth:`S3Store.async_store`
gives the asynchronous face (:class:`AsyncS3Store`), which awaits them on the caller's loop.

The plugin registers :func:`offload_backends.s3_factory.open_store` for ``s3://`` URLs, which
opens an :class:`~offload_backends.mrap.MrapStore` for a Multi-Region Access Point ARN.
"""

from __future__ import annotations

import errno
import importlib.util
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager, suppress
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, Protocol, TypeVar, cast

from offload_core.aws.arn import is_mrap_arn
from offload_core.aws.errors import BucketNotFoundError, error_status
from offload_core.errors import (
    ConfigurationError,
    MissingDependencyError,
    SizeMismatchError,
    StorageError,
)
from offload_core.formats.aws import parse_s3_location, s3_location_problem
from offload_core.store import ObjectInfo, StoreStream, key_problem, translating, validate_key

from ._errors import translate_fsspec_error
from ._loop import sync
from ._s3_boto3 import Boto3Requests, boto3_s3_client, send_bodies_at_once
from ._s3_checksums import upload_digest
from ._s3_limits import (
    AUTO_MULTIPART_THRESHOLD,
    AUTO_PART_SIZE,
    AUTO_READ_CONCURRENCY,
    MAX_PART_SIZE,
    MIN_PART_SIZE,
    SINGLE_READ_MAX,
    read_plan,
    write_concurrency,
)

if TYPE_CHECKING:
    import asyncio

    from offload_core.aio.store import AsyncSink, AsyncSource

    from ._s3_io import ObjectReader, Upload

__all__ = ["AsyncS3Store", "BucketNotFoundError", "S3Store", "split_url"]

T = TypeVar("T")

MiB = 1024 * 1024
#: Reads without a size hint are split into ranges only for objects at least this large: their
#: first response streams the whole object, and closing it after the first range wastes the
#: bytes already on their way (about one bandwidth-delay product).
UNSIZED_RANGED_MIN = 16 * MiB

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

    By default a write has 30 MiB of parts in flight and a read 40 MiB of ranges (so a streamed
    write or read stays within about 64 MiB of memory), spread over many connections: one
    connection to S3 carries about 90 MB/s, and each request waits a round trip before its
    bytes flow.

    :param part_size: bytes per multipart part (5 MiB to 5 GiB); objects can have at most
        10,000 parts. Default (``None``): 5 MiB, S3's smallest, growing past the 5,000th part
        (24 GiB) so that any stream fits.
    :param multipart_threshold: payloads of at most this many bytes (default: 8 MiB, and at
        least one part) are held in memory and sent as one ``PutObject``; larger ones are
        uploaded in parts as they are written.
    :param concurrency: parts uploaded at once; a write holds at most ``concurrency + 1`` parts,
        or ``multipart_threshold`` bytes and one part, whichever is more. Default (``None``):
        as many as 30 MiB holds (6 parts of 5 MiB).
    :param read_concurrency: ranged ``GetObject`` requests at once per read; 1 reads one
        ``GetObject`` stream. Ranges are about size / ``read_concurrency``, from 1 to 4 MiB
        (and at most 40 MiB / ``read_concurrency``). Default (``None``): up to 10 at once, as
        many as the object's size gives. Reads with a size hint (:meth:`open_read_sized`) split
        objects over 2 MiB; other reads split objects of 16 MiB and more.
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
        default when s3fs is installed); then no other storage options are taken. The store
        leaves it as it is: its uploads wait for ``100 Continue`` as botocore has them do, a
        round trip per part that the clients the store makes itself skip.
    :param storage_options: passed to :class:`s3fs.S3FileSystem` unchanged, or, without s3fs,
        used to make a boto3 client.
    """

    #: Canonical root URL: ``s3://bucket`` or ``s3://bucket/prefix``.
    url: str

    def __init__(
        self,
        url: str,
        *,
        part_size: int | None = None,
        multipart_threshold: int | None = None,
        concurrency: int | None = None,
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
        self._grow = part_size is None
        part_size = AUTO_PART_SIZE if part_size is None else part_size
        if not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
            raise ConfigurationError(
                f"part_size must be between {MIN_PART_SIZE} and {MAX_PART_SIZE} bytes (S3's part "
                f"limits), not {part_size}"
            )
        if multipart_threshold is None:
            multipart_threshold = AUTO_MULTIPART_THRESHOLD
        if not 0 < multipart_threshold <= MAX_PART_SIZE:
            raise ConfigurationError(
                f"multipart_threshold must be between 1 and {MAX_PART_SIZE} bytes (S3's largest "
                f"PutObject), not {multipart_threshold}"
            )
        concurrency = write_concurrency(part_size) if concurrency is None else concurrency
        if concurrency < 1 or (read_concurrency is not None and read_concurrency < 1):
            raise ConfigurationError("concurrency and read_concurrency must be at least 1")
        if read_retries < 0:
            raise ConfigurationError("read_retries must be at least 0")
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
        # A write and a read of the same store may run at once.
        requests = concurrency + (read_concurrency or AUTO_READ_CONCURRENCY)
        config.setdefault("max_pool_connections", max(10, requests))
        #: The bucket name, or access point ARN, objects are stored in.
        self.bucket = bucket
        #: The key prefix of every object, without a trailing slash ("" for none).
        self.prefix = prefix
        self.url = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        #: Bytes per part (of the first parts, when sized automatically).
        self.part_size = part_size
        self.multipart_threshold = max(part_size, multipart_threshold)
        #: Parts uploaded at once (at first, when sized automatically).
        self.concurrency = concurrency
        #: Ranges read at once, or ``None`` when chosen from each object's size.
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

            # Kept for the asynchronous face's filesystem, made with the same options.
            self._fs_options = {
                "s3_additional_kwargs": extra, "config_kwargs": config, **storage_options
            }  # fmt: skip
            self.fs = S3FileSystem(**self._fs_options)
            self._io: Any = _S3fsRequests(self.fs)
        else:
            if client is not None and (storage_options or config_given):
                given = sorted([*storage_options, *(["config_kwargs"] if config_given else [])])
                raise ConfigurationError(
                    f"the S3 store on a given client takes no storage options "
                    f"({', '.join(given)}): configure the client"
                )
            self.client = client or boto3_s3_client({**storage_options, "config_kwargs": config})
            # A request, and then its body's reads, each take a thread.
            self._io = Boto3Requests(self.client, extra, requests + 2)

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

    @property
    def _root(self) -> str:
        return f"{self.prefix}/" if self.prefix else ""

    # -- the requests: coroutines on either face's request path --------------------------------

    async def _get(self, io: Requests, object_key: str, **params: Any) -> Any:
        """The ``GetObject`` response (headers and an open body) that a read starts from."""
        return await io.call(
            "get_object", Bucket=self.bucket, Key=object_key, ChecksumMode="ENABLED", **params
        )

    async def _head(self, io: Requests, object_key: str) -> Any:
        return await io.call("head_object", Bucket=self.bucket, Key=object_key)

    async def _refuse_existing(self, io: Requests, object_key: str, location: str) -> None:
        """``FileExistsError`` if the object is there, so that an exclusive write skips its
        upload; a 403, which may hide either answer, leaves the check to S3 at commit."""
        with translating(translate_fsspec_error, location):
            try:
                await io.call("head_object", Bucket=self.bucket, Key=object_key)
            except Exception as exc:
                if error_status(exc) in (403, 404):
                    return
                raise
            raise FileExistsError(errno.EEXIST, "an object already exists", location)

    def _upload_options(self) -> dict[str, Any]:
        """How this store's uploads cut, send and check their parts."""
        return {
            "part_size": self.part_size,
            "concurrency": self.concurrency,
            "multipart_threshold": self.multipart_threshold,
            "checksum_algorithm": self.checksum_algorithm,
            "digest": self._digest,
            "full_object": self.checksum_type == "FULL_OBJECT",
            "grow": self._grow,
        }

    async def _open(self, io: Requests, key: str, size: int | None) -> ObjectReader:
        """A reader of the object, opened as :meth:`open_read` (``size`` ``None``) or
        :meth:`open_read_sized` describe."""
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
            raise ValueError(f"size must be a non-negative int, not {size!r}")
        from ._s3_io import total_size

        object_key = self._object_key(key)
        location = self.location(key)
        with translating(translate_fsspec_error, location):
            if size is not None:
                span, concurrency = read_plan(size, self.read_concurrency)
                if size > SINGLE_READ_MAX and concurrency > 1:
                    return await self._open_ranges(
                        io, object_key, location=location, size=size, span=span,
                        concurrency=concurrency,
                    )  # fmt: skip
            response = await self._get(io, object_key)
        if size is None:
            size = int(response["ContentLength"])
            span, concurrency = read_plan(size, self.read_concurrency)
            if size < UNSIZED_RANGED_MIN:
                concurrency = 1
        elif (actual := total_size(response)) != size:
            with suppress(Exception):
                response["Body"].close()
            raise SizeMismatchError(expected=size, actual=actual, location=location)
        else:  # known and small enough for one GET: its stream is the whole read
            span, concurrency = max(size, 1), 1
        return self._reader(io, object_key, location, response, size, span, concurrency)

    async def _open_ranges(
        self, io: Requests, object_key: str, *, location: str, size: int, span: int,
        concurrency: int,
    ) -> ObjectReader:  # fmt: skip
        """A reader of ``size`` bytes as ranges, ``concurrency`` of them sent at once, returned
        once the first range's response is in (a missing object, or one of another size, raises
        here); the others are then on their way."""
        reader = self._reader(io, object_key, location, None, size, span, concurrency)
        try:
            await reader.start()
        except BaseException as exc:
            await reader.aclose()
            if isinstance(exc, Exception) and error_status(exc) == 416:
                # A Range starting at 0 of an empty object.
                raise SizeMismatchError(expected=size, actual=0, location=location) from exc
            raise
        return reader

    def _reader(
        self, io: Requests, object_key: str, location: str, response: Any, size: int, span: int,
        concurrency: int,
    ) -> ObjectReader:  # fmt: skip
        """An :class:`~offload_backends._s3_io.ObjectReader` on ``io``, from a ``GetObject``
        ``response`` or (``None``) sending its own ranges."""
        from ._s3_io import ObjectReader

        return ObjectReader(
            io.call, self.bucket, object_key, response, location=location, size=size, span=span,
            concurrency=concurrency, retries=self.read_retries,
        )  # fmt: skip

    async def _info(self, io: Requests, key: str) -> ObjectInfo:
        object_key = self._object_key(key)
        with translating(translate_fsspec_error, self.location(key)):
            response = await self._head(io, object_key)
        metadata = {str(k): str(v) for k, v in (response.get("Metadata") or {}).items()}
        return ObjectInfo(
            key, int(response["ContentLength"]), response.get("LastModified"), metadata
        )

    async def _delete(self, io: Requests, key: str) -> None:
        object_key = self._object_key(key)
        with translating(translate_fsspec_error, self.location(key)):
            await io.call("delete_object", Bucket=self.bucket, Key=object_key)

    async def _page(
        self, io: Requests, params: dict[str, Any]
    ) -> tuple[list[ObjectInfo], dict[str, Any] | None]:
        """One ``ListObjectsV2`` page: its objects whose keys are valid store keys, and the
        parameters of the next page (``None`` after the last)."""
        with translating(translate_fsspec_error, self.url):
            page = await io.call("list_objects_v2", Bucket=self.bucket, **params)
        root = self._root
        found = []
        for item in page.get("Contents", ()):
            name = str(item["Key"])
            key = name[len(root) :]
            if name.startswith(root) and key_problem(key) is None:
                found.append(ObjectInfo(key, int(item["Size"]), item.get("LastModified"), None))
        token = page.get("NextContinuationToken")
        if not page.get("IsTruncated") or not token:
            return found, None
        return found, {**params, "ContinuationToken": token}

    # -- the Store protocol: the synchronous face ----------------------------------------------

    def _now(self, flow: Callable[..., Awaitable[T]], *args: Any) -> T:
        """``await flow(requests, *args)`` on this store's request path, from this thread."""
        return sync(self._io.loop, flow, self._io, *args)

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
        from ._s3_io import MultipartWriter

        if exclusive:
            self._now(self._refuse_existing, object_key, location)
        writer = MultipartWriter(
            self._io.call, self._io.loop, self.bucket, object_key, location=location,
            exclusive=exclusive, params=params, **self._upload_options(),
        )  # fmt: skip
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
        """A stream of the object, from a ``GetObject`` of the whole object (which raises
        ``PayloadNotFoundError`` here if there is none).

        Checked at the end of the stream: the object's size (``Content-Length``) and S3's
        full-object checksum when the object has one (a CRC of the whole object, or the
        checksum of a single ``PutObject``). Objects of 16 MiB or more are read as ranges after
        the first one (unless ``read_concurrency`` is 1), each conditional on the first
        response's ETag."""
        return self._reading(key, None)

    def open_read_sized(self, key: str, size: int) -> BinaryIO:
        """:meth:`open_read` of an object expected to be ``size`` bytes long (a size taken from
        a pointer, see :class:`offload_core.store.SizedReads`): a larger object is read as
        ranges from the first request on.

        A different size raises :class:`~offload_core.errors.SizeMismatchError` here, before
        any of the object is read. An object of at most 2 MiB is read with one ``GetObject``
        and checked as :meth:`open_read` checks it. Larger ones are read as ranged requests,
        as many as are read at once sent together (no round trip spent waiting for the first
        one): this returns when the first range's response is in, and every other range must
        answer with its ETag, or is conditional on it once it is known (so a replaced object
        raises ``TransientStorageError`` rather than being spliced). Ranged responses carry no
        full-object checksum, so their bytes are checked by size only, and the caller checks
        its own digest (as the Offloader does when the pointer has one)."""
        return self._reading(key, size)

    def _reading(self, key: str, size: int | None) -> BinaryIO:
        from ._s3_io import ObjectStream

        loop = self._io.loop
        reader = sync(loop, self._open, self._io, key, size)
        return StoreStream(
            cast(BinaryIO, ObjectStream(reader, loop)),
            location=self.location(key),
            translate=translate_fsspec_error,
        )

    def info(self, key: str) -> ObjectInfo:
        return self._now(self._info, key)

    def delete(self, key: str) -> None:
        """Delete the object; S3 answers success for a missing key. A 403 is raised, never
        taken to mean the object is gone."""
        self._now(self._delete, key)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Objects whose key starts with ``prefix``, from ``ListObjectsV2`` (needs
        ``s3:ListBucket``); keys that would not be valid store keys are skipped."""
        return self._list(prefix)

    def _list(self, prefix: str) -> Iterator[ObjectInfo]:
        params: dict[str, Any] | None = {"Prefix": self._root + prefix}
        while params is not None:
            found, params = self._now(self._page, params)
            yield from found

    # -- the asynchronous face -----------------------------------------------------------------

    def async_store(self) -> AsyncS3Store:
        """This store's asynchronous face (:class:`AsyncS3Store`): the same requests and checks,
        awaited on the caller's event loop."""
        return AsyncS3Store(self)

    def _async_requests(self) -> tuple[Requests, Any]:
        """A request path for the running loop, and its s3fs filesystem (``None`` on a boto3
        client, whose threads are the store's own)."""
        if self.fs is None:
            return self._io, None
        from s3fs import S3FileSystem

        options = {**self._fs_options, "asynchronous": True, "skip_instance_cache": True}
        fs = S3FileSystem(**options)
        return _S3fsRequests(fs), fs


class Requests(Protocol):
    """Where a store's requests go: s3fs's client, or a boto3 client on a thread pool."""

    async def call(self, method: str, **params: Any) -> Any: ...


class AsyncS3Store:
    """The asynchronous face of an :class:`S3Store` (or :class:`~offload_backends.mrap.MrapStore`):
    the same requests, uploads, reads, checks and errors, as coroutines on the caller's event
    loop, with no thread in between.

    With s3fs it sends requests through an :class:`s3fs.S3FileSystem` of its own
    (``asynchronous=True``, the store's options and credentials), made on first use in the
    running loop and released by :meth:`aclose`. It belongs to that loop: used from another
    loop while that one is still open, the face raises ``RuntimeError`` (close it there first,
    or take a face per loop); once that loop is closed, it makes a new client (``aclose()``
    before closing a loop releases the old one's connections). On a boto3 client it awaits the
    store's own client and threads.
    """

    def __init__(self, store: S3Store) -> None:
        self.store = store
        self.url = store.url
        #: The asynchronous s3fs filesystem requests go through, once made (``None`` before,
        #: after :meth:`aclose`, and on a boto3 client).
        self.fs: Any = None
        self._io: Requests | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.store!r})"

    def location(self, key: str) -> str:
        return self.store.location(key)

    def key_for(self, location: str) -> str | None:
        return self.store.key_for(location)

    def _owned(self) -> Requests | None:
        """The request path made for the running loop, if any; ``RuntimeError`` if it is still
        another (open) loop's."""
        import asyncio

        loop = asyncio.get_running_loop()
        if self._io is not None and self._loop is not loop:
            assert self._loop is not None
            if not self._loop.is_closed():
                raise RuntimeError(
                    f"{self!r} is in use on another event loop: aclose() it there first, or "
                    "take a face per loop (store.async_store())"
                )
            self._io = self.fs = None  # its connections went with that loop
        return self._io

    def _requests(self) -> Requests:
        import asyncio

        io = self._owned()
        if io is None:
            io, self.fs = self.store._async_requests()
            self._io, self._loop = io, asyncio.get_running_loop()
        return io

    async def client(self) -> Any:
        """The aiobotocore client requests go through (``None`` on a boto3 client)."""
        io = self._requests()
        return await io.client(self.store.bucket) if isinstance(io, _S3fsRequests) else None

    @asynccontextmanager
    async def open_write(
        self, key: str, *, metadata: Mapping[str, str] | None = None, exclusive: bool = False
    ) -> AsyncIterator[AsyncSink]:
        """As :meth:`S3Store.open_write`: the object appears when the block exits cleanly. An
        error or a cancellation in the block, or while the parts go up, aborts the upload (to
        the end, even while the task is being cancelled); an object that a cancelled commit
        made anyway is removed."""
        store = self.store
        object_key = store._object_key(key)
        location = store.location(key)
        params = _metadata_params(metadata, location)
        io = self._requests()
        from ._s3_io import Upload

        if exclusive:
            await store._refuse_existing(io, object_key, location)
        upload = Upload(
            io.call, store.bucket, object_key, location=location, exclusive=exclusive,
            params=params, **store._upload_options(),
        )  # fmt: skip
        try:
            yield _Sink(upload, location)
            with translating(translate_fsspec_error, location):
                await upload.commit()
        except BaseException:
            await upload.abort()
            raise

    async def open_read(self, key: str, *, size: int | None = None) -> AsyncSource:
        """As :meth:`S3Store.open_read`, or with ``size`` :meth:`S3Store.open_read_sized`.
        Closing the source, or cancelling a read, cancels its requests in flight."""
        reader = await self.store._open(self._requests(), key, size)
        return _Source(reader, self.store.location(key))

    async def info(self, key: str) -> ObjectInfo:
        return await self.store._info(self._requests(), key)

    async def delete(self, key: str) -> None:
        await self.store._delete(self._requests(), key)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        params: dict[str, Any] | None = {"Prefix": self.store._root + prefix}
        while params is not None:
            found, params = await self.store._page(self._requests(), params)
            for item in found:
                yield item

    async def aclose(self) -> None:
        """Release the s3fs client and its connections (a later call makes a new one)."""
        io = self._owned()
        self._io = self.fs = None
        if isinstance(io, _S3fsRequests):
            await io.aclose()


class _Sink:
    """An upload as an :class:`~offload_core.aio.store.AsyncSink`, its errors offload's."""

    def __init__(self, upload: Upload, location: str) -> None:
        self._upload = upload
        self._location = location

    async def write(self, data: bytes | memoryview, /) -> int:
        with translating(translate_fsspec_error, self._location):
            return await self._upload.write(data)


class _Source:
    """A reader as an :class:`~offload_core.aio.store.AsyncSource`, its errors offload's."""

    def __init__(self, reader: ObjectReader, location: str) -> None:
        self._reader = reader
        self._location = location
        self._closed = False
        self.size: int | None = reader.size

    async def read(self, size: int = -1, /) -> bytes:
        if self._closed:
            raise ValueError("I/O operation on closed file")
        with translating(translate_fsspec_error, self._location):
            return await self._reader.read(size)

    async def aclose(self) -> None:
        self._closed = True
        await self._reader.aclose()


class _S3fsRequests:
    """Requests through s3fs's client (s3fs's retries and additional kwargs apply), in the
    shape :class:`~offload_backends._s3_boto3.Boto3Requests` has: on fsspec's I/O loop for the
    synchronous face, on the caller's loop for an asynchronous filesystem. The loop is asked for
    on every use: fsspec refuses it in a process forked after it started. s3fs's client (made on
    first use, and again on a refresh) sends upload bodies without waiting for ``100 Continue``
    (:func:`~offload_backends._s3_boto3.send_bodies_at_once`).
    """

    def __init__(self, fs: Any) -> None:
        self._fs = fs
        self._client: Any = None

    async def client(self, bucket: str | None) -> Any:
        """The client for ``bucket`` (one per region, if s3fs is so configured)."""
        await self._fs.set_session()
        client = await self._fs.get_s3(bucket)
        if client is not self._client:
            send_bodies_at_once(client)
            self._client = client
        return client

    async def call(self, method: str, **params: Any) -> Any:
        await self.client(params.get("Bucket"))
        return await self._fs._call_s3(method, **params)

    @property
    def loop(self) -> Any:
        return self._fs.loop

    async def aclose(self) -> None:
        """Close the client of an asynchronous filesystem, and its connections."""
        creator = getattr(self._fs, "_s3creator", None)
        if creator is not None:
            await creator.__aexit__(None, None, None)


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
