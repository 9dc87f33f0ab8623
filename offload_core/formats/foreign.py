"""Read-only dialects of other claim-check libraries, so one consumer reads every publisher.

- .NET extended client: ``{"S3Key":"<32hex>","S3BucketName":"b"}`` + ``SQSLargePayloadSize``.
- pysqs-extended-client: ``{"s3BucketName": "b", "s3Key": "k"}`` + ``SQSLargePayloadSize``.
- npm sns-sqs-big-payload: ``{"S3Payload":{"Id":..,"Bucket":"b","Key":"k","Location":"https://.."}}``.
- npm @bbc/sqs-extended: ``{"s3Payload":{"bucket":"b","key":"k"}}`` + ``S3MessageBodyKey``
  (String, ``(bucket)key``).

The two bare objects look like ordinary application JSON, so they count as pointers only with
a size attribute present (either name) and exactly their two fields. The npm dialects are
recognised from their single top-level member. Only bucket and key are ever used for I/O (never
the ``Location`` URL), and they pass the same S3 checks as the AWS format.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from offload_core.errors import IncompatibleOptionsError
from offload_core.message import Attribute
from offload_core.pointer import EncodedPointer, Pointer

from ._json import check_fields, fail, first_key_signature, get_str, recognise
from .aws import SIZE_ATTRIBUTES, declared_size, s3_location

__all__ = ["BBC_KEY_ATTRIBUTE", "BbcFormat", "BigPayloadFormat", "DotnetFormat", "PysqsFormat"]

#: The attribute @bbc/sqs-extended sends with each pointer: ``(bucket)key``.
BBC_KEY_ATTRIBUTE = "S3MessageBodyKey"
_MAX_EXTRA_BYTES = 4096


class _ReadOnlyFormat:
    name: str
    writable = False
    markers: tuple[str, ...] = ()
    #: How a body of this format starts; bodies that start so are never payloads.
    signature: re.Pattern[str] | None = None

    def encode(self, pointer: Pointer) -> EncodedPointer:
        raise IncompatibleOptionsError(
            f"{self.name!r} is a read-only dialect: offload reads it but writes only the "
            "'native' or 'aws' pointer format"
        )


class _BareObjectFormat(_ReadOnlyFormat):
    """A bare ``{bucket, key}`` object, a pointer only when a size attribute marks it."""

    markers = SIZE_ATTRIBUTES
    bucket_field: str
    key_field: str

    def decode(self, body: str, attributes: Mapping[str, Attribute]) -> Pointer | None:
        if not any(name in attributes for name in SIZE_ATTRIBUTES):
            return None
        fields = {self.bucket_field, self.key_field}
        obj = recognise(
            body, dialect=self.name, match=lambda v: isinstance(v, dict) and v.keys() == fields
        )
        if obj is None:
            return None
        return Pointer(
            s3_location(obj[self.bucket_field], obj[self.key_field], dialect=self.name),
            size=declared_size(attributes, dialect=self.name),
            dialect=self.name,
        )


class DotnetFormat(_BareObjectFormat):
    """Read-only: the .NET SQS extended client (raol/amazon-sqs-net-extended-client-lib)."""

    name = "dotnet"
    bucket_field = "S3BucketName"
    key_field = "S3Key"


class PysqsFormat(_BareObjectFormat):
    """Read-only: pysqs-extended-client."""

    name = "pysqs"
    bucket_field = "s3BucketName"
    key_field = "s3Key"


class _WrappedFormat(_ReadOnlyFormat):
    """``{"<wrapper>": {bucket, key, ...}}``: recognised from the single top-level member."""

    wrapper: str
    bucket_field: str
    key_field: str
    #: Fields allowed besides bucket and key; strings, never used for I/O.
    extra_fields: frozenset[str] = frozenset()

    def decode(self, body: str, attributes: Mapping[str, Attribute]) -> Pointer | None:
        if self.wrapper not in body:
            return None
        wrapper = {self.wrapper}
        obj = recognise(
            body,
            dialect=self.name,
            match=lambda v: isinstance(v, dict) and v.keys() == wrapper,
            prefix=self.signature,
        )
        if obj is None:
            return None
        inner = obj[self.wrapper]
        if not isinstance(inner, dict):
            fail(self.name, f"{self.wrapper} must be an object")
        required = frozenset({self.bucket_field, self.key_field})
        check_fields(
            inner, required=required, allowed=required | self.extra_fields, dialect=self.name
        )
        for name in self.extra_fields.intersection(inner):
            get_str(inner, name, dialect=self.name, max_len=_MAX_EXTRA_BYTES)
        bucket, key = inner[self.bucket_field], inner[self.key_field]
        location = s3_location(bucket, key, dialect=self.name)
        self.check_attributes(attributes, bucket, key)
        return Pointer(location, dialect=self.name)

    def check_attributes(
        self, attributes: Mapping[str, Attribute], bucket: object, key: object
    ) -> None:
        """Cross-check what the dialect's attributes say against the body."""


class BigPayloadFormat(_WrappedFormat):
    """Read-only: npm sns-sqs-big-payload (``S3Payload``; no attribute)."""

    name = "sns-sqs-big-payload"
    wrapper = "S3Payload"
    bucket_field = "Bucket"
    key_field = "Key"
    extra_fields = frozenset({"Id", "Location"})
    signature = first_key_signature("S3Payload")


class BbcFormat(_WrappedFormat):
    """Read-only: npm @bbc/sqs-extended (``s3Payload`` + ``S3MessageBodyKey``)."""

    name = "bbc-sqs-extended"
    wrapper = "s3Payload"
    bucket_field = "bucket"
    key_field = "key"
    markers = (BBC_KEY_ATTRIBUTE,)
    signature = first_key_signature("s3Payload")

    def check_attributes(
        self, attributes: Mapping[str, Attribute], bucket: object, key: object
    ) -> None:
        attribute = attributes.get(BBC_KEY_ATTRIBUTE)
        if attribute is not None and attribute.value != f"({bucket}){key}":
            fail(
                self.name, f"attribute {BBC_KEY_ATTRIBUTE} does not name the body's bucket and key"
            )
