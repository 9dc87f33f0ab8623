"""The one exception tree of offload.

Every error says whether retrying can help (``retryable``) and carries the data a caller needs
to act on it (location, sizes, which check failed) as attributes, not only in the message::

    OffloadError                      base; .retryable is False unless stated
    ├── ConfigurationError            bad options or setup; fix the code or environment
    │   ├── PluginNotFoundError       no plugin of that kind and name (.kind, .name, .suggestion)
    │   ├── PluginConflictError       two plugins register one name (.kind, .name, .plugins)
    │   ├── MissingDependencyError    the plugin needs an extra (.extra, .module)
    │   ├── IncompatibleOptionsError  options that cannot work together (AWS format + zstd)
    │   └── RoutingFieldError         an event lacks a routing field to keep inline (.fields)
    ├── PointerError                  a message that is a pointer but not a valid one
    │   ├── UnsupportedVersionError   a native pointer of a version this reader does not know
    │   └── SignatureError            unsigned, forged, unknown key or expired (.reason, .key_id)
    ├── MessageTooLargeError          does not fit and offloading is off (.size, .limit)
    ├── LocationNotAllowedError       the pointer names a location outside the configured stores
    ├── StorageError                  the store failed (.location)
    │   ├── UnsafeKeyError            a key that would escape the store's root
    │   ├── PayloadNotFoundError      nothing at the location (it may have expired)
    │   ├── AccessDeniedError         the store refused (note: S3 answers 403 for missing keys too)
    │   └── TransientStorageError     throttling, timeouts, 5xx: retryable
    ├── TransportError                the queue or topic service failed a call (.operation, .code,
    │                                 .outcome_unknown)
    └── IntegrityError                the bytes read are not those written (.location, .check)
        ├── DigestMismatchError       checksum differs (.expected, .actual)
        ├── SizeMismatchError         truncated or overlong data (.expected, .actual)
        └── DecompressionLimitError   output would exceed the declared size or the hard cap (.limit)

A consumer that gets any of these must not acknowledge the message: the payload was not delivered.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

__all__ = [
    "AccessDeniedError",
    "ConfigurationError",
    "DecompressionLimitError",
    "DigestMismatchError",
    "IncompatibleOptionsError",
    "IntegrityError",
    "LocationNotAllowedError",
    "MessageTooLargeError",
    "MissingDependencyError",
    "OffloadError",
    "PayloadNotFoundError",
    "PluginConflictError",
    "PluginNotFoundError",
    "PointerError",
    "RoutingFieldError",
    "SignatureError",
    "SizeMismatchError",
    "StorageError",
    "TransientStorageError",
    "TransportError",
    "UnsafeKeyError",
    "UnsupportedVersionError",
]


class OffloadError(Exception):
    """Base of every error raised by offload."""

    #: True when the same call may succeed later (throttling, timeouts); False when it never will.
    retryable: bool = False


class ConfigurationError(OffloadError):
    """The library is set up in a way that cannot work; fix the options or the environment."""


class PluginNotFoundError(ConfigurationError):
    """No registered plugin of ``kind`` is called ``name``."""

    def __init__(
        self, kind: str, name: str, *, available: Sequence[str] = (), suggestion: str | None = None
    ) -> None:
        self.kind = kind
        self.name = name
        self.available = tuple(available)
        self.suggestion = suggestion
        hint = f" Did you mean {suggestion!r}?" if suggestion else ""
        known = ", ".join(sorted(self.available)) or "none"
        super().__init__(f"no {kind} named {name!r} is registered.{hint} Registered: {known}.")


class PluginConflictError(ConfigurationError):
    """Two plugins register one name for one kind; disable one with OFFLOAD_DISABLED_PLUGINS."""

    def __init__(self, kind: str, name: str, plugins: Sequence[str]) -> None:
        self.kind = kind
        self.name = name
        self.plugins = tuple(plugins)
        super().__init__(
            f"{kind} {name!r} is registered by several plugins ({', '.join(self.plugins)}); "
            "disable all but one with OFFLOAD_DISABLED_PLUGINS."
        )


class MissingDependencyError(ConfigurationError, ImportError):
    """A plugin's optional dependency is not installed; the message names the extra to install."""

    def __init__(self, what: str, *, module: str, extra: str | None) -> None:
        self.what = what
        self.module = module
        self.extra = extra
        install = f"pip install 'offload[{extra}]'" if extra else f"pip install {module}"
        super().__init__(f"{what} needs the {module!r} package: {install}", name=module)


class IncompatibleOptionsError(ConfigurationError):
    """Options that cannot work together, such as compression with the AWS pointer format."""


class RoutingFieldError(ConfigurationError):
    """Routing fields to keep inline beside an EventBridge pointer (``keep=``) are missing from
    the event or cannot travel there; raised before anything is stored. ``fields`` names them."""

    def __init__(self, message: str, *, fields: Sequence[str]) -> None:
        self.fields = tuple(fields)
        super().__init__(message)


class PointerError(OffloadError):
    """The message is a pointer, but not a valid one; it is never handed on as a payload."""

    def __init__(self, message: str, *, dialect: str | None = None) -> None:
        self.dialect = dialect
        super().__init__(message)


class UnsupportedVersionError(PointerError):
    """A native pointer of a version this reader does not understand; upgrade the consumer."""

    def __init__(self, version: object) -> None:
        self.version = version
        super().__init__(
            f"native pointer version {version!r} is not supported by this reader; "
            "upgrade offload on the consumer",
            dialect="native",
        )


#: Why a pointer failed its signature check.
SignatureFailure = Literal["unsigned", "bad-signature", "unknown-key", "expired"]


class SignatureError(PointerError):
    """A pointer failed the signature check, so its location was never used.

    ``reason`` is ``"unsigned"``, ``"bad-signature"`` (altered or forged), ``"unknown-key"`` or
    ``"expired"``; ``key_id`` is the key the pointer names, if any.
    """

    def __init__(
        self,
        reason: SignatureFailure,
        *,
        key_id: str | None = None,
        location: str | None = None,
        dialect: str | None = None,
    ) -> None:
        self.reason: SignatureFailure = reason
        self.key_id = key_id
        self.location = location
        what = f"pointer to {location!r}" if location else "pointer"
        message = {
            "unsigned": f"{what} is not signed and this consumer requires signatures; "
            "publish with Offloader(sign_with=...)",
            "bad-signature": f"signature of {what} (key {key_id!r}) does not match: the pointer "
            "was altered or forged",
            "unknown-key": f"{what} is signed with key {key_id!r}, which this consumer does not "
            "know; add it (OFFLOAD_SIGNING_KEYS or a signer plugin) if the publisher is trusted",
            "expired": f"{what} (key {key_id!r}) has expired; its payload may be gone",
        }[reason]
        super().__init__(message, dialect=dialect)


class MessageTooLargeError(OffloadError):
    """The message exceeds the transport's limit and the policy forbids offloading it."""

    def __init__(self, *, size: int, limit: int, reason: str = "") -> None:
        self.size = size
        self.limit = limit
        extra = f" ({reason})" if reason else ""
        super().__init__(
            f"message of {size} bytes exceeds the limit of {limit} bytes{extra}; "
            "allow offloading (threshold mode 'auto' or 'always') or send less"
        )


class LocationNotAllowedError(OffloadError):
    """The pointer names a location outside every configured store and allowlist entry."""

    def __init__(self, location: str) -> None:
        self.location = location
        super().__init__(
            f"refusing to read {location!r}: it is not under a configured store or the allowlist; "
            "add the store to the consumer if the sender is trusted"
        )


class StorageError(OffloadError):
    """The store could not do what was asked."""

    def __init__(self, message: str, *, location: str | None = None) -> None:
        self.location = location
        super().__init__(message)


class UnsafeKeyError(StorageError):
    """A key that would leave the store's root (``..``, absolute, control characters, symlinks)."""


class PayloadNotFoundError(StorageError):
    """Nothing is stored at the location: never written, deleted, or expired by the lifecycle."""


class AccessDeniedError(StorageError):
    """The store refused access; S3 also answers this for missing keys without s3:ListBucket."""


class TransientStorageError(StorageError):
    """Throttling, a timeout or a server error; the same call may succeed later."""

    retryable = True


class TransportError(OffloadError):
    """The messaging service (SQS, SNS ...) refused or failed a call; the original error is the
    ``__cause__``. ``retryable`` is set per error: True for throttling, timeouts and 5xx.
    ``outcome_unknown`` is True when the service may have accepted the call all the same (its
    answer was lost): a payload the message points to is then kept."""

    def __init__(
        self,
        message: str,
        *,
        operation: str,
        code: str | None = None,
        destination: str | None = None,
        retryable: bool = False,
        outcome_unknown: bool = False,
    ) -> None:
        self.operation = operation
        self.code = code
        self.destination = destination
        self.retryable = retryable
        self.outcome_unknown = outcome_unknown
        super().__init__(message)


class IntegrityError(OffloadError):
    """The bytes read back are not the bytes that were stored."""

    def __init__(self, message: str, *, location: str | None = None, check: str) -> None:
        self.location = location
        self.check = check
        super().__init__(message)


class DigestMismatchError(IntegrityError):
    """The payload's checksum differs from the one in the pointer."""

    def __init__(
        self, *, algorithm: str, expected: str, actual: str, location: str | None = None
    ) -> None:
        self.algorithm = algorithm
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"{algorithm} digest mismatch for {location or 'payload'}: "
            f"pointer says {expected}, data gives {actual}",
            location=location,
            check="digest",
        )


class SizeMismatchError(IntegrityError):
    """The payload is shorter (truncated) or longer than the pointer declares."""

    def __init__(self, *, expected: int, actual: int, location: str | None = None) -> None:
        self.expected = expected
        self.actual = actual
        what = "truncated" if actual < expected else "longer than declared"
        super().__init__(
            f"payload at {location or '?'} is {what}: expected {expected} bytes, got {actual}",
            location=location,
            check="size",
        )


class DecompressionLimitError(IntegrityError):
    """Decompressing would produce more than the declared size or the configured hard cap."""

    def __init__(self, *, limit: int, location: str | None = None) -> None:
        self.limit = limit
        super().__init__(
            f"decompressed payload at {location or '?'} exceeds {limit} bytes; "
            "refusing to continue (corrupt data or a decompression bomb)",
            location=location,
            check="decompressed-size",
        )
