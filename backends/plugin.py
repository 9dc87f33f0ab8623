"""Registers the built-in storage backends, and says which store an S3 web address means;
importing this module imports no backend."""

from __future__ import annotations

from urllib.parse import urlsplit

from offload_core import hookimpl
from offload_core.registry import Registrar


@hookimpl
def offload_register_backends(register: Registrar) -> None:
    register(
        "local",
        "offload_backends.local:LocalStore",
        schemes=("file",),
        description="a directory on local disk; atomic writes, confined to its root",
    )
    register(
        "memory",
        "offload_backends.memory:MemoryStore",
        schemes=("memory",),
        description="process memory; for tests and demos",
    )
    register(
        "s3",
        "offload_backends.s3_factory:open_store",
        schemes=("s3",),
        extra="aws",
        description="an S3 bucket or access point, through s3fs or boto3; MRAP ARNs open mrap",
    )
    register(
        "mrap",
        "offload_backends.mrap:MrapStore",
        extra="mrap",
        description="an S3 Multi-Region Access Point (SigV4A); chosen for s3://<mrap-arn>/ URLs",
    )
    register(
        "fsspec",
        "offload_backends.fsspec_store:FsspecStore",
        schemes=("*",),
        description="any other installed fsspec filesystem (gcs, az, ...)",
    )


@hookimpl
def offload_store_url_hint(url: str) -> str:
    """An ``http(s)://`` address on S3's host names as its ``s3://`` URL; any other as the
    endpoint of an S3-compatible service."""
    from offload_core.aws.arn import s3_address

    address = s3_address(url)
    if address is not None:
        region = f" (with --region {address.region})" if address.region else ""
        return (
            f"{url!r} is an S3 address over HTTP(S); stores are named by their s3:// URL: use "
            f"{address.url!r}{region}"
        )
    parts = urlsplit(url)
    endpoint = f"{parts.scheme}://{parts.netloc}"
    bucket, _, prefix = parts.path.strip("/").partition("/")
    guess = f"s3://{bucket or 'BUCKET'}" + (f"/{prefix}" if prefix else "")
    return (
        f"{url!r} is an HTTP(S) address, not a store (offload writes, reads and lists payloads "
        f"through a store); for an S3-compatible service at {endpoint}, use --store {guess} "
        f"--endpoint-url {endpoint}"
    )
