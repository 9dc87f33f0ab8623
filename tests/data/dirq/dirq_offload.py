"""A directory as a message queue: a third-party offload transport, in full."""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path

from offload_core import Attribute, Delivery, Entry, Limits, SendResult, TransportBase, hookimpl
from offload_core.message import OutgoingMessage


class DirQueue(TransportBase):
    """Each message a JSON file in ``destination``; received ones wait as ``.taken`` files."""

    def __init__(self, destination, offloader, *, max_message_size=65_536):
        self.destination, self.offloader = destination, offloader
        self.directory = Path(destination)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._limits = Limits(max_size=max_message_size)

    @property
    def limits(self):
        return self._limits

    def _send_message(self, message: OutgoingMessage, entry: Entry) -> SendResult:
        attributes = {
            name: [
                a.data_type,
                base64.b64encode(a.value).decode() if isinstance(a.value, bytes) else a.value,
            ]
            for name, a in message.attributes.items()
        }
        name = f"{time.time_ns()}-{uuid.uuid4().hex}"
        temporary = self.directory / f"{name}.tmp"
        temporary.write_text(json.dumps({"body": message.body, "attributes": attributes}))
        temporary.rename(self.directory / f"{name}.msg")  # appears whole, or not at all
        return SendResult(name, message.pointer)

    def receive(self, max_messages=10, *, wait_seconds=None):
        taken = []
        for path in sorted(self.directory.glob("*.msg"))[:max_messages]:
            path.rename(path.with_suffix(".taken"))
            taken.append(DirMessage(self, path.with_suffix(".taken")))
        return taken


class DirMessage(Delivery):
    def __init__(self, queue, path):
        document = json.loads(path.read_text())
        attributes = {
            name: Attribute(kind, base64.b64decode(value) if kind.startswith("Binary") else value)
            for name, (kind, value) in document["attributes"].items()
        }
        super().__init__(queue.offloader, document["body"], attributes)
        self.message_id, self.path = path.stem, path

    def ack(self, *, force=False):
        if not force:
            self.check_deliverable()  # never drop a message whose payload was not delivered
        self.path.unlink()

    def release(self):
        self.path.rename(self.path.with_suffix(".msg"))


@hookimpl
def offload_register_transports(register):
    register("dirq", DirQueue, description="a directory as a queue (dirq-offload)")
