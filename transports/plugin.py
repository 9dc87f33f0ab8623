"""Registers the built-in transports; importing this module imports neither boto3 nor a
transport module."""

from __future__ import annotations

from offload_core import hookimpl
from offload_core.registry import Registrar


@hookimpl
def offload_register_transports(register: Registrar) -> None:
    register(
        "sqs",
        "offload_transports.sqs:SqsTransport",
        extra="s3",
        description="Amazon SQS queues: send, batch, receive, acknowledge (boto3)",
    )
