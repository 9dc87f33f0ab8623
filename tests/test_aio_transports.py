"""The asynchronous transports pass the transport conformance suite that the synchronous ones
pass, over the same moto server: each sync suite class is reused with its transport made
asynchronous (an aiobotocore client on an event loop of its own, every send awaited there).
Failures are injected into the aiobotocore client through botocore's events, as for boto3."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import test_transport_conformance as sync_suite
from sqs_support import new_queue

from offload_core.aio import AsyncOffloader
from offload_core.offloader import Offloader
from offload_core.testing.aio import BlockingTransport, LoopThread, blocking
from offload_core.testing.aws import MotoServer
from offload_core.testing.transports import Fault
from offload_transports._aws import AsyncClients
from offload_transports.eventbridge import AsyncEventBridgeTransport
from offload_transports.sns import AsyncSnsTransport
from offload_transports.sqs import AsyncSqsTransport

s3_offloader = sync_suite.s3_offloader


@pytest.fixture
def async_client(
    request: pytest.FixtureRequest, moto_server: MotoServer, loop_thread: LoopThread
) -> Iterator[Any]:
    """An aiobotocore client of the test class's service, on the loop thread."""
    service = request.cls.service
    clients = AsyncClients(service, **moto_server.client_options(config=sync_suite.NO_RETRIES))
    yield loop_thread.run(clients.open("the tests"))
    loop_thread.run(clients.aclose())


@pytest.fixture
def async_offloader(offloader: Offloader, loop_thread: LoopThread) -> Iterator[AsyncOffloader]:
    face = AsyncOffloader(offloader)
    yield face
    loop_thread.run(face.aclose())


class TestAsyncSqsTransport(sync_suite.TestSqsTransport):
    service = "sqs"

    @pytest.fixture
    def transport(  # type: ignore[override]
        self,
        async_offloader: AsyncOffloader,
        client: Any,
        async_client: Any,
        loop_thread: LoopThread,
    ) -> Iterator[BlockingTransport]:
        with new_queue(client, "aio-conformance") as url:
            queue = AsyncSqsTransport(url, async_offloader, client=async_client, wait_seconds=1)
            yield blocking(queue, loop_thread)

    @pytest.fixture
    def fault(self, async_client: Any) -> Callable[[Fault], Any]:  # type: ignore[override]
        return sync_suite.faulting(async_client, ["SendMessage", "SendMessageBatch"])


class TestAsyncSnsTransport(sync_suite.TestSnsTransport):
    service = "sns"

    @pytest.fixture
    def transport(  # type: ignore[override]
        self, async_offloader: AsyncOffloader, client: Any, async_client: Any, sqs: Any,
        subscribed: str, loop_thread: LoopThread,
    ) -> Iterator[BlockingTransport]:  # fmt: skip
        with sync_suite.topic_to(client, sqs, subscribed) as topic:
            sns = AsyncSnsTransport(topic, async_offloader, client=async_client)
            yield blocking(sns, loop_thread)

    @pytest.fixture
    def fault(self, async_client: Any) -> Callable[[Fault], Any]:  # type: ignore[override]
        return sync_suite.faulting(async_client, ["Publish", "PublishBatch"])


class TestAsyncEventBridgeTransport(sync_suite.TestEventBridgeTransport):
    service = "events"

    @pytest.fixture
    def transport(  # type: ignore[override]
        self, async_offloader: AsyncOffloader, client: Any, async_client: Any, sqs: Any,
        target: str, loop_thread: LoopThread,
    ) -> Iterator[BlockingTransport]:  # fmt: skip
        with sync_suite.bus_to(client, sqs, target) as bus:
            events = AsyncEventBridgeTransport(
                bus, async_offloader, client=async_client, **sync_suite.BUS
            )
            yield blocking(events, loop_thread)

    @pytest.fixture
    def fault(self, async_client: Any) -> Callable[[Fault], Any]:  # type: ignore[override]
        return sync_suite.faulting(async_client, ["PutEvents"])
