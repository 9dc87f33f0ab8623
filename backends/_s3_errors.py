"""S3's failures in offload's error tree.

S3 answers through botocore's ``ClientError``, which s3fs re-raises as an ``OSError`` whose
``__cause__`` is the ``ClientError``; both shapes are read here. What S3 alone can say (a missing
bucket, ACLs disabled by Object Ownership, rejected credentials, a failed condition) is decided
here; everything else goes to the fsspec store's translation, which the S3 store shares.

A 403 never means "deleted": without ``s3:ListBucket`` S3 answers 403 for a missing key as well,
so access-denied errors say so and are never turned into not-found.
"""

from __future__ import annotations

from typing import Any

from offload_core.errors import (
    AccessDeniedError,
    ConfigurationError,
    IntegrityError,
    MissingDependencyError,
    OffloadError,
    PayloadNotFoundError,
    StorageError,
    TransientStorageError,
)

from .fsspec_store import translate_fsspec_error

__all__ = [
    "BucketNotFoundError",
    "client_error",
    "error_code",
    "error_status",
    "translate_s3_error",
]

_CREDENTIAL_CODES = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken",
     "TokenRefreshRequired", "InvalidClientTokenId", "UnrecognizedClientException"}
)  # fmt: skip
_DENIED_CODES = frozenset({"AccessDenied", "AllAccessDisabled", "AccountProblem", "403"})
_TRANSIENT_CODES = frozenset(
    {"ConditionalRequestConflict", "OperationAborted", "RequestTimeTooSkewed",
     "KMS.ThrottlingException", "ThrottlingException"}
)  # fmt: skip
_NO_CREDENTIALS = frozenset({"NoCredentialsError", "PartialCredentialsError"})


class BucketNotFoundError(PayloadNotFoundError, ConfigurationError):
    """The store's bucket (or access point) does not exist, so nothing can be stored or found in
    it: a payload not found, and a configuration to fix (the URL, the account or the region)."""


def client_error(exc: BaseException) -> Any | None:
    """The botocore ``ClientError`` in ``exc`` or its chain of causes, if there is one."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        response = getattr(current, "response", None)
        if isinstance(response, dict) and isinstance(response.get("Error"), dict):
            return current
        current = current.__cause__
    return None


def error_code(exc: BaseException) -> str | None:
    """The S3 error code (``NoSuchKey``, ``SlowDown``) behind ``exc``, if S3 answered."""
    error = client_error(exc)
    return None if error is None else str(error.response["Error"].get("Code", ""))


def error_status(exc: BaseException) -> int | None:
    """The HTTP status behind ``exc``, if S3 answered."""
    error = client_error(exc)
    if error is None:
        return None
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status if isinstance(status, int) else None


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def translate_s3_error(exc: BaseException, location: str) -> Exception | None:
    """Map an S3 failure to the ``StorageError`` tree (callers chain the original as cause).

    ``FileExistsError`` passes unchanged: it is how exclusive writes report an existing object.
    """
    if isinstance(exc, (OffloadError, FileExistsError)):
        return None
    error = client_error(exc)
    if error is None:
        names = _names(exc)
        if "ProfileNotFound" in names:
            return ConfigurationError(
                f"{exc}; name a profile from ~/.aws/config, or leave it out to use the "
                "environment or an instance role"
            )
        if names & _NO_CREDENTIALS:
            return AccessDeniedError(
                f"no AWS credentials for {location}: {exc}; configure a profile, the environment "
                "or an instance role, or pass key/secret/token in the storage options",
                location=location,
            )
        if "FlexibleChecksumError" in names:
            return IntegrityError(
                f"the S3 checksum of {location} does not match the bytes received: {exc}",
                location=location,
                check="s3-checksum",
            )
        if "MissingDependencyException" in names:
            return MissingDependencyError(
                f"signing requests to {location} (SigV4A)", module="awscrt", extra="mrap"
            )
        return translate_fsspec_error(exc, location)
    code = error_code(error) or ""
    status = error_status(error)
    message = error.response["Error"].get("Message") or str(error)
    if code == "NoSuchBucket":
        bucket = error.response["Error"].get("BucketName") or "the bucket"
        return BucketNotFoundError(
            f"{bucket} does not exist (for {location}); check the store URL, the account and "
            "the partition",
            location=location,
        )
    if code == "AccessControlListNotSupported":
        return ConfigurationError(
            f"S3 refused the ACL on {location}: the bucket's Object Ownership is "
            "'Bucket owner enforced', which disables ACLs. Drop the store's acl option and grant "
            "access with the bucket policy instead"
        )
    if code in _CREDENTIAL_CODES:
        return AccessDeniedError(
            f"S3 rejected the credentials used for {location} ({code}: {message}); check the "
            "access key, secret, session token, clock and region",
            location=location,
        )
    if code in _DENIED_CODES or status == 403:
        return AccessDeniedError(
            f"access to {location} denied ({code or status}: {message}). Without s3:ListBucket "
            "S3 also answers this for a key that does not exist, so it does not prove the "
            "payload was deleted",
            location=location,
        )
    if code in _TRANSIENT_CODES or code.startswith("KMS.Throttling"):
        return TransientStorageError(f"{location}: {code}: {message}; try again", location=location)
    if code == "InvalidObjectState":
        return StorageError(
            f"{location} is archived ({message}); restore it before reading", location=location
        )
    return translate_fsspec_error(error, location)
