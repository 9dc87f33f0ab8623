"""The subscribing applications of the seed architecture: B reads SQS queues with offload's SQS
transport; C is a Lambda function made with offload's ``batch_handler``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, Any

from offload_core.offloader import Offloader

from ._flow import attempt
from ._payloads import Progress, Tally
from ._report import Expected, Resolution

__all__ = ["WAIT", "Function", "Queue", "QueueApp", "Trigger"]

#: How long a consumer waits for a message (moto delivers it before Publish returns).
WAIT = 2


@dataclass(frozen=True)
class Queue:
    """An SQS queue, with a client of its owner's account and region."""

    sqs: Any
    url: str
    arn: str

    @property
    def region(self) -> str:
        return self.arn.split(":")[3]


class QueueApp:
    """Application B on one queue: receives with offload's SQS transport (SNS envelopes
    unwrapped), reads the payload as a verified stream, and acknowledges what verified."""

    def __init__(self, label: str, transport: Any, progress: Progress | None) -> None:
        self.label = label
        self.transport = transport
        self.progress = progress

    def take(self, expected: Expected) -> Resolution:
        messages = self.transport.receive(1, wait_seconds=WAIT)
        if not messages:
            return expected.judge(self.label, 0.0, error="no message arrived")
        message = messages[0]

        def read(got: Tally) -> None:
            with message.open() as stream:
                got.drain(
                    stream,
                    progress=self.progress,
                    total=expected.size if message.offloaded else None,
                    what=f"{self.label} reads {expected.name}",
                )

        resolution = attempt(self.label, expected, read)
        if resolution.ok and not expected.refusal:
            message.ack()
        return resolution


class Function:
    """Application C: a Lambda function made with offload's ``batch_handler``, reading each
    payload as a verified stream."""

    def __init__(self, offloader: Offloader, progress: Progress | None) -> None:
        from ..aws_lambda import batch_handler

        self.handler: Callable[[Mapping[str, Any], Any], Any] = batch_handler(
            offloader, payload="stream"
        )(self._handle)
        self.progress = progress
        self._got = Tally()
        self._what = ""

    def _handle(self, stream: IO[bytes], record: Any) -> None:
        total = record.pointer.size if record.pointer else None
        self._got.drain(stream, progress=self.progress, total=total, what=f"C reads {self._what}")

    def invoke(self, event: Mapping[str, Any], expected: Expected, label: str) -> Resolution:
        """Call the handler as Lambda would, with ``event``."""

        def read(got: Tally) -> None:
            self._got, self._what = got, expected.name
            self.handler(event, None)

        return attempt(label, expected, read)


class Trigger:
    """What invokes C's function: each message moto delivered to a stand-in queue of C's,
    turned into the event Lambda would call the function with."""

    def __init__(
        self,
        label: str,
        function: Function,
        queue: Queue,
        to_event: Callable[[str], Mapping[str, Any]],
    ) -> None:
        self.label = label
        self.function = function
        self.queue = queue
        self.to_event = to_event

    def take(self, expected: Expected) -> Resolution:
        sqs, url = self.queue.sqs, self.queue.url
        response = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=WAIT)
        messages = response.get("Messages", [])
        if not messages:
            return expected.judge(self.label, 0.0, error="no event arrived")
        sqs.delete_message(QueueUrl=url, ReceiptHandle=messages[0]["ReceiptHandle"])
        return self.function.invoke(self.to_event(messages[0]["Body"]), expected, self.label)
