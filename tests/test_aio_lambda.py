"""The asynchronous Lambda handler: the sample events resolve as with the synchronous one, the
same partial batch failures and FIFO rules hold while records are handled concurrently, and
aws-lambda-powertools' ``AsyncBatchProcessor`` reports the same failures."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch import (
    AsyncBatchProcessor,
    EventType,
    async_process_partial_response,
)
from lambda_support import (
    EVENTS,
    LARGE,
    SAMPLES,
    SMALL,
    sample_offloader,
    sample_store,
    with_a_bad_pointer,
)

from offload_core.aio import AsyncOffloader, AsyncPayloadStream
from offload_core.errors import IntegrityError, LocationNotAllowedError, PointerError
from offload_core.offloader import Offloader
from offload_core.testing.aws import MotoServer
from offload_transports.aws_lambda import (
    AsyncRecord,
    async_batch_handler,
    async_powertools_handler,
    async_process,
    batch_handler,
    invocation_loop,
)


@pytest.fixture(scope="module")
def samples_off(moto_server: MotoServer) -> Offloader:
    sample_store(moto_server)
    return sample_offloader(moto_server)


@pytest.fixture
def aoff(samples_off: Offloader) -> Iterator[AsyncOffloader]:
    off = AsyncOffloader(samples_off)
    yield off
    invocation_loop().run_until_complete(off.aclose())


def sample(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


def in_group(record: dict[str, Any], group: str, message_id: str) -> dict[str, Any]:
    attributes = {**record["attributes"], "MessageGroupId": group}
    return {**record, "attributes": attributes, "messageId": message_id}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sample_event_resolves_every_record(name: str, aoff: AsyncOffloader) -> None:
    seen: list[bytes] = []

    @async_batch_handler(aoff)
    async def handler(payload: bytes, record: AsyncRecord) -> None:
        seen.append(payload)

    assert handler(sample(name), None) == {"batchItemFailures": []}
    assert sorted(seen) == sorted(p.encode() for p in SAMPLES[name])


def test_records_run_concurrently_and_fail_alone_with_the_sync_response(
    aoff: AsyncOffloader, samples_off: Offloader
) -> None:
    small, large = sample("sqs.json")["Records"]
    bad = {**small, "messageId": "bad", "body": '{"offload_pointer": 99}'}
    outside = {
        **small,
        "messageId": "outside",
        "body": json.dumps({"offload_pointer": 1, "location": "file:///etc/passwd", "size": 5}),
    }
    boom = {**small, "messageId": "boom"}
    records = [*(dict(large, messageId=f"large-{n}") for n in range(4)), bad, outside, boom]
    event = {"Records": records}
    running = peak = 0

    async def handle(payload: bytes, record: AsyncRecord) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.05)
        running -= 1
        if record.id == "boom":
            raise RuntimeError("the database is down")
        assert payload == LARGE.encode()

    outcome = invocation_loop().run_until_complete(
        async_process(event, handle, aoff, concurrency=4)
    )
    failed = {f.item_identifier: f for f in outcome.failures}
    assert list(failed) == ["bad", "outside", "boom"]  # in record order
    assert isinstance(failed["bad"].error, PointerError)
    assert isinstance(failed["outside"].error, LocationNotAllowedError)
    assert [f.permanent for f in failed.values()] == [True, True, False]
    assert 1 < peak <= 4

    def sync_handle(payload: bytes, record: Any) -> None:
        if record.id == "boom":
            raise RuntimeError("the database is down")

    expected = batch_handler(samples_off)(sync_handle)(event, None)
    assert async_batch_handler(aoff, concurrency=4)(handle)(event, None) == expected


def test_fifo_groups_keep_their_order_and_stop_at_their_first_failure(
    aoff: AsyncOffloader,
) -> None:
    small, large = sample("sqs.json")["Records"]
    event = {
        "Records": [
            in_group(small, "a", "a1"),
            in_group(large, "b", "b1"),
            in_group(small, "a", "a2"),
            in_group(large, "b", "b2"),
            in_group(large, "a", "a3"),
        ]
    }
    calls: list[str] = []

    async def handle(payload: bytes, record: AsyncRecord) -> None:
        calls.append(record.id)
        await asyncio.sleep(0.01)
        if record.id == "a2":
            raise RuntimeError("a2 cannot be processed yet")

    outcome = invocation_loop().run_until_complete(
        async_process(event, handle, aoff, concurrency=8)
    )
    assert [c for c in calls if c.startswith("a")] == ["a1", "a2"]  # a3 never tried
    assert [c for c in calls if c.startswith("b")] == ["b1", "b2"]
    failed = [(f.item_identifier, f.error is None) for f in outcome.failures]
    assert failed == [("a2", False), ("a3", True)]


def test_a_stream_must_be_read_to_its_verified_end(aoff: AsyncOffloader) -> None:
    event = sample("sqs.json")

    async def read_all(stream: AsyncPayloadStream, record: AsyncRecord) -> None:
        data = b"".join([chunk async for chunk in stream])
        assert data in (SMALL.encode(), LARGE.encode())

    async def read_some(stream: AsyncPayloadStream, record: AsyncRecord) -> None:
        await stream.read(10)

    handler = async_batch_handler(aoff, payload="stream")
    assert handler(read_all)(event, None) == {"batchItemFailures": []}
    outcome = invocation_loop().run_until_complete(
        async_process(event, read_some, aoff, payload="stream")
    )
    (failure,) = outcome.failures
    assert failure.item_identifier == event["Records"][1]["messageId"]  # the offloaded one
    assert isinstance(failure.error, IntegrityError)


def test_an_sns_event_raises_its_failure(aoff: AsyncOffloader, samples_off: Offloader) -> None:
    outsider = AsyncOffloader(
        Offloader(samples_off.store.url.rsplit("/", 1)[0] + "/elsewhere", storage_options=None)
    )

    async def handle(payload: bytes, record: AsyncRecord) -> None:
        raise AssertionError("never called")

    with pytest.raises(LocationNotAllowedError):
        async_batch_handler(outsider)(handle)(sample("sns-offloaded.json"), None)


def test_powertools_async_batch_processor_reports_the_same_failures(
    aoff: AsyncOffloader,
) -> None:
    event = with_a_bad_pointer(sample("sqs-sns-envelope.json"))
    seen: list[bytes] = []

    async def handle(payload: bytes, record: AsyncRecord) -> str:
        seen.append(payload)
        return record.id

    processor = AsyncBatchProcessor(event_type=EventType.SQS)
    response = async_process_partial_response(
        event=event, record_handler=async_powertools_handler(handle, aoff), processor=processor
    )
    assert response == {"batchItemFailures": [{"itemIdentifier": "bad-pointer"}]}
    assert sorted(seen) == sorted([SMALL.encode(), LARGE.encode()])
    assert async_batch_handler(aoff)(handle)(event, None) == response
