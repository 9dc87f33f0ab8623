"""The core's own plugin: pointer formats, compressors and checksums.

Registered through the ``offload`` entry-point group like any third-party plugin.
"""

from __future__ import annotations

from .hookspecs import hookimpl
from .registry import Registrar


@hookimpl
def offload_register_pointer_formats(register: Registrar) -> None:
    register(
        "native",
        "offload_core.formats.native:NativeFormat",
        description="offload's versioned JSON pointer; any store, codec and checksum",
    )
    register(
        "aws",
        "offload_core.formats.aws:AwsFormat",
        description="AWS extended-client pointer (Java/Python SQS and SNS clients)",
    )
    register(
        "dotnet",
        "offload_core.formats.foreign:DotnetFormat",
        description="read-only: .NET extended client",
    )
    register(
        "pysqs",
        "offload_core.formats.foreign:PysqsFormat",
        description="read-only: pysqs-extended-client",
    )
    register(
        "sns-sqs-big-payload",
        "offload_core.formats.foreign:BigPayloadFormat",
        description="read-only: npm sns-sqs-big-payload",
    )
    register(
        "bbc-sqs-extended",
        "offload_core.formats.foreign:BbcFormat",
        description="read-only: npm @bbc/sqs-extended",
    )
    register(
        "message-queue-toolkit",
        "offload_core.formats.foreign:MessageQueueToolkitFormat",
        description="read-only: npm message-queue-toolkit (payloadRef)",
    )


@hookimpl
def offload_register_compressors(register: Registrar) -> None:
    register("none", "offload_core.codecs:IdentityCodec", description="stored as is")
    register("zstd", "offload_core.codecs:ZstdCodec", description="streaming Zstandard")


@hookimpl
def offload_register_checksums(register: Registrar) -> None:
    register("sha256", "hashlib:sha256", description="SHA-256 (default)")
    register("crc32c", "crc32c:CRC32CHash", extra="checksums", description="CRC-32C")
    register("xxh3-128", "xxhash:xxh3_128", extra="checksums", description="XXH3 128-bit")
    register("blake3", "blake3:blake3", extra="checksums", description="BLAKE3")
