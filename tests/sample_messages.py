"""Sample wire messages (``tests/data/messages/*.json``) as a transport hands them over.

Each file is ``{"body": "...", "attributes": {"Name": {"DataType": "Number", "StringValue": "1"}}}``
(``BinaryValue`` in base64 for Binary attributes), the shape SQS's ReceiveMessage returns.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

from offload_core.formats.aws import AwsFormat
from offload_core.formats.foreign import (
    BbcFormat,
    BigPayloadFormat,
    DotnetFormat,
    MessageQueueToolkitFormat,
    PysqsFormat,
)
from offload_core.formats.native import NativeFormat
from offload_core.message import Attribute
from offload_core.pointer import Pointer, PointerFormat

MESSAGES = Path(__file__).parent / "data" / "messages"

#: Every built-in format, in the order a consumer tries them.
FORMATS: list[PointerFormat] = [
    NativeFormat(),
    AwsFormat(),
    DotnetFormat(),
    PysqsFormat(),
    BigPayloadFormat(),
    BbcFormat(),
    MessageQueueToolkitFormat(),
]
KEY = "1638422c-ea5d-4d15-85d6-ff616977e002"
DIGEST = hashlib.sha256(b"hello").hexdigest()

NATIVE = Pointer(
    f"s3://orders-payloads/2026/11/30/{KEY}",
    size=859754,
    stored_size=212004,
    codec="zstd",
    checksum="sha256",
    digest=DIGEST,
    content_type="application/json",
    expires=datetime(2026, 12, 1, tzinfo=timezone.utc),
)

#: What each sample decodes to; ``None`` for inline payloads.
EXPECTED: dict[str, Pointer | None] = {
    "native": NATIVE,
    "native-minimal": Pointer("file:///srv/payloads/a/b.bin", size=0),
    "aws-java": Pointer(f"s3://my-bucket/{KEY}", size=859754, dialect="aws"),
    "aws-java-legacy-attribute": Pointer(f"s3://my-bucket/{KEY}", size=859754, dialect="aws"),
    "aws-legacy-class": Pointer(f"s3://my-bucket/{KEY}", size=859754, dialect="aws"),
    "aws-python": Pointer(f"s3://my-bucket/{KEY}", size=859754, dialect="aws"),
    "aws-offload": Pointer(
        f"s3://my-bucket/{KEY}", size=859754, checksum="sha256", digest=DIGEST, dialect="aws"
    ),
    "aws-mrap": Pointer(
        f"s3://arn:aws:s3::123456789012:accesspoint/mfzwi23gnjvgw.mrap/orders/{KEY}",
        size=17,
        dialect="aws",
    ),
    "sns-aws": Pointer(f"s3://my-bucket/{KEY}", size=859754, dialect="aws"),
    "sns-native": NATIVE,
    "dotnet": Pointer(
        "s3://dotnet-payloads/6f1b2c0e9d8a4f3b8c7d6e5f4a3b2c1d", size=300000, dialect="dotnet"
    ),
    "pysqs": Pointer(f"s3://pysqs-payloads/{KEY}", size=300000, dialect="pysqs"),
    "sns-sqs-big-payload": Pointer(f"s3://big-payloads/{KEY}.json", dialect="sns-sqs-big-payload"),
    "bbc-sqs-extended": Pointer(f"s3://bbc-payloads/{KEY}", dialect="bbc-sqs-extended"),
    "message-queue-toolkit": Pointer(
        "mqt://s3/orders/e5ebebd3-f9de-496d-a93a-75a60c30342c",
        size=7113,
        stored_size=7113,
        dialect="message-queue-toolkit",
    ),
    "message-queue-toolkit-legacy": Pointer(
        "mqt://default/orders/e5ebebd3-f9de-496d-a93a-75a60c30342c",
        size=7113,
        stored_size=7113,
        dialect="message-queue-toolkit",
    ),
    "inline-json": None,
    "inline-app-pointer-lookalike": None,
    "inline-text": None,
    "sns-inline": None,
}


def sample_names(prefix: str = "") -> list[str]:
    """Names of the sample messages whose name starts with ``prefix``."""
    return sorted(p.stem for p in MESSAGES.glob(f"{prefix}*.json"))


def load_sample(name: str) -> tuple[str, dict[str, Attribute]]:
    """The body and attributes of one sample message."""
    raw = json.loads((MESSAGES / f"{name}.json").read_text(encoding="utf-8"))
    attributes = {
        key: Attribute(
            value["DataType"],
            base64.b64decode(value["BinaryValue"])
            if "BinaryValue" in value
            else value["StringValue"],
        )
        for key, value in raw.get("attributes", {}).items()
    }
    return raw["body"], attributes
