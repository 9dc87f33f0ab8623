"""ARNs, region names and S3's HTTP(S) addresses, read without calling AWS.

An ARN is ``arn:partition:service:region:account:resource``; the region is empty for global
resources (S3 buckets, Multi-Region Access Points) and the account for S3 buckets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["Arn", "S3Address", "is_mrap_arn", "is_region", "parse_arn", "region_of", "s3_address"]

_REGION_NAME = r"[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}"
_REGION = re.compile(_REGION_NAME)
_ARN = re.compile(
    r"arn:(?P<partition>aws(?:-[a-z]+)*):(?P<service>[a-z0-9-]+):(?P<region>[a-z0-9-]*)"
    r":(?P<account>(?:[0-9]{12})?):(?P<resource>.+)\Z"
)
_QUEUE_URL = re.compile(r"https://sqs\.(?P<region>[a-z0-9-]+)\.amazonaws\.com")
_MRAP_RESOURCE = re.compile(r"accesspoint/[a-z0-9][a-z0-9.-]*\.mrap\Z")
#: S3's HTTP(S) host names: ``bucket.s3.amazonaws.com``, ``bucket.s3.eu-west-1.amazonaws.com``,
#: ``bucket.s3-eu-west-1.amazonaws.com``, ``s3.eu-west-1.amazonaws.com`` (path style), dualstack,
#: access points and Multi-Region Access Points, China's ``amazonaws.com.cn``.
_S3_HOST = re.compile(
    r"(?:(?P<bucket>.+)\.)?s3(?P<rest>[.-][a-z0-9.-]*?)?\.amazonaws\.com(?P<cn>\.cn)?"
)
_ACCESS_POINT_HOST = re.compile(r"(?P<name>.+)-(?P<account>[0-9]{12})")


@dataclass(frozen=True)
class Arn:
    """The parts of an ARN; ``value`` is the ARN itself."""

    value: str
    partition: str
    service: str
    #: Empty for global resources.
    region: str
    #: Empty when the ARN names no account (S3 buckets).
    account: str
    resource: str


def parse_arn(value: str) -> Arn | None:
    """The parts of ``value``, or ``None`` when it is not an ARN."""
    match = _ARN.match(value)
    if match is None:
        return None
    return Arn(
        value,
        match["partition"],
        match["service"],
        match["region"],
        match["account"],
        match["resource"],
    )


def is_region(name: str) -> bool:
    """Whether ``name`` has the shape of an AWS region name (``us-east-1``, ``us-gov-west-1``)."""
    return _REGION.fullmatch(name) is not None


def region_of(address: str) -> str | None:
    """The region named in an SQS queue URL or an ARN, if any."""
    match = _QUEUE_URL.match(address)
    if match is not None:
        return match["region"]
    arn = parse_arn(address)
    return (arn.region or None) if arn is not None else None


def is_mrap_arn(value: str) -> bool:
    """Whether ``value`` is a Multi-Region Access Point ARN
    (``arn:aws:s3::123456789012:accesspoint/mfzwi23gnjvgw.mrap``)."""
    arn = parse_arn(value)
    return (
        arn is not None
        and arn.service == "s3"
        and not arn.region
        and bool(arn.account)
        and _MRAP_RESOURCE.match(arn.resource) is not None
    )


@dataclass(frozen=True)
class S3Address:
    """An HTTP(S) address on S3's own host names, as the ``s3://`` URL of the same objects."""

    #: ``s3://bucket/path``; the bucket is an access point ARN for access point host names
    #: (with ``REGION`` or ``ACCOUNT`` where the host name does not say).
    url: str
    #: The region the host name names, for a bucket's address (an access point ARN has its own).
    region: str | None


def s3_address(url: str) -> S3Address | None:
    """What an ``http(s)://`` address on S3's host names names; ``None`` for any other host."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    path = parts.path.strip("/")
    s3 = _S3_HOST.fullmatch(host)
    if s3 is None:
        return None
    rest = s3["rest"] or ""
    found = _REGION.search(rest)
    region = found[0] if found else None
    partition = "aws-cn" if s3["cn"] else "aws"
    bucket = s3["bucket"]
    if bucket is None:  # path style: the bucket is the path's first segment
        bucket, _, path = path.partition("/")
        bucket = bucket or "BUCKET"
    elif rest.startswith("-accesspoint"):  # <name>-<account>.s3-accesspoint.<region>...
        named = _ACCESS_POINT_HOST.fullmatch(bucket)
        if named is not None:
            bucket = (
                f"arn:{partition}:s3:{region or 'REGION'}:{named['account']}:"
                f"accesspoint/{named['name']}"
            )
    elif rest == "-global" and bucket.endswith(".accesspoint"):  # a Multi-Region Access Point
        alias = bucket.removesuffix(".accesspoint")
        bucket = f"arn:{partition}:s3::ACCOUNT:accesspoint/{alias}"
    return S3Address(
        f"s3://{bucket}" + (f"/{path}" if path else ""),
        region if "accesspoint" not in rest else None,
    )
