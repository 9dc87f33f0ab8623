"""botocore's errors, read without importing botocore, as offload's errors.

A service that answers with an error raises botocore's ``ClientError``, whose ``response`` holds
the code, the HTTP status and the message; s3fs re-raises it as an ``OSError`` whose
``__cause__`` it is, so the chain of causes is read too (:func:`service_error`). Failures before
an answer (no connection, a timeout) are botocore's, aiobotocore's or aiohttp's own classes,
recognised by name. One table says which answers are worth retrying (:data:`TRANSIENT_CODES`,
and any HTTP 429 or 5xx).

:func:`storage_error` maps S3's failures to the ``StorageError`` tree. A 403 never means
"deleted": without ``s3:ListBucket`` S3 answers 403 for a missing key as well, so access-denied
errors say so and are never turned into not-found. :func:`transport_error` (and the
:func:`translated` block) maps the messaging services' failures to ``TransportError``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

from offload_core.errors import (
    AccessDeniedError,
    ConfigurationError,
    IntegrityError,
    MissingDependencyError,
    OffloadError,
    PayloadNotFoundError,
    StorageError,
    TransientStorageError,
    TransportError,
)
from offload_core.publishing import is_outcome_unknown

__all__ = [
    "ACCESS_DENIED_CODES",
    "TRANSIENT_CODES",
    "BucketNotFoundError",
    "ServiceError",
    "error_status",
    "is_transient",
    "network_error",
    "outcome_unknown",
    "service_error",
    "storage_error",
    "translated",
    "transport_error",
]

#: Error codes that mean the same call may succeed later: throttling, timeouts, a busy or
#: failing service (with HTTP 429 and 5xx, whatever their code).
TRANSIENT_CODES: Final = frozenset(
    {"Throttling", "ThrottlingException", "RequestThrottled", "SlowDown", "RequestLimitExceeded",
     "TooManyRequestsException", "KmsThrottled", "KMS.ThrottlingException", "RequestTimeout",
     "RequestTimeTooSkewed", "InternalError", "InternalFailure", "ServiceUnavailable",
     "OperationAborted", "ConditionalRequestConflict", "500", "503"}
)  # fmt: skip
#: Error codes of a caller who may not do what it asked.
ACCESS_DENIED_CODES: Final = frozenset(
    {"AccessDenied", "AccessDeniedException", "AuthorizationError", "AllAccessDisabled",
     "AccountProblem", "Forbidden", "403"}
)  # fmt: skip
#: Error codes of credentials the service does not accept.
_CREDENTIAL_CODES: Final = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken",
     "TokenRefreshRequired", "InvalidClientTokenId", "UnrecognizedClientException"}
)  # fmt: skip
_NOT_FOUND_CODES: Final = frozenset({"NoSuchKey", "NotFound", "404"})
#: Parts of the codes SQS, SNS and EventBridge give a queue, topic or bus that does not exist.
_MISSING_DESTINATION: Final = ("NonExistentQueue", "QueueDoesNotExist", "NotFound")
#: Network failures of botocore, aiobotocore and aiohttp, by class name (botocore's own
#: ``ConnectionError`` is recognised by its module: the name is also Python's).
_NETWORK_ERRORS: Final = frozenset(
    {"EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError",
     "ResponseStreamingError", "IncompleteReadError", "HTTPClientError", "ClientConnectionError",
     "ClientPayloadError", "ServerTimeoutError"}
)  # fmt: skip
#: Failures after the request may have reached the service: its answer was lost.
_OUTCOME_UNKNOWN: Final = frozenset({"ReadTimeoutError", "ConnectionClosedError"})
_NO_CREDENTIALS: Final = frozenset({"NoCredentialsError", "PartialCredentialsError"})


class BucketNotFoundError(PayloadNotFoundError, ConfigurationError):
    """The store's bucket (or access point) does not exist, so nothing can be stored or found in
    it: a payload not found, and a configuration to fix (the URL, the account or the region)."""


@dataclass(frozen=True)
class ServiceError:
    """A service's error answer, as botocore's ``ClientError`` carries it."""

    code: str | None
    status: int | None
    message: str
    #: The ``Error`` part of the response (``Code``, ``Message``, ``BucketName`` ...).
    details: Mapping[str, Any]
    #: The ``ClientError`` itself.
    exception: BaseException


def service_error(exc: BaseException) -> ServiceError | None:
    """The service's answer behind ``exc`` (itself or a cause), if a service answered."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        response = getattr(current, "response", None)
        if isinstance(response, dict) and isinstance(response.get("Error"), dict):
            details = response["Error"]
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            return ServiceError(
                code=str(details.get("Code", "")) or None,
                status=status if isinstance(status, int) else None,
                message=str(details.get("Message") or current),
                details=details,
                exception=current,
            )
        current = current.__cause__
    return None


def error_status(exc: BaseException) -> int | None:
    """The HTTP status of the service's answer behind ``exc``, if a service answered."""
    error = service_error(exc)
    return None if error is None else error.status


def is_transient(code: str | None, status: int | None = None) -> bool:
    """Whether an error code (and HTTP status) means the same call may succeed later."""
    return code in TRANSIENT_CODES or status == 429 or (status or 0) >= 500


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def network_error(exc: BaseException) -> bool:
    """Whether ``exc`` is an SDK's network failure (no connection, a timeout, a cut stream)."""
    return any(
        cls.__name__ in _NETWORK_ERRORS
        or (cls.__name__ == "ConnectionError" and cls.__module__.startswith("botocore"))
        for cls in type(exc).__mro__
    )


def outcome_unknown(exc: BaseException) -> bool:
    """Whether the service may have accepted a request that raised ``exc``: the core's rule
    (an interruption, or an error that says so), botocore's read timeout or connection closed
    before the answer (itself or as the cause of a translated error), or an answer that came
    after retries: an earlier attempt may have been accepted and its answer lost, so a final
    refusal proves nothing about the message."""
    if is_outcome_unknown(exc):
        return True
    if any(
        error is not None and bool(_names(error) & _OUTCOME_UNKNOWN)
        for error in (exc, exc.__cause__)
    ):
        return True
    error = service_error(exc)
    if error is None:
        return False
    response = getattr(error.exception, "response", {})
    attempts = response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
    return isinstance(attempts, int) and attempts > 0


# -- storage -----------------------------------------------------------------------------------


def storage_error(exc: BaseException, location: str) -> Exception | None:
    """S3's (or the SDK's) failure ``exc`` at ``location`` in the ``StorageError`` tree, for
    the caller to raise from ``exc``; ``None`` when it is no AWS failure (the caller's own
    translation goes on), and for ``FileExistsError``, how exclusive writes report an
    existing object."""
    if isinstance(exc, (OffloadError, FileExistsError)):
        return None
    error = service_error(exc)
    if error is None:
        return _sdk_storage_error(exc, location)
    code, status, message = error.code or "", error.status, error.message
    if code == "NoSuchBucket":
        bucket = error.details.get("BucketName") or "the bucket"
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
    if code in ACCESS_DENIED_CODES or status == 403:
        return AccessDeniedError(
            f"access to {location} denied ({code or status}: {message}). Without s3:ListBucket "
            "S3 also answers this for a key that does not exist, so it does not prove the "
            "payload was deleted",
            location=location,
        )
    if code in _NOT_FOUND_CODES or status == 404:
        return PayloadNotFoundError(f"no object at {location}", location=location)
    if is_transient(code, status) or code.startswith("KMS.Throttling"):
        return TransientStorageError(f"{location}: {code}: {message}; try again", location=location)
    if code == "InvalidObjectState":
        return StorageError(
            f"{location} is archived ({message}); restore it before reading", location=location
        )
    return StorageError(f"{location}: {error.exception}", location=location)


def _sdk_storage_error(exc: BaseException, location: str) -> Exception | None:
    """Failures the SDK raises before or without an answer from S3."""
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
    if network_error(exc):
        return TransientStorageError(f"{location}: {exc}; try again", location=location)
    return None


# -- transports --------------------------------------------------------------------------------


def transport_error(
    exc: BaseException, service: str, operation: str, destination: str
) -> TransportError | None:
    """A messaging service's failure ``exc`` as a :class:`TransportError`, for the caller to
    raise from ``exc``; ``None`` for offload's own errors and for what is not botocore's."""
    if isinstance(exc, OffloadError):
        return None
    where = f"{service} {operation} on {destination} failed"
    error = service_error(exc)
    if error is not None:
        code = error.code
        missing = code is not None and any(m in code for m in _MISSING_DESTINATION)
        hint = "; check the name or URL, the region and the account" if missing else ""
        return TransportError(
            f"{where}: {code}: {error.message.rstrip('.')}{hint}",
            operation=operation,
            code=code,
            destination=destination,
            retryable=is_transient(code, error.status),
            outcome_unknown=outcome_unknown(exc),
        )
    if type(exc).__module__.startswith("botocore"):
        return TransportError(
            f"{where}: {exc}",
            operation=operation,
            destination=destination,
            retryable=network_error(exc),
            outcome_unknown=outcome_unknown(exc),
        )
    return None


@contextmanager
def translated(service: str, operation: str, destination: str) -> Iterator[None]:
    """Inside the block, botocore's errors become :class:`TransportError` (the original is the
    ``__cause__``); offload's own errors and anything else pass through."""
    try:
        yield
    except Exception as exc:
        mapped = transport_error(exc, service, operation, destination)
        if mapped is None:
            raise
        raise mapped from exc
