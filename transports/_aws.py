"""boto3 glue for the AWS transports: a destination's attributes read when the caller may,
batches cut to size, and boto3 imported only when a client is made.

What else they know about AWS (its errors, ARNs, message JSON and limits) is the AWS kit's
(:mod:`offload_core.aws`), which never imports botocore, so that a caller passing its own client
never needs this package to import the SDK.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from offload_core.aws.errors import ACCESS_DENIED_CODES, service_error
from offload_core.errors import MissingDependencyError

__all__ = [
    "boto3_client",
    "chunked",
    "read_attributes",
]

log = logging.getLogger(__name__)

T = TypeVar("T")


def read_attributes(
    fetch: Callable[[], Mapping[str, Any]], destination: str, *, assumed: str
) -> dict[str, Any]:
    """The ``Attributes`` of ``fetch()``'s response; empty, with a warning saying what is
    ``assumed``, when the caller may not read them."""
    try:
        response = fetch()
    except Exception as exc:
        error = service_error(exc)
        if error is None or error.code not in ACCESS_DENIED_CODES:
            raise
        log.warning("cannot read the attributes of %s (%s); assuming %s", destination, exc, assumed)
        return {}
    return dict(response.get("Attributes", {}))


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
