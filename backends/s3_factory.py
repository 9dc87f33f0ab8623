"""The factory the plugin registers for ``s3://`` URLs: an S3 bucket or access point opens an
:class:`~offload_backends.s3.S3Store`, a Multi-Region Access Point ARN an
:class:`~offload_backends.mrap.MrapStore`."""

from __future__ import annotations

from typing import Any

from offload_core.aws.arn import is_mrap_arn

from .mrap import MrapStore
from .s3 import S3Store, split_url

__all__ = ["open_store"]


def open_store(url: str, **options: Any) -> S3Store:
    """The store for an ``s3://`` URL; ``options`` as the store class takes them."""
    if is_mrap_arn(split_url(url)[0]):
        return MrapStore(url, **options)
    return S3Store(url, **options)
