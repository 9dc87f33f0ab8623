"""boto3 glue for the AWS transports: a destination's attributes read when the caller may,
batches cut to size, and boto3 imported only when a client is made.

What else they know about AWS (its errors, ARNs, message JSON and limits) is the AWS kit's
(:mod:`offload_core.aws`), which never imports botocore, so that a caller passing its own client
never needs this package to import the SDK.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from offload_core.aws.errors import ACCESS_DENIED_CODES, service_error
from offload_core.errors import MissingDependencyError
from offload_core.flow import resolved

__all__ = [
    "AsyncAwsTransport",
    "AsyncClients",
    "boto3_client",
    "chunked",
    "read_attributes",
]

log = logging.getLogger(__name__)

T = TypeVar("T")


async def read_attributes(
    fetch: Callable[[], Mapping[str, Any] | Awaitable[Mapping[str, Any]]],
    destination: str,
    *,
    assumed: str,
) -> dict[str, Any]:
    """The ``Attributes`` of ``fetch()``'s response; empty, with a warning saying what is
    ``assumed``, when the caller may not read them."""
    try:
        response = await resolved(fetch())
    except Exception as exc:
        error = service_error(exc)
        if error is None or error.code not in ACCESS_DENIED_CODES:
            raise
        log.warning("cannot read the attributes of %s (%s); assuming %s", destination, exc, assumed)
        return {}
    return dict(response.get("Attributes", {}))


class AsyncClients:
    """An aiobotocore client for an asynchronous transport: made on first use from ``session``
    (a new aiobotocore session by default), on the running loop, and closed by :meth:`aclose`."""

    def __init__(self, service: str, session: Any = None, **options: Any) -> None:
        self._service = service
        self._session = session
        self._options = options
        self._stack: contextlib.AsyncExitStack | None = None
        self._lock: Any = None

    @property
    def lock(self) -> Any:
        """An ``asyncio.Lock`` held while the client is made (asyncio imported only then)."""
        if self._lock is None:
            self._lock = importlib.import_module("asyncio").Lock()
        return self._lock

    async def open(self, what: str) -> Any:
        try:
            session = self._session or importlib.import_module("aiobotocore.session").get_session()
        except ImportError as exc:
            raise MissingDependencyError(what, module="aiobotocore", extra="s3") from exc
        stack = contextlib.AsyncExitStack()
        client = await stack.enter_async_context(
            session.create_client(self._service, **self._options)
        )
        self._stack = stack
        return client

    @property
    def opened(self) -> bool:
        return self._stack is not None

    async def aclose(self) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()


class AsyncAwsTransport:
    """What the asynchronous AWS transports share: the client they were given, or one they
    make on first use and close in :meth:`aclose`."""

    client: Any
    _clients: AsyncClients
    #: What the transport is called in a missing-dependency error.
    _what: str

    async def _connect(self) -> None:
        if self.client is None:
            async with self._clients.lock:  # concurrent first sends make one client
                if self.client is None:
                    self.client = await self._clients.open(self._what)

    async def aclose(self) -> None:
        if self._clients.opened:
            self.client = None
            await self._clients.aclose()


def boto3_client(service: str, *, what: str, **options: Any) -> Any:
    """``boto3.client(service, **options)``; a missing boto3 names the extra to install."""
    try:
        boto3 = importlib.import_module("boto3")
    except ImportError as exc:
        raise MissingDependencyError(what, module="boto3", extra="aws") from exc
    return boto3.client(service, **options)


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of at most ``size`` (AWS batch calls take ten entries)."""
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
