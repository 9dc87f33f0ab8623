"""The EventBridge transport over a real moto server: entry size as EventBridge counts it, a rule
that filters on routing fields kept beside the pointer, batches with refused entries, and events
refused before anything is stored."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from lambda_support import receive, route
from sqs_support import Calls, new_queue, offloader, stored, unique

from offload_core.errors import (
    IncompatibleOptionsError,
    PointerError,
    RoutingFieldError,
    TransportError,
)
from offload_core.offloader import Offloader
from offload_core.pointer import Pointer
from offload_core.testing.aws import MotoServer
from offload_transports.eventbridge import (
    DEFAULT_MAX_ENTRY_SIZE,
    EventBridgeTransport,
    EventEntry,
    entry_measure,
    entry_size,
)
from offload_transports.eventbridge_detail import POINTER_MEMBER, DetailFormat, wrap

LIMIT = 8192
SOURCE = "shop.orders"
DETAIL_TYPE = "OrderPlaced"


@pytest.fixture
def events(moto_server: MotoServer) -> Any:
    return moto_server.client("events")


@pytest.fixture
def off(moto_server: MotoServer, bucket: str) -> Offloader:
    return offloader(moto_server, f"s3://{bucket}/{unique('events')}", pointer_format="native")


@pytest.fixture
def bus_name(events: Any) -> Iterator[str]:
    name = unique("bus")
    events.create_event_bus(Name=name)
    yield name
    for rule in events.list_rules(EventBusName=name)["Rules"]:
        targets = events.list_targets_by_rule(Rule=rule["Name"], EventBusName=name)["Targets"]
        events.remove_targets(Rule=rule["Name"], EventBusName=name, Ids=[t["Id"] for t in targets])
        events.delete_rule(Name=rule["Name"], EventBusName=name)
    events.delete_event_bus(Name=name)


@pytest.fixture
def routed(events: Any, sqs: Any, bus_name: str) -> Iterator[str]:
    """A queue that a rule on the bus feeds with acme's orders."""
    with new_queue(sqs, "routed") as url:
        pattern = {"source": [SOURCE], "detail": {"type": ["order"], "tenant": ["acme"]}}
        route(events, sqs, bus_name, pattern, url)
        yield url


@pytest.fixture
def bus(off: Offloader, events: Any, bus_name: str) -> EventBridgeTransport:
    return EventBridgeTransport(
        bus_name, off, client=events, max_entry_size=LIMIT, keep=["type", "tenant"]
    )


def order(tenant: str = "acme", size: int = 0, **extra: Any) -> dict[str, Any]:
    return {"type": "order", "tenant": tenant, "lines": "l" * size, **extra}


def test_entry_size_counts_as_eventbridge_does() -> None:
    when = datetime(2026, 1, 29, tzinfo=timezone.utc)
    entry = {
        "Source": "shop.ordérs",  # 12 bytes
        "DetailType": "Placed",  # 6
        "Detail": '{"a":"€"}',  # 11
        "Resources": ["arn:x", "arn:ÿ"],  # 5 + 6
        "Time": when,  # 14
    }
    assert entry_size(entry) == 12 + 6 + 11 + 5 + 6 + 14
    assert entry_size({**entry, "Time": None}) == 12 + 6 + 11 + 5 + 6
    measure = entry_measure("s", "d", ["r"], when)
    assert measure('{"x":1}', {}) == 1 + 1 + 1 + 14 + 7
    assert DEFAULT_MAX_ENTRY_SIZE == 1_000_000


def test_limit_counts_the_whole_entry_and_inline_details_arrive_as_sent(
    bus: EventBridgeTransport, sqs: Any, routed: str, off: Offloader
) -> None:
    fixed = len(SOURCE) + len(DETAIL_TYPE)
    empty = json.dumps(order(), separators=(",", ":"))
    fits = order(size=LIMIT - fixed - len(empty))
    assert bus.send(fits, source=SOURCE, detail_type=DETAIL_TYPE).pointer is None
    over = order(size=LIMIT - fixed - len(empty) + 1)
    assert bus.send(over, source=SOURCE, detail_type=DETAIL_TYPE).pointer is not None
    delivered = [json.loads(m["Body"]) for m in receive(sqs, routed, 2)]
    details = sorted((e["detail"] for e in delivered), key=lambda d: POINTER_MEMBER in d)
    assert details[0] == fits
    assert set(details[1]) == {"type", "tenant", POINTER_MEMBER}
    assert off.resolve(json.dumps(details[1])) == json.dumps(over, separators=(",", ":")).encode()


def test_rules_filter_on_kept_fields_of_offloaded_events(
    bus: EventBridgeTransport, sqs: Any, routed: str, off: Offloader
) -> None:
    big = order(size=10 * LIMIT)
    other = order(tenant="globex", size=10 * LIMIT)
    for detail in (big, other, order(tenant="globex")):
        assert bus.send(detail, source=SOURCE, detail_type=DETAIL_TYPE)
    (message,) = receive(sqs, routed, 1)
    event = json.loads(message["Body"])
    assert event["detail"]["tenant"] == "acme"
    assert list(event["detail"]) == ["type", "tenant", POINTER_MEMBER]
    received = off.parse(json.dumps(event["detail"]))
    assert received.pointer is not None
    assert received.pointer.dialect == "eventbridge"
    assert json.loads(off.read_pointer(received.pointer)) == big
    assert sqs.receive_message(QueueUrl=routed, WaitTimeSeconds=0).get("Messages") is None
    assert len(stored(off)) == 2  # globex's large event was stored too, and routed elsewhere


def test_batch_fits_the_total_and_a_refused_entry_loses_its_payload(
    bus: EventBridgeTransport, events: Any, sqs: Any, routed: str, off: Offloader
) -> None:
    calls = Calls(events)
    details = [order(size=LIMIT // 4, n=i) for i in range(9)]
    entries = [EventEntry(d, detail_type=DETAIL_TYPE, source=SOURCE) for d in details]
    refused = EventEntry(
        order(size=2 * LIMIT), detail_type="", source=SOURCE, id="refused"
    )  # no detail type
    result = bus.send_batch([*entries, refused])
    assert calls["PutEvents"] == 1
    assert [(f.id, f.code, f.sender_fault) for f in result.failed] == [
        ("refused", "InvalidArgument", True)
    ]
    inline = sum(r.pointer is None for r in result.successful)
    assert 0 < inline < 9  # the largest were stored until the total fitted the limit
    kept = {r.pointer.location.rsplit("/", 1)[1] for r in result.successful if r.pointer}
    assert {key.rsplit("/", 1)[1] for key in stored(off)} == kept
    got = [json.loads(m["Body"])["detail"] for m in receive(sqs, routed, 9)]
    resolved = [json.loads(off.resolve(json.dumps(d))) for d in got]
    assert sorted(r["n"] for r in resolved) == list(range(9))


def test_a_refused_single_event_raises_and_loses_its_payload(
    bus: EventBridgeTransport, off: Offloader
) -> None:
    with pytest.raises(TransportError) as info:
        bus.send(order(size=2 * LIMIT), source="", detail_type=DETAIL_TYPE)
    assert info.value.code == "InvalidArgument"
    assert info.value.retryable is False
    assert stored(off) == []


@pytest.mark.parametrize(
    ("detail", "options", "match"),
    [
        ({"type": "order", "lines": "l" * 2 * LIMIT}, {}, "tenant"),
        ('["not", "an", "object"]' + " " * 2 * LIMIT, {}, "not an object"),
        ("not json" * LIMIT, {}, "not JSON"),
        (io.BytesIO(b"{}" + b" " * 2 * LIMIT), {}, "pass them as routing"),
        (order(size=2 * LIMIT), {"keep": ["type", "region"]}, "region"),
    ],
    ids=["missing", "array", "not-json", "stream", "per-event-keep"],
)
def test_missing_routing_fields_fail_before_anything_is_stored(
    bus: EventBridgeTransport,
    events: Any,
    off: Offloader,
    detail: Any,
    options: dict[str, Any],
    match: str,
) -> None:
    calls = Calls(events)
    with pytest.raises(RoutingFieldError, match=match) as info:
        bus.send(detail, source=SOURCE, detail_type=DETAIL_TYPE, **options)
    assert info.value.fields
    assert calls["PutEvents"] == 0
    assert stored(off) == []


def test_a_streamed_detail_takes_its_routing_fields_from_routing(
    bus: EventBridgeTransport, sqs: Any, routed: str, off: Offloader
) -> None:
    data = json.dumps(order(size=3 * LIMIT)).encode()
    sent = bus.send(
        io.BytesIO(data),
        source=SOURCE,
        detail_type=DETAIL_TYPE,
        routing={"type": "order", "tenant": "acme"},
    )
    assert sent.pointer is not None
    (message,) = receive(sqs, routed, 1)
    assert off.resolve(json.dumps(json.loads(message["Body"])["detail"])) == data


def test_only_native_pointers_travel_on_eventbridge(
    moto_server: MotoServer, bucket: str, events: Any
) -> None:
    aws = offloader(moto_server, f"s3://{bucket}/aws")
    with pytest.raises(IncompatibleOptionsError, match="pointer_format='native'"):
        EventBridgeTransport(None, aws, client=events)
    native = offloader(moto_server, f"s3://{bucket}/native", pointer_format="native")
    with pytest.raises(RoutingFieldError, match="where the pointer goes"):
        EventBridgeTransport(None, native, client=events, keep=[POINTER_MEMBER])
    with pytest.raises(IncompatibleOptionsError, match="list of field names"):
        EventBridgeTransport(None, native, client=events, keep="type")


def test_an_inline_detail_shaped_like_a_pointer_is_stored_instead(
    bus: EventBridgeTransport, off: Offloader
) -> None:
    pointer = off.store_payload(b"{}")
    lookalike = wrap(off.encode(pointer).body, {"type": "order", "tenant": "acme"})
    assert DetailFormat().decode(lookalike, {}) is not None
    sent = bus.send(lookalike, source=SOURCE, detail_type=DETAIL_TYPE)
    assert sent.pointer is not None
    assert sent.pointer.location != pointer.location


def test_detail_format_reads_only_its_shape() -> None:
    fmt = DetailFormat()
    assert fmt.decode('{"offload": {"size": 1}, "offload_pointer": 1}', {}) is None
    assert fmt.decode('{"type": "order", "note": "offload offload_pointer"}', {}) is None
    duplicated = '{"offload":{"offload_pointer":1,"location":"s3://b/k","location":"s3://c/k"}}'
    with pytest.raises(PointerError, match="duplicate"):
        fmt.decode(duplicated, {})
    with pytest.raises(IncompatibleOptionsError, match="pointer_format='native'"):
        fmt.encode(Pointer("s3://b/k"))


def test_without_kept_fields_the_detail_is_the_pointer_alone(
    off: Offloader, events: Any, bus_name: str, sqs: Any
) -> None:
    with new_queue(sqs, "unfiltered") as url:
        route(events, sqs, bus_name, {"source": [SOURCE]}, url)
        bus = EventBridgeTransport(bus_name, off, client=events, max_entry_size=LIMIT)
        data = json.dumps(order(size=2 * LIMIT))
        assert bus.send(data, source=SOURCE, detail_type=DETAIL_TYPE).pointer is not None
        (message,) = receive(sqs, url, 1)
    detail = json.loads(message["Body"])["detail"]
    assert list(detail) == [POINTER_MEMBER]
    assert off.resolve(json.dumps(detail)) == data.encode()
