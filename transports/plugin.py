"""Registers the built-in transports and the pointer format EventBridge details use, and reads
AWS's message JSON for the command line; importing this module imports neither boto3 nor a
transport module."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from offload_core import hookimpl
from offload_core.registry import Registrar

if TYPE_CHECKING:
    import click

    from offload_core.ops import Message


@hookimpl
def offload_register_commands(cli: click.Group) -> None:
    """``offload demo`` (the seed architecture, which needs every built-in transport), and
    ``offload lifecycle`` and ``offload policy`` (the AWS documents a deployment needs)."""
    from .commands import demo, lifecycle, policy

    for command in (demo, lifecycle, policy):
        cli.add_command(command)


@hookimpl
def offload_register_transports(register: Registrar) -> None:
    register(
        "sqs",
        "offload_transports.sqs:SqsTransport",
        extra="aws",
        description="Amazon SQS queues: send, batch, receive, acknowledge (boto3)",
    )
    register(
        "sns",
        "offload_transports.sns:SnsTransport",
        extra="aws",
        description="Amazon SNS topics: publish, publish batch, FIFO topics (boto3)",
    )
    register(
        "eventbridge",
        "offload_transports.eventbridge:EventBridgeTransport",
        extra="aws",
        description="Amazon EventBridge buses: put events, routing fields kept in the detail "
        "(boto3)",
    )


@hookimpl
def offload_register_pointer_formats(register: Registrar) -> None:
    register(
        "eventbridge",
        "offload_transports.eventbridge_detail:DetailFormat",
        description="read-only: a native pointer inside an EventBridge detail, beside kept "
        "routing fields",
    )


@hookimpl
def offload_read_messages(document: Mapping[str, Any]) -> list[Message] | None:
    """AWS's shapes (:func:`offload_core.aws.events.document_messages`); a message in them that
    cannot be read refuses the input."""
    from offload_core.aws.events import document_messages
    from offload_core.ops import Message

    found = document_messages(document)
    if found is None:
        return None
    for message in found:
        if message.error is not None:
            raise message.error
    return [Message(m.body, m.attributes, m.where, wrapped=True) for m in found]
