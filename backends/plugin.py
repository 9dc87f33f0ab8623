"""Registers the built-in storage backends; importing this module imports no backend."""

from __future__ import annotations

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
        extra="s3",
        description="an S3 bucket or access point through s3fs; MRAP ARNs open the mrap backend",
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
