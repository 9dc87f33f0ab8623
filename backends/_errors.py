"""Storage errors as offload's: fsspec's ``OSError`` family and botocore's (through s3fs or a
boto3 client). Kept apart from :mod:`offload_backends.fsspec_store` so that the S3 store on a
boto3 client never imports fsspec's filesystems."""

from __future__ import annotations

import errno

from offload_core.aws.errors import storage_error
from offload_core.errors import TransientStorageError
from offload_core.store import translate_os_error

__all__ = ["translate_fsspec_error"]

_TRANSIENT_ERRNOS = frozenset({errno.EBUSY, getattr(errno, "EREMOTEIO", errno.EIO)})


def translate_fsspec_error(exc: BaseException, location: str) -> Exception | None:
    """Map fsspec's ``OSError`` family, and the errors of S3 through s3fs or boto3 (botocore's,
    read by :func:`offload_core.aws.errors.storage_error`), to offload errors."""
    mapped = storage_error(exc, location)
    if mapped is not None:
        return mapped
    if isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS:
        return TransientStorageError(f"{location}: {exc}; try again", location=location)
    return translate_os_error(exc, location)
