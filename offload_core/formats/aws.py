"""The AWS extended-client pointer, and the S3 location rules the foreign dialects reuse.

Every AWS extended client (Java SQS/SNS, payload-offloading-java-common-lib, Powertools, the
official Python clients) writes::

    ["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"b","s3Key":"k"}]

with a ``Number`` attribute ``ExtendedPayloadSize`` (legacy ``SQSLargePayloadSize``) holding the
payload's byte length. We write the same, byte for byte as Java does, and by default append our
integrity fields ``offloadSize`` and ``offloadChecksum`` (``"sha256:<hex>"``) after ``s3Key``:
Jackson (with ``FAIL_ON_UNKNOWN_PROPERTIES`` off, as the Java common library sets it), Newtonsoft
and the official Python clients ignore fields they do not know, and so does our reader. Writers
can leave the extension fields out (``extension_fields=False``: the exact bytes Java writes) and
name the size attribute ``SQSLargePayloadSize`` (``legacy_attribute=True``), for readers that ask
for that name only. The stored object is the raw payload, so the format cannot carry a codec.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from offload_core.errors import IncompatibleOptionsError
from offload_core.message import Attribute
from offload_core.pointer import EncodedPointer, Pointer

from ._json import (
    JSON_SPACE,
    brief,
    check_digest,
    check_fields,
    check_name,
    fail,
    get_int,
    recognise,
    self_check,
    utf8_size,
)

__all__ = [
    "LEGACY_POINTER_CLASS",
    "LEGACY_SIZE_ATTRIBUTE",
    "POINTER_CLASS",
    "SIZE_ATTRIBUTE",
    "SIZE_ATTRIBUTES",
    "AwsFormat",
    "declared_size",
    "parse_s3_location",
    "s3_location",
    "s3_location_problem",
]

POINTER_CLASS = "software.amazon.payloadoffloading.PayloadS3Pointer"
#: Written by the Java SQS client 1.0.x; readers accept both class names.
LEGACY_POINTER_CLASS = "com.amazon.sqs.javamessaging.MessageS3Pointer"
SIZE_ATTRIBUTE = "ExtendedPayloadSize"
#: What the Java SQS client 2.x and the .NET and pysqs clients send.
LEGACY_SIZE_ATTRIBUTE = "SQSLargePayloadSize"
SIZE_ATTRIBUTES = (SIZE_ATTRIBUTE, LEGACY_SIZE_ATTRIBUTE)

MAX_KEY_BYTES = 1024
_CLASSES = frozenset({POINTER_CLASS, LEGACY_POINTER_CLASS})
_SIGNATURE = re.compile(
    rf'{JSON_SPACE}\[{JSON_SPACE}"(?:{"|".join(map(re.escape, sorted(_CLASSES)))})"'
)
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\Z")
_IPV4 = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+\Z")
#: An access point or Multi-Region Access Point ARN, usable wherever a bucket name is.
_ACCESS_POINT_ARN = re.compile(
    r"arn:aws[a-z-]*:s3:[a-z0-9-]*:[0-9]{12}:accesspoint/[a-z0-9][a-z0-9.-]{1,62}\Z"
)
_ACCESS_POINT = "accesspoint/"
_FIELDS = frozenset({"s3BucketName", "s3Key"})
_SIZE_TEXT = re.compile(r"[0-9]{1,16}\Z")


def parse_s3_location(location: str) -> tuple[str, str] | None:
    """``(bucket, key)`` of an ``s3://bucket/key`` location, ``None`` if it is not one.

    The bucket ends at the first ``/``, except for an access point ARN
    (``arn:aws:s3::123456789012:accesspoint/abcd1234.mrap``), which ends at the ``/`` after the
    access point's name. Nothing is validated: see :func:`s3_location_problem`.
    """
    if not location.startswith("s3://"):
        return None
    rest = location[len("s3://") :]
    start = 0
    if rest.startswith("arn:"):
        start = rest.find(_ACCESS_POINT)
        if start < 0:
            return None
        start += len(_ACCESS_POINT)
    slash = rest.find("/", start)
    if slash <= 0:
        return None
    return rest[:slash], rest[slash + 1 :]


def s3_location_problem(bucket: object, key: object) -> str | None:
    """What is wrong with a bucket and key, or ``None`` if they name a valid S3 object."""
    if not isinstance(bucket, str) or not isinstance(key, str):
        return "bucket and key must be strings"
    if bucket.startswith("arn:"):
        if not _ACCESS_POINT_ARN.match(bucket):
            return f"{brief(bucket)} is not an S3 access point ARN"
    elif not _BUCKET.match(bucket) or ".." in bucket or _IPV4.match(bucket):
        return f"{brief(bucket)} is not a valid S3 bucket name"
    if not key:
        return "the key is empty"
    if "\x00" in key:
        return "the key contains a NUL character"
    size = utf8_size(key)
    if size is None:
        return "the key is not valid Unicode"
    if size > MAX_KEY_BYTES:
        return f"the key is {size} bytes long; S3 allows {MAX_KEY_BYTES}"
    return None


def s3_location(bucket: object, key: object, *, dialect: str) -> str:
    """The ``s3://bucket/key`` location of a pointer's bucket and key, validated."""
    problem = s3_location_problem(bucket, key)
    if problem is not None:
        fail(dialect, problem)
    return f"s3://{bucket}/{key}"


def attribute_size(name: str, attribute: Attribute, dialect: str) -> int:
    """A size carried in a Number attribute (``ExtendedPayloadSize``)."""
    value = attribute.value
    if not isinstance(value, str) or not _SIZE_TEXT.match(value):
        fail(dialect, f"attribute {name} must be a Number holding the payload size")
    return get_int(int(value), name, dialect=dialect)


def declared_size(
    attributes: Mapping[str, Attribute], *, dialect: str, body_size: int | None = None
) -> int | None:
    """The payload size from the size attributes and the body; all that are present must agree."""
    sizes = {
        name: attribute_size(name, attributes[name], dialect)
        for name in SIZE_ATTRIBUTES
        if name in attributes
    }
    if body_size is not None:
        sizes["offloadSize"] = body_size
    if len(set(sizes.values())) > 1:
        fail(dialect, f"the declared sizes disagree: {sizes}")
    return next(iter(sizes.values()), None)


def _is_aws(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and isinstance(value[0], str)
        and value[0] in _CLASSES
    )


class AwsFormat:
    """The AWS extended-client pointer: readable by every AWS client, S3 only, no compression."""

    name = "aws"
    writable = True
    #: Attributes that mark a message as a pointer of this format.
    markers: tuple[str, ...] = SIZE_ATTRIBUTES
    #: How a body of this format starts; bodies that start so are never payloads.
    signature: re.Pattern[str] | None = _SIGNATURE

    def __init__(self, *, extension_fields: bool = True, legacy_attribute: bool = False) -> None:
        """:param extension_fields: append ``offloadSize`` and ``offloadChecksum`` after
            ``s3Key``, so our readers verify the payload; without them the body is byte for
            byte what the Java clients write, and only the size is checked.
        :param legacy_attribute: send the size as ``SQSLargePayloadSize`` (the Java SQS client
            1.x name, which Java 1.x readers and npm ``sns-sqs-big-payload`` ask for) instead of
            ``ExtendedPayloadSize``; the official Python clients' ``use_legacy_attribute``."""
        self.extension_fields = extension_fields
        self.size_attribute = LEGACY_SIZE_ATTRIBUTE if legacy_attribute else SIZE_ATTRIBUTE

    def __repr__(self) -> str:
        legacy = self.size_attribute == LEGACY_SIZE_ATTRIBUTE
        return f"AwsFormat(extension_fields={self.extension_fields}, legacy_attribute={legacy})"

    def encode(self, pointer: Pointer) -> EncodedPointer:
        parsed = parse_s3_location(pointer.location)
        if parsed is None or s3_location_problem(*parsed) is not None:
            raise IncompatibleOptionsError(
                f"the AWS pointer format needs an S3 store (s3://bucket/key), not "
                f"{brief(pointer.location)}; use the native format for other stores"
            )
        if pointer.codec != "none":
            raise IncompatibleOptionsError(
                f"AWS extended clients cannot decompress ({pointer.codec!r} asked for); "
                "use the native format to compress, or turn compression off"
            )
        bucket, key = parsed
        fields: dict[str, object] = {"s3BucketName": bucket, "s3Key": key}
        attributes: dict[str, Attribute] = {}
        if pointer.size is not None:
            attributes[self.size_attribute] = Attribute.number(pointer.size)
            if self.extension_fields:
                fields["offloadSize"] = pointer.size
        if self.extension_fields and pointer.checksum is not None and pointer.digest is not None:
            fields["offloadChecksum"] = f"{pointer.checksum}:{pointer.digest}"
        body = json.dumps([POINTER_CLASS, fields], separators=(",", ":"), ensure_ascii=False)
        return self_check(self, EncodedPointer(body, attributes))

    def decode(self, body: str, attributes: Mapping[str, Attribute]) -> Pointer | None:
        if not _SIGNATURE.match(body):
            return None
        value = recognise(body, dialect=self.name, match=_is_aws, prefix=_SIGNATURE)
        if value is None:
            return None
        if len(value) != 2 or not isinstance(value[1], dict):
            fail(self.name, "expected [class name, {s3BucketName, s3Key}]")
        obj: dict[str, Any] = value[1]
        # Other fields are ignored, as every AWS client ignores them; the location comes from
        # s3BucketName and s3Key alone. Duplicate keys were refused by the strict parser.
        check_fields(obj, required=_FIELDS, allowed=None, dialect=self.name)
        location = s3_location(obj["s3BucketName"], obj["s3Key"], dialect=self.name)
        body_size = None
        if "offloadSize" in obj:
            body_size = get_int(obj["offloadSize"], "offloadSize", dialect=self.name)
        checksum = digest = None
        if "offloadChecksum" in obj:
            checksum, digest = _split_checksum(obj["offloadChecksum"], dialect=self.name)
        return Pointer(
            location,
            size=declared_size(attributes, dialect=self.name, body_size=body_size),
            checksum=checksum,
            digest=digest,
            dialect=self.name,
        )


def _split_checksum(value: object, *, dialect: str) -> tuple[str, str]:
    if not isinstance(value, str) or ":" not in value:
        fail(dialect, "offloadChecksum must be 'algorithm:hexdigest'")
    name, _, digest = value.partition(":")
    return check_name(name, "checksum", dialect=dialect), check_digest(
        digest, "digest", dialect=dialect
    )
