"""Registers the built-in transports, and the pointer format EventBridge details use; importing
this module imports neither boto3 nor a transport module."""

from __future__ import annotations

from typing import TYPE_CHECKING

from offload_core import hookimpl
from offload_core.registry import Registrar

if TYPE_CHECKING:
    import click


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
        extra="s3",
        description="Amazon SQS queues: send, batch, receive, acknowledge (boto3)",
    )
    register(
        "sns",
        "offload_transports.sns:SnsTransport",
        extra="s3",
        description="Amazon SNS topics: publish, publish batch, FIFO topics (boto3)",
    )
    register(
        "eventbridge",
        "offload_transports.eventbridge:EventBridgeTransport",
        extra="s3",
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
