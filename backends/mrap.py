"""The ``mrap`` backend: payloads through an S3 Multi-Region Access Point.

The store URL uses the MRAP ARN as its bucket,
``s3://arn:aws:s3::123456789012:accesspoint/mfzwi23gnjvgw.mrap/prefix``, and so does every
location it hands out, which is the form the AWS pointer format carries and other AWS clients
read. botocore routes such requests to ``<alias>.mrap.accesspoint.s3-global.amazonaws.com`` and
signs them with SigV4A, which needs ``awscrt``: the store refuses to start without it.

An MRAP sends each request to the nearest bucket behind it, and those buckets replicate
asynchronously, so a subscriber in another region can ask for a payload before it has arrived
there. Reads and ``info`` that find nothing are retried for ``replication_wait`` seconds before
:class:`~offload_core.errors.PayloadNotFoundError` is raised, on either face of the store (its
asynchronous face, :meth:`~offload_backends.s3.S3Store.async_store`, waits on the caller's
loop). Exclusive writes are checked by the bucket the write reaches only, not across regions.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from offload_core.aws.arn import is_mrap_arn
from offload_core.aws.errors import BucketNotFoundError
from offload_core.errors import (
    AccessDeniedError,
    ConfigurationError,
    MissingDependencyError,
    PayloadNotFoundError,
)

from ._errors import translate_fsspec_error
from .s3 import Requests, S3Store

if TYPE_CHECKING:
    from ._s3_io import ObjectReader

__all__ = ["MrapStore", "require_sigv4a"]

log = logging.getLogger(__name__)

T = TypeVar("T")


def require_sigv4a() -> None:
    """Raise :class:`MissingDependencyError` naming the ``mrap`` extra if SigV4A is unavailable."""
    try:
        importlib.import_module("awscrt.auth")
    except ImportError as exc:
        raise MissingDependencyError(
            "the mrap backend (SigV4A request signing)", module="awscrt", extra="mrap"
        ) from exc


class MrapStore(S3Store):
    """Objects under ``s3://<mrap-arn>/prefix``; an :class:`~offload_backends.s3.S3Store` that
    waits out replication lag on reads.

    :param replication_wait: seconds a read or ``info`` keeps retrying while the object is not
        found (replication lag); 0 disables the wait.
    :param wait_on_denied: retry on access denied as well: S3 answers 403 for a missing key
        when the reader lacks ``s3:ListBucket``, so such readers see lag as a 403.
    :param options: as for :class:`~offload_backends.s3.S3Store`.
    """

    def __init__(
        self,
        url: str,
        *,
        replication_wait: float = 30.0,
        wait_on_denied: bool = False,
        **options: Any,
    ) -> None:
        require_sigv4a()
        super().__init__(url, **options)
        if not is_mrap_arn(self.bucket):
            raise ConfigurationError(
                f"{self.bucket!r} is not a Multi-Region Access Point ARN "
                "(arn:aws:s3::<account>:accesspoint/<alias>.mrap); use the s3 backend"
            )
        if replication_wait < 0:
            raise ConfigurationError("replication_wait must not be negative")
        self.replication_wait = replication_wait
        self.wait_on_denied = wait_on_denied

    @classmethod
    def _serves_mrap(cls) -> bool:
        return True

    async def _get(self, io: Requests, object_key: str, **params: Any) -> Any:
        return await self._wait_for_replica(partial(super()._get, io, **params), object_key)

    async def _head(self, io: Requests, object_key: str) -> Any:
        return await self._wait_for_replica(partial(super()._head, io), object_key)

    async def _open_ranges(self, io: Requests, object_key: str, **options: Any) -> ObjectReader:
        # The ranges go out together; while the first one finds nothing, all of them are
        # cancelled and sent again after the pause.
        return await self._wait_for_replica(
            partial(super()._open_ranges, io, **options), object_key
        )

    def _lagging(self, exc: Exception, location: str) -> bool:
        mapped = translate_fsspec_error(exc, location)
        if isinstance(mapped, PayloadNotFoundError):
            return not isinstance(mapped, BucketNotFoundError)
        return self.wait_on_denied and isinstance(mapped, AccessDeniedError)

    async def _wait_for_replica(self, request: Callable[[str], Awaitable[T]], object_key: str) -> T:
        """``await request(object_key)``, sent again while the object is not found, for
        ``replication_wait`` seconds (on either face: the pause is the loop's)."""
        import asyncio

        location = f"s3://{self.bucket}/{object_key}"
        deadline = time.monotonic() + self.replication_wait
        delay = 0.1
        while True:
            try:
                return await request(object_key)
            except Exception as exc:
                if not self._lagging(exc, location) or time.monotonic() + delay > deadline:
                    raise
                log.info("%s not found yet (replication lag?); retrying in %.1fs", location, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
