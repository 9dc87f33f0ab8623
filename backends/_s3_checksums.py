"""S3's additional checksums, computed locally: sent with uploads, checked against downloads.

Uploads use the CRC family because only those can describe a multipart object as a whole
(``ChecksumType=FULL_OBJECT``), which is what lets a reader check the entire object however it
was uploaded and however the download was split. Downloads also check SHA-1 and SHA-256
full-object checksums that other clients may have stored.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import zlib
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from offload_core.errors import ConfigurationError, MissingDependencyError

__all__ = [
    "UPLOAD_ALGORITHMS",
    "Digest",
    "append",
    "encode",
    "expected_checksum",
    "new_digest",
    "upload_digest",
]

#: The algorithms an upload may request; ``None`` turns upload checksums off.
UPLOAD_ALGORITHMS = ("CRC32", "CRC32C", "CRC64NVME")
_ALL_ALGORITHMS = (*UPLOAD_ALGORITHMS, "SHA1", "SHA256")


class Digest(Protocol):
    """The part of ``hashlib``'s interface the stores use."""

    def update(self, data: bytes | bytearray | memoryview, /) -> None: ...

    def digest(self) -> bytes: ...


class _Crc:
    """A running CRC over ``update`` calls, as S3 encodes it (big-endian, ``width`` bytes).

    With ``combine`` (awscrt's), the CRC of a part computed elsewhere can be appended without
    reading the part again."""

    def __init__(
        self,
        function: Callable[[Any, int], int],
        width: int,
        combine: Callable[[int, int, int], int] | None = None,
    ) -> None:
        self._function = function
        self._combine = combine
        self._width = width
        self._value = 0

    def update(self, data: bytes | bytearray | memoryview, /) -> None:
        self._value = self._function(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(self._width, "big")

    def append(self, other: _Crc, length: int) -> bool:
        """Append ``other``, the CRC of the next ``length`` bytes; ``False`` if it cannot."""
        if self._combine is None or other._width != self._width:
            return False
        self._value = self._combine(self._value, other._value, length)
        return True


def append(whole: Digest, part: Digest, length: int) -> bool:
    """Extend ``whole`` by ``part``, the digest of the next ``length`` bytes, when the two are
    CRCs that can be combined; ``False`` means ``whole`` must be fed the bytes instead."""
    return isinstance(whole, _Crc) and isinstance(part, _Crc) and whole.append(part, length)


def _crt_function(name: str) -> Callable[..., int] | None:
    """``awscrt.checksums.<name>``, hardware accelerated, if awscrt is installed."""
    try:
        checksums = importlib.import_module("awscrt.checksums")
    except ImportError:
        return None
    function: Callable[..., int] | None = getattr(checksums, name, None)
    return function


def _crc32c_function() -> Callable[[Any, int], int] | None:
    crt = _crt_function("crc32c")
    if crt is not None:
        return crt
    try:
        import crc32c
    except ImportError:
        return None
    return lambda data, value: int(crc32c.crc32c(data, value=value))


def _factory(algorithm: str) -> Callable[[], Digest] | None:
    """A constructor of running digests for ``algorithm``, ``None`` if none is installed."""
    if algorithm == "CRC32":
        combine = _crt_function("combine_crc32")
        return lambda: _Crc(zlib.crc32, 4, combine)
    if algorithm == "CRC32C":
        crc32c = _crc32c_function()
        combine = _crt_function("combine_crc32c")
        return None if crc32c is None else (lambda: _Crc(crc32c, 4, combine))
    if algorithm == "CRC64NVME":
        crc64 = _crt_function("crc64nvme")
        combine = _crt_function("combine_crc64nvme")
        return None if crc64 is None else (lambda: _Crc(crc64, 8, combine))
    if algorithm == "SHA1":
        return lambda: hashlib.sha1(usedforsecurity=False)
    if algorithm == "SHA256":
        return hashlib.sha256
    return None


def upload_digest(algorithm: str | None) -> Callable[[], Digest] | None:
    """Check an upload checksum option at configuration time; its digest constructor."""
    if algorithm is None:
        return None
    if algorithm not in UPLOAD_ALGORITHMS:
        raise ConfigurationError(
            f"checksum_algorithm {algorithm!r} is not supported for uploads; "
            f"use one of {', '.join(UPLOAD_ALGORITHMS)} or None"
        )
    factory = _factory(algorithm)
    if factory is None:
        module = "awscrt" if algorithm == "CRC64NVME" else "crc32c"
        extra = "mrap" if algorithm == "CRC64NVME" else "checksums"
        raise MissingDependencyError(
            f"checksum_algorithm={algorithm!r}", module=module, extra=extra
        )
    return factory


def new_digest(algorithm: str) -> Digest | None:
    """A running digest for ``algorithm``; ``None`` when it cannot be computed here."""
    factory = _factory(algorithm)
    return None if factory is None else factory()


def encode(digest: bytes) -> str:
    """A digest as S3 writes it in ``x-amz-checksum-*`` headers."""
    return base64.b64encode(digest).decode("ascii")


def expected_checksum(response: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(algorithm, base64 value)`` of a GetObject/HeadObject response's full-object checksum.

    ``None`` when there is none, or only a composite one (``<value>-<parts>``), which describes
    the parts and cannot be checked against the object's bytes.
    """
    if response.get("ChecksumType") == "COMPOSITE":
        return None
    for algorithm in _ALL_ALGORITHMS:
        value = response.get(f"Checksum{algorithm}")
        if isinstance(value, str) and value and "-" not in value:
            return algorithm, value
    return None
