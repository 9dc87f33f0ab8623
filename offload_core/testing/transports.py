"""An in-memory transport, and the conformance suite every transport should pass.

:class:`MemoryTransport` is a queue in this process with the whole transport contract: limits,
batches, receiving, acknowledging, and failures injected on request. It is what tests of code
that takes a :class:`~offload_core.transport.Transport` can use without a service.

:class:`TransportConformance` proves a transport plugin against the contract. Subclass it in a
test module and give it a ``transport`` fixture (a transport on a fresh destination), and, for
a push service, ``receive`` (how a subscriber gets what was sent)::

    import pytest
    from offload_core.testing.transports import TransportConformance

    class TestMyTransport(TransportConformance):
        @pytest.fixture
        def transport(self, offloader):
            return MyTransport("my-destination", offloader)

The ``offloader`` fixture gives an Offloader on a fresh memory store; override it to test
another store. ``send_raw`` (send a body past offload, for hostile messages) and ``fault`` (make
the next service call fail) enable the tests that need them; without them those are skipped.
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal

import pytest

from offload_core.delivery import Delivery
from offload_core.errors import (
    IncompatibleOptionsError,
    IntegrityError,
    LocationNotAllowedError,
    OffloadError,
    PointerError,
    TransportError,
)
from offload_core.message import Attribute, AttributeLike, OutgoingMessage
from offload_core.offloader import Offloader
from offload_core.policy import Limits
from offload_core.transport import (
    BatchFailure,
    Entry,
    Receiver,
    SendResult,
    Transport,
    TransportBase,
)

__all__ = ["Fault", "MemoryMessage", "MemoryTransport", "TransportConformance"]

#: How an injected failure looks: the service refused the call, or its answer was lost after
#: it had acted on it.
Fault = Literal["refused", "unknown"]


class MemoryMessage(Delivery):
    """A message :meth:`MemoryTransport.receive` gave out: a Delivery that can be acknowledged."""

    def __init__(
        self, transport: MemoryTransport, message_id: str, body: str, attrs: Mapping[str, Any]
    ) -> None:
        self.message_id = self._id = message_id
        self.system = transport.system
        self.destination = transport.destination
        super().__init__(transport.offloader, body, attrs)
        self.body = body
        self._raw_attributes = dict(attrs)
        self._transport = transport

    def ack(self, *, force: bool = False) -> None:
        """Remove the message; refuses, unless ``force``, if its payload was not delivered."""
        if not force:
            self.check_deliverable()
        with self._transport._lock:
            self._transport._in_flight.pop(self._id, None)

    def release(self) -> None:
        """Give the message back now, for another receive."""
        transport = self._transport
        with transport._lock:
            if transport._in_flight.pop(self._id, None) is not None:
                transport._queue.appendleft((self._id, self.body, self._raw_attributes))


class MemoryTransport(TransportBase):
    """A queue in this process, with the same contract as a service's transport.

    :param destination: the queue's name (only said in errors and ``repr``).
    :param offloader: where payloads go, and which stores a consumer may read.
    :param max_message_size: the limit of one message and of one batch, measured by
        ``limits.measure`` (by default the UTF-8 bytes of the body and of the attributes).
    :param max_attributes: the most message attributes one message may carry.
    """

    system = "memory"

    def __init__(
        self,
        destination: str,
        offloader: Offloader,
        *,
        max_message_size: int = 262_144,
        max_attributes: int | None = 10,
    ) -> None:
        self.destination = destination
        self.offloader = offloader
        self._limits = Limits(max_size=max_message_size, max_attributes=max_attributes)
        self._queue: deque[tuple[str, str, dict[str, Attribute]]] = deque()
        self._in_flight: dict[str, tuple[str, str, dict[str, Attribute]]] = {}
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        #: Service calls made, by kind (``"send"``, ``"batch"``).
        self.calls: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"MemoryTransport({self.destination!r}, {self.offloader.store.url!r})"

    @property
    def limits(self) -> Limits:
        return self._limits

    def fail_next(self, fault: Fault, times: int = 1) -> None:
        """Fail the next ``times`` service calls: ``"refused"`` sends nothing; ``"unknown"``
        delivers the messages and then loses the answer."""
        with self._lock:
            self._faults.extend([fault] * times)

    def send_raw(self, body: str, attributes: Mapping[str, Attribute] | None = None) -> None:
        """Put a message on the queue as it is, past offload (a foreign or hostile sender)."""
        self._put(body, dict(attributes or {}))

    def receive(self, max_messages: int = 10, *, wait_seconds: int | None = None) -> list[Any]:
        """Up to ``max_messages`` messages, now; they stay in flight until acknowledged."""
        out: list[MemoryMessage] = []
        with self._lock:
            while self._queue and len(out) < max_messages:
                message_id, body, attributes = self._queue.popleft()
                self._in_flight[message_id] = (message_id, body, attributes)
                out.append(MemoryMessage(self, message_id, body, attributes))
        return out

    # -- the TransportBase hooks ---------------------------------------------------------------

    def _send_message(self, message: OutgoingMessage, entry: Entry) -> SendResult:
        (outcome,) = self._call("send", [message])
        return SendResult(outcome, message.pointer)

    def _send_messages(
        self, batch: Sequence[tuple[OutgoingMessage, Entry]]
    ) -> list[SendResult | BatchFailure]:
        ids = self._call("batch", [message for message, _ in batch])
        return [
            SendResult(message_id, message.pointer, id=entry.id)
            for message_id, (message, entry) in zip(ids, batch, strict=True)
        ]

    def _call(self, kind: str, messages: list[OutgoingMessage]) -> list[str]:
        with self._lock:
            self.calls[kind] += 1
            fault = self._faults.popleft() if self._faults else None
        if fault == "refused":
            raise TransportError(
                f"{self.destination} refused the call", operation=kind, code="Refused"
            )
        ids = [self._put(m.body, dict(m.attributes)) for m in messages]
        if fault == "unknown":
            raise TransportError(
                f"the answer of {self.destination} was lost",
                operation=kind,
                code="Lost",
                outcome_unknown=True,
            )
        return ids

    def _put(self, body: str, attributes: dict[str, Attribute]) -> str:
        message_id = str(uuid.uuid4())
        with self._lock:
            self._queue.append((message_id, body, attributes))
        return message_id


# -- the conformance suite ---------------------------------------------------------------------

#: ``receive(n)``: up to ``n`` messages a subscriber got, as Deliveries.
Receive = Callable[[int], Sequence[Delivery]]
#: ``send_raw(body, attributes)``: a message sent past offload.
SendRaw = Callable[[str, Mapping[str, Attribute]], None]
#: ``fault(kind)``: a context manager inside which the transport's next call fails so.
Inject = Callable[[Fault], contextlib.AbstractContextManager[None]]


def json_payload(size: int, fill: str = "x") -> str:
    """A JSON document of exactly ``size`` ASCII bytes (at least 8): ``{"p":"xx..."}``."""
    return '{"p":"' + fill * (size - 8) + '"}'


class TransportConformance:
    """The transport contract, as tests. See the module docstring for the fixtures."""

    #: Whether a received payload has the exact bytes sent; ``False`` for services that
    #: re-serialise JSON (EventBridge), where the suite compares parsed JSON instead.
    exact_bytes: bool = True

    @pytest.fixture
    def offloader(self) -> Offloader:
        return Offloader(f"memory://conformance-{uuid.uuid4().hex[:12]}", pointer_format="native")

    @pytest.fixture
    def transport(self, offloader: Offloader) -> Transport:
        raise NotImplementedError("give the suite a transport fixture")

    @pytest.fixture
    def receive(self, transport: Transport) -> Receive:
        if not isinstance(transport, Receiver):
            raise NotImplementedError("a push transport needs a receive fixture")
        return lambda n: list(transport.receive(n, wait_seconds=1))  # type: ignore[arg-type]

    @pytest.fixture
    def send_raw(self, transport: Transport) -> SendRaw | None:
        return getattr(transport, "send_raw", None)

    @pytest.fixture
    def fault(self, transport: Transport) -> Inject | None:
        fail_next = getattr(transport, "fail_next", None)
        if fail_next is None:
            return None

        @contextlib.contextmanager
        def inject(kind: Fault) -> Iterator[None]:
            fail_next(kind)
            yield

        return inject

    # -- helpers -----------------------------------------------------------------------------

    def stored(self, transport: Transport) -> set[str]:
        return {info.key for info in transport.offloader.store.list()}

    def one(self, receive: Receive) -> Delivery:
        for _ in range(5):
            got = receive(1)
            if got:
                (message,) = got
                return message
        raise AssertionError("nothing was delivered")

    def drain(self, receive: Receive) -> None:
        """Take what the service may have delivered after all; it must be intact."""
        for message in receive(10):
            assert message.error is None
            message.payload()
            self.done(message)

    def done(self, message: Delivery) -> None:
        """Acknowledge ``message`` where the transport can, keeping the destination shallow."""
        ack = getattr(message, "ack", None)
        if ack is not None:
            ack(force=True)

    def same(self, received: bytes, sent: str) -> bool:
        if self.exact_bytes:
            return received == sent.encode()
        return bool(json.loads(received) == json.loads(sent))

    def budget(self, transport: Transport) -> int:
        """The largest JSON payload that still travels inline, by the transport's own measure."""
        limits = transport.limits
        limit = transport.offloader.policy.effective_limit(limits)
        low, high = 10, limit + 1
        while low < high:  # the measure grows with the body: find the last size that fits
            mid = (low + high + 1) // 2
            if limits.measure(json_payload(mid), {}) <= limit:
                low = mid
            else:
                high = mid - 1
        return low

    # -- sending -----------------------------------------------------------------------------

    def test_satisfies_the_protocol(self, transport: Transport) -> None:
        assert isinstance(transport, Transport)
        assert transport.destination
        assert transport.limits.max_size > 0

    def test_a_small_payload_travels_inline(self, transport: Transport, receive: Receive) -> None:
        before = self.stored(transport)
        payload = json_payload(100)
        assert transport.send(payload).pointer is None
        message = self.one(receive)
        assert not message.offloaded
        assert message.error is None
        assert self.same(message.payload(), payload)
        assert self.stored(transport) == before
        self.done(message)

    def test_the_threshold_is_the_destination_limit(
        self, transport: Transport, receive: Receive
    ) -> None:
        size = self.budget(transport)
        fits, over = json_payload(size, "f"), json_payload(size + 1, "o")
        assert transport.send(fits).pointer is None
        assert transport.send(over).pointer is not None
        got = [self.one(receive), self.one(receive)]
        assert sorted(m.offloaded for m in got) == [False, True]
        for message in got:
            sent = over if message.offloaded else fits
            assert self.same(message.payload(), sent)
            self.done(message)

    def test_a_large_payload_is_stored_and_read_back_verified(
        self, transport: Transport, receive: Receive
    ) -> None:
        before = self.stored(transport)
        payload = json_payload(3 * transport.limits.max_size)
        sent = transport.send(payload)
        assert sent.pointer is not None
        assert sent.pointer.digest is not None
        assert len(self.stored(transport) - before) == 1
        message = self.one(receive)
        assert message.pointer is not None
        assert message.pointer.location == sent.pointer.location
        assert self.same(message.payload(), payload)
        self.done(message)

    def test_attributes_arrive_as_sent(self, transport: Transport, receive: Receive) -> None:
        if not transport.limits.carries_attributes:
            pytest.skip("this transport carries no message attributes")
        attributes: dict[str, AttributeLike] = {"kind": "order", "count": 3, "blob": b"\x00\x01"}
        expected = {
            "kind": Attribute("String", "order"),
            "count": Attribute("Number", "3"),
            "blob": Attribute("Binary", b"\x00\x01"),
        }
        for payload in (json_payload(100), json_payload(2 * transport.limits.max_size)):
            transport.send(payload, attributes=attributes)
            message = self.one(receive)
            assert message.attributes == expected
            assert self.same(message.payload(), payload)
            self.done(message)

    def test_too_many_attributes_are_refused_before_anything_is_stored(
        self, transport: Transport
    ) -> None:
        limits = transport.limits
        if not limits.carries_attributes or limits.max_attributes is None:
            pytest.skip("this transport has no attribute limit")
        before = self.stored(transport)
        attributes = {f"a{i}": "v" for i in range(limits.max_attributes + 1)}
        with pytest.raises(IncompatibleOptionsError):
            transport.send(json_payload(2 * limits.max_size), attributes=attributes)
        assert self.stored(transport) == before

    def test_a_batch_over_its_total_is_fitted_by_storing_its_largest_entries(
        self, transport: Transport, receive: Receive
    ) -> None:
        if getattr(transport, "max_batch_entries", 10) < 4:
            pytest.skip("this transport sends fewer than four messages per call")
        limit = self.budget(transport)
        payloads = [json_payload(limit // 3 + 1000 * i, chr(97 + i)) for i in range(4)]
        before = self.stored(transport)
        result = transport.send_batch(payloads)
        assert not result.failed
        assert sorted(ok.id or "" for ok in result.successful) == ["0", "1", "2", "3"]
        stored = {ok.id for ok in result.successful if ok.pointer is not None}
        assert stored, "four entries of a third of the limit each cannot all travel inline"
        assert len(self.stored(transport) - before) == len(stored)
        got = [self.one(receive) for _ in payloads]
        received = sorted(json.loads(m.payload())["p"] for m in got)
        assert received == sorted(json.loads(p)["p"] for p in payloads)
        for message in got:
            self.done(message)

    def test_batch_entries_are_numbered_across_calls(
        self, transport: Transport, receive: Receive
    ) -> None:
        count = 12
        result = transport.send_batch([Entry(json_payload(50 + i)) for i in range(count)])
        assert not result.failed
        assert sorted(int(ok.id or -1) for ok in result.successful) == list(range(count))
        for _ in range(count):
            self.done(self.one(receive))

    def test_a_refused_send_removes_its_payload(
        self, transport: Transport, fault: Inject | None
    ) -> None:
        if fault is None:
            pytest.skip("no fault fixture")
        before = self.stored(transport)
        with fault("refused"), pytest.raises(OffloadError):
            transport.send(json_payload(2 * transport.limits.max_size))
        assert self.stored(transport) == before
        payloads = [json_payload(2 * transport.limits.max_size), json_payload(100)]
        with fault("refused"):
            try:
                result = transport.send_batch(payloads)
            except OffloadError:
                pass
            else:  # a transport may report refused entries instead of raising
                assert result.failed, "a refused batch call was reported as sent"
        assert self.stored(transport) == before

    def test_a_send_whose_outcome_is_unknown_keeps_its_payload(
        self, transport: Transport, receive: Receive, fault: Inject | None
    ) -> None:
        if fault is None:
            pytest.skip("no fault fixture")
        before = self.stored(transport)
        with fault("unknown"), pytest.raises(OffloadError):
            transport.send(json_payload(2 * transport.limits.max_size))
        kept = self.stored(transport) - before
        assert len(kept) == 1, "the message may be out there: its payload must stay"
        self.drain(receive)

    def test_a_batch_whose_outcome_is_unknown_keeps_its_payloads(
        self, transport: Transport, receive: Receive, fault: Inject | None
    ) -> None:
        if fault is None:
            pytest.skip("no fault fixture")
        before = self.stored(transport)
        payloads = [json_payload(2 * transport.limits.max_size, c) for c in "ab"]
        with fault("unknown"):
            try:
                result = transport.send_batch(payloads)
            except OffloadError:
                pass
            else:
                assert all(f.outcome_unknown for f in result.failed), result.failed
        assert len(self.stored(transport) - before) == 2
        self.drain(receive)

    # -- receiving ---------------------------------------------------------------------------

    def test_a_corrupted_payload_is_never_delivered(
        self, transport: Transport, receive: Receive
    ) -> None:
        payload = json_payload(2 * transport.limits.max_size)
        sent = transport.send(payload)
        assert sent.pointer is not None
        store = transport.offloader.store
        key = store.key_for(sent.pointer.location)
        assert key is not None
        with store.open_write(key) as sink:
            sink.write(json_payload(len(payload), "z").encode())
        message = self.one(receive)
        with pytest.raises(IntegrityError):
            message.payload()
        assert isinstance(message.error, IntegrityError)
        ack = getattr(message, "ack", None)
        if ack is not None:
            with pytest.raises(IntegrityError):
                ack()
        self.done(message)
        assert key in self.stored(transport)

    def test_ack_removes_the_message_and_keeps_the_payload(
        self, transport: Transport, receive: Receive
    ) -> None:
        if not isinstance(transport, Receiver):
            pytest.skip("acknowledging is the subscriber's queue's, for a push transport")
        sent = transport.send(json_payload(2 * transport.limits.max_size))
        message = self.one(receive)
        message.payload()
        message.ack()  # type: ignore[attr-defined]
        assert list(transport.receive(10, wait_seconds=0)) == []
        store = transport.offloader.store
        assert sent.pointer is not None
        assert store.key_for(sent.pointer.location) in self.stored(transport)

    def test_malformed_and_hostile_messages_yield_typed_errors(
        self, transport: Transport, receive: Receive, send_raw: SendRaw | None
    ) -> None:
        if send_raw is None:
            pytest.skip("no send_raw fixture")
        outside = {"offload_pointer": 1, "location": "file:///etc/passwd", "size": 5}
        malformed = {"offload_pointer": 1, "location": 7}
        send_raw(json.dumps(outside), {})
        send_raw(json.dumps(malformed), {})
        raised: list[OffloadError] = []
        for message in (self.one(receive), self.one(receive)):
            with pytest.raises(OffloadError) as info:
                message.payload()
            raised.append(info.value)
            assert message.error is info.value
            ack = getattr(message, "ack", None)
            if ack is not None:
                with pytest.raises(OffloadError):
                    ack()
            self.done(message)
        assert sorted(isinstance(e, LocationNotAllowedError) for e in raised) == [False, True]
        assert any(isinstance(e, PointerError) for e in raised)
