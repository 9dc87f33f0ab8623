"""Read-only dialects of other claim-check libraries, so one consumer reads every publisher.

- .NET extended client: ``{"S3Key":"<32hex>","S3BucketName":"b"}`` + ``SQSLargePayloadSize``.
- pysqs-extended-client: ``{"s3BucketName": "b", "s3Key": "k"}`` + ``SQSLargePayloadSize``.
- npm sns-sqs-big-payload: ``{"S3Payload":{"Id":..,"Bucket":"b","Key":"k","Location":"https://.."}}``.
- npm @bbc/sqs-extended: ``{"s3Payload":{"bucket":"b","key":"k"}}`` + ``S3MessageBodyKey``
  (String, ``(bucket)key``).
- npm message-queue-toolkit: ``{"payloadRef":{"id":"<key>","store":"<name>","size":n[,"codec":
  "zstd"]},"offloadedPayloadPointer":..,"offloadedPayloadSize":..,<id, type, timestamp>}`` +
  ``payloadOffloading.size``; before ``payloadRef`` (2025-12) only the two ``offloaded...``
  fields. ``store`` names one of the publisher's payload stores, not a bucket: the location is
  ``mqt://<store>/<key>`` (``mqt://default/<key>`` for the older form), which a consumer maps to
  its store with ``Offloader(aliases={"mqt://s3/": "s3://bucket/"})``. The stored object is the
  whole message as JSON (zstd-compressed with ``codec``).

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

from ._json import brief, check_fields, fail, first_key_signature, get_int, get_str, recognise
from .aws import SIZE_ATTRIBUTES, attribute_size, declared_size, s3_location

__all__ = [
    "BBC_KEY_ATTRIBUTE",
    "MQT_SIZE_ATTRIBUTE",
    "BbcFormat",
    "BigPayloadFormat",
    "DotnetFormat",
    "MessageQueueToolkitFormat",
    "PysqsFormat",
]

#: The attribute @bbc/sqs-extended sends with each pointer: ``(bucket)key``.
BBC_KEY_ATTRIBUTE = "S3MessageBodyKey"
#: The attribute by which message-queue-toolkit consumers know an offloaded message.
MQT_SIZE_ATTRIBUTE = "payloadOffloading.size"
_MQT_STORE = re.compile(r"[A-Za-z0-9._-]{1,255}\Z")
_MQT_FIELDS = ("payloadRef", "offloadedPayloadPointer")
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


class MessageQueueToolkitFormat(_ReadOnlyFormat):
    """Read-only: Node's message-queue-toolkit (``payloadRef``, and its older two fields)."""

    name = "message-queue-toolkit"
    markers = (MQT_SIZE_ATTRIBUTE,)

    def decode(self, body: str, attributes: Mapping[str, Attribute]) -> Pointer | None:
        if MQT_SIZE_ATTRIBUTE not in attributes:  # what its own consumers go by
            return None
        obj = recognise(
            body,
            dialect=self.name,
            match=lambda v: isinstance(v, dict) and any(f in v for f in _MQT_FIELDS),
        )
        if obj is None:
            return None
        ref = obj.get("payloadRef")
        codec = "none"
        if ref is not None:
            if not isinstance(ref, dict):
                fail(self.name, "payloadRef must be an object")
            check_fields(
                ref, required=frozenset({"id", "store", "size"}), allowed=None, dialect=self.name
            )
            key = get_str(ref, "id", dialect=self.name, max_len=1024)
            store = get_str(ref, "store", dialect=self.name, max_len=255)
            if not _MQT_STORE.match(store):
                fail(self.name, f"store {brief(store)} is not a name this reader maps to a store")
            size = get_int(ref["size"], "payloadRef.size", dialect=self.name)
            if "codec" in ref:
                codec = get_str(ref, "codec", dialect=self.name, max_len=64)
                if codec != "zstd":
                    fail(self.name, f"codec {brief(codec)} is not one this reader decodes")
        else:
            check_fields(
                obj,
                required=frozenset({"offloadedPayloadPointer", "offloadedPayloadSize"}),
                allowed=None,
                dialect=self.name,
            )
            key = get_str(obj, "offloadedPayloadPointer", dialect=self.name, max_len=1024)
            store = "default"
            size = get_int(obj["offloadedPayloadSize"], "offloadedPayloadSize", dialect=self.name)
        declared = attribute_size(MQT_SIZE_ATTRIBUTE, attributes[MQT_SIZE_ATTRIBUTE], self.name)
        if declared != size:
            fail(self.name, f"attribute {MQT_SIZE_ATTRIBUTE} says {declared}, the body {size}")
        if key.startswith("/") or "\\" in key or ".." in key.split("/"):
            fail(self.name, f"id {brief(key)} is not a safe object key")
        return Pointer(
            f"mqt://{store}/{key}",
            # The size is that of the stored bytes: the original's only when not compressed.
            size=size if codec == "none" else None,
            stored_size=size,
            codec=codec,
            dialect=self.name,
        )
