"""Helpers shared by the SQS tests: queues and buckets on the session's moto server, and a count
of the calls a boto3 client really makes (from botocore's own events, not a mock)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from offload_core.offloader import Offloader
from offload_core.testing.aws import MotoServer


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@contextmanager
def new_queue(
    sqs: Any, prefix: str = "q", *, fifo: bool = False, **attributes: str
) -> Iterator[str]:
    """A fresh queue (deleted afterwards, so moto's queues stay few and shallow)."""
    name = unique(prefix) + (".fifo" if fifo else "")
    if fifo:
        attributes["FifoQueue"] = "true"
    url: str = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    try:
        yield url
    finally:
        sqs.delete_queue(QueueUrl=url)


def offloader(moto: MotoServer, url: str, **options: Any) -> Offloader:
    return Offloader(url, storage_options=moto.storage_options(), **options)


def stored(off: Offloader) -> list[str]:
    """Keys of every object under the offloader's store."""
    return [info.key for info in off.store.list()]


class Calls(Counter[str]):
    """How many times each operation was sent by a boto3 client."""

    def __init__(self, client: Any) -> None:
        super().__init__()
        client.meta.events.register("before-call", self._seen)

    def _seen(self, model: Any, **_: Any) -> None:
        self[model.name] += 1


def drain(sqs: Any, url: str) -> int:
    """Delete whatever is left in a queue; returns how many messages there were."""
    count = 0
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
            ],
        )
        count += len(messages)
    return count
